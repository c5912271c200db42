"""The coverage check, gap by gap, on small purpose-built rules."""
from __future__ import annotations

import pytest

from bot.cli import main
from checks.config import Config, parse_config
from checks.coverage import format_report, repository_coverage
from checks.evaluator import CompiledRule
from checks.runner import run_checks
from checks.source import MemorySource

RULE = """\
title: Browser From Word
id: 0d6a7f3e-1111-4c1b-9a52-3f1d2f9e6a0b
logsource: {category: process_creation, product: windows}
detection:
    selection:
        ParentImage|endswith: '\\winword.exe'
        Image|endswith:
            - '\\chrome.exe'
            - '\\msedge.exe'
            - '\\firefox.exe'
            - '\\Teams.exe'
    filter_optional_teams:
        Image|endswith: '\\Teams.exe'
    filter_main_edge:
        - Image|endswith: '\\msedge.exe'
          CommandLine|contains: '--single-argument'
        - Image: 'C:\\Tools\\allowed.exe'
    condition: selection and not 1 of filter_*
level: high
"""

MATCH = "- name: chrome from word\n  expect: match\n  event: {ParentImage: 'C:\\winword.exe', Image: 'C:\\chrome.exe'}\n"
EDGE = ("- name: edge link\n  expect: no_match\n  event: {ParentImage: 'C:\\winword.exe', Image: 'C:\\msedge.exe', "
        "CommandLine: 'msedge --single-argument x'}\n")
TEAMS = "- name: teams\n  expect: no_match\n  event: {ParentImage: 'C:\\winword.exe', Image: 'C:\\Teams.exe'}\n"


def run(tests: str | None, rule: str = RULE, config: str = "", extra: dict | None = None, only=("coverage",)):
    files = {"rules/r.yml": rule.encode(), **{k: v.encode() for k, v in (extra or {}).items()}}
    if tests is not None:
        files["rules/r.tests.yml"] = tests.encode()
    return run_checks(MemorySource(files), parse_config(config), only=list(only))


def failures(result):
    return [(f.start_line, f.title, f.message) for f in result.findings if f.level == "failure"]


def test_no_tests_at_all():
    [(line, title, msg)] = failures(run(None))
    assert (line, title) == (4, "No tests")
    assert "add r.tests.yml with at least one match and one no_match event" in msg


def test_outcome_coverage_needs_match_and_no_match():
    got = failures(run(EDGE + TEAMS))
    assert (4, "No match test", "Browser From Word: no test expects a match; add a match event that the rule "
                                "detects") in got
    got = failures(run(MATCH))
    assert any(t == "No no_match test" and line == 4 for line, t, _ in got)


def test_filter_never_decisive_is_a_failure_at_its_line_with_a_hint():
    got = failures(run(MATCH + EDGE))
    assert got == [(12, "Identifier not decisive",
                    "no test where filter_optional_teams alone excludes the event: add a no_match event with Image "
                    "ending in '\\Teams.exe' where selection is also true and filter_main_edge is false "
                    "(filter_optional_teams was true in 0 and false in 2 test events)")]
    assert failures(run(MATCH + EDGE + TEAMS)) == []


def test_filter_true_only_where_the_selection_is_false_is_not_decisive():
    teams_from_excel = ("- name: teams elsewhere\n  expect: no_match\n  event: {ParentImage: 'C:\\excel.exe', "
                        "Image: 'C:\\Teams.exe'}\n")
    got = failures(run(MATCH + EDGE + teams_from_excel))
    assert [m for _, _, m in got] == [
        "no test where filter_optional_teams alone excludes the event: add a no_match event with Image ending in "
        "'\\Teams.exe' where selection is also true and filter_main_edge is false (filter_optional_teams was true "
        "in 1 and false in 2 test events)"]


def test_selection_never_decisive_names_what_to_add():
    rule = RULE.replace("condition: selection and not 1 of filter_*",
                        "condition: (selection or sel_other) and not 1 of filter_*").replace(
        "    filter_optional_teams:", "    sel_other:\n        CommandLine|contains|all: ['http', 'urlcache']\n"
                                     "    filter_optional_teams:")
    got = failures(run(MATCH + EDGE + TEAMS, rule))
    assert got == [(12, "Identifier not decisive",
                    "no test where sel_other alone makes the rule match: add a match event with CommandLine "
                    "containing 'http' and 'urlcache' where selection is false (and the rest of the condition met) (sel_other was true in 0 "
                    "and false in 3 test events)")]


def test_value_coverage_notice_lists_unmatched_values_and_maps():
    result = run(MATCH + EDGE + TEAMS)
    [f] = [f for f in result.findings if f.title == "Value coverage"]
    # At the first unmatched value's own line (- '\\firefox.exe'), where GitHub shows the annotation.
    assert (f.level, f.start_line) == ("notice", 10)
    assert f.message == ("Browser From Word: 67% of values matched by a test event (4/6); unmatched: selection: "
                         "Image|endswith '\\firefox.exe'; filter_main_edge map 2 (Image 'C:\\Tools\\allowed.exe')")
    firefox = ("- name: firefox from word\n  expect: match\n  event: {ParentImage: 'C:\\winword.exe', "
               "Image: 'C:\\firefox.exe'}\n")
    [f] = [f for f in run(MATCH + firefox + EDGE + TEAMS).findings if f.title == "Value coverage"]
    # An unmatched map of a list of maps: at its first line (- Image: 'C:\\Tools\\allowed.exe').
    assert f.start_line == 17
    assert f.message.endswith("unmatched: filter_main_edge map 2 (Image 'C:\\Tools\\allowed.exe')")


@pytest.mark.parametrize("config,level", [("coverage:\n  value_min_percent: 50\n", None),
                                          ("coverage:\n  value_level: failure\n", "failure"),
                                          ("coverage:\n  max_listed: 1\n", "notice")])
def test_value_coverage_config(config, level):
    found = [f for f in run(MATCH + EDGE + TEAMS, config=config).findings if f.title == "Value coverage"]
    assert [f.level for f in found] == ([level] if level else [])
    if "max_listed" in config:
        assert found[0].message.endswith("'\\firefox.exe' and 1 more")


@pytest.mark.parametrize("config,key", [("coverage:\n  colour: 1\n", "coverage.colour"),
                                        ("coverage:\n  value_min_percent: 101\n", "coverage.value_min_percent"),
                                        ("coverage:\n  value_level: loud\n", "coverage.value_level")])
def test_bad_coverage_config(config, key):
    [f] = run(MATCH, config=config).findings
    assert (f.path, f.start_line, f.title) == (".github/detbot.yml", 2, "Configuration error")
    assert f.message.startswith(key)


def test_table_and_repository_percentage():
    result = run(MATCH + EDGE)
    repo = repository_coverage(result.context)
    assert repo.summary() == {"rules": 1, "identifiers_decisive": 2, "identifiers": 3, "identifier_percent": 66.7,
                              "values_matched": 3, "values": 6, "value_percent": 50.0}
    text = format_report(repo)
    assert "rules/r.yml: Browser From Word (1 match / 1 no_match tests, values 3/6)" in text
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines() if line.startswith("  ")}
    assert rows["selection"] == ["select", "2", "0", "yes", "(1)"]
    assert rows["filter_optional_teams"] == ["filter", "0", "2", "NO"]
    assert rows["filter_main_edge"] == ["filter", "1", "1", "yes", "(1)"]
    assert text.endswith("coverage: 2/3 identifiers shown decisive (66.7%), 3/6 values matched (50.0%) over 1 rules")


def test_each_event_is_evaluated_once_for_tests_and_coverage(monkeypatch):
    calls = []
    original = CompiledRule.evaluate

    def counting(self, event, full=False):
        calls.append(full)
        return original(self, event, full)

    monkeypatch.setattr(CompiledRule, "evaluate", counting)
    run(MATCH + EDGE + TEAMS, only=("tests", "coverage"))
    assert calls == [True, True, True]


def test_cli_prints_the_table(tmp_path, capsys):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules/r.yml").write_text(RULE)
    (tmp_path / "rules/r.tests.yml").write_text(MATCH + EDGE)
    main(["check", str(tmp_path), "--check", "coverage", "--coverage-table"])
    captured = capsys.readouterr()
    assert "  identifier             role    true  false  decisive" in captured.out
    assert "coverage: 66.7% of identifiers shown decisive" in captured.err
    main(["check", str(tmp_path), "--check", "coverage"])
    assert "identifier  " not in capsys.readouterr().out


# --- correlations ------------------------------------------------------------------------------------------------

BASE = """\
title: Failed Logon
id: 5c3f0a8e-0000-4000-8000-000000000001
name: failed_logon
logsource: {product: windows, service: security}
detection:
    selection:
        EventID: 4625
    condition: selection
level: low
"""
CORR = """\
title: Many Failed Logons
id: 5c3f0a8e-0000-4000-8000-000000000002
correlation:
    type: event_count
    rules:
        - failed_logon
    group-by:
        - TargetUserName
    timespan: 5m
    condition:
        gte: 3
level: high
"""


def logon(user: str, minute: int, event_id: int = 4625) -> str:
    return (f"- name: {user} {minute} {event_id}\n  expect: {'match' if event_id == 4625 else 'no_match'}\n"
            f"  timestamp: '2026-01-01T10:{minute:02d}:00Z'\n"
            f"  event: {{EventID: {event_id}, TargetUserName: {user}}}\n")


def run_corr(base_tests: str):
    files = {"rules/base.yml": BASE.encode(), "rules/base.tests.yml": base_tests.encode(),
             "rules/corr.yml": CORR.encode()}
    return run_checks(MemorySource(files), Config(), only=["coverage"]).findings


def test_correlation_threshold_reached_and_not_reached():
    tests = logon("alice", 1) + logon("alice", 2) + logon("alice", 3) + logon("bob", 1) + logon("x", 4, 4624)
    assert [f for f in run_corr(tests) if f.path == "rules/corr.yml"] == []


def test_correlation_threshold_never_not_reached():
    tests = logon("alice", 1) + logon("alice", 2) + logon("alice", 3) + logon("x", 4, 4624)
    [f] = [f for f in run_corr(tests) if f.path == "rules/corr.yml"]
    assert (f.start_line, f.title) == (10, "Correlation threshold not shown")
    assert f.message.startswith("the test events never show the threshold (>= 3) not reached: add events of a "
                                "group (TargetUserName) that stays below it")


def test_correlation_threshold_never_reached():
    tests = logon("alice", 1) + logon("alice", 9) + logon("alice", 20) + logon("x", 4, 4624)
    [f] = [f for f in run_corr(tests) if f.path == "rules/corr.yml"]
    assert f.message.startswith("the test events never reach the threshold (>= 3, event_count, grouped by "
                                "TargetUserName)")


def test_correlation_referenced_rule_uncovered_or_missing():
    found = [f for f in run_corr(logon("x", 4, 4624)) if f.path == "rules/corr.yml"]
    assert (found[0].start_line, found[0].title) == (6, "Correlation rule not covered")
    assert found[0].message == ("no test event in its tests matches the referenced rule 'failed_logon': add one "
                                "that does")
    files = {"rules/corr.yml": CORR.replace("- failed_logon", "- nowhere").encode()}
    [f] = run_checks(MemorySource(files), Config(), only=["coverage"]).findings
    assert (f.start_line, f.message) == (6, "referenced rule 'nowhere' is not in the repository")


def test_correlation_in_pull_request_mode_finds_rules_outside_the_change():
    tests = logon("alice", 1) + logon("alice", 2) + logon("alice", 3) + logon("bob", 1) + logon("x", 4, 4624)
    files = {"rules/base.yml": BASE.encode(), "rules/base.tests.yml": tests.encode(),
             "rules/corr.yml": CORR.encode()}
    result = run_checks(MemorySource(files), Config(), changed=["rules/corr.yml"], only=["coverage"])
    assert result.findings == []


def test_filter_and_group_hint_names_the_whole_event():
    rule = """\
title: t
logsource: {product: windows}
detection:
    selection:
        Image|endswith: '\\rundll32.exe'
    filter_parent:
        ParentImage|endswith: '\\Updater.exe'
    filter_dll:
        CommandLine|contains: '\\Citrix\\'
    condition: selection and not (filter_parent and filter_dll)
"""
    tests = ("- name: m\n  expect: match\n  event: {Image: 'C:\\rundll32.exe'}\n"
             "- name: n\n  expect: no_match\n  event: {Image: 'C:\\notepad.exe'}\n")
    got = {line: msg for line, _, msg in failures(run(tests, rule))}
    assert got[6].startswith("no test where filter_parent alone excludes the event: add a no_match event with "
                             "ParentImage ending in '\\Updater.exe' and CommandLine containing '\\Citrix\\' "
                             "(filter_dll)")
    assert got[8].startswith("no test where filter_dll alone excludes the event: add a no_match event with "
                             "CommandLine containing '\\Citrix\\' and ParentImage ending in '\\Updater.exe' "
                             "(filter_parent)")


def test_correlation_with_its_own_scenario_tests_in_one_file():
    from tests.test_tests_check import CORR_FILE, logon as scenario
    tests = (scenario("a1", "match", "alice", 1) + scenario("a2", "match", "alice", 2) +
             scenario("b1", "no_match", "bob", 3))
    files = {"rules/c.yml": CORR_FILE.encode(), "rules/c.tests.yml": tests.encode()}
    assert run_checks(MemorySource(files), Config(), only=["coverage"]).findings == []
    files["rules/c.tests.yml"] = (scenario("a1", "match", "alice", 1) + scenario("a2", "match", "alice", 2)).encode()
    [f] = run_checks(MemorySource(files), Config(), only=["coverage"]).findings
    assert (f.start_line, f.title) == (19, "Correlation threshold not shown")
    assert "not reached" in f.message


def test_unreadable_tests_give_one_coverage_finding():
    [f] = run("- name: x\n  expect: maybe\n  event: {a: 1}\n").findings
    assert (f.title, f.start_line) == ("No tests", 4)
    assert f.message.endswith("no test events; its test files could not be read (see the tests check)")


def test_correlation_reference_outside_the_fetched_files_is_only_a_warning():
    # The bot fetches only what a pull request touched; the rest of the repository is a listing.
    source = MemorySource({"rules/corr.yml": CORR.encode()}, listing=["rules/corr.yml", "rules/base.yml"])
    [f] = run_checks(source, Config(), changed=["rules/corr.yml"], only=["coverage"]).findings
    assert (f.level, f.start_line) == ("warning", 6)
    assert f.message == ("referenced rule 'failed_logon' is not among the files this run could read (1 rule files "
                         "were not fetched)")


# --- tricky conditions: each verdict checked by hand ---------------------------------------------------------------

ABX = """\
title: t
logsource: {product: windows}
detection:
    a:
        A: 1
    b:
        B: 1
    filter_x:
        X: 1
    filter_y:
        Y: 1
    condition: CONDITION
"""


def ev(expect: str, event: str) -> str:
    return f"- name: '{expect} {event}'\n  expect: {expect}\n  event: {event}\n"


def verdicts(condition: str, tests: str) -> dict[int, tuple[str, str]]:
    result = run(tests, ABX.replace("CONDITION", condition))
    return {f.start_line: (f.level, f.message) for f in result.findings if f.check == "coverage"}


def test_an_event_both_filters_exclude_shows_neither_and_the_hint_asks_for_one_alone():
    for condition in ("a and not (filter_x or filter_y)", "a and not 1 of filter_*"):
        got = verdicts(condition, ev("match", "{A: 1}") + ev("no_match", "{A: 1, X: 1, Y: 1}"))
        assert got == {
            8: ("failure", "no test where filter_x alone excludes the event: add a no_match event with X equal to 1 "
                           "where a is also true and filter_y is false (filter_x was true in 1 and false in 1 test "
                           "events)"),
            10: ("failure", "no test where filter_y alone excludes the event: add a no_match event with Y equal to 1 "
                            "where a is also true and filter_x is false (filter_y was true in 1 and false in 1 test "
                            "events)")}
        # Followed literally, the hints make each filter decisive.
        assert verdicts(condition, ev("match", "{A: 1}") + ev("no_match", "{A: 1, X: 1}") +
                        ev("no_match", "{A: 1, Y: 1}")) == {}


def test_a_filter_group_needs_the_selection_true_in_its_no_match_event():
    condition = "a and not (filter_x and filter_y)"
    got = verdicts(condition, ev("match", "{A: 1}") + ev("no_match", "{X: 1, Y: 1}"))
    assert got[8] == ("failure", "no test where filter_x alone excludes the event: add a no_match event with X equal "
                                 "to 1 and Y equal to 1 (filter_y) where a is also true (filter_x was true in 1 and "
                                 "false in 1 test events)")
    # One event where both hold and the selection matches shows both: each one's flip alone lets it through.
    assert verdicts(condition, ev("match", "{A: 1}") + ev("no_match", "{A: 1, X: 1, Y: 1}")) == {}


def test_or_where_both_hold_in_every_match_shows_neither():
    got = verdicts("a or b", ev("match", "{A: 1, B: 1}") + ev("no_match", "{X: 1}"))
    assert got[4] == ("failure", "no test where a alone makes the rule match: add a match event with A equal to 1 "
                                 "where b is false (and the rest of the condition met) (a was true in 1 and false in "
                                 "1 test events)")
    assert 6 in got
    assert verdicts("a or b", ev("match", "{A: 1}") + ev("match", "{B: 1}") + ev("no_match", "{X: 1}")) == {}


def test_an_identifier_that_selects_in_another_condition_asks_for_a_match_event():
    # filter_x alone is the second condition: whenever it holds the rule matches, so no no_match event can
    # show it; a match event where a is false does.
    condition = "\n        - a and not filter_x\n        - filter_x"
    got = verdicts(condition, ev("match", "{A: 1}") + ev("no_match", "{B: 1}"))
    assert got[8] == ("failure", "no test where filter_x alone makes the rule match: add a match event with X equal "
                                 "to 1 (and the rest of the condition met) (filter_x was true in 0 and false in 2 test "
                                 "events)")
    assert verdicts(condition, ev("match", "{A: 1}") + ev("match", "{X: 1}") + ev("no_match", "{B: 1}")) == {}
    got = verdicts("(a and not filter_x) or (filter_x and b)", ev("match", "{A: 1}") + ev("no_match", "{B: 1}"))
    assert got[8][1].startswith("no test where filter_x alone decides the outcome: add a match event it alone makes "
                                "match, or a no_match event it alone excludes, with X equal to 1")


def test_an_identifier_the_condition_never_depends_on_is_a_warning_not_a_demand():
    got = verdicts("a or (a and b)", ev("match", "{A: 1, B: 1}") + ev("no_match", "{X: 1}"))
    assert got == {6: ("warning", "b can never decide the outcome: for any truth of the other identifiers the "
                                  "condition gives the same result with b true or false; drop it or fix the condition "
                                  "(b was true in 1 and false in 1 test events)")}


def test_events_without_the_group_by_field_do_not_show_the_threshold_not_reached():
    nameless = "- name: no user\n  expect: match\n  timestamp: '2026-01-01T10:05:00Z'\n  event: {EventID: 4625}\n"
    tests = logon("alice", 1) + logon("alice", 2) + logon("alice", 3) + nameless + logon("x", 4, 4624)
    [f] = [f for f in run_corr(tests) if f.path == "rules/corr.yml"]
    assert (f.start_line, f.title) == (10, "Correlation threshold not shown")
    assert f.message.startswith("the test events never show the threshold (>= 3) not reached: add events of a "
                                "group (TargetUserName) that stays below it")
    # Nor reached: three of them are no group at all.
    tests = nameless.replace("no user", "n1") + nameless.replace("no user", "n2") + nameless.replace("no user", "n3")
    found = [f.message for f in run_corr(tests + logon("bob", 1)) if f.path == "rules/corr.yml"]
    assert found == ["the test events never reach the threshold (>= 3, event_count, grouped by TargetUserName): add "
                     "events that do"]


def test_temporal_and_value_count_thresholds():
    base_b = BASE.replace("Failed Logon", "Lockout").replace("000000000001", "000000000003").replace(
        "name: failed_logon", "name: lockout").replace("EventID: 4625", "EventID: 4740")
    temporal = CORR.replace("type: event_count", "type: temporal").replace(
        "- failed_logon", "- failed_logon\n        - lockout").replace("    condition:\n        gte: 3\n", "")
    both = logon("alice", 1) + logon("bob", 1) + logon("x", 4, 4624)
    lockout = ("- name: alice locked\n  expect: match\n  timestamp: '2026-01-01T10:02:00Z'\n"
               "  event: {EventID: 4740, TargetUserName: alice}\n- name: other\n  expect: no_match\n"
               "  event: {EventID: 1}\n")
    files = {"rules/base.yml": BASE, "rules/base.tests.yml": both, "rules/b.yml": base_b, "rules/b.tests.yml": lockout,
             "rules/corr.yml": temporal}
    run_ = lambda fs: [f for f in run_checks(MemorySource({k: v.encode() for k, v in fs.items()}), Config(),
                                             only=["coverage"]).findings if f.path == "rules/corr.yml"]
    assert run_(files) == []  # alice: both rules in 5 minutes; bob: only one
    [f] = run_({**files, "rules/base.tests.yml": logon("alice", 1) + logon("x", 4, 4624)})
    assert f.message.startswith("the test events never show the threshold (>= 2) not reached")
    value_count = CORR.replace("type: event_count", "type: value_count").replace(
        "gte: 3", "gte: 2\n        field: IpAddress")
    files = {"rules/base.yml": BASE, "rules/corr.yml": value_count}

    def ip(user: str, minute: int, addr: str) -> str:
        return logon(user, minute).replace("TargetUserName", f"IpAddress: {addr}, TargetUserName")
    files["rules/base.tests.yml"] = ip("alice", 1, "10.0.0.1") + ip("alice", 2, "10.0.0.1") + logon("x", 4, 4624)
    [f] = run_(files)  # two events, one distinct value: never reached
    assert f.message.startswith("the test events never reach the threshold (>= 2, value_count")
    files["rules/base.tests.yml"] += ip("bob", 1, "10.0.0.1") + ip("bob", 2, "10.0.0.2")
    assert run_(files) == []
