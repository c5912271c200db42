import json

import jsonschema
import pytest

from bot.publish import (ANNOTATIONS_PER_REQUEST, PublishSettings, actions_for, annotation_batches,
                         conclusion_for, to_annotation)
from checks.config import ConfigError, parse_config
from checks.findings import Finding
from tests.ghflow_support import SPEC


def finding(level="failure", line=3, end=None, col=None, end_col=None, title="Bad", message="broken", check="syntax"):
    return Finding(check, "rules/a.yml", line, end if end is not None else line, level, title, message,
                   start_column=col, end_column=end_col)


def annotation_schema():
    post = SPEC["paths"]["/repos/{owner}/{repo}/check-runs"]["post"]
    return post["requestBody"]["content"]["application/json"]["schema"]["properties"]["output"]


def test_annotation_columns_only_on_one_line():
    a = to_annotation(finding(line=3, col=5, end_col=9))
    assert (a["start_column"], a["end_column"]) == (5, 9)
    b = to_annotation(finding(line=3, end=6, col=5, end_col=9))
    assert "start_column" not in b and "end_column" not in b
    c = to_annotation(finding(line=3, col=9, end_col=2))
    assert c["start_column"] == 9 and "end_column" not in c


def test_annotation_lines_are_valid_even_for_bad_positions():
    a = to_annotation(finding(line=0, end=0))
    assert a["start_line"] == 1 and a["end_line"] == 1
    b = to_annotation(finding(line=7, end=2))
    assert b["end_line"] == 7


def test_annotation_truncated_to_github_limits_and_schema_valid():
    a = to_annotation(finding(title="t" * 1000, message="é" * 70000))
    assert len(a["title"].encode()) <= 255 and a["title"].endswith("…")
    assert len(a["message"].encode()) < 64 * 1024
    out = {"title": "x", "summary": "y", "annotations": [a]}
    jsonschema.validate(out, annotation_schema())


def test_batches_of_fifty_failures_first_with_cap():
    fs = [finding(level="notice", line=i + 1) for i in range(60)] + [finding(level="failure", line=i + 1)
                                                                      for i in range(60)]
    batches, left = annotation_batches(fs, 1000)
    assert [len(b) for b in batches] == [50, 50, 20] and left == 0
    assert all(a["annotation_level"] == "failure" for a in batches[0])
    batches, left = annotation_batches(fs, 70)
    assert [len(b) for b in batches] == [50, 20] and left == 50
    assert sum(a["annotation_level"] == "failure" for b in batches for a in b) == 60
    for b in batches:
        assert len(b) <= ANNOTATIONS_PER_REQUEST
        jsonschema.validate({"title": "x", "summary": "y", "annotations": b}, annotation_schema())


def test_conclusion_by_level_and_setting():
    s = PublishSettings()
    assert conclusion_for([], s) == "success"
    assert conclusion_for([finding(level="notice")], s) == "success"
    assert conclusion_for([finding(level="warning")], s) == "neutral"
    assert conclusion_for([finding(level="warning")], PublishSettings(warnings_conclusion="success")) == "success"
    assert conclusion_for([finding(level="warning"), finding()], s) == "failure"


def test_settings_from_config_and_errors_name_key_and_line():
    cfg = parse_config(b"github:\n  max_annotations: 10\n  warnings: success\n")
    assert PublishSettings.from_config(cfg) == PublishSettings(10, "success")
    with pytest.raises(ConfigError) as e:
        PublishSettings.from_config(parse_config(b"rules: ['r/*.yml']\ngithub:\n  warnings: loud\n"))
    assert e.value.key == "github.warnings" and e.value.line == 3
    with pytest.raises(ConfigError):
        PublishSettings.from_config(parse_config(b"github:\n  max_annotations: -1\n"))


def test_actions_fit_github_limits():
    item = SPEC["paths"]["/repos/{owner}/{repo}/check-runs"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]["properties"]["actions"]
    for check in ("syntax", "tests", "coverage", "ads", "replay"):
        jsonschema.validate(actions_for(check), item)
    assert [a["identifier"] for a in actions_for("tests")] == ["rerun", "replay"]
    json.dumps(actions_for("tests"))
