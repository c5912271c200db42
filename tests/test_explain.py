"""`detbot explain RULE EVENT`: the tests check's explanation for any event file."""
from __future__ import annotations

import json

from bot.cli import main
from checks.evaluator import compile_rule
from checks.explain import decisive, explain_evaluation, polarity, quote
from checks.rulefile import build_rule
from tests.test_tests_check import CORR_FILE

RULE = """\
title: Edge From Word
logsource: {category: process_creation, product: windows}
detection:
    selection:
        ParentImage|endswith: '\\winword.exe'
    filter_main_edge:
        Image|endswith: '\\msedge.exe'
    condition: selection and not filter_main_edge
"""


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_explain_bare_yaml_event(tmp_path, capsys):
    rule = write(tmp_path, "r.yml", RULE)
    event = write(tmp_path, "ev.yml", "ParentImage: 'C:\\Office\\winword.exe'\nImage: 'C:\\Edge\\msedge.exe'\n")
    assert main(["explain", rule, event]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{tmp_path}/ev.yml:1: ev: the rule did not match: selection true, filter_main_edge "
                          "true. filter_main_edge: Image|endswith '\\msedge.exe' matched 'C:\\Edge\\msedge.exe', "
                          "so the filter excluded the event.")


def test_explain_tests_file_exit_code_follows_expectations(tmp_path, capsys):
    rule = write(tmp_path, "r.yml", RULE)
    tests = write(tmp_path, "r.tests.yml",
                  "- name: good\n  expect: match\n  event: {ParentImage: 'x\\winword.exe', Image: chrome.exe}\n"
                  "- name: bad\n  expect: match\n  event: {ParentImage: 'x\\excel.exe'}\n")
    assert main(["explain", rule, tests]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{tmp_path}/r.tests.yml:1: good: expected match, and the rule matched")
    assert lines[1].startswith(f"{tmp_path}/r.tests.yml:4: bad: expected match, but the rule did not match: "
                               "selection false, filter_main_edge false. selection: ParentImage|endswith "
                               "'\\winword.exe' did not match 'x\\excel.exe'")


def test_explain_sigmahq_json_export_each_event(tmp_path, capsys):
    rule = write(tmp_path, "r.yml", RULE)
    ev = {"Event": {"System": {"EventID": 1}, "EventData": {"ParentImage": "C:\\winword.exe", "Image": "a.exe"}}}
    export = write(tmp_path, "x.json", json.dumps(ev) + "\n" + json.dumps(ev) + "\n")
    assert main(["explain", rule, export]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(": ", 1)[0] for line in out] == [f"{tmp_path}/x.json:1", f"{tmp_path}/x.json:2"]
    assert all("the rule matched" in line for line in out)


def test_explain_bad_inputs(tmp_path, capsys):
    rule = write(tmp_path, "r.yml", RULE)
    assert main(["explain", rule, str(tmp_path / "missing.yml")]) == 2
    bad = write(tmp_path, "bad.yml", "- [unclosed\n")
    assert main(["explain", rule, bad]) == 2
    assert "YAML error" in capsys.readouterr().err
    broken = write(tmp_path, "broken.yml", "title: x\n")
    ev = write(tmp_path, "e.yml", "a: 1\n")
    assert main(["explain", broken, ev]) == 2


def test_explain_uses_the_repository_placeholders(tmp_path, capsys):
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github/detbot.yml").write_text("placeholders:\n  admins: [root]\n")
    (tmp_path / "rules").mkdir()
    rule = write(tmp_path, "rules/r.yml", "title: t\nlogsource: {product: x}\ndetection:\n  sel:\n"
                                          "    User|expand: '%admins%'\n  condition: sel\n")
    ev = write(tmp_path, "rules/e.yml", "User: root\n")
    assert main(["explain", rule, ev]) == 0
    assert "the rule matched" in capsys.readouterr().out


def test_decisive_and_polarity_helpers():
    data = {"title": "t", "logsource": {"product": "x"},
            "detection": {"a": {"x": 1}, "b": {"y": 1}, "f": {"z": 1}, "condition": "(a or b) and not f"}}
    rule, _ = build_rule(data)
    c = compile_rule(rule, data=data)
    assert polarity(c) == {"a": True, "b": True, "f": False}
    assert decisive(c, {"a": True, "b": False, "f": False}) == ["a", "f"]
    assert decisive(c, {"a": True, "b": True, "f": False}) == ["f"]
    ev = c.evaluate({"x": 1, "y": 1}, full=True)
    text = explain_evaluation(c, ev)
    assert text.startswith("a true, b true, f false. f: z 1 failed: the event has no field z, so the filter did "
                           "not exclude the event.")
    assert quote("x" * 200).endswith("…'") and len(quote("x" * 200)) == 82


def test_long_values_are_shown_around_what_matched():
    data = {"title": "t", "logsource": {"product": "x"},
            "detection": {"sel": {"CommandLine|contains": " -enc "}, "condition": "sel"}}
    rule, _ = build_rule(data)
    c = compile_rule(rule, data=data)
    cmd = "C:\\Windows\\System32\\WindowsPowerShell\\powershell.exe -nop -w hidden -enc " + "A" * 300
    text = explain_evaluation(c, c.evaluate({"CommandLine": cmd}, full=True))
    assert f"matched '…\\powershell.exe -nop -w hidden -enc {'A' * 30}…'" in text


SCENARIO = """\
- name: first failure
  expect: match
  timestamp: 2026-01-01T10:00:00Z
  event: {EventID: 4625, TargetUserName: a}
- name: lone failure of another user
  expect: no_match
  timestamp: 2026-01-01T10:00:30Z
  event: {EventID: 4625, TargetUserName: b}
- name: second failure
  expect: match
  timestamp: 2026-01-01T10:01:00Z
  event: {EventID: 4625, TargetUserName: a}
"""


def test_explain_correlation_scenario_judges_tests_as_the_tests_check_does(tmp_path, capsys):
    """A correlation's tests are a scenario: explain judged each event against the base rule alone and called the
    lone failure of user b wrong (exit 1) where `detbot check` passes it."""
    rule, tests = write(tmp_path, "r.yml", CORR_FILE), write(tmp_path, "r.tests.yml", SCENARIO)
    assert main(["explain", rule, tests]) == 0
    out = capsys.readouterr().out
    assert "lone failure of another user: expected no_match, and the correlation did not count it" in out, out
    assert "second failure: expected match, and the correlation counted it in group a (2 >= 2)" in out, out
    broken = SCENARIO.replace("TargetUserName: b}", "TargetUserName: a}")
    assert main(["explain", rule, write(tmp_path, "r.tests.yml", broken)]) == 1
    assert "expected no_match, but the correlation counted it in group a (3 >= 2)" in capsys.readouterr().out


def test_explain_a_tests_directory_each_file_with_its_expectation(tmp_path, capsys):
    """The `<name>.tests/` layout: one test per file, explained in path order as the tests check reads them."""
    rule = write(tmp_path, "r.yml", RULE)
    (tmp_path / "r.tests").mkdir()
    write(tmp_path, "r.tests/a_good.yml", "expect: match\nevent: {ParentImage: 'x\\winword.exe', Image: c.exe}\n")
    write(tmp_path, "r.tests/b_bad.json", json.dumps({"expect": "match", "event": {"ParentImage": "x\\excel.exe"}}))
    assert main(["explain", rule, str(tmp_path / "r.tests")]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{tmp_path}/r.tests/a_good.yml:1: a_good: expected match, and the rule matched")
    assert lines[1].startswith(f"{tmp_path}/r.tests/b_bad.json:1: b_bad: expected match, but the rule did not match")
    assert len(lines) == 2


def test_explain_a_directory_of_bare_events_skips_rules(tmp_path, capsys):
    rule = write(tmp_path, "r.yml", RULE)
    write(tmp_path, "other_rule.yml", RULE)
    write(tmp_path, "ev.yml", "ParentImage: 'C:\\winword.exe'\nImage: 'C:\\chrome.exe'\n")
    assert main(["explain", rule, str(tmp_path)]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith(f"{tmp_path}/ev.yml:1: ev: the rule matched")
    (tmp_path / "empty").mkdir()
    assert main(["explain", rule, str(tmp_path / "empty")]) == 2
    assert "a directory with no event file" in capsys.readouterr().err
    assert main(["explain", str(tmp_path), rule]) == 2
    assert "a directory; RULE is one rule file" in capsys.readouterr().err
