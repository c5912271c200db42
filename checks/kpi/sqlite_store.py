"""The embedded alert store: one SQLite file (WAL), driven from a single worker thread.

sqlite3 is synchronous; every statement runs on one dedicated thread so the event loop never blocks and the
connection is only ever touched from the thread that opened it.
"""
from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from .store import (Alert, AlertStore, BatchWriter, DayCounts, RuleInfo, Row, StoreError, day_number,
                    epoch_rows, from_day_number)

T = TypeVar("T")
# Must agree with store.bucket_of: the rollup is corrected with it when an alert already stored changes.
BUCKET_SQL = ("CASE WHEN a.stage <> 'closed' THEN 0 WHEN a.verdict = 'false_positive' THEN 2 "
              "WHEN a.verdict = 'benign_positive' THEN 3 ELSE 1 END")

# Ordered migrations: index i brings the schema from version i to i+1. Never edit a released one; append.
MIGRATIONS: list[list[str]] = [
    [  # v1: the alerts
        """CREATE TABLE alerts (
            source TEXT NOT NULL, alert_id TEXT NOT NULL, rule_id TEXT NOT NULL,
            platform_rule_id TEXT NOT NULL DEFAULT '', rule_title TEXT NOT NULL DEFAULT '',
            created_at INTEGER NOT NULL, closed_at INTEGER, stage TEXT NOT NULL, verdict TEXT,
            PRIMARY KEY (source, alert_id)) WITHOUT ROWID""",
        "CREATE INDEX alerts_rule_created ON alerts (rule_id, created_at)",
    ],
    [  # v2: a daily rollup per rule maintained on upsert (KPIs never scan alerts), and what we know of each rule
        """CREATE TABLE alert_daily (
            rule_id TEXT NOT NULL, day INTEGER NOT NULL,
            n_open INTEGER NOT NULL DEFAULT 0, n_closed INTEGER NOT NULL DEFAULT 0,
            n_rejected INTEGER NOT NULL DEFAULT 0, n_benign INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (rule_id, day)) WITHOUT ROWID""",
        "CREATE INDEX alert_daily_day ON alert_daily (day)",
        """CREATE TABLE alert_rules (
            rule_id TEXT PRIMARY KEY, rule_title TEXT NOT NULL DEFAULT '',
            platform_rule_id TEXT NOT NULL DEFAULT '') WITHOUT ROWID""",
        f"""INSERT INTO alert_daily (rule_id, day, n_open, n_closed, n_rejected, n_benign)
            SELECT rule_id, created_at / 86400, SUM(b = 0), SUM(b = 1), SUM(b = 2), SUM(b = 3)
            FROM (SELECT a.rule_id, a.created_at, {BUCKET_SQL} AS b FROM alerts a) GROUP BY 1, 2""",
        """INSERT INTO alert_rules (rule_id, rule_title, platform_rule_id)
            SELECT rule_id, MAX(rule_title), MAX(platform_rule_id) FROM alerts GROUP BY rule_id""",
        # The rollup answers per-rule queries; the v1 index only slowed imports down.
        "DROP INDEX alerts_rule_created",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)
_COLUMNS = "source, alert_id, rule_id, platform_rule_id, rule_title, created_at, closed_at, stage, verdict"
_INSERT = f"INSERT INTO alerts ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)"
_UPSERT = f"""INSERT INTO alerts ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)
    ON CONFLICT (source, alert_id) DO UPDATE SET rule_id = excluded.rule_id,
        platform_rule_id = excluded.platform_rule_id, rule_title = excluded.rule_title,
        created_at = excluded.created_at, closed_at = excluded.closed_at, stage = excluded.stage,
        verdict = excluded.verdict"""
_ADD_ROLLUP = """INSERT INTO alert_daily (rule_id, day, n_open, n_closed, n_rejected, n_benign) VALUES (?,?,?,?,?,?)
    ON CONFLICT (rule_id, day) DO UPDATE SET n_open = n_open + excluded.n_open,
        n_closed = n_closed + excluded.n_closed, n_rejected = n_rejected + excluded.n_rejected,
        n_benign = n_benign + excluded.n_benign"""
_UPSERT_RULE = """INSERT INTO alert_rules (rule_id, rule_title, platform_rule_id) VALUES (?,?,?)
    ON CONFLICT (rule_id) DO UPDATE SET
        rule_title = CASE WHEN excluded.rule_title <> '' THEN excluded.rule_title ELSE rule_title END,
        platform_rule_id = CASE WHEN excluded.platform_rule_id <> '' THEN excluded.platform_rule_id
                                ELSE platform_rule_id END"""


def path_from_url(url: str) -> str:
    rest = url[len("sqlite://"):]
    if not rest.startswith("/"):
        raise StoreError(f"{url!r}: expected sqlite:///relative.db or sqlite:////absolute.db")
    path = rest[1:]
    if not path:
        raise StoreError(f"{url!r}: no database path")
    return path


class SQLiteStore(AlertStore):
    takes_epoch_rows = True
    def __init__(self, path: str, url: str = "") -> None:
        self.path = path
        self.url = url or f"sqlite:///{path}"
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="detbot-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._fresh = True  # whether the last batch held only new alerts (then the next one likely does too)

    @classmethod
    async def open(cls, url: str, migrate_to: int = SCHEMA_VERSION) -> "SQLiteStore":
        store = cls(path_from_url(url), url)
        try:
            await store._run(store._connect, migrate_to)
        except BaseException:
            await store.close()
            raise
        return store

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    # -- worker-thread side ------------------------------------------------------------------------------------
    def _connect(self, migrate_to: int) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: {e}") from None
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA temp_store=MEMORY")
        # Alert ids are random, so big imports touch the whole primary-key B-tree: a large page cache, and reads
        # through mmap (the OS page cache) beyond it.
        conn.execute("PRAGMA cache_size=-262144")  # 256 MiB at most, allocated as used
        conn.execute("PRAGMA mmap_size=4294967296")
        self._conn = conn
        self._migrate(migrate_to)

    def _migrate(self, target: int) -> None:
        conn = self._conn
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
            current = row[0] or 0
            if current > SCHEMA_VERSION:
                raise StoreError(f"{self.path}: schema version {current} is newer than this detbot "
                                 f"({SCHEMA_VERSION}); upgrade detbot")
            for version in range(current, target):
                for statement in MIGRATIONS[version]:
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version + 1,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _write(self, rows: list[Row]) -> tuple[list[tuple], list[int]]:
        """Write one batch inside the open transaction: (rule_id, day, bucket) of the alerts it replaced, and the
        creation day of each row."""
        conn = self._conn
        assert conn is not None
        out = epoch_rows(rows)
        old = None
        if self._fresh:
            # Bulk imports are mostly new alerts: a plain insert first, undone at the first alert already stored.
            conn.execute("SAVEPOINT detbot_batch")
            try:
                conn.executemany(_INSERT, out)
                old = []
            except sqlite3.IntegrityError:
                conn.execute("ROLLBACK TO detbot_batch")
            conn.execute("RELEASE detbot_batch")
        if old is None:
            # The previous state of alerts already stored leaves the rollup before they are overwritten.
            old = self._existing(out)
            conn.executemany(_UPSERT, out)
        self._fresh = not old
        return old, [r[5] // 86400 for r in out]

    def _commit(self, rollup: list[tuple], rules: list[tuple]) -> None:
        conn = self._conn
        assert conn is not None
        conn.executemany(_ADD_ROLLUP, rollup)
        conn.executemany(_UPSERT_RULE, rules)
        conn.execute("COMMIT")

    def _rollback(self) -> None:
        if self._conn is not None and self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    def _existing(self, rows: list[tuple]) -> list[tuple]:
        """(rule_id, day, bucket) of the stored alerts these rows will overwrite."""
        conn = self._conn
        assert conn is not None
        by_source: dict[str, list[str]] = {}
        for r in rows:
            by_source.setdefault(r[0], []).append(r[1])
        out: list[tuple] = []
        for source, ids in by_source.items():
            for i in range(0, len(ids), 30_000):  # SQLite binds at most 32,766 parameters
                chunk = ids[i:i + 30_000]
                out.extend(conn.execute(
                    f"""SELECT a.rule_id, a.created_at / 86400, {BUCKET_SQL} FROM alerts a
                        WHERE a.source = ? AND a.alert_id IN ({",".join("?" * len(chunk))})""",
                    [source, *chunk]).fetchall())
        return out

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        assert self._conn is not None
        return self._conn.execute(sql, params).fetchall()

    def _query_ids(self, sql_before: str, ids: Sequence[str], sql_after: str, params: Sequence[Any]) -> list[tuple]:
        """Run a query once per chunk of ids (SQLite caps the number of bound parameters)."""
        out: list[tuple] = []
        for i in range(0, len(ids), 500):
            chunk = list(ids[i:i + 500])
            marks = ",".join("?" * len(chunk))
            out.extend(self._query(f"{sql_before} ({marks}) {sql_after}", [*chunk, *params]))
        return out

    # -- async interface ---------------------------------------------------------------------------------------
    async def _begin(self) -> BatchWriter:
        await self._run(self._query, "BEGIN IMMEDIATE")
        return _Writer(self)

    async def daily(self, rule_ids: Sequence[str], first: date, last: date) -> dict[str, dict[date, DayCounts]]:
        rows = await self._run(
            self._query_ids,
            "SELECT rule_id, day, n_open, n_closed, n_rejected, n_benign FROM alert_daily WHERE rule_id IN",
            list(dict.fromkeys(rule_ids)), "AND day BETWEEN ? AND ?", [day_number(first), day_number(last)])
        out: dict[str, dict[date, DayCounts]] = {}
        for rule_id, day, o, c, r, b in rows:
            if o or c or r or b:
                d = from_day_number(day)
                out.setdefault(rule_id, {})[d] = DayCounts(d, o, c, r, b)
        return out

    async def rules(self, rule_ids: Sequence[str] | None = None) -> dict[str, RuleInfo]:
        if rule_ids is None:
            rows = await self._run(self._query, "SELECT rule_id, rule_title, platform_rule_id FROM alert_rules")
        else:
            rows = await self._run(self._query_ids,
                                   "SELECT rule_id, rule_title, platform_rule_id FROM alert_rules WHERE rule_id IN",
                                   list(dict.fromkeys(rule_ids)), "", [])
        return {r[0]: RuleInfo(r[0], r[1], r[2]) for r in rows}

    async def active_rules(self, first: date, last: date) -> list[str]:
        rows = await self._run(self._query, """
            SELECT rule_id FROM alert_daily WHERE day BETWEEN ? AND ? GROUP BY rule_id
            HAVING SUM(n_open + n_closed + n_rejected + n_benign) > 0
            ORDER BY SUM(n_open + n_closed + n_rejected + n_benign) DESC, rule_id""",
            (day_number(first), day_number(last)))
        return [r[0] for r in rows]

    async def count(self) -> int:
        return (await self._run(self._query, "SELECT COUNT(*) FROM alerts"))[0][0]

    async def schema_version(self) -> int:
        return (await self._run(self._query, "SELECT MAX(version) FROM schema_version"))[0][0] or 0

    async def get(self, source: str, alert_id: str) -> Alert | None:
        rows = await self._run(self._query, """
            SELECT source, alert_id, rule_id, created_at, stage, verdict, platform_rule_id, rule_title, closed_at
            FROM alerts WHERE source = ? AND alert_id = ?""", (source, alert_id))
        if not rows:
            return None
        s, i, r, created, stage, verdict, prid, title, closed = rows[0]
        ts = lambda v: None if v is None else datetime.fromtimestamp(v, timezone.utc)  # noqa: E731
        return Alert(s, i, r, ts(created), stage, verdict, prid, title, ts(closed))

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await asyncio.get_running_loop().run_in_executor(self._pool, conn.close)
        self._pool.shutdown(wait=False)


class _Writer(BatchWriter):
    """Every statement on the store's worker thread, inside one BEGIN IMMEDIATE transaction."""

    def __init__(self, store: SQLiteStore) -> None:
        super().__init__()
        self.store = store

    async def _write(self, rows: list[Row]) -> list[tuple]:
        old, days = await self.store._run(self.store._write, rows)
        self._count(rows, days)
        return old

    async def _commit(self, rollup: list[tuple], rules: list[tuple[str, str, str]]) -> None:
        await self.store._run(self.store._commit, rollup, rules)

    async def abort(self) -> None:
        await self.store._run(self.store._rollback)
