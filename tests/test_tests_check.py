"""The tests check: wrong expectations are failures at the test's line, explained in a reviewer's words."""
from __future__ import annotations

import json

from checks.config import Config, parse_config
from checks.runner import run_checks
from checks.source import MemorySource

RULE = """\
title: Browser Spawned From Office
id: 0d6a7f3e-1111-4c1b-9a52-3f1d2f9e6a0b
logsource:
    category: process_creation
    product: windows
detection:
    selection:
        ParentImage|endswith: '\\winword.exe'
        Image|endswith:
            - '\\chrome.exe'
            - '\\msedge.exe'
    filter_main_edge:
        Image|endswith: '\\msedge.exe'
        CommandLine|contains: '--single-argument'
    condition: selection and not filter_main_edge
level: medium
"""


def check(tests: str, rule: str = RULE, extra: dict | None = None, config: Config | None = None):
    files = {"rules/r.yml": rule.encode(), "rules/r.tests.yml": tests.encode(), **(extra or {})}
    return run_checks(MemorySource(files), config or Config(), only=["tests"]).findings


def test_passing_tests_give_no_finding():
    tests = """\
- name: chrome from word
  expect: match
  event: {ParentImage: 'C:\\Office\\WINWORD.EXE', Image: 'C:\\x\\chrome.exe'}
- name: edge opening a link
  expect: no_match
  event: {ParentImage: 'C:\\Office\\winword.exe', Image: 'C:\\x\\msedge.exe', CommandLine: 'msedge --single-argument https://x'}
"""
    assert check(tests) == []


def test_filter_that_excluded_a_match_is_explained():
    tests = """\
- name: ok
  expect: match
  event: {ParentImage: 'C:\\Office\\winword.exe', Image: 'C:\\x\\chrome.exe'}
- name: edge from word
  expect: match
  event:
    ParentImage: 'C:\\Office\\winword.exe'
    Image: 'C:\\Program Files\\msedge.exe'
    CommandLine: 'msedge.exe --single-argument https://evil'
"""
    [f] = check(tests)
    assert (f.check, f.path, f.start_line, f.level, f.title) == ("tests", "rules/r.tests.yml", 4, "failure",
                                                                 "Test failed")
    assert f.message.startswith("test 'edge from word': expected match, but the rule did not match: "
                                "selection true, filter_main_edge true.")
    assert ("filter_main_edge: Image|endswith '\\msedge.exe' matched 'C:\\Program Files\\msedge.exe'; "
            "CommandLine|contains '--single-argument' matched 'msedge.exe --single-argument https://evil', "
            "so the filter excluded the event.") in f.message


def test_selection_that_failed_is_explained_with_the_value():
    tests = """\
- name: chrome from excel
  expect: match
  event: {ParentImage: 'C:\\Office\\excel.exe', Image: 'C:\\x\\chrome.exe'}
"""
    [f] = check(tests)
    assert f.start_line == 1
    assert "selection false, filter_main_edge false." in f.message
    assert ("selection: ParentImage|endswith '\\winword.exe' did not match 'C:\\Office\\excel.exe', "
            "so the selection did not match.") in f.message


def test_unexpected_match_names_the_filter_that_did_not_exclude():
    tests = """\
- name: edge without the flag
  expect: no_match
  event: {ParentImage: 'C:\\Office\\winword.exe', Image: 'C:\\x\\msedge.exe'}
"""
    [f] = check(tests)
    assert f.message.startswith("test 'edge without the flag': expected no_match, but the rule matched: "
                                "selection true, filter_main_edge false.")
    assert "filter_main_edge: CommandLine|contains '--single-argument' failed: the event has no field " \
           "CommandLine, so the filter did not exclude the event." in f.message
    assert "selection: ParentImage|endswith '\\winword.exe' matched 'C:\\Office\\winword.exe'; Image|endswith " \
           "'\\msedge.exe' matched 'C:\\x\\msedge.exe', so it selected the event." in f.message


def test_all_modifier_and_list_of_maps_and_keywords():
    rule = """\
title: t
logsource: {product: linux}
detection:
    sel_all:
        CommandLine|contains|all: ['curl', 'http', '| sh']
    sel_maps:
        - {a: 1, b: 2}
        - {a: 3, b: 4}
    keywords:
        - 'evilstring'
    condition: sel_all or sel_maps or keywords
"""
    tests = """\
- name: almost
  expect: match
  event: {CommandLine: 'curl http://x -o y', a: 3, b: 5, msg: 'nothing'}
- name: keyword hit
  expect: no_match
  event: {msg: 'found EVILSTRING here'}
"""
    f1, f2 = check(tests, rule)
    assert ("sel_all: CommandLine|contains|all all of 'curl', 'http', '| sh' did not match 'curl http://x -o y' "
            "(missing '| sh')") in f1.message
    assert "sel_maps: none of its 2 maps matched; closest, map 2: b 4 did not match 5" in f1.message
    assert "keywords: keywords 'evilstring' found in no field of the event" in f1.message
    assert "keywords: keyword 'evilstring' found in 'found EVILSTRING here', so it selected the event." \
        in f2.message


def test_tests_directory_and_json_layout_line():
    test = {"name": "json test", "expect": "no_match",
            "event": {"ParentImage": "C:\\winword.exe", "Image": "C:\\chrome.exe"}}
    files = {"rules/r.yml": RULE.encode(), "rules/r.tests/one.json": json.dumps(test, indent=2).encode()}
    [f] = run_checks(MemorySource(files), Config(), only=["tests"]).findings
    assert (f.path, f.start_line) == ("rules/r.tests/one.json", 1)
    assert f.message.startswith("test 'json test': expected no_match, but the rule matched")


def test_sigmahq_match_count_is_a_minimum():
    rule = RULE + "regression_tests_path: regression_data/r/info.yml\n"
    ev = {"Event": {"System": {"EventID": 1, "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon"}}},
                    "EventData": {"ParentImage": "C:\\winword.exe", "Image": "C:\\chrome.exe"}}}
    miss = {"Event": {"System": {"EventID": 1}, "EventData": {"ParentImage": "C:\\excel.exe",
                                                              "Image": "C:\\chrome.exe"}}}
    twin = "\n".join(json.dumps(e) for e in (ev, miss, ev)) + "\n"
    info = ("regression_tests_info:\n  - name: Positive Detection Test\n    type: evtx\n    match_count: {n}\n"
            "    path: regression_data/r/x.evtx\n")
    for n, ok in ((1, True), (2, True), (3, False)):
        files = {"rules/r.yml": rule.encode(), "regression_data/r/info.yml": info.format(n=n).encode(),
                 "regression_data/r/x.json": twin.encode()}
        found = run_checks(MemorySource(files), Config(), only=["tests"]).findings
        if ok:
            assert found == []
        else:
            [f] = found
            assert (f.path, f.start_line) == ("regression_data/r/info.yml", 2)
            assert f.message.startswith("test 'Positive Detection Test': 2 of 3 events matched, 3 needed; first "
                                        "unmatched event (regression_data/r/x.json:2): expected match, but the "
                                        "rule did not match")


def test_changing_only_sigmahq_regression_data_rechecks_the_rule():
    """A pull request that touched only a rule's regression data (info.yml, the JSON export) checked no rule at
    all: a broken positive event passed."""
    rule = RULE + "regression_tests_path: regression_data/r/info.yml\n"
    miss = {"Event": {"System": {"EventID": 1}, "EventData": {"ParentImage": "C:\\excel.exe",
                                                              "Image": "C:\\chrome.exe"}}}
    info = ("regression_tests_info:\n  - name: Positive Detection Test\n    type: evtx\n    match_count: 1\n"
            "    path: regression_data/r/x.evtx\n")
    files = {"rules/r.yml": rule.encode(), "rules/other.yml": RULE.replace("0d6a7f3e", "0d6a7f3f").encode(),
             "regression_data/r/info.yml": info.encode(), "regression_data/r/x.json": json.dumps(miss).encode(),
             "regression_data/r/x.evtx": b"ElfFile"}
    for changed in ("regression_data/r/x.json", "regression_data/r/info.yml", "regression_data/r/x.evtx"):
        result = run_checks(MemorySource(files), Config(), changed=[changed], only=["tests"])
        assert [b.rule_path for b in result.bundles] == ["rules/r.yml"], changed
        assert [(f.path, f.title) for f in result.findings] == [("regression_data/r/info.yml", "Test failed")]
    assert run_checks(MemorySource(files), Config(), changed=["README.md"], only=["tests"]).bundles == []


def test_malformed_test_file_is_reported_by_the_tests_check_and_others_still_run():
    tests = "- name: good\n  expect: no_match\n  event: {Image: x}\n- name: bad\n  expect: maybe\n  event: {}\n"
    [f] = check(tests)
    assert (f.start_line, f.title) == (5, "Malformed test")


def test_unevaluable_rule_is_a_warning_not_a_crash_when_syntax_fails_it():
    rule = "title: t\nlogsource: {product: x}\ndetection:\n  sel: {a: 1}\n  condition: sel and nothere\n"
    files = {"rules/r.yml": rule.encode(), "rules/r.tests.yml": b"- name: t\n  expect: match\n  event: {a: 1}\n"}
    found = run_checks(MemorySource(files), Config(), only=["syntax", "tests"]).findings
    assert [(f.level, f.title) for f in found if f.check == "tests"] == [("warning", "Tests not run")]


def test_placeholders_from_config_are_used():
    rule = ("title: t\nlogsource: {product: x}\ndetection:\n  sel:\n    User|expand: '%admins%'\n"
            "  condition: sel\n")
    tests = "- name: admin\n  expect: match\n  event: {User: root}\n"
    assert check(tests, rule, config=parse_config("placeholders:\n  admins: [root, admin]\n")) == []
    assert len(check(tests, rule)) == 1


CORR_FILE = """\
title: Failed Logon
id: 5c3f0a8e-0000-4000-8000-000000000001
name: failed_logon
logsource: {product: windows, service: security}
detection:
    selection:
        EventID: 4625
    condition: selection
---
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
        gte: 2
level: high
"""


def logon(name: str, expect: str, user: str, minute: int, event_id: int = 4625) -> str:
    return (f"- name: {name}\n  expect: {expect}\n  timestamp: '2026-01-01T10:{minute:02d}:00Z'\n"
            f"  event: {{EventID: {event_id}, TargetUserName: {user}}}\n")


def test_correlation_scenario_tests():
    good = (logon("a1", "match", "alice", 1) + logon("a2", "match", "alice", 2) +
            logon("b1", "no_match", "bob", 3) + logon("ok", "no_match", "alice", 4, 4624))
    assert check(good, CORR_FILE) == []
    bad = (logon("a1", "match", "alice", 1) + logon("a2", "no_match", "alice", 2) +
           logon("b1", "match", "bob", 3) + logon("ok", "match", "carol", 4, 4624))
    found = check(bad, CORR_FILE)
    assert [(f.start_line, f.title) for f in found] == [(5, "Test failed"), (9, "Test failed"), (13, "Test failed")]
    assert found[0].message == ("test 'a2': expected no_match, but the correlation counted this event in group "
                                "alice, which reached 2 (>= 2)")
    assert found[1].message.startswith("test 'b1': expected match, but the correlation did not count this event: "
                                       "it matches failed_logon, but no window holding it reached the threshold "
                                       "(>= 2); per group: alice: 2 (reached); bob: 1")
    assert found[2].message == ("test 'ok': expected match, but the correlation did not count this event: it "
                                "matches none of the referenced rules (failed_logon)")


BROKEN_YAML = "title: t\nlogsource: {product: x}\ndetection:\n  sel: {a: 1\n  condition: sel\n"
NO_SIGMA = "title: t\nlogsource: {product: x}\nlevel: high\ndetection: not a mapping\n"
BAD_CONDITION = "title: t\nlogsource: {product: x}\ndetection:\n  sel: {a: 1}\n  condition: sel and nothere\n"
MATCHING_TEST = "- name: t\n  expect: match\n  event: {a: 1}\n"


def full_run(rule: str, config: str = ""):
    files = {"rules/r.yml": rule.encode(), "rules/r.tests.yml": MATCHING_TEST.encode()}
    return run_checks(MemorySource(files), parse_config(config) if config else Config(),
                      only=["syntax", "tests"]).findings


def test_a_rule_that_does_not_parse_fails_its_tests_when_syntax_does_not_gate():
    for config in ("checks:\n  syntax: false\n", "checks:\n  syntax:\n    level: warning\n"):
        for rule in (BROKEN_YAML, NO_SIGMA, BAD_CONDITION):
            failures = [f for f in full_run(rule, config) if f.level == "failure"]
            assert [(f.check, f.path, f.title) for f in failures] == [("tests", "rules/r.yml", "Tests not run")], \
                (config, rule)
            assert "1 test(s) could not run" in failures[0].message
    (f,) = [f for f in full_run(BROKEN_YAML, "checks:\n  syntax: false\n") if f.check == "tests"]
    assert f.start_line == 5 and "does not parse" in f.message     # where and why the YAML broke
    (f,) = [f for f in full_run(NO_SIGMA, "checks:\n  syntax: false\n") if f.check == "tests"]
    assert f.start_line == 4 and "detection" in f.message.lower()


def test_a_rule_that_does_not_parse_fails_once_in_the_default_config():
    for rule in (BROKEN_YAML, NO_SIGMA, BAD_CONDITION):
        found = full_run(rule)
        assert [f.check for f in found if f.level == "failure"] == ["syntax"], rule


def test_a_rule_that_does_not_parse_fails_its_tests_when_only_tests_run():
    """`detbot check --check tests`: the syntax check is enabled in the config but not part of this run."""
    for rule in (BROKEN_YAML, NO_SIGMA, BAD_CONDITION):
        files = {"rules/r.yml": rule.encode(), "rules/r.tests.yml": MATCHING_TEST.encode()}
        found = run_checks(MemorySource(files), Config(), only=["tests"]).findings
        assert [(f.level, f.title) for f in found] == [("failure", "Tests not run")], rule
