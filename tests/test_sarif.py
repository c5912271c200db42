"""`detbot check`: SARIF GitHub code scanning accepts, exit codes 0/1/2, the progress line on a terminal."""
from __future__ import annotations

import io
import json

import jsonschema
import pytest

from bot.cli import main
from checks.findings import Finding
from checks.formats import to_sarif
from tests.conftest import EXAMPLES
from tests.test_syntax import GOOD

# What GitHub code scanning requires of an uploaded SARIF file (docs: "SARIF support for code scanning"):
# version 2.1.0, runs[].tool.driver.name, and for each result a rule id, a message text and a physical
# location whose artifact URI is relative to the repository root and whose region starts at line >= 1.
GITHUB_SARIF = {
    "type": "object",
    "required": ["version", "runs"],
    "properties": {
        "version": {"const": "2.1.0"},
        "$schema": {"type": "string"},
        "runs": {"type": "array", "minItems": 1, "items": {
            "type": "object",
            "required": ["tool", "results"],
            "properties": {
                "tool": {"type": "object", "required": ["driver"], "properties": {"driver": {
                    "type": "object", "required": ["name"],
                    "properties": {"name": {"type": "string", "minLength": 1},
                                   "rules": {"type": "array", "items": {
                                       "type": "object", "required": ["id"],
                                       "properties": {"id": {"type": "string", "minLength": 1},
                                                      "defaultConfiguration": {"type": "object", "properties": {
                                                          "level": {"enum": ["none", "note", "warning",
                                                                             "error"]}}}}}}}}}},
                "results": {"type": "array", "items": {
                    "type": "object",
                    "required": ["ruleId", "message", "locations"],
                    "properties": {
                        "ruleId": {"type": "string", "minLength": 1},
                        "ruleIndex": {"type": "integer", "minimum": 0},
                        "level": {"enum": ["none", "note", "warning", "error"]},
                        "message": {"type": "object", "required": ["text"],
                                    "properties": {"text": {"type": "string", "minLength": 1}}},
                        "locations": {"type": "array", "minItems": 1, "maxItems": 10, "items": {
                            "type": "object", "required": ["physicalLocation"],
                            "properties": {"physicalLocation": {
                                "type": "object", "required": ["artifactLocation", "region"],
                                "properties": {
                                    "artifactLocation": {
                                        "type": "object", "required": ["uri"],
                                        # relative: no scheme, no leading slash, no backslashes, no ..
                                        "properties": {"uri": {"type": "string",
                                                               "pattern": r"^(?![a-zA-Z][a-zA-Z0-9+.-]*:)(?!/)"
                                                                          r"(?!.*\\)(?!(.*/)?\.\.(/|$)).+$"}}},
                                    "region": {
                                        "type": "object", "required": ["startLine"],
                                        "properties": {"startLine": {"type": "integer", "minimum": 1},
                                                       "endLine": {"type": "integer", "minimum": 1},
                                                       "startColumn": {"type": "integer", "minimum": 1},
                                                       "endColumn": {"type": "integer", "minimum": 1}}}}}}}},
                    }}},
            }}},
    },
}


def _check_sarif(doc: dict) -> None:
    jsonschema.validate(doc, GITHUB_SARIF)
    for run in doc["runs"]:
        rules = run["tool"]["driver"].get("rules", [])
        for result in run["results"]:
            if "ruleIndex" in result:
                assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
            region = result["locations"][0]["physicalLocation"]["region"]
            assert region.get("endLine", region["startLine"]) >= region["startLine"]
            if "endColumn" in region and region.get("endLine", region["startLine"]) == region["startLine"]:
                assert region["endColumn"] > region.get("startColumn", 1)


def test_schema_rejects_what_github_rejects():
    bad = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}, "results": [
        {"ruleId": "r", "message": {"text": "m"}, "locations": [{"physicalLocation": {
            "artifactLocation": {"uri": "/abs/path.yml"}, "region": {"startLine": 0}}}]}]}]}
    with pytest.raises(jsonschema.ValidationError):
        _check_sarif(bad)
    bad["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] = "rules/a.yml"
    with pytest.raises(jsonschema.ValidationError):  # startLine 0
        _check_sarif(bad)


def test_example_repository_sarif_is_acceptable_to_code_scanning(capsys):
    code = main(["check", str(EXAMPLES), "--format", "sarif", "--check", "syntax"])
    doc = json.loads(capsys.readouterr().out)
    _check_sarif(doc)
    results = doc["runs"][0]["results"]
    assert code == 1 and results
    tag = [r for r in results if r["ruleId"] == "detbot/syntax/Sigma tag error"][0]
    loc = tag["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"] == "rules/windows/proc_creation_win_mshta_remote_url.yml"
    assert (loc["region"]["startLine"], loc["region"]["startColumn"]) == (12, 7)
    assert tag["level"] == "error"


def test_sarif_clamps_positions_and_levels():
    findings = [Finding("syntax", "rules/a.yml", 0, 0, "warning", "T", "m"),
                Finding("ads", "rules/a.ads.md", 3, 2, "notice", "N", "n", start_column=4, end_column=4)]
    doc = json.loads(to_sarif(findings))
    _check_sarif(doc)
    assert [r["level"] for r in doc["runs"][0]["results"]] == ["warning", "note"]


def _repo(tmp_path, rule: str | None = GOOD):
    (tmp_path / "rules" / "windows").mkdir(parents=True)
    if rule is not None:
        (tmp_path / "rules" / "windows" / "proc_creation_win_certutil_download.yml").write_text(rule)
    return tmp_path


def test_exit_0_when_clean(tmp_path, capsys):
    repo = _repo(tmp_path)
    (repo / ".github").mkdir()
    (repo / ".github" / "detbot.yml").write_text("validators:\n  validators: [all, -sigmahq_status_to_high]\n")
    assert main(["check", str(repo), "--check", "syntax"]) == 0
    assert "1 rules checked (syntax): 0 failures" in capsys.readouterr().err


def test_exit_1_on_failure_and_0_when_only_warnings(tmp_path, capsys):
    repo = _repo(tmp_path, GOOD.replace("level: high", "level: urgent"))
    assert main(["check", str(repo), "--check", "syntax"]) == 1
    capsys.readouterr()
    (repo / ".github").mkdir()
    (repo / ".github" / "detbot.yml").write_text("checks:\n  syntax: {level: warning}\n")
    assert main(["check", str(repo), "--check", "syntax", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {f["level"] for f in out["findings"]} <= {"warning", "notice"} and out["findings"]


def test_exit_2_on_config_and_usage_errors(tmp_path, capsys):
    repo = _repo(tmp_path)
    (repo / ".github").mkdir()
    (repo / ".github" / "detbot.yml").write_text("rules: ['rules/**/*.yml']\nbogus: 1\n")
    assert main(["check", str(repo)]) == 2
    assert "bogus" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["check", str(repo), "--format", "xml"])
    assert e.value.code == 2
    assert main(["check", str(tmp_path / "absent")]) == 2


def test_changed_only_checks_just_those_rules(tmp_path, capsys):
    repo = _repo(tmp_path, GOOD.replace("level: high", "level: urgent"))
    other = GOOD.replace("3c1d2f9e", "4c1d2f9e").replace("date: 2026-09-14", "date: 2026-13-14")
    (repo / "rules" / "windows" / "proc_creation_win_certutil_copy.yml").write_text(other)
    main(["check", str(repo), "--check", "syntax", "--changed-only",
          "rules/windows/proc_creation_win_certutil_copy.yml", "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    assert out["rules"] == 1
    assert {f["path"] for f in out["findings"]} == {"rules/windows/proc_creation_win_certutil_copy.yml"}


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_on_a_terminal_for_long_runs(tmp_path, monkeypatch, capsys):
    repo = _repo(tmp_path, None)
    for i in range(60):
        (repo / "rules" / "windows" / f"r{i:02}.yml").write_text(GOOD.replace("3c1d2f9e", f"{i:08x}"))
    tty = _Tty()
    monkeypatch.setattr("sys.stderr", tty)
    main(["check", str(repo), "--check", "syntax", "--format", "json"])
    err = tty.getvalue()
    assert "\rsyntax: 25/60 rules" in err and "\rsyntax: 60/60 rules" in err
    assert "\r\033[K" in err  # the line is cleared before the report
    json.loads(capsys.readouterr().out)  # stdout stays clean JSON


def test_no_progress_when_not_a_terminal(tmp_path, capsys):
    repo = _repo(tmp_path, None)
    for i in range(60):
        (repo / "rules" / "windows" / f"r{i:02}.yml").write_text(GOOD.replace("3c1d2f9e", f"{i:08x}"))
    main(["check", str(repo), "--check", "syntax", "--format", "json"])
    assert "/60 rules" not in capsys.readouterr().err


def test_sarif_uri_is_percent_encoded():
    """A rule path with a space or `#` went into the URI as is: `#1.yml` became a fragment, so code scanning
    placed the alert on `rules/my rules/b64 ` (a file that does not exist)."""
    doc = json.loads(to_sarif([Finding("tests", "rules/my rules/b64 #1%.yml", 3, 3, "failure", "T", "m")]))
    _check_sarif(doc)
    uri = doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "rules/my%20rules/b64%20%231%25.yml"
