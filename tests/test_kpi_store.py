"""The alert store contract, run against real SQLite and real PostgreSQL."""
from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from checks.kpi import postgres_store, sqlite_store
from checks.kpi.store import Alert, DayCounts, StoreError, bucket_of, open_store
from tests.kpi_fixtures import pg_session, store_url  # noqa: F401

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=timezone.utc)


def alert(i: int, rule: str = "r1", days_ago: int = 0, stage: str = "open", verdict: str | None = None,
          source: str = "test", title: str = "") -> Alert:
    return Alert(source, f"a{i}", rule, NOW - timedelta(days=days_ago, minutes=i % 60), stage, verdict,
                 platform_rule_id=f"p-{rule}", rule_title=title)


async def test_upsert_then_daily_counts_by_bucket(store_url):
    async with await open_store(store_url) as store:
        res = await store.upsert_many([
            alert(1), alert(2, stage="in_progress"), alert(3, stage="closed", verdict="true_positive"),
            alert(4, stage="closed", verdict="false_positive"), alert(5, stage="closed", verdict="benign_positive"),
            alert(6, stage="closed"), alert(7, days_ago=3, stage="closed", verdict="false_positive"),
            alert(8, rule="r2", days_ago=1),
        ])
        assert (res.inserted, res.updated) == (8, 0)
        today, before = NOW.date(), NOW.date() - timedelta(days=3)
        daily = await store.daily(["r1", "r2", "nope"], before, today)
        assert set(daily) == {"r1", "r2"}
        assert daily["r1"][today] == DayCounts(today, open=2, closed=2, rejected=1, benign=1)
        assert daily["r1"][before] == DayCounts(before, rejected=1)
        assert daily["r2"][today - timedelta(days=1)].open == 1
        assert await store.count() == 8
        # The window bounds are inclusive and exclusive of everything else.
        assert await store.daily(["r1"], today - timedelta(days=2), today - timedelta(days=1)) == {}


async def test_reimport_updates_and_never_duplicates(store_url):
    async with await open_store(store_url) as store:
        await store.upsert_many([alert(i) for i in range(10)])
        res = await store.upsert_many([alert(i, stage="closed", verdict="false_positive", title="New title")
                                       for i in range(5)] + [alert(10)])
        assert (res.inserted, res.updated) == (1, 5)
        assert await store.count() == 11
        day = NOW.date()
        assert (await store.daily(["r1"], day, day))["r1"][day] == DayCounts(day, open=6, rejected=5)
        got = await store.get("test", "a3")
        assert got is not None and got.verdict == "false_positive" and got.rule_title == "New title"
        assert got.created_at == alert(3).created_at
        assert (await store.rules(["r1"]))["r1"].rule_title == "New title"


async def test_alert_moving_to_another_rule_and_day_moves_in_rollup(store_url):
    async with await open_store(store_url) as store:
        await store.upsert_many([alert(1, rule="r1", days_ago=5)])
        await store.upsert_many([alert(1, rule="r2", days_ago=0, stage="closed", verdict="true_positive")])
        day = NOW.date()
        daily = await store.daily(["r1", "r2"], day - timedelta(days=10), day)
        assert "r1" not in daily
        assert daily["r2"][day] == DayCounts(day, closed=1)
        assert await store.active_rules(day - timedelta(days=10), day) == ["r2"]


async def test_duplicates_within_one_batch_keep_the_last(store_url):
    async with await open_store(store_url) as store:
        res = await store.upsert_many([alert(1), alert(1, stage="closed", verdict="false_positive")])
        assert res.inserted == 1 and await store.count() == 1
        day = NOW.date()
        assert (await store.daily(["r1"], day, day))["r1"][day] == DayCounts(day, rejected=1)


async def test_same_alert_id_from_two_sources_is_two_alerts(store_url):
    async with await open_store(store_url) as store:
        await store.upsert_many([alert(1, source="sekoia"), alert(1, source="elastic")])
        assert await store.count() == 2


async def test_stream_in_batches_and_active_rules_by_volume(store_url):
    async with await open_store(store_url) as store:
        alerts = (alert(i, rule="busy" if i % 4 else "quiet", days_ago=i % 20) for i in range(1000))
        res = await store.upsert_stream(alerts, batch_size=128)
        assert res.inserted == 1000
        first, last = NOW.date() - timedelta(days=29), NOW.date()
        assert await store.active_rules(first, last) == ["busy", "quiet"]
        daily = await store.daily(["busy", "quiet"], first, last)
        assert sum(c.total for c in daily["busy"].values()) == 750
        assert sum(c.total for c in daily["quiet"].values()) == 250


async def test_many_rule_ids_in_one_query(store_url):
    async with await open_store(store_url) as store:
        await store.upsert_many([alert(i, rule=f"rule-{i}") for i in range(1200)])
        ids = [f"rule-{i}" for i in range(1200)]
        daily = await store.daily(ids, NOW.date(), NOW.date())
        assert len(daily) == 1200
        assert len(await store.rules(ids)) == 1200


async def test_reopening_keeps_data_and_schema_version(store_url):
    async with await open_store(store_url) as store:
        await store.upsert_many([alert(1)])
        version = await store.schema_version()
    async with await open_store(store_url) as store:
        assert await store.count() == 1
        assert await store.schema_version() == version


async def test_upgrade_from_v1_backfills_the_rollup(store_url):
    kind = "sqlite" if store_url.startswith("sqlite") else "postgresql"
    module = sqlite_store if kind == "sqlite" else postgres_store
    cls = module.SQLiteStore if kind == "sqlite" else module.PostgresStore
    old = await cls.open(store_url, migrate_to=1)
    assert await old.schema_version() == 1
    # A v1 database, written as v1 code wrote it: alerts only, no rollup.
    rows = [("test", "a1", "r1", "", "Old title", NOW - timedelta(days=1), None, "closed", "false_positive"),
            ("test", "a2", "r1", "", "Old title", NOW - timedelta(days=1), None, "open", None),
            ("test", "a3", "r2", "", "", NOW, NOW, "closed", "benign_positive")]
    if kind == "sqlite":
        conn = sqlite3.connect(old.path)
        conn.executemany("INSERT INTO alerts VALUES (?,?,?,?,?,?,?,?,?)",
                         [r[:5] + (int(r[5].timestamp()), r[6] and int(r[6].timestamp())) + r[7:] for r in rows])
        conn.commit()
        conn.close()
    else:
        await old.pool.executemany("INSERT INTO alerts VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)", rows)
    await old.close()
    async with await open_store(store_url) as store:
        assert await store.schema_version() == module.SCHEMA_VERSION
        day = NOW.date()
        daily = await store.daily(["r1", "r2"], day - timedelta(days=1), day)
        assert daily["r1"][day - timedelta(days=1)] == DayCounts(day - timedelta(days=1), open=1, rejected=1)
        assert daily["r2"][day] == DayCounts(day, benign=1)
        assert (await store.rules(["r1"]))["r1"].rule_title == "Old title"
        # and the upgraded store keeps its rollup right on later upserts
        await store.upsert_many([alert(2, rule="r1", days_ago=1, stage="closed", verdict="true_positive")])
        got = (await store.daily(["r1"], day - timedelta(days=1), day))["r1"][day - timedelta(days=1)]
        assert got == DayCounts(day - timedelta(days=1), closed=1, rejected=1)


async def test_newer_schema_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path}/a.db"
    async with await open_store(url):
        pass
    conn = sqlite3.connect(tmp_path / "a.db")
    conn.execute("INSERT INTO schema_version VALUES (99)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        await open_store(url)


async def test_bad_urls_are_clear_errors():
    with pytest.raises(StoreError, match="unsupported"):
        await open_store("mysql://x")
    with pytest.raises(StoreError, match="schema"):
        postgres_store.split_url("postgresql://h/db?schema=Robert'); DROP")


def test_alert_validation_and_status():
    with pytest.raises(ValueError, match="stage"):
        Alert("s", "a", "r", NOW, stage="done")
    with pytest.raises(ValueError, match="verdict"):
        Alert("s", "a", "r", NOW, stage="closed", verdict="maybe")
    with pytest.raises(ValueError, match="timezone"):
        Alert("s", "a", "r", datetime(2026, 1, 1))
    benign = Alert("s", "a", "r", NOW, stage="closed", verdict="benign_positive")
    assert benign.status("closed") == "closed" and benign.status("rejected") == "rejected"
    assert Alert("s", "a", "r", NOW, stage="in_progress", verdict="false_positive").status() == "open"
    assert bucket_of("closed", None) == "closed" and bucket_of("closed", "undetermined") == "closed"


def test_sqlite_url_forms():
    assert sqlite_store.path_from_url("sqlite:///rel/a.db") == "rel/a.db"
    assert sqlite_store.path_from_url("sqlite:////abs/a.db") == "/abs/a.db"
    with pytest.raises(StoreError):
        sqlite_store.path_from_url("sqlite://a.db")


async def test_a_bare_path_is_an_sqlite_store(tmp_path):
    async with await open_store(str(tmp_path / "plain.db")) as store:
        await store.upsert_many([alert(1)])
    assert (tmp_path / "plain.db").exists()
    with pytest.raises(StoreError, match="empty"):
        await open_store(" ")
