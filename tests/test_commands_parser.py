from bot.commands_parser import DEFAULT_DAYS, MAX_COMMANDS, parse_commands


def names(body):
    return [c.name for c in parse_commands(body)]


def test_one_command_per_line_anywhere_case_insensitive():
    body = "Looks good.\n\n/REPLAY\nthanks\n  /Recheck\n/kpi --days 7\n/help"
    cmds = parse_commands(body)
    assert [c.name for c in cmds] == ["replay", "recheck", "kpi", "help"]
    assert cmds[2].days == 7
    assert cmds[1].line == "/Recheck"


def test_replay_rules_deduplicated_in_order():
    (cmd,) = parse_commands("/replay 3c1d2f9e rules/a.yml 3c1d2f9e")
    assert cmd.rules == ("3c1d2f9e", "rules/a.yml")
    assert parse_commands("/replay")[0].rules == ()


def test_replay_names_in_quotes_code_marks_and_comma_lists():
    (cmd,) = parse_commands('/replay `rules/a.yml`, id-2,id-3 "Certutil Download" \u201cAzure Sign-in\u201d')
    assert cmd.rules == ("rules/a.yml", "id-2", "id-3", "Certutil Download", "Azure Sign-in")
    # An apostrophe is not an opening quote; a backslash is kept.
    assert parse_commands("/replay User's Run")[0].rules == ("User's", "Run")
    assert parse_commands(r'/replay "C:\Temp Exec"')[0].rules == (r"C:\Temp Exec",)


def test_kpi_days_forms_and_errors():
    assert parse_commands("/kpi")[0].days == DEFAULT_DAYS
    assert parse_commands("/kpi --days=14")[0].days == 14
    assert parse_commands("/kpi --days 0")[0].error
    assert parse_commands("/kpi --days many")[0].error
    assert parse_commands("/kpi --weeks 2")[0].error
    assert parse_commands("/kpi --days 400")[0].error
    # Unicode digits pass str.isdigit() but not int(): an error to show, not a crash.
    for odd in ("²", "\u0663", "７", "+7", "7.5", "1e2"):
        assert "whole number" in parse_commands(f"/kpi --days {odd}")[0].error


def test_commands_without_arguments_reject_arguments():
    assert parse_commands("/recheck now")[0].error
    assert parse_commands("/recheck")[0].error is None


def test_unknown_command_is_reported_not_dropped():
    (cmd,) = parse_commands("/deploy prod")
    assert cmd.name == "unknown" and "deploy" in cmd.error


def test_not_commands_mid_sentence_or_paths():
    assert names("please /replay this") == []
    assert names("/etc/passwd") == []
    assert names("see https://x/replay") == []


def test_fenced_code_blocks_ignored_until_closed():
    body = "```\n/replay\n```\n/recheck\n~~~~\n/kpi\n~~~\n/help\n~~~~\n/help"
    assert names(body) == ["recheck", "help"]


def test_unclosed_fence_swallows_rest():
    assert names("```yaml\n/replay\n/recheck") == []


def test_indented_code_quotes_and_html_comments_ignored():
    body = "    /replay\n\t/recheck\n> /kpi\n>/help\n<!-- /replay -->\n<!--\n/recheck\n-->\n/help"
    assert names(body) == ["help"]


def test_up_to_three_spaces_is_still_a_command():
    assert names("   /recheck") == ["recheck"]


def test_crlf_bodies_and_none():
    assert names("hi\r\n/recheck\r\n") == ["recheck"]
    assert names(None) == []


def test_number_of_commands_is_capped():
    assert len(parse_commands("/help\n" * 50)) == MAX_COMMANDS


def test_key_ignores_case_and_spacing():
    a, b = parse_commands("/replay  Rule1\n/REPLAY rule1")
    assert a.key == b.key


def test_trailing_punctuation_ends_the_command_word():
    for line in ("/recheck.", "/recheck,", "/recheck!", "/ReCheck?", "/recheck..."):
        (cmd,) = parse_commands(line)
        assert cmd.name == "recheck" and cmd.error is None, line
    (cmd,) = parse_commands("/kpi, --days 7")
    assert cmd.name == "kpi" and cmd.days == 7 and cmd.error is None
    # A longer word is another (unknown) command, answered with the help text.
    for line in ("/rechecked", "/recheckfoo"):
        (cmd,) = parse_commands(line)
        assert cmd.name == "unknown" and cmd.error, line
    assert parse_commands("/recheck.yml") == []    # a path in prose, as before
