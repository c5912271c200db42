from bot.summary import MAX_OUTPUT, MAX_TABLE_ROWS, render_check_output, render_config_error, render_skipped
from checks.findings import Finding
from checks.repository import RuleBundle

CHECKS = ["syntax", "tests", "coverage", "ads"]


def bundle(name):
    return RuleBundle(f"rules/{name}.yml", [f"rules/{name}.tests.yml"], f"rules/{name}.ads.md")


def f(check, path, level="failure", title="Problem", message="details", line=2):
    return Finding(check, path, line, line, level, title, message)


def test_table_rules_by_checks_with_counts_and_details_for_this_check():
    bundles = [bundle("a"), bundle("b"), bundle("c")]
    findings = [f("tests", "rules/b.tests.yml"), f("tests", "rules/b.tests.yml", line=9),
                f("ads", "rules/b.ads.md", level="warning"), f("syntax", "rules/c.yml")]
    out = render_check_output("tests", bundles, findings, CHECKS)
    assert out.title == "2 failures in 1 of 3 rules"
    table = [line for line in out.summary.splitlines() if line.startswith("| `")]
    assert len(table) == 3
    # The rule failing this check comes first, its findings on test/ADS files counted for the rule.
    assert table[0].startswith("| `rules/b.yml` |")
    assert ":x: 2" in table[0] and ":warning: 1" in table[0]
    assert table[1].startswith("| `rules/c.yml` |")
    assert table[2].count(":white_check_mark:") == 4
    assert "**tests**" in out.summary.splitlines()[2]
    assert "rules/b.tests.yml:9" in out.text and "rules/c.yml" not in out.text


def test_all_pass_title():
    out = render_check_output("syntax", [bundle("a")], [], CHECKS)
    assert out.title == "1 rule checked: all pass"
    assert out.text == ""


def test_finding_text_is_made_table_safe():
    out = render_check_output("syntax", [bundle("a")], [f("syntax", "rules/a.yml", title="a|b", message="x\n<img>")],
                              CHECKS)
    assert "a\\|b" in out.text and "<img>" not in out.text


def test_large_prs_stay_within_limits_and_say_what_is_left_out():
    bundles = [bundle(f"r{i:04d}") for i in range(500)]
    findings = [f("syntax", b.rule_path, message="m" * 300) for b in bundles for _ in range(3)]
    out = render_check_output("syntax", bundles, findings, CHECKS, left_out=500)
    assert len(out.summary) <= MAX_OUTPUT and len(out.text) <= MAX_OUTPUT
    assert sum(line.startswith("| `") for line in out.summary.splitlines()) == MAX_TABLE_ROWS
    assert "440 more rules (440 with findings)" in out.summary
    assert "500 findings not annotated" in out.summary
    assert out.text.endswith("characters)._")


def test_skipped_and_config_error_texts():
    assert "none of them a rule" in render_skipped("ads", 3).summary
    out = render_config_error("syntax", ".github/detbot.yml:4: `checks.foo`: unknown check")
    assert "checks.foo" in out.summary and ":4:" in out.summary


def test_clip_counts_utf8_bytes_as_github_does():
    from bot.summary import clip
    text = clip("検" * 30000)
    assert len(text.encode()) <= MAX_OUTPUT and text.startswith("検" * 100) and "truncated" in text
    assert clip("a" * MAX_OUTPUT) == "a" * MAX_OUTPUT
