"""The ads check, failure mode by failure mode, on a small purpose-built rule and ADS document."""
from __future__ import annotations

import pytest

from checks import ads, attack
from checks.attack_names import full_name, techniques_named
from checks.config import parse_config
from checks.runner import run_checks
from checks.source import MemorySource

RULE = """\
title: Certutil Download
id: 3c1d2f9e-6a0b-4b8e-9e7a-2f5d1c0a9b11
status: test
description: certutil downloading a file
tags:
    - attack.command-and-control
    - attack.t1105
logsource:
    category: process_creation
    product: windows
detection:
    selection:
        Image|endswith: '\\certutil.exe'
        CommandLine|contains: 'urlcache'
    condition: selection
falsepositives:
    - Administrators fetching certificate revocation lists by hand
level: high
"""

ADS = """\
# Certutil Download

## Goal
Detect certutil.exe used to download payloads from the internet.

## Categorization
- T1105 Ingress Tool Transfer

## Strategy Abstract
Process creation events where certutil runs with -urlcache.

## Technical Context
certutil is a signed Windows binary that can fetch URLs into its cache.

## Blind Spots and Assumptions
Renamed copies of certutil are not seen. Assumes Sysmon process creation logging.

## False Positives
- An administrator fetching certificate revocation lists by hand.

## Validation
1. Run `certutil -urlcache -f https://example.com/a.txt a.txt`
2. Check that the alert fired.

## Priority
High.

## Response
Find the downloaded file, hash it, and check the URL's reputation.
"""

PATHS = {"rule": "rules/win/certutil_dl.yml", "ads": "rules/win/certutil_dl.ads.md",
         "tests": "rules/win/certutil_dl.tests.yml"}


def run_ads(rule: str = RULE, ads_text: str | None = ADS, tests: str | None = None, changed=None,
            config: str = "") -> list:
    files = {PATHS["rule"]: rule.encode()}
    if ads_text is not None:
        files[PATHS["ads"]] = ads_text.encode()
    if tests is not None:
        files[PATHS["tests"]] = tests.encode()
    result = run_checks(MemorySource(files), parse_config(config), changed=changed, only=["ads"])
    return result.findings


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_good_document_passes():
    assert run_ads() == []


def test_bundled_attack_data_is_v19():
    assert attack.version().startswith("Enterprise ATT&CK (2026-04")
    assert attack.technique("t1105") == "Ingress Tool Transfer"
    assert attack.technique("T9999") is None
    assert full_name("T1059.001") == "Command and Scripting Interpreter: PowerShell"
    assert techniques_named("cloud accounts") == ["T1078.004", "T1585.003", "T1586.003"]
    assert attack.tactic("command-and-control") == "Command and Control"


def test_missing_document_is_a_failure_at_the_title_line():
    [f] = run_ads(ads_text=None)
    assert (f.path, f.start_line, f.level, f.title) == (PATHS["rule"], 1, "failure", "ADS missing")
    assert PATHS["ads"] in f.message


def test_custom_ads_path_template():
    files = {PATHS["rule"]: RULE.encode(), "docs/ads/certutil_dl.md": ADS.encode()}
    cfg = parse_config("ads_path: 'docs/ads/{name}.md'\n")
    assert run_checks(MemorySource(files), cfg, only=["ads"]).findings == []


@pytest.mark.parametrize("section", ads.SECTIONS)
def test_each_missing_section_is_reported(section):
    lines = ADS.splitlines()
    start = next(i for i, line in enumerate(lines) if line == f"## {section}")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    text = "\n".join(lines[:start] + lines[end:]) + "\n"
    found = [f for f in run_ads(ads_text=text) if f.title == "ADS section missing"]
    assert len(found) == 1
    assert found[0].message.startswith(f"section '{section}' is missing")
    assert found[0].path == PATHS["ads"]
    # The nearest line: the end of the section before it (or the first section, for Goal).
    i = ads.SECTIONS.index(section)
    if i == 0:
        assert found[0].start_line == line_of(text, "## Categorization")
    else:
        prev = ads.SECTIONS[i - 1]
        prev_start = line_of(text, f"## {prev}")
        assert prev_start < found[0].start_line < prev_start + 5


@pytest.mark.parametrize("section", ads.SECTIONS)
def test_each_empty_section_is_reported_at_its_heading(section):
    lines = ADS.splitlines()
    start = next(i for i, line in enumerate(lines) if line == f"## {section}")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    text = "\n".join(lines[: start + 1] + [""] + lines[end:]) + "\n"
    found = [f for f in run_ads(ads_text=text) if f.title == "ADS section empty"]
    assert [(f.start_line, f.message) for f in found] == [(start + 1, f"section '{section}' is empty")]


@pytest.mark.parametrize("placeholder", ["TODO", "TBD", "N/A", "- TODO: write this", "Lorem ipsum dolor sit amet",
                                         "<describe the goal>",
                                         "TODO: the adversary behaviour this rule detects, in one or two sentences.",
                                         "the adversary behaviour this rule detects, in one or two sentences."])
def test_placeholder_only_sections_count_as_empty(placeholder):
    text = ADS.replace("Detect certutil.exe used to download payloads from the internet.", placeholder)
    found = [f for f in run_ads(ads_text=text) if f.title == "ADS section empty"]
    assert len(found) == 1
    assert found[0].start_line == line_of(text, "## Goal")
    assert "placeholder" in found[0].message and "'Goal'" in found[0].message


def test_configured_placeholder_and_html_comment_help():
    text = ADS.replace("Detect certutil.exe used to download payloads from the internet.",
                       "<!-- say what it detects -->\nFILL LATER")
    assert run_ads(ads_text=text) == []
    found = run_ads(ads_text=text, config="ads:\n  placeholders: ['^fill later$']\n")
    assert [f.title for f in found] == ["ADS section empty"]


def test_headings_any_level_case_and_synonyms_and_order():
    text = (ADS.replace("## Goal", "# GOAL").replace("## Priority", "#### priority:")
            .replace("## Response", "Playbook\n--------"))
    # Move Goal to the end: order is free.
    head, goal_and_rest = text.split("# GOAL", 1)
    goal, rest = goal_and_rest.split("## Categorization", 1)
    text = head + "## Categorization" + rest + "\n# GOAL" + goal
    assert run_ads(ads_text=text) == []
    renamed = ADS.replace("## Response", "## Next steps")
    assert [f.title for f in run_ads(ads_text=renamed)] == ["ADS section missing"]
    assert run_ads(ads_text=renamed, config="ads:\n  synonyms:\n    Response: [Next steps]\n") == []


def test_heading_inside_code_block_is_not_a_section():
    text = ADS.replace("## Response\n", "```\n## Response\n```\n")
    assert "section 'Response' is missing" in " ".join(f.message for f in run_ads(ads_text=text))


def test_optional_sections_config():
    text = ADS.replace("## Technical Context\ncertutil is a signed Windows binary that can fetch URLs into its "
                       "cache.\n", "")
    assert [f.title for f in run_ads(ads_text=text)] == ["ADS section missing"]
    assert run_ads(ads_text=text, config="ads:\n  optional: [Technical Context]\n") == []


@pytest.mark.parametrize("config,key,line", [
    ("ads:\n  colour: red\n", "ads.colour", 2),
    ("ads:\n  synonyms:\n    Summary: [x]\n", "ads.synonyms.Summary", 3),
    ("ads:\n  placeholders: ['(']\n", "ads.placeholders", 2),
    ("ads:\n  priorities:\n    urgent: [p0]\n", "ads.priorities.urgent", 3),
    ("ads:\n  fp_match: 2\n", "ads.fp_match", 2),
])
def test_bad_config_is_a_finding_at_its_line(config, key, line):
    [f] = run_ads(config=config)
    assert (f.path, f.start_line, f.title) == (".github/detbot.yml", line, "Configuration error")
    assert f.message.startswith(key)


def test_technique_in_tags_but_not_in_ads():
    text = ADS.replace("- T1105 Ingress Tool Transfer", "- T1218 System Binary Proxy Execution")
    found = sorted(run_ads(ads_text=text), key=lambda f: f.message)
    assert [f.title for f in found] == ["ATT&CK mismatch", "ATT&CK mismatch"]
    ads_side, rule_side = found
    assert ads_side.start_line == line_of(text, "T1218")
    assert ads_side.message.startswith("Categorization names T1218 (System Binary Proxy Execution) but the rule's "
                                       "tags do not")
    assert rule_side.start_line == line_of(text, "## Categorization")
    assert rule_side.message.startswith("the rule is tagged attack.t1105 (Ingress Tool Transfer, "
                                        f"{PATHS['rule']}:7) but Categorization does not name T1105")


def test_technique_named_by_name_agrees():
    text = ADS.replace("- T1105 Ingress Tool Transfer", "- Technique: Ingress Tool Transfer")
    assert run_ads(ads_text=text) == []
    rule = RULE.replace("attack.t1105", "attack.t1059.001")
    text = ADS.replace("- T1105 Ingress Tool Transfer", "Execution / Command and Scripting Interpreter: PowerShell")
    assert run_ads(rule=rule, ads_text=text) == []


def test_technique_linked_by_its_attack_url_agrees():
    """Palantir's ADS examples link the technique's ATT&CK page; a sub-technique's URL is .../T1059/001/, which was
    read as its parent T1059: a failure "does not name T1059.001" on a correct document."""
    rule = RULE.replace("attack.t1105", "attack.t1059.001")
    text = ADS.replace("- T1105 Ingress Tool Transfer", "These attempts are categorized as [Execution / Command and "
                       "Scripting Interpreter: PowerShell](https://attack.mitre.org/techniques/T1059/001/).")
    assert run_ads(rule=rule, ads_text=text) == []
    text = text.replace("T1059/001", "T1003/001")
    msgs = [f.message for f in run_ads(rule=rule, ads_text=text)]
    assert any(m.startswith("Categorization names T1003.001 ") for m in msgs), msgs


def test_parent_of_a_tagged_subtechnique_is_context_but_sub_of_tagged_parent_is_not():
    rule = RULE.replace("attack.t1105", "attack.t1059.001")
    text = ADS.replace("- T1105 Ingress Tool Transfer", "- T1059 Command and Scripting Interpreter\n- T1059.001")
    assert run_ads(rule=rule, ads_text=text) == []
    rule = RULE.replace("attack.t1105", "attack.t1059")
    text = ADS.replace("- T1105 Ingress Tool Transfer", "- T1059.001 PowerShell")
    msgs = [f.message for f in run_ads(rule=rule, ads_text=text)]
    assert any("tagged with its parent T1059" in m for m in msgs)
    assert any(m.startswith("the rule is tagged attack.t1059 ") for m in msgs)


def test_unknown_technique_id_in_ads():
    text = ADS.replace("- T1105 Ingress Tool Transfer", "- T1105 Ingress Tool Transfer\n- T1086 PowerShell (old)")
    [f] = run_ads(ads_text=text)
    assert (f.title, f.start_line) == ("Unknown ATT&CK technique", line_of(text, "T1086"))
    assert f.message.startswith("T1086 is not a technique in ATT&CK Enterprise ATT&CK (2026-04-14)")


@pytest.mark.parametrize("said", ["None", "- Unknown", "None known.", "No known false positives"])
def test_false_positives_none_is_not_concrete(said):
    text = ADS.replace("- An administrator fetching certificate revocation lists by hand.", said)
    [f] = run_ads(ads_text=text, rule=RULE.replace("    - Administrators fetching certificate revocation lists by "
                                                   "hand\n", "    - Unknown\n"))
    assert (f.title, f.start_line) == ("No concrete false positive", line_of(text, "## False Positives"))
    assert f.message.startswith("False Positives names no concrete case")


def test_rule_false_positive_must_be_mentioned():
    text = ADS.replace("- An administrator fetching certificate revocation lists by hand.",
                       "- Software updaters that shell out to certutil.")
    [f] = run_ads(ads_text=text)
    assert (f.title, f.level, f.start_line) == ("False positive not in ADS", "warning",
                                                line_of(text, "## False Positives"))
    assert "'Administrators fetching certificate revocation lists by hand'" in f.message
    assert f"{PATHS['rule']}:17" in f.message
    # Word overlap, not exact text: another wording of the same case passes.
    text = ADS.replace("- An administrator fetching certificate revocation lists by hand.",
                       "- Revocation lists fetched manually by an administrator (certificate maintenance).")
    assert run_ads(ads_text=text) == []


@pytest.mark.parametrize("validation,ok", [
    ("1. Run certutil\n2. Watch the alert", True),
    ("```\ncertutil -urlcache -f http://x/y y\n```", True),
    ("Run Atomic Red Team test T1105-7.", True),
    ("Replay the test event 'certutil fetches a payload'.", True),
    ("See certutil_dl.tests.yml.", True),
    ("It was validated in the lab last year.", False),
])
def test_validation_must_be_reproducible(validation, ok):
    tests = ("- name: certutil fetches a payload\n  expect: match\n  event:\n    Image: 'C:\\x\\certutil.exe'\n"
             "    CommandLine: certutil -urlcache\n")
    text = ADS.replace("1. Run `certutil -urlcache -f https://example.com/a.txt a.txt`\n2. Check that the alert "
                       "fired.", validation)
    found = run_ads(ads_text=text, tests=tests)
    if ok:
        assert found == []
    else:
        [f] = found
        assert (f.title, f.start_line) == ("Validation not reproducible", line_of(text, "## Validation"))
        assert "(e.g. 'certutil fetches a payload')" in f.message


@pytest.mark.parametrize("priority,level,problem", [
    ("High.", "high", None),
    ("P2 (high)", "high", None),
    ("Medium: certutil downloads are common in this fleet.", "high", "says 'Medium' (medium)"),
    ("A low-noise rule; priority critical.", "critical", None),
    ("Page the on-call analyst.", "high", "states no level"),
])
def test_priority_must_agree_with_level(priority, level, problem):
    text = ADS.replace("## Priority\nHigh.", f"## Priority\n{priority}")
    found = run_ads(ads_text=text, rule=RULE.replace("level: high", f"level: {level}"))
    if problem is None:
        assert found == []
    else:
        [f] = found
        assert f.title == "Priority mismatch" and problem in f.message
        assert f"the rule's level is {level} ({PATHS['rule']}:18)" in f.message
        assert f.start_line in (line_of(text, "## Priority"), line_of(text, "## Priority") + 1)


def test_changed_rule_without_ads_change_is_a_warning():
    [f] = run_ads(changed={PATHS["rule"]})
    assert (f.path, f.start_line, f.level, f.title) == (PATHS["rule"], 11, "warning", "ADS not updated")
    assert "only sees that the rule file changed" in f.message
    assert run_ads(changed={PATHS["rule"], PATHS["ads"]}) == []
    # Only the ADS or only the tests changed: no warning.
    assert run_ads(changed={PATHS["ads"]}) == []
    assert run_ads(changed={PATHS["tests"]}, tests="[]\n") == []


def test_hostile_documents_do_not_crash():
    for text in ["", "\x00\x01binary", "#" * 10000, "## Goal\n" * 5000, "```\n" + "## Goal\n" * 10]:
        found = run_ads(ads_text=text)
        assert found and all(f.path == PATHS["ads"] for f in found)


def test_cli_pull_request_mode_shows_the_warning(tmp_path, capsys):
    from bot.cli import main
    (tmp_path / "rules/win").mkdir(parents=True)
    (tmp_path / PATHS["rule"]).write_text(RULE)
    (tmp_path / PATHS["ads"]).write_text(ADS)
    assert main(["check", str(tmp_path), "--check", "ads", "--changed-only", PATHS["rule"]]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{PATHS['rule']}:11:1: warning: ADS not updated: this pull request changes")
    assert main(["check", str(tmp_path), "--check", "ads", "--changed-only", PATHS["rule"], PATHS["ads"]]) == 0
    assert capsys.readouterr().out == ""
