"""The bulk write path: many batches per transaction, re-imports, interruptions, and the block-wise file reader,
against real SQLite and real PostgreSQL."""
from __future__ import annotations

import json
import random
import sqlite3
from collections import Counter
from datetime import date, datetime, timedelta, timezone

import asyncpg
import pytest

from checks.kpi import importer
from checks.kpi.importer import RowError, import_file
from checks.kpi.settings import ImportSettings, RuleMap
from checks.kpi.store import STAGES, VERDICTS, Alert, alert_row, bucket_of, open_store
from tests.kpi_fixtures import pg_session, store_url  # noqa: F401

BASE = datetime(2026, 3, 1, tzinfo=timezone.utc)
RULES = ["r1", "r2", "r3", "r4"]
FIRST, LAST = BASE.date(), BASE.date() + timedelta(days=9)


def random_alerts(seed: int, n: int, ids: int) -> list[Alert]:
    rnd = random.Random(seed)
    return [Alert("s", f"a{rnd.randrange(ids)}", rnd.choice(RULES), BASE + timedelta(days=rnd.randrange(10),
                                                                                   hours=rnd.randrange(24)),
                  rnd.choice(STAGES), rnd.choice([None, *VERDICTS]), rule_title=f"T{rnd.randrange(3)}")
            for _ in range(n)]


def batches(alerts: list[Alert], size: int) -> list[list[tuple]]:
    return [[alert_row(a) for a in alerts[i:i + size]] for i in range(0, len(alerts), size)]


async def rollup(store) -> Counter:
    out: Counter = Counter()
    for rule, days in (await store.daily(RULES, FIRST, LAST)).items():
        for d, c in days.items():
            for bucket in ("open", "closed", "rejected", "benign"):
                out[(rule, d, bucket)] += getattr(c, bucket)
    return +out


async def test_many_batches_per_transaction_keep_the_rollup_exact(store_url):
    """Alerts repeat within a batch, across batches of one transaction, and across transactions."""
    first = random_alerts(1, 700, 300)
    again = random_alerts(2, 500, 400)
    async with await open_store(store_url) as store:
        res = await store.upsert_rows(batches(first, 64), commit_rows=200, batch_rows=64)
        final = {a.alert_id: a for a in first}
        assert res.inserted == await store.count() == len(final)
        res = await store.upsert_rows(batches(again, 64), commit_rows=10_000, batch_rows=64)  # one transaction
        final.update({a.alert_id: a for a in again})
        assert await store.count() == len(final)
        assert await rollup(store) == Counter((a.rule_id, a.created_at.date(), a.bucket) for a in final.values())
        for alert_id in ("a0", "a7", "a299", "a350"):
            got, want = await store.get("s", alert_id), final.get(alert_id)
            assert (got is None) == (want is None)
            if want is not None:
                assert (got.rule_id, got.created_at, got.stage, got.verdict) == (
                    want.rule_id, want.created_at, want.stage, want.verdict)


async def test_reimporting_the_same_rows_updates_and_changes_nothing(store_url):
    final = {a.alert_id: a for a in random_alerts(3, 600, 10_000)}
    alerts = list(final.values())
    async with await open_store(store_url) as store:
        await store.upsert_rows(batches(alerts, 100), commit_rows=250, batch_rows=100)
        before = await rollup(store)
        res = await store.upsert_rows(batches(alerts, 100), commit_rows=250, batch_rows=100)
        assert (res.inserted, res.updated) == (0, len(final))
        assert await store.count() == len(final)
        assert await rollup(store) == before
        # the rule facts: the last non-empty title of the import wins
        titles = {a.rule_id: a.rule_title for a in alerts}
        assert {r: i.rule_title for r, i in (await store.rules(RULES)).items()} == titles


class Boom(Exception):
    pass


async def test_interrupted_import_keeps_what_was_committed_consistently(store_url):
    alerts = [Alert("s", f"a{i}", RULES[i % 4], BASE + timedelta(hours=i % 240), "closed", "false_positive")
              for i in range(1000)]
    rows = batches(alerts, 100)

    def failing():
        yield from rows[:5]
        raise Boom("the export was cut off")

    async with await open_store(store_url) as store:
        with pytest.raises(Boom):
            await store.upsert_rows(failing(), commit_rows=300, batch_rows=100)
        # batches 1-3 were committed (300 rows); 4 and 5 were in the open transaction and are gone
        assert await store.count() == 300
        assert await rollup(store) == Counter((a.rule_id, a.created_at.date(), "rejected") for a in alerts[:300])
        # the store is usable again, and importing the whole file completes it
        res = await store.upsert_rows(rows, commit_rows=300, batch_rows=100)
        assert (res.inserted, res.updated) == (700, 300)
        assert await rollup(store) == Counter((a.rule_id, a.created_at.date(), "rejected") for a in alerts)


async def test_failing_write_rolls_back_and_leaves_the_store_usable(store_url):
    good = [Alert("s", f"a{i}", "r1", BASE, "open") for i in range(10)]
    async with await open_store(store_url) as store:
        bad_row = ("s", "x", "r1", "", "", "not a datetime", None, "open", None)
        with pytest.raises(Exception):
            await store.upsert_rows([[alert_row(a) for a in good], [bad_row]], batch_rows=10)
        assert await store.count() == 0
        assert await store.daily(["r1"], FIRST, LAST) == {}
        await store.upsert_many(good)
        assert await store.count() == 10


async def test_indexes_and_schema_after_a_bulk_load(store_url):
    async with await open_store(store_url) as store:
        await store.upsert_rows(batches(random_alerts(4, 2000, 100_000), 500))
        if store_url.startswith("sqlite"):
            conn = sqlite3.connect(store.path)
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
            pk = conn.execute("SELECT COUNT(*) FROM pragma_index_list('alerts') WHERE origin = 'pk'").fetchone()[0]
            conn.close()
            assert "alert_daily_day" in names and pk == 1
        else:
            names = {r[0] for r in await store.pool.fetch(
                "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")}
            assert {"alerts_pkey", "alert_daily_pkey", "alert_daily_day", "alert_rules_pkey"} <= names
        # the primary key is enforced after the bulk load
        if store_url.startswith("sqlite"):
            conn = sqlite3.connect(store.path)
            with pytest.raises(sqlite3.IntegrityError):
                conn.execute("INSERT INTO alerts SELECT * FROM alerts LIMIT 1")
            conn.close()
        else:
            with pytest.raises(asyncpg.UniqueViolationError):
                await store.pool.execute("INSERT INTO alerts SELECT * FROM alerts LIMIT 1")


def _csv_with_bad_rows(n: int) -> tuple[bytes, dict[int, str]]:
    """Rows of a CSV export, some broken, each line with its number; a quoted title spans two lines."""
    lines, bad, line = [b"alert_id,rule_id,rule_title,created_at,status"], {}, 1
    for i in range(n):
        line += 1 + lines[-1].count(b"\n")  # where this record starts
        if i % 97 == 13:
            lines.append(f"b{i},r1,T,yesterday,open".encode())
            bad[line] = "not a timestamp"
        elif i % 89 == 7:
            lines.append(f"b{i},r1,T\xff,2026-03-02T10:00:00Z,open".encode("latin-1"))
            bad[line] = "not valid UTF-8"
        elif i % 83 == 5:
            lines.append(f'b{i},r2,"two\nlines",2026-03-02T10:00:00Z,closed'.encode())
        else:
            lines.append(f"b{i},r{i % 3},T,2026-03-{1 + i % 9:02d}T10:00:00Z,{'open' if i % 2 else 'Rejected'}"
                         .encode())
    return b"\n".join(lines) + b"\n", bad


@pytest.mark.parametrize("block", [64, 1000, 1 << 18])
async def test_bad_rows_reported_at_their_line_whatever_the_block_size(tmp_path, monkeypatch, block):
    monkeypatch.setattr(importer, "BLOCK", block)
    data, bad = _csv_with_bad_rows(2000)
    path = tmp_path / "x.csv"
    path.write_bytes(data)
    errors: list[RowError] = []
    async with await open_store(f"sqlite:///{tmp_path}/a.db") as store:
        report = await import_file(store, str(path), ImportSettings(), RuleMap(), on_error=errors.append,
                                   batch_size=300)
        assert {e.line: e.message.split(":")[0] for e in errors} == bad
        assert report.imported == 2000 - len(bad) == await store.count()
        got = await store.get("file", "b5")
        assert got.rule_title == "two\nlines" and got.stage == "closed"


async def test_jsonl_line_numbers_across_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(importer, "BLOCK", 100)
    lines = [f'{{"alert_id": "j{i}", "rule_id": "r1", "created_at": {1772400000 + i}, "status": "open"}}'
             for i in range(50)]
    lines[10], lines[31] = "{broken", ""
    path = tmp_path / "x.jsonl"
    path.write_text("\n".join(lines))  # no newline after the last line
    errors: list[RowError] = []
    async with await open_store(f"sqlite:///{tmp_path}/a.db") as store:
        report = await import_file(store, str(path), ImportSettings(), RuleMap(), on_error=errors.append)
        assert [e.line for e in errors] == [11]
        assert report.imported == 48 and await store.get("file", "j49") is not None


async def test_file_import_into_both_stores_then_again_with_changes(tmp_path, store_url, monkeypatch):
    monkeypatch.setattr(importer, "BLOCK", 4096)
    data, bad = _csv_with_bad_rows(3000)
    path = tmp_path / "x.csv"
    path.write_bytes(data)
    async with await open_store(store_url) as store:
        report = await import_file(store, str(path), ImportSettings(), RuleMap(), batch_size=700)
        assert (report.result.inserted, report.errors) == (3000 - len(bad), len(bad))
        # the next export: every alert closed as a false positive
        path.write_bytes(data.replace(b",open\n", b",rejected\n").replace(b",Rejected\n", b",rejected\n")
                         .replace(b",closed\n", b",rejected\n"))
        report = await import_file(store, str(path), ImportSettings(), RuleMap(), batch_size=700)
        assert (report.result.inserted, report.result.updated) == (0, 3000 - len(bad))
        daily = await store.daily(["r0", "r1", "r2"], date(2026, 3, 1), date(2026, 3, 31))
        counts = Counter()
        for days in daily.values():
            for c in days.values():
                counts.update(open=c.open, closed=c.closed, rejected=c.rejected, benign=c.benign)
        assert +counts == Counter(rejected=3000 - len(bad))


def test_status_bucket_table_agrees_with_bucket_of():
    from checks.kpi.store import BUCKET_CODE, STATUS_BUCKET
    assert all(STATUS_BUCKET[s, v] == BUCKET_CODE[bucket_of(s, v)] for s in STAGES for v in (None, *VERDICTS))


async def test_jsonl_byte_order_mark_and_a_line_not_utf8(tmp_path):
    row = '{{"alert_id": "{}", "rule_id": "r1", "created_at": "2026-03-02T10:00:00Z", "status": "open"}}\n'
    path = tmp_path / "x.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + row.format("k1").encode() + row.format("k2").encode().replace(b"k2", b"k\xff")
                     + row.format("k3").encode())
    errors: list[RowError] = []
    async with await open_store(f"sqlite:///{tmp_path}/a.db") as store:
        report = await import_file(store, str(path), ImportSettings(), RuleMap(), on_error=errors.append)
        assert [(e.line, e.message[:9]) for e in errors] == [(2, "not JSON:")]
        assert report.imported == 2 and await store.get("file", "k1") is not None


async def test_jsonl_status_of_any_json_type_is_read_or_reported(tmp_path):
    lines = [{"alert_id": "x1", "rule_id": "r1", "created_at": 1772400000, "status": ["open"]},
             {"alert_id": "x2", "rule_id": "r1", "created_at": 1772400000, "status": {"name": "open"}},
             {"alert_id": "x3", "rule_id": "r1", "created_at": 1772400000, "stage": "Closed", "verdict": None},
             {"alert_id": "x4", "rule_id": "r1", "created_at": 1772400000, "stage": "closed", "verdict": 7}]
    path = tmp_path / "x.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    errors: list[RowError] = []
    async with await open_store(f"sqlite:///{tmp_path}/a.db") as store:
        report = await import_file(store, str(path), ImportSettings(), RuleMap(), on_error=errors.append)
        assert [(e.line, e.message.split(" ")[0]) for e in errors] == [(1, "unknown"), (2, "unknown"), (4, "unknown")]
        assert report.imported == 1 and (await store.get("file", "x3")).stage == "closed"
