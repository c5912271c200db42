"""Replay end to end over a small repository on disk: every verdict, the cache, rule selection, changed-file
mode, findings, renderers, config validation, an HTTP backend routed by config, and the `detbot replay` CLI."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from aiohttp import web

from bot.cli import main as cli
from checks.config import ConfigError, parse_config
from checks.replay.cache import ReplayCache
from checks.replay.replay import run_replay
from checks.replay.report import render_markdown, render_text, replay_findings
from checks.source import LocalSource

RULE = """title: SSH login as root
id: 6a1f7c2e-1111-4c4c-9c9c-000000000001
status: test
logsource:
  product: linux
  service: sshd
detection:
  selection:
    event.action: accepted
    user.name: root
  condition: selection
level: high
"""

TESTS = """- name: root login
  expect: match
  event:
    event.action: accepted
    user.name: root
  raw: 'Accepted password for root from 10.0.0.1 port 22 ssh2'
- name: normal user
  expect: no_match
  event:
    event:
      action: accepted
    user:
      name: alice
  raw: 'Accepted publickey for alice from 10.0.0.2 port 22 ssh2'
- name: failed root
  expect: no_match
  event: {event.action: failed, user.name: root}
  raw: 'Failed password for root from 10.0.0.3 port 22 ssh2'
- name: garbage line
  expect: no_match
  event: {event.action: accepted, user.name: nobody}
  raw: 'kernel: something else entirely'
- name: no raw
  expect: no_match
  event: {user.name: bob}
- name: stored as nested json
  expect: match
  event: {event.action: accepted, user.name: root}
  raw: {"line": "Accepted password for root from 10.0.0.9 port 22 ssh2"}
  parser: sshd_json
"""

PIPELINE = """description: OpenSSH auth lines
processors:
  - grok:
      field: message
      patterns:
        - '^%{WORD:outcome} %{WORD:auth.method} for %{USERNAME:user.name} from %{IP:source.ip} port %{POSINT:source.port:int}'
  - lowercase:
      field: outcome
      target_field: event.action
  - remove:
      field: [message, outcome]
"""

JSON_PIPELINE = """processors:
  - json: {field: message, target_field: doc}
  - set: {field: message, copy_from: doc.line}
  - remove: {field: doc}
  - pipeline: {name: sshd}
"""

CONFIG = """parsers:
  - logsource: {product: linux, service: sshd}
    parser: sshd
"""

OTHER_RULE = """title: Not replayable
id: 6a1f7c2e-1111-4c4c-9c9c-000000000002
logsource: {product: windows, category: process_creation}
detection:
  selection: {Image|endswith: '\\\\evil.exe'}
  condition: selection
"""

OTHER_TESTS = """- name: no parser known
  expect: match
  event: {Image: 'C:\\evil.exe'}
  raw: 'whatever'
- name: missing pipeline
  expect: match
  event: {Image: 'C:\\evil.exe'}
  raw: 'whatever'
  parser: does_not_exist
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    files = {"rules/linux/ssh_root.yml": RULE, "rules/linux/ssh_root.tests.yml": TESTS,
             "rules/windows/evil.yml": OTHER_RULE, "rules/windows/evil.tests.yml": OTHER_TESTS,
             "parsers/sshd.yml": PIPELINE, "parsers/sshd_json.yml": JSON_PIPELINE, ".github/detbot.yml": CONFIG}
    for path, text in files.items():
        p = tmp_path / path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return tmp_path


async def replay(root: Path, **kw):
    source = LocalSource(root)
    config = parse_config((root / ".github/detbot.yml").read_bytes())
    return await run_replay(source, config, **kw)


def verdicts(report) -> dict[str, str]:
    return {r.test_name: r.verdict for r in report.results}


async def test_unchanged_parsers_pass_and_unreplayable_tests_are_classified(repo):
    report = await replay(repo)
    assert verdicts(report) == {
        "root login": "PASS", "normal user": "PASS", "failed root": "PASS", "garbage line": "UNPARSED",
        "no raw": "SKIPPED", "stored as nested json": "PASS", "no parser known": "SKIPPED",
        "missing pipeline": "BACKEND_ERROR"}
    by_name = {r.test_name: r for r in report.results}
    assert "no parser" in by_name["no parser known"].detail
    assert "no pipeline definition for parser [does_not_exist]" in by_name["missing pipeline"].detail
    assert "do not match" in by_name["garbage line"].detail
    assert by_name["root login"].test_line == 1 and by_name["normal user"].test_line == 7
    assert by_name["root login"].rule_id == "6a1f7c2e-1111-4c4c-9c9c-000000000001"
    assert report.counts["PASS"] == 4 and report.broken


async def test_renamed_grok_field_breaks_matches_and_drifts_non_matches(repo):
    (repo / "parsers/sshd.yml").write_text(PIPELINE.replace("USERNAME:user.name", "USERNAME:user.id"))
    report = await replay(repo, rule_ids=["ssh_root"])
    v = verdicts(report)
    assert v["root login"] == "RULE_BROKEN" and v["stored as nested json"] == "RULE_BROKEN"
    assert v["normal user"] == "FIELD_DRIFT" and v["failed root"] == "FIELD_DRIFT"
    broken = next(r for r in report.results if r.test_name == "root login")
    assert [(c.field, c.kind, c.before) for c in broken.field_diff] == [("user.name", "vanished", "root")]


async def test_pipeline_on_failure_keeps_a_partial_event_and_says_why(repo):
    (repo / "parsers/sshd.yml").write_text(PIPELINE.replace("port %{POSINT:source.port:int}'", "port %{WORD:p} X'")
                                           + "on_failure:\n  - set: {field: error.message, value: parse failed}\n")
    report = await replay(repo, rule_ids=["ssh_root"])
    root = {r.test_name: r for r in report.results}["root login"]
    assert root.verdict == "RULE_BROKEN" and "[parser: pipeline on_failure ran after: processor [grok]" in root.detail


async def test_changed_value_makes_a_new_match(repo):
    (repo / "parsers/sshd.yml").write_text(PIPELINE.replace(
        "  - lowercase:\n      field: outcome\n      target_field: event.action\n",
        "  - set:\n      field: event.action\n      value: accepted\n"))
    report = await replay(repo, rule_ids=["6a1f7c2e-1111-4c4c-9c9c-000000000001"])
    failed = next(r for r in report.results if r.test_name == "failed root")
    assert failed.verdict == "NEW_MATCH"
    assert [(c.field, c.kind, c.before, c.after) for c in failed.field_diff] == \
        [("event.action", "changed", "failed", "accepted")]


async def test_typed_values_compare_as_sigma_does(repo):
    (repo / "parsers/sshd.yml").write_text(PIPELINE + "  - set: {field: event.code, value: 4624}\n")
    rule = RULE.replace("    user.name: root\n", "    user.name: root\n    event.code: 4624\n")
    (repo / "rules/linux/ssh_root.yml").write_text(rule)
    (repo / "rules/linux/ssh_root.tests.yml").write_text(TESTS.replace(
        "    event.action: accepted\n    user.name: root\n", "    event.action: accepted\n    user.name: root\n"
                                                             "    event.code: '4624'\n", 1))
    report = await replay(repo, rule_ids=["ssh_root"])
    assert verdicts(report)["root login"] == "PASS"


async def test_cache_skips_unchanged_logs_and_a_new_parser_version_reparses(repo, tmp_path):
    with ReplayCache(tmp_path / "cache.sqlite") as cache:
        first = await replay(repo, cache=cache)
        assert first.cache_hits == 0 and first.parsed == 5
        second = await replay(repo, cache=cache)
        assert second.cache_hits == 5 and second.parsed == 0
        assert verdicts(second) == verdicts(first)
        assert not next(r for r in second.results if r.verdict == "BACKEND_ERROR").cached
        assert all(r.cached for r in second.results if r.verdict in ("PASS", "UNPARSED"))
        (repo / "parsers/sshd.yml").write_text(PIPELINE.replace("USERNAME:user.name", "USERNAME:user.id"))
        third = await replay(repo, cache=cache)
        # sshd changed, and sshd_json calls it, so both are re-parsed.
        assert third.cache_hits == 0 and third.parsed == 5
        assert verdicts(third)["root login"] == "RULE_BROKEN"


async def test_rule_selection_and_unknown_rules(repo):
    report = await replay(repo, rule_ids=["rules/windows/evil.yml", "nope"])
    assert {r.rule_path for r in report.results} == {"rules/windows/evil.yml"}
    assert report.unknown_rules == ["nope"] and report.rules == 1
    report = await replay(repo, rule_ids=["ssh login as ROOT", "6A1F7C2E-1111-4C4C-9C9C-000000000002"])
    assert {r.rule_path for r in report.results} == {"rules/linux/ssh_root.yml", "rules/windows/evil.yml"}


async def test_changed_parser_selects_every_rule_it_parses(repo):
    report = await replay(repo, changed=["parsers/sshd.yml"])
    assert {r.rule_path for r in report.results} == {"rules/linux/ssh_root.yml"}
    report = await replay(repo, changed=["rules/windows/evil.tests.yml"])
    assert {r.rule_path for r in report.results} == {"rules/windows/evil.yml"}
    assert (await replay(repo, changed=["README.md"])).results == []
    # A rule whose tests only use sshd_json, which calls sshd: a change to sshd replays it too.
    (repo / "rules/linux/ssh_json.yml").write_text(RULE.replace("000000000001", "000000000003"))
    (repo / "rules/linux/ssh_json.tests.yml").write_text("- name: via json\n" + TESTS.split("- name: stored as nested json\n")[1])
    report = await replay(repo, changed=["parsers/sshd.yml"])
    assert {r.rule_path for r in report.results} == {"rules/linux/ssh_root.yml", "rules/linux/ssh_json.yml"}
    assert {r.verdict for r in report.results if r.rule_path.endswith("ssh_json.yml")} == {"PASS"}


async def test_findings_renderers(repo):
    (repo / "parsers/sshd.yml").write_text(PIPELINE.replace("USERNAME:user.name", "USERNAME:user.id"))
    report = await replay(repo)
    findings = replay_findings(report)
    by_line = {(f.path, f.start_line): f for f in findings}
    root = by_line[("rules/linux/ssh_root.tests.yml", 1)]
    assert root.check == "replay" and root.level == "failure" and "RULE_BROKEN" in root.message
    assert by_line[("rules/linux/ssh_root.tests.yml", 7)].level == "warning"
    assert not any(f.message.startswith("test 'no raw'") for f in findings)
    md = render_markdown(report, max_rows=2)
    assert "| ❌ RULE_BROKEN |" in md and "`user.name`" in md and "more test(s) that did not pass" in md
    text = render_text(report)
    assert "rules/linux/ssh_root.tests.yml:1: RULE_BROKEN" in text and "PASS:" not in text


@pytest.mark.parametrize("config,fragment", [
    ("replay: {cache: /etc/x.sqlite}\n", "replay.cache"),
    ("replay: {bogus: 1}\n", "unknown key"),
    ("replay: {backends: {siem: {type: ftp, url: 'http://x'}}}\n", "must be http or elasticsearch"),
    ("replay: {backends: {siem: {type: http, url: 'http://x', headers_env: {A: HOME}}}}\n", "DETBOT_REPLAY_"),
    ("parsers:\n  - logsource: {product: x}\n    parser: p\n    backend: siem\n", "unknown backend [siem]"),
])
async def test_invalid_replay_config_is_a_config_error(repo, config, fragment):
    (repo / ".github/detbot.yml").write_text(config)
    with pytest.raises(ConfigError) as e:
        await replay(repo)
    assert fragment in str(e.value)


async def test_http_backend_routed_by_config(repo, aiohttp_server, monkeypatch):
    seen = []

    async def parse(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append(request.headers.get("X-Token"))
        results = [{"status": "ok", "event": {"Image": "C:\\evil.exe"}} for _ in body["logs"]]
        return web.json_response({"version": "remote-1", "results": results})

    app = web.Application()
    app.router.add_post("/parse", parse)
    server = await aiohttp_server(app)
    monkeypatch.setenv("DETBOT_REPLAY_TOKEN", "s3cret")
    (repo / ".github/detbot.yml").write_text(
        CONFIG + "  - logsource: {product: windows}\n    parser: winproc\n    backend: remote\n"
        f"replay:\n  backends:\n    remote:\n      type: http\n      url: '{server.make_url('/parse')}'\n"
        "      headers_env: {X-Token: DETBOT_REPLAY_TOKEN}\n")
    report = await replay(repo, rule_ids=["evil"])
    by_name = {r.test_name: r for r in report.results}
    assert by_name["no parser known"].verdict == "PASS" and by_name["no parser known"].backend == "remote"
    assert by_name["no parser known"].parser_version == "remote-1"
    assert seen and set(seen) == {"s3cret"}
    offline = await replay(repo, rule_ids=["evil"], allow_remote=False)
    assert "not available" in {r.test_name: r for r in offline.results}["no parser known"].detail


def test_cli_exit_codes_formats_and_cache(repo, capsys):
    assert cli(["replay", str(repo), "--rule", "ssh_root", "--format", "json"]) == 1  # the garbage line
    data = json.loads(capsys.readouterr().out)
    assert data["counts"]["UNPARSED"] == 1 and data["parsed"] == 5
    assert (repo / ".detbot-cache/replay.sqlite").exists()
    assert cli(["replay", str(repo), "--rule", "ssh_root", "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out)["cache_hits"] == 5
    (repo / "rules/linux/ssh_root.tests.yml").write_text(TESTS.split("- name: garbage line")[0])
    assert cli(["replay", str(repo), "--rule", "ssh_root", "--no-cache"]) == 0
    assert "3 PASS" in capsys.readouterr().out
    assert cli(["replay", str(repo), "--rule", "nope"]) == 2
    (repo / ".github/detbot.yml").write_text("replay: {bogus: 1}\n")
    assert cli(["replay", str(repo)]) == 2
    assert "config error" in capsys.readouterr().err


def test_cli_unusable_cache_is_a_warning_not_a_failure(repo, capsys, tmp_path):
    (tmp_path / "file").write_text("x")
    (repo / "rules/linux/ssh_root.tests.yml").write_text(TESTS.split("- name: garbage line")[0])
    assert cli(["replay", str(repo), "--rule", "ssh_root", "--cache", str(tmp_path / "file" / "c.sqlite")]) == 0
    assert "unavailable" in capsys.readouterr().err


def test_cli_markdown_all(repo, capsys):
    shutil.rmtree(repo / "rules/windows")
    (repo / "rules/linux/ssh_root.tests.yml").write_text(TESTS.split("- name: garbage line")[0])
    assert cli(["replay", str(repo), "--all", "--format", "markdown", "--offline"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("### Replay") and "Every replayed test" in out


async def test_a_test_failing_on_its_stored_event_has_no_baseline(repo):
    (repo / "rules/linux/ssh_root.tests.yml").write_text(
        "- name: mislabelled\n  expect: match\n  event: {event.action: accepted, user.name: alice}\n"
        "  raw: 'Accepted password for alice from 10.0.0.1 port 22 ssh2'\n"
        "- name: stale stored event\n  expect: match\n  event: {event.action: accepted, user.name: alice}\n"
        "  raw: 'Accepted password for root from 10.0.0.1 port 22 ssh2'\n")
    report = await replay(repo, rule_ids=["ssh_root"])
    by_name = {r.test_name: r for r in report.results}
    assert by_name["mislabelled"].verdict == "SKIPPED" and "fails the same way" in by_name["mislabelled"].detail
    stale = by_name["stale stored event"]
    assert stale.verdict == "SKIPPED" and "gives the expected outcome" in stale.detail
    assert [c.field for c in stale.field_diff] == ["user.name"]
    assert not report.broken


async def test_issue_body_groups_broken_tests_by_rule_and_is_stable(repo, tmp_path):
    from checks.replay.report import render_issue
    (repo / "rules/windows/evil.tests.yml").write_text(OTHER_TESTS.split("- name: missing pipeline")[0])
    (repo / "rules/linux/ssh_root.tests.yml").write_text(TESTS.split("- name: garbage line")[0])
    assert render_issue(await replay(repo)) is None
    (repo / "parsers/sshd.yml").write_text(PIPELINE.replace("USERNAME:user.name", "USERNAME:user.id"))
    with ReplayCache(tmp_path / "c.sqlite") as cache:
        first = render_issue(await replay(repo, cache=cache))
        second = render_issue(await replay(repo, cache=cache))
    assert first == second
    assert first.count("### ") == 1 and "`rules/linux/ssh_root.yml`" in first
    assert "**RULE_BROKEN**: test 'root login'" in first and '`user.name`: "root" → (absent)' in first
    assert "**FIELD_DRIFT**: test 'normal user'" in first


async def test_elasticsearch_backend_routed_by_config(repo, aiohttp_server, monkeypatch):
    seen = []

    async def get_pipeline(request: web.Request) -> web.Response:
        seen.append(("GET", request.path, request.headers.get("Authorization")))
        return web.json_response({request.match_info["id"]: {"processors": [{"json": {"field": "message"}}]}})

    async def simulate(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append(("POST", request.path, request.headers.get("Authorization")))
        return web.json_response({"docs": [{"doc": {"_index": "_index", "_id": "_id",
                                                    "_source": {"Image": "C:\\evil.exe", "message": d["_source"]["message"]},
                                                    "_ingest": {"timestamp": "2024-01-01T00:00:00Z"}}}
                                           for d in body["docs"]]})

    app = web.Application()
    app.router.add_get("/_ingest/pipeline/{id}", get_pipeline)
    app.router.add_post("/_ingest/pipeline/{id}/_simulate", simulate)
    server = await aiohttp_server(app)
    monkeypatch.setenv("DETBOT_REPLAY_ES_KEY", "k3y")
    (repo / ".github/detbot.yml").write_text(
        CONFIG + "  - logsource: {product: windows}\n    parser: winproc\n    backend: siem\n"
        f"replay:\n  backends:\n    siem:\n      type: elasticsearch\n      url: '{server.make_url('')}'\n"
        "      pipeline_prefix: logs-\n      api_key_env: DETBOT_REPLAY_ES_KEY\n")
    report = await replay(repo, rule_ids=["evil"])
    r = {r.test_name: r for r in report.results}["no parser known"]
    assert r.verdict == "PASS" and r.backend == "siem" and r.parser == "winproc"
    assert ("GET", "/_ingest/pipeline/logs-winproc", "ApiKey k3y") in seen
    assert ("POST", "/_ingest/pipeline/logs-winproc/_simulate", "ApiKey k3y") in seen
