"""The parser-regression scenario on the example repository: its pipelines reproduce every stored event, and a
grok change in one pipeline breaks exactly the tests whose rules use the field it renamed."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bot.cli import main as cli
from checks.config import load_config
from checks.replay.backends import EmbeddedBackend
from checks.repository import discover
from checks.source import LocalSource
from checks.testevents import load_tests
from tests.conftest import EXAMPLES


def flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def example_tests():
    source = LocalSource(EXAMPLES)
    config = load_config(source)
    for bundle in discover(source, config):
        for test in load_tests(source, bundle.test_paths).tests:
            yield bundle, test


def test_example_pipelines_parse_every_raw_log_into_exactly_its_stored_event():
    backend = EmbeddedBackend(LocalSource(EXAMPLES))
    seen_parsers = set()
    count = 0
    for _, test in example_tests():
        assert test.raw and test.parser, test.name
        [result] = backend.parse_batch_sync(test.parser, [test.raw])
        assert result.status == "ok", (test.name, result.message)
        assert flat(result.event) == flat(dict(test.event)), test.name
        seen_parsers.add(test.parser)
        count += 1
    assert seen_parsers == {"microsoft365", "entra_signin", "sysmon", "zeek_dns"} and count >= 40


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    dest = tmp_path / "rules-repo"
    shutil.copytree(EXAMPLES, dest, ignore=shutil.ignore_patterns(".detbot-cache"))
    return dest


def run_json(repo: Path, capsys, *extra: str) -> tuple[int, dict]:
    code = cli(["replay", str(repo), "--format", "json", *extra])
    return code, json.loads(capsys.readouterr().out)


def test_unchanged_pipelines_replay_clean(repo, capsys):
    code, report = run_json(repo, capsys)
    assert code == 0 and not report["broken"]
    assert report["counts"]["PASS"] >= 40
    # Only a test that already fails on its stored event is skipped (the tests check reports it).
    for r in report["results"]:
        if r["verdict"] != "PASS":
            assert r["verdict"] == "SKIPPED" and "no baseline" in r["detail"], r


def test_renaming_a_grok_capture_breaks_exactly_the_affected_tests(repo, capsys):
    pipeline = repo / "parsers/microsoft365.yml"
    text = pipeline.read_text()
    grok_lines = [line for line in text.splitlines() if "%{IPV" in line]
    assert len(grok_lines) == 3 and all(":source.ip}" in line for line in grok_lines)
    changed = "\n".join(line.replace(":source.ip}", ":client.ip}") if "%{IPV" in line else line
                        for line in text.splitlines()) + "\n"
    pipeline.write_text(changed)

    # Affected: tests parsed by microsoft365 whose rule uses source.ip.
    affected = set()
    for bundle, test in example_tests():
        rule_text = (EXAMPLES / bundle.rule_path).read_text()
        if test.parser == "microsoft365" and "source.ip" in rule_text:
            affected.add((test.path, test.line))
    assert len(affected) >= 4

    code, report = run_json(repo, capsys, "--no-cache")
    assert code == 1
    results = {(r["test_path"], r["test_line"]): r for r in report["results"]}
    for key, r in results.items():
        if key in affected:
            assert r["verdict"] in ("RULE_BROKEN", "FIELD_DRIFT"), r
            assert [c["field"] for c in r["field_diff"]] == ["source.ip"]
            assert r["field_diff"][0]["kind"] == "vanished"
        else:
            assert r["verdict"] in ("PASS", "SKIPPED"), r
            assert r["verdict"] == "PASS" or "no baseline" in r["detail"]
    by_name = {r["test_name"]: r["verdict"] for r in report["results"]}
    # Matched by its proxy address only: broken. Matched by its user agent: still matches, but drifted.
    assert by_name["sign-in relayed by an AiTM proxy address"] == "RULE_BROKEN"
    assert by_name["sign-in with the phishing kit's axios user agent"] == "FIELD_DRIFT"
    assert by_name["sign-in from the corporate egress"] == "FIELD_DRIFT"

    # A pull request that changes only the pipeline replays the rules it parses, and only those.
    code, pr = run_json(repo, capsys, "--no-cache", "--changed-only", "parsers/microsoft365.yml")
    assert code == 1
    assert {r["rule_path"] for r in pr["results"]} == {b.rule_path for b, t in example_tests()
                                                      if t.parser == "microsoft365"}
