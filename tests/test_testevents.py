"""Test events from every layout, with their lines; malformed files become findings, never exceptions."""
from __future__ import annotations

import json

import pytest

from checks.source import MemorySource
from checks.testevents import events_from_json_stream, load_event_file, load_tests, sigma_fields
from checks.yamldoc import load_one

TESTS_YML = """\
- name: certutil downloads
  expect: match
  event:
    Image: 'C:\\Windows\\certutil.exe'
  raw: '<Event>...</Event>'
  parser: sysmon
- name: benign
  expect: no_match
  event:
    user.email: a@b.c
"""


def load(files: dict[str, str], test_paths=None, rule_path="rules/r.yml", rule=None):
    src = MemorySource({k: v.encode() if isinstance(v, str) else v for k, v in files.items()})
    doc = load_one(rule.encode()) if rule else None
    paths = test_paths if test_paths is not None else [p for p in files if p != rule_path and
                                                         not p.startswith("regression_data")]
    return load_tests(src, paths, rule_path, doc.data if doc else None, doc)


def test_tests_yml_list_keeps_lines_and_fields():
    out = load({"rules/r.tests.yml": TESTS_YML})
    assert out.findings == []
    a, b = out.tests
    assert (a.name, a.expect, a.line, a.path, a.parser, a.raw) == (
        "certutil downloads", "match", 1, "rules/r.tests.yml", "sysmon", "<Event>...</Event>")
    assert a.event == {"Image": "C:\\Windows\\certutil.exe"}
    assert (b.name, b.expect, b.line, b.event) == ("benign", "no_match", 7, {"user.email": "a@b.c"})
    assert out.names == ["certutil downloads", "benign"]


def test_tests_directory_one_event_per_file_yaml_and_json():
    files = {
        "rules/r.tests/a_match.yml": "expect: match\nevent:\n  EventID: 4688\n",
        "rules/r.tests/b.json": json.dumps({"name": "json one", "expect": "no_match",
                                            "event": {"EventID": 1}}, indent=2),
    }
    out = load(files)
    assert out.findings == []
    assert [(t.name, t.expect, t.path, t.event) for t in out.tests] == [
        ("a_match", "match", "rules/r.tests/a_match.yml", {"EventID": 4688}),
        ("json one", "no_match", "rules/r.tests/b.json", {"EventID": 1})]


@pytest.mark.parametrize("text,line,message", [
    ("- name: x\n  event: {a: 1}\n", 1, "test 'x' has no `expect` (match or no_match)"),
    ("- name: x\n  expect: yes\n  event: {a: 1}\n", 2, "test 'x': `expect` is True; it must be match or no_match"),
    ("- name: x\n  expect: matched\n  event: {a: 1}\n", 2,
     "test 'x': `expect` is 'matched'; it must be match or no_match"),
    ("- name: x\n  expect: match\n", 1, "test 'x' has no `event`"),
    ("- name: x\n  expect: match\n  event: [1, 2]\n", 3,
     "test 'x': `event` must be a mapping of field to value, not a list"),
    ("- just a string\n", 1, "a test must be a mapping with name, expect and event, not a string"),
    ("name: x\nexpect: match\n", 1, "expected a YAML list of tests, found a dict"),
    ("- name: [x\n", 2, None),
])
def test_malformed_tests_are_findings_at_their_line(text, line, message):
    out = load({"rules/r.tests.yml": text})
    assert out.tests == []
    [f] = out.findings
    assert (f.check, f.path, f.start_line, f.level) == ("tests", "rules/r.tests.yml", line, "failure")
    if message:
        assert f.message == message
    else:
        assert f.message.startswith("YAML error")


def test_duplicate_names_and_unknown_keys():
    text = ("- name: a\n  expect: match\n  event: {x: 1}\n"
            "- name: a\n  expect: no_match\n  event: {x: 2}\n"
            "- name: b\n  expected: match\n  expect: match\n  event: {x: 3}\n")
    out = load({"rules/r.tests.yml": text})
    assert [t.name for t in out.tests] == ["a", "b"]
    dup, unknown = out.findings
    assert (dup.start_line, dup.title) == (4, "Duplicate test name")
    assert "first at line 1" in dup.message
    assert (unknown.start_line, unknown.level, unknown.title) == (8, "warning", "Unknown test key")
    assert "did you mean `expect`?" in unknown.message


def test_malformed_json_test_file_and_binary_yaml():
    out = load({"rules/r.tests/a.json": '{"expect": "match",\n "event": {"a": 1,}\n}',
                "rules/r.tests/b.yml": b"\x00\x01\x02"})
    assert out.tests == []
    f1, f2 = out.findings
    assert (f1.path, f1.start_line) == ("rules/r.tests/a.json", 2) and f1.message.startswith("JSON error")
    assert f2.path == "rules/r.tests/b.yml" and "binary" in f2.message


def test_json_test_file_points_at_the_key_line():
    out = load({"rules/r.tests/a.json": '{\n  "name": "n",\n  "expect": "sometimes",\n  "event": {}\n}'})
    [f] = out.findings
    assert f.start_line == 3


# --- SigmaHQ ---------------------------------------------------------------------------------------------------

SIGMAHQ_EVENT = {
    "Event": {
        "#attributes": {"xmlns": "http://schemas.microsoft.com/win/2004/08/events/event"},
        "System": {
            "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon", "Guid": "5770385F"}},
            "EventID": 1,
            "Channel": "Microsoft-Windows-Sysmon/Operational",
            "Computer": "ar-win-dc.attackrange.local",
            "Execution": {"#attributes": {"ProcessID": 3308, "ThreadID": 4008}},
            "Correlation": None,
        },
        "EventData": {"Image": "C:\\Windows\\System32\\certutil.exe", "CommandLine": "certutil -urlcache -f x",
                      "Rule Name": "-"},
    }
}
SIGMAHQ_RULE = ("title: t\nid: 19b08b1c-861d-4e75-a1ef-ea0c1baf202b\nstatus: test\n"
                "regression_tests_path: regression_data/rules/windows/r/info.yml\n")
INFO = """\
id: ee435dcb-08cb-4de1-bb70-bdd27cf0dae9
description: N/A
rule_metadata:
    - id: 19b08b1c-861d-4e75-a1ef-ea0c1baf202b
      title: t
regression_tests_info:
    - name: Positive Detection Test
      type: evtx
      provider: Microsoft-Windows-Sysmon
      match_count: 2
      path: regression_data/rules/windows/r/19b08b1c.evtx
"""


def test_sigma_fields_maps_system_eventdata_and_userdata():
    f = sigma_fields(SIGMAHQ_EVENT)
    assert f["EventID"] == 1 and f["Channel"] == "Microsoft-Windows-Sysmon/Operational"
    assert f["Provider_Name"] == "Microsoft-Windows-Sysmon" and f["Computer"] == "ar-win-dc.attackrange.local"
    assert f["Execution_ProcessID"] == 3308
    assert f["Image"].endswith("certutil.exe")
    assert f["Rule Name"] == f["RuleName"] == "-"
    user = sigma_fields({"Event": {"System": {"EventID": {"#attributes": {"Qualifiers": 0}, "#text": 7045}},
                                   "UserData": {"LogFileCleared": {"#attributes": {"xmlns": "x"},
                                                                   "SubjectUserName": "bob"}}}})
    assert user == {"EventID": 7045, "SubjectUserName": "bob"}
    assert sigma_fields({"NotAnEvent": 1}) is None


def test_json_stream_of_several_events_with_lines():
    text = json.dumps(SIGMAHQ_EVENT, indent=2) + "\n" + json.dumps(SIGMAHQ_EVENT) + "\n"
    got = list(events_from_json_stream(text))
    assert [line for line, _ in got] == [1, text.count("\n")]
    assert list(events_from_json_stream("[{\"a\": 1}, {\"a\": 2}]")) == [(1, {"a": 1}), (1, {"a": 2})]


def test_sigmahq_layout_loads_the_json_twin_with_match_count():
    twin = json.dumps(SIGMAHQ_EVENT, indent=2) + "\n" + json.dumps(SIGMAHQ_EVENT) + "\n"
    files = {"rules/windows/r.yml": SIGMAHQ_RULE,
             "regression_data/rules/windows/r/info.yml": INFO,
             "regression_data/rules/windows/r/19b08b1c.json": twin,
             "regression_data/rules/windows/r/19b08b1c.evtx": b"ElfFile\x00binary"}
    out = load(files, test_paths=[], rule_path="rules/windows/r.yml", rule=SIGMAHQ_RULE)
    assert out.findings == []
    [t] = out.tests
    assert (t.name, t.expect, t.match_count, t.path, t.line) == (
        "Positive Detection Test", "match", 2, "regression_data/rules/windows/r/info.yml", 7)
    assert len(t.events) == 2 and t.events[1]["Provider_Name"] == "Microsoft-Windows-Sysmon"
    assert t.events_path.endswith("19b08b1c.json") and t.event_lines[0] == 1


def test_sigmahq_missing_pieces_are_findings():
    out = load({"rules/windows/r.yml": SIGMAHQ_RULE}, test_paths=[], rule_path="rules/windows/r.yml",
               rule=SIGMAHQ_RULE)
    [f] = out.findings
    assert (f.path, f.start_line, f.title) == ("rules/windows/r.yml", 4, "Regression tests missing")
    files = {"rules/windows/r.yml": SIGMAHQ_RULE, "regression_data/rules/windows/r/info.yml": INFO}
    out = load(files, test_paths=[], rule_path="rules/windows/r.yml", rule=SIGMAHQ_RULE)
    [f] = out.findings
    assert (f.path, f.start_line, f.level, f.title) == ("regression_data/rules/windows/r/info.yml", 7, "warning",
                                                        "Test events missing")
    bad = INFO.replace("match_count: 2", "match_count: lots")
    out = load({"rules/windows/r.yml": SIGMAHQ_RULE, "regression_data/rules/windows/r/info.yml": bad},
               test_paths=[], rule_path="rules/windows/r.yml", rule=SIGMAHQ_RULE)
    [f] = out.findings
    assert f.start_line == 10 and "match_count must be a whole number" in f.message
    files["regression_data/rules/windows/r/19b08b1c.json"] = '{"Event": {"System": {}}}\n{"Event": '
    out = load(files, test_paths=[], rule_path="rules/windows/r.yml", rule=SIGMAHQ_RULE)
    assert [f.title for f in out.findings] == ["Malformed test file"]
    assert len(out.tests) == 1  # the events before the error still count


def test_paths_cannot_leave_the_repository():
    rule = SIGMAHQ_RULE.replace("regression_data/rules/windows/r/info.yml", "../../etc/passwd")
    out = load({"rules/windows/r.yml": rule}, test_paths=[], rule_path="rules/windows/r.yml", rule=rule)
    assert [f.title for f in out.findings] == ["Regression tests missing"]


def test_event_file_forms_for_explain():
    src = MemorySource({"e.yml": b"Image: x.exe\n", "e.json": json.dumps(SIGMAHQ_EVENT).encode(),
                        "t.yml": TESTS_YML.encode(), "one.yml": b"name: n\nexpect: no_match\nevent: {a: 1}\n"})
    [bare] = load_event_file(src, "e.yml").tests
    assert (bare.name, bare.expect, bare.event) == ("e", "match", {"Image": "x.exe"})
    [win] = load_event_file(src, "e.json").tests
    assert win.event["Provider_Name"] == "Microsoft-Windows-Sysmon"
    assert len(load_event_file(src, "t.yml").tests) == 2
    [one] = load_event_file(src, "one.yml").tests
    assert (one.name, one.expect) == ("n", "no_match")


def test_absurdly_nested_json_is_a_finding():
    deep = "[" * 200_000 + "]" * 200_000
    out = load({"rules/r.tests/a.json": deep})
    assert [f.title for f in out.findings] == ["Malformed test file"]
    src = MemorySource({"e.json": deep.encode()})
    assert [f.title for f in load_event_file(src, "e.json").findings] == ["Malformed event file"]


def test_sigmahq_data_listed_but_not_fetched_is_a_warning():
    src = MemorySource({"rules/windows/r.yml": SIGMAHQ_RULE.encode()},
                       listing=["rules/windows/r.yml", "regression_data/rules/windows/r/info.yml"])
    doc = load_one(SIGMAHQ_RULE.encode())
    out = load_tests(src, [], "rules/windows/r.yml", doc.data, doc)
    [f] = out.findings
    assert (f.level, f.title, f.start_line) == ("warning", "Regression tests not read", 4)
