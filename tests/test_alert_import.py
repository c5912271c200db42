"""`detbot alerts import`: CSV and JSON Lines, malformed rows, idempotent re-import, rule mapping, config."""
from __future__ import annotations

import json
from datetime import date, datetime, timezone

import pytest

from bot.cli import main
from checks.config import ConfigError, parse_config
from checks.kpi.importer import ImportFailed, RowError, import_file
from checks.kpi.settings import ImportSettings, RuleMap, alert_settings
from checks.kpi.store import open_store
from tests.kpi_fixtures import pg_session, store_url  # noqa: F401

CSV = """alert_id,rule_id,rule_title,created_at,status
a1,rule-a,Rule A,2026-03-10T10:00:00Z,rejected
a2,rule-a,Rule A,2026-03-10T11:00:00+01:00,closed
a3,rule-a,Rule A,1773230400,open
a4,,Rule B,2026-03-11T10:00:00Z,open
a5,rule-b,"Rule B, with a comma",not-a-date,open
a6,rule-b,"Rule B
on two lines",2026-03-12T10:00:00Z,Benign
a7,rule-b,Rule B,2026-03-12T10:00:00Z,escalated
a8,rule-b,Rule B,2026-03-12T10:00:00Z
a9,rule-b,Rule B,2026-03-12T10:00:00Z,Ongoing
"""


async def _import(store, path, settings=None, rule_map=None, **kw):
    errors: list[RowError] = []
    report = await import_file(store, str(path), settings or ImportSettings(), rule_map or RuleMap(),
                               on_error=errors.append, **kw)
    return report, errors


async def test_csv_malformed_rows_reported_at_their_line_and_skipped(tmp_path, store_url):
    path = tmp_path / "alerts.csv"
    path.write_text(CSV)
    async with await open_store(store_url) as store:
        report, errors = await _import(store, path)
        assert [(e.line, e.message.split(" (")[0].split(":")[0]) for e in errors] == [
            (5, "no rule id"), (6, "not a timestamp"), (9, "unknown status 'escalated'"),
            (10, "4 fields where the header has 5")]
        assert (report.rows, report.imported, report.errors) == (9, 5, 4)
        a6 = await store.get("file", "a6")
        assert a6 is not None and a6.verdict == "benign_positive" and a6.rule_title == "Rule B\non two lines"
        a2 = await store.get("file", "a2")
        assert a2.created_at == datetime(2026, 3, 10, 10, tzinfo=timezone.utc)
        a3 = await store.get("file", "a3")
        assert a3.created_at == datetime(2026, 3, 11, 12, tzinfo=timezone.utc)
        assert (await store.get("file", "a9")).stage == "in_progress"


async def test_reimport_is_idempotent(tmp_path, store_url):
    path = tmp_path / "alerts.csv"
    path.write_text(CSV)
    async with await open_store(store_url) as store:
        await _import(store, path)
        daily_before = await store.daily(["rule-a", "rule-b"], date(2026, 3, 1), date(2026, 3, 31))
        report, _ = await _import(store, path)
        assert (report.result.inserted, report.result.updated) == (0, 5)
        assert await store.count() == 5
        assert await store.daily(["rule-a", "rule-b"], date(2026, 3, 1), date(2026, 3, 31)) == daily_before
        # an analyst's later verdict arrives with the next export
        path.write_text("alert_id,rule_id,created_at,stage,verdict\na3,rule-a,1773230400,closed,false_positive\n")
        report, _ = await _import(store, path)
        assert report.result.updated == 1
        got = (await store.daily(["rule-a"], date(2026, 3, 11), date(2026, 3, 11)))["rule-a"][date(2026, 3, 11)]
        assert (got.open, got.rejected) == (0, 1)


async def test_jsonl_with_column_mapping_and_rule_table(tmp_path):
    lines = [
        {"id": "e1", "rule": {"uuid": "plat-1", "name": "Platform rule"}, "ts": "2026-03-10T10:00:00Z",
         "state": {"stage": "Closed", "verdict": "False positive"}},
        {"id": "e2", "rule": {"uuid": "plat-2"}, "ts": 1773230400000, "state": {"stage": "Open"}},
        {"id": "e3", "rule": {"uuid": "plat-unknown"}, "ts": "2026-03-10T10:00:00Z", "state": {"stage": "open"}},
        "not an object",
    ]
    path = tmp_path / "alerts.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n{broken\n\n")
    settings = ImportSettings(source="soc", columns={"alert_id": "id", "platform_rule_id": "rule.uuid",
                                                     "rule_title": "rule.name", "created_at": "ts",
                                                     "stage": "state.stage", "verdict": "state.verdict"})
    rule_map = RuleMap(by="table", table={"plat-1": "sigma-1", "plat-2": "sigma-2"})
    async with await open_store(f"sqlite:///{tmp_path}/a.db") as store:
        report, errors = await _import(store, path, settings, rule_map)
        assert [e.line for e in errors] == [3, 4, 5]
        assert "plat-unknown" in errors[0].message and "not JSON" in errors[2].message
        assert report.imported == 2
        e1 = await store.get("soc", "e1")
        assert (e1.rule_id, e1.platform_rule_id, e1.verdict) == ("sigma-1", "plat-1", "false_positive")
        e2 = await store.get("soc", "e2")
        assert e2.created_at == datetime(2026, 3, 11, 12, tzinfo=timezone.utc)  # milliseconds understood


async def test_rule_map_by_field_with_pattern_over_flattened_keys(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps({"alert_id": "k1", "created_at": "2026-03-10T10:00:00Z", "status": "open",
                                "kibana.alert.rule.tags": ["Windows", "sigma:0f06a3a5-6a09-413f-8743-e6cf35561297"],
                                "platform_rule_id": "elastic-1"}) + "\n")
    rule_map = RuleMap(by="field", field="kibana.alert.rule.tags",
                       pattern=__import__("re").compile(r"sigma:([0-9a-f-]{36})"))
    async with await open_store(f"sqlite:///{tmp_path}/a.db") as store:
        report, errors = await _import(store, path, rule_map=rule_map)
        assert not errors
        assert (await store.get("file", "k1")).rule_id == "0f06a3a5-6a09-413f-8743-e6cf35561297"


async def test_bad_bytes_and_missing_header_column(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"alert_id,rule_id,created_at,status\nx1,r,2026-03-10T10:00:00Z,open\n"
                     b"x2,r\xff\xfe,2026-03-10T10:00:00Z,open\nx3,r,2026-03-10T10:00:00Z,open\n")
    async with await open_store(f"sqlite:///{tmp_path}/a.db") as store:
        report, errors = await _import(store, path)
        assert [(e.line, e.message) for e in errors] == [(3, "not valid UTF-8")]
        assert report.imported == 2
        path.write_text("id,when\n1,2\n")
        with pytest.raises(ImportFailed, match="no column 'alert_id'"):
            await _import(store, path)


async def test_import_streams_in_batches(tmp_path):
    path = tmp_path / "big.csv"
    with path.open("w") as f:
        f.write("alert_id,rule_id,created_at,status\n")
        for i in range(25_000):
            f.write(f"a{i},r{i % 7},2026-03-{1 + i % 28:02d}T10:00:00Z,{'open' if i % 3 else 'rejected'}\n")
    seen: list[tuple[int, int]] = []
    async with await open_store(f"sqlite:///{tmp_path}/a.db") as store:
        report, _ = await _import(store, path, batch_size=4096, progress=lambda d, t: seen.append((d, t)))
        assert report.imported == 25_000 and await store.count() == 25_000
    assert seen[-1][0] == seen[-1][1] == path.stat().st_size
    assert len(seen) >= 3 and seen == sorted(seen)


def test_cli_import_prints_lines_and_summary(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.csv").write_text(CSV)
    assert main(["alerts", "import", "a.csv", "--store", "sqlite:///s.db"]) == 0
    out, err = capsys.readouterr()
    assert "a.csv: 9 rows read, 5 imported (5 new, 0 updated), 4 skipped" in out
    assert "a.csv:6: skipped: not a timestamp: 'not-a-date'" in err
    assert main(["alerts", "import", "a.csv", "--store", "sqlite:///s.db"]) == 0
    assert "(0 new, 5 updated)" in capsys.readouterr().out
    assert main(["alerts", "import", "missing.csv", "--store", "sqlite:///s.db"]) == 2
    assert "missing.csv" in capsys.readouterr().err


def test_cli_uses_config_columns_and_store(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "detbot.yml").write_text(
        "alerts:\n  store: sqlite:///from-config.db\n  import:\n    source: soc\n"
        "    columns: {alert_id: ID, created_at: Created, rule_id: Sigma}\n")
    (tmp_path / "a.csv").write_text("ID,Sigma,Created,status\n1,r,2026-03-10T10:00:00Z,open\n")
    assert main(["alerts", "import", "a.csv"]) == 0
    assert (tmp_path / "from-config.db").exists()
    assert "1 imported" in capsys.readouterr().out


def test_alerts_config_validation_names_the_key_and_line():
    with pytest.raises(ConfigError) as e:
        alert_settings(parse_config(b"alerts:\n  days: 30\n  import:\n    columns:\n      alert: id\n"))
    assert e.value.key == "alerts.import.columns.alert" and e.value.line == 5
    with pytest.raises(ConfigError, match="benign_positive"):
        alert_settings(parse_config(b"alerts:\n  benign_positive: maybe\n"))
    with pytest.raises(ConfigError, match="rule_map.pattern"):
        alert_settings(parse_config(b"alerts:\n  rule_map: {by: field, field: x, pattern: '('}\n"))
    s = alert_settings(parse_config(b"alerts:\n  import:\n    statuses: {Escalated: in_progress, "
                                    b"Dismissed: closed/false_positive}\n"))
    assert s.imports.statuses == {"escalated": ("in_progress", None), "dismissed": ("closed", "false_positive")}


def test_progress_line_on_a_terminal(tmp_path, capsys, monkeypatch):
    from bot.commands import alerts as alerts_cmd
    monkeypatch.chdir(tmp_path)
    with (tmp_path / "big.csv").open("w") as f:
        f.write("alert_id,rule_id,created_at,status\n")
        for i in range(30_000):
            f.write(f"a{i},r,2026-03-10T10:00:00Z,open\n")
    monkeypatch.setattr(alerts_cmd.sys.stderr, "isatty", lambda: True)
    monkeypatch.setattr(alerts_cmd, "PROGRESS_MIN_BYTES", 1000)
    assert main(["alerts", "import", "big.csv", "--store", "sqlite:///s.db"]) == 0
    err = capsys.readouterr().err
    assert "\rimporting big.csv: 100% (1 of 1 MB)" in err and err.count("\r") >= 3
