"""The production alert store: PostgreSQL through asyncpg.

Batches are COPYed into a temporary staging table and merged with set-based statements, which is what makes
millions of rows importable in seconds. `?schema=name` in the URL selects (and creates) a schema.
"""
from __future__ import annotations

import re
from operator import attrgetter, itemgetter
from collections.abc import Sequence
from datetime import date, datetime, timezone
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from .store import Alert, AlertStore, BatchWriter, DayCounts, RuleInfo, Row, StoreError, without_password

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_CREATED, _DAYS = itemgetter(5), attrgetter("days")
# Must agree with store.bucket_of (see the SQLite store).
BUCKET_SQL = ("CASE WHEN a.stage <> 'closed' THEN 0 WHEN a.verdict = 'false_positive' THEN 2 "
              "WHEN a.verdict = 'benign_positive' THEN 3 ELSE 1 END")
_SUMS = "SUM((b = 0)::int), SUM((b = 1)::int), SUM((b = 2)::int), SUM((b = 3)::int)"
_ADD = """ON CONFLICT (rule_id, day) DO UPDATE SET n_open = alert_daily.n_open + excluded.n_open,
          n_closed = alert_daily.n_closed + excluded.n_closed,
          n_rejected = alert_daily.n_rejected + excluded.n_rejected,
          n_benign = alert_daily.n_benign + excluded.n_benign"""

# Ordered migrations: index i brings the schema from version i to i+1. Never edit a released one; append.
MIGRATIONS: list[list[str]] = [
    [  # v1: the alerts
        """CREATE TABLE alerts (
            source TEXT NOT NULL, alert_id TEXT NOT NULL, rule_id TEXT NOT NULL,
            platform_rule_id TEXT NOT NULL DEFAULT '', rule_title TEXT NOT NULL DEFAULT '',
            created_at TIMESTAMPTZ NOT NULL, closed_at TIMESTAMPTZ, stage TEXT NOT NULL, verdict TEXT,
            PRIMARY KEY (source, alert_id))""",
        "CREATE INDEX alerts_rule_created ON alerts (rule_id, created_at)",
    ],
    [  # v2: the daily rollup per rule maintained on upsert, and what we know of each rule
        """CREATE TABLE alert_daily (
            rule_id TEXT NOT NULL, day DATE NOT NULL,
            n_open INTEGER NOT NULL DEFAULT 0, n_closed INTEGER NOT NULL DEFAULT 0,
            n_rejected INTEGER NOT NULL DEFAULT 0, n_benign INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (rule_id, day)) WITH (fillfactor = 50)""",  # room for HOT updates: every import updates it
        "CREATE INDEX alert_daily_day ON alert_daily (day)",
        """CREATE TABLE alert_rules (
            rule_id TEXT PRIMARY KEY, rule_title TEXT NOT NULL DEFAULT '',
            platform_rule_id TEXT NOT NULL DEFAULT '')""",
        f"""INSERT INTO alert_daily (rule_id, day, n_open, n_closed, n_rejected, n_benign)
            SELECT rule_id, day, {_SUMS} FROM (
                SELECT a.rule_id, (a.created_at AT TIME ZONE 'UTC')::date AS day, {BUCKET_SQL} AS b FROM alerts a) x
            GROUP BY rule_id, day""",
        """INSERT INTO alert_rules (rule_id, rule_title, platform_rule_id)
            SELECT rule_id, MAX(rule_title), MAX(platform_rule_id) FROM alerts GROUP BY rule_id""",
        "DROP INDEX alerts_rule_created",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)
_COLUMN_LIST = ["source", "alert_id", "rule_id", "platform_rule_id", "rule_title", "created_at", "closed_at",
                "stage", "verdict"]
_COLUMNS = "source, alert_id, rule_id, platform_rule_id, rule_title, created_at, closed_at, stage, verdict"
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def split_url(url: str) -> tuple[str, str | None]:
    """The DSN for asyncpg and the schema named by `?schema=`, if any."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), None)
    if schema is not None and not _SCHEMA_NAME.match(schema):
        raise StoreError(f"schema {schema!r}: use lower-case letters, digits and underscores")
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, rest, parts.fragment)), schema


class PostgresStore(AlertStore):
    overlap_writes = True  # the server writes while this process parses

    def __init__(self, pool: asyncpg.Pool, url: str, schema: str | None) -> None:
        self.pool, self.url, self.schema = pool, url, schema
        self._fresh = True  # whether the last batch held only new alerts (then the next one likely does too)

    @classmethod
    async def open(cls, url: str, migrate_to: int = SCHEMA_VERSION) -> "PostgresStore":
        dsn, schema = split_url(url)
        settings = {"search_path": f"{schema},public"} if schema else {}
        try:
            if schema:
                conn = await asyncpg.connect(dsn)
                try:
                    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
                finally:
                    await conn.close()
            pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4, server_settings=settings,
                                             init=cls._init_connection)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
            raise StoreError(f"cannot open {without_password(url)}: {e}") from None
        store = cls(pool, url, schema)
        try:
            await store._migrate(migrate_to)
        except BaseException:
            await pool.close()
            raise
        return store

    @staticmethod
    async def _init_connection(conn: asyncpg.Connection) -> None:
        await conn.execute("""CREATE TEMP TABLE IF NOT EXISTS detbot_stage (
            source TEXT, alert_id TEXT, rule_id TEXT, platform_rule_id TEXT, rule_title TEXT,
            created_at TIMESTAMPTZ, closed_at TIMESTAMPTZ, stage TEXT, verdict TEXT) ON COMMIT DELETE ROWS""")

    async def _migrate(self, target: int) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            # Two bots starting together must not both run the migrations.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.detbot_alerts'))")
            await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            current = await conn.fetchval("SELECT MAX(version) FROM schema_version") or 0
            if current > SCHEMA_VERSION:
                raise StoreError(f"schema version {current} is newer than this detbot ({SCHEMA_VERSION})")
            for version in range(current, target):
                for statement in MIGRATIONS[version]:
                    await conn.execute(statement)
                await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", version + 1)

    async def _begin(self) -> BatchWriter:
        conn = await self.pool.acquire()
        try:
            tr = conn.transaction()
            await tr.start()
            # A crash loses at most the last transactions, which the next import or sync writes again.
            await conn.execute("SET LOCAL synchronous_commit TO off")
        except BaseException:
            await self.pool.release(conn)
            raise
        return _Writer(self, conn, tr)

    async def daily(self, rule_ids: Sequence[str], first: date, last: date) -> dict[str, dict[date, DayCounts]]:
        rows = await self.pool.fetch("""
            SELECT rule_id, day, n_open, n_closed, n_rejected, n_benign FROM alert_daily
            WHERE rule_id = ANY($1::text[]) AND day BETWEEN $2 AND $3""", list(dict.fromkeys(rule_ids)), first, last)
        out: dict[str, dict[date, DayCounts]] = {}
        for rule_id, day, o, c, r, b in rows:
            if o or c or r or b:
                out.setdefault(rule_id, {})[day] = DayCounts(day, o, c, r, b)
        return out

    async def rules(self, rule_ids: Sequence[str] | None = None) -> dict[str, RuleInfo]:
        if rule_ids is None:
            rows = await self.pool.fetch("SELECT rule_id, rule_title, platform_rule_id FROM alert_rules")
        else:
            rows = await self.pool.fetch("""SELECT rule_id, rule_title, platform_rule_id FROM alert_rules
                                            WHERE rule_id = ANY($1::text[])""", list(rule_ids))
        return {r[0]: RuleInfo(r[0], r[1], r[2]) for r in rows}

    async def active_rules(self, first: date, last: date) -> list[str]:
        rows = await self.pool.fetch("""
            SELECT rule_id FROM alert_daily WHERE day BETWEEN $1 AND $2 GROUP BY rule_id
            HAVING SUM(n_open + n_closed + n_rejected + n_benign) > 0
            ORDER BY SUM(n_open + n_closed + n_rejected + n_benign) DESC, rule_id""", first, last)
        return [r[0] for r in rows]

    async def get(self, source: str, alert_id: str) -> Alert | None:
        r = await self.pool.fetchrow("""
            SELECT source, alert_id, rule_id, created_at, stage, verdict, platform_rule_id, rule_title, closed_at
            FROM alerts WHERE source = $1 AND alert_id = $2""", source, alert_id)
        return None if r is None else Alert(*r)

    async def count(self) -> int:
        return await self.pool.fetchval("SELECT COUNT(*) FROM alerts")

    async def schema_version(self) -> int:
        return await self.pool.fetchval("SELECT MAX(version) FROM schema_version") or 0

    async def close(self) -> None:
        await self.pool.close()


class _Writer(BatchWriter):
    """One transaction on one pooled connection, held from the first batch to the commit."""

    def __init__(self, store: PostgresStore, conn: asyncpg.Connection, tr: asyncpg.transaction.Transaction) -> None:
        super().__init__()
        self.store, self.tr = store, tr
        self.conn: asyncpg.Connection | None = conn

    async def _write(self, rows: list[Row]) -> list[tuple]:
        conn, old = self.conn, None
        assert conn is not None
        if self.store._fresh:
            # Bulk imports are mostly new alerts: COPY straight into the table, undone (savepoint) when one of them
            # is already stored.
            try:
                async with conn.transaction():
                    await conn.copy_records_to_table("alerts", records=rows, columns=_COLUMN_LIST)
                old = []
            except asyncpg.UniqueViolationError:
                pass
        if old is None:
            await conn.copy_records_to_table("detbot_stage", records=rows, columns=_COLUMN_LIST)
            # The previous state of alerts already stored leaves the rollup before they are overwritten.
            old = [tuple(r) for r in await conn.fetch(f"""
                SELECT a.rule_id, (a.created_at AT TIME ZONE 'UTC')::date - DATE '1970-01-01', {BUCKET_SQL}
                FROM detbot_stage s JOIN alerts a USING (source, alert_id)""")]
            await conn.execute(f"""
                INSERT INTO alerts ({_COLUMNS}) SELECT {_COLUMNS} FROM detbot_stage
                ON CONFLICT (source, alert_id) DO UPDATE SET rule_id = excluded.rule_id,
                    platform_rule_id = excluded.platform_rule_id, rule_title = excluded.rule_title,
                    created_at = excluded.created_at, closed_at = excluded.closed_at, stage = excluded.stage,
                    verdict = excluded.verdict""")
            await conn.execute("TRUNCATE detbot_stage")  # the next batch of this transaction stages afresh
        self.store._fresh = not old
        self._count(rows, map(_DAYS, map(EPOCH.__rsub__, map(_CREATED, rows))))  # whole UTC days since 1970
        return old

    async def _commit(self, rollup: list[tuple], rules: list[tuple[str, str, str]]) -> None:
        conn = self.conn
        assert conn is not None
        # One statement over arrays: per-row executemany costs more than all the rest.
        await conn.execute(f"""
            INSERT INTO alert_daily (rule_id, day, n_open, n_closed, n_rejected, n_benign)
            SELECT r, DATE '1970-01-01' + d, o, c, rj, b
            FROM unnest($1::text[], $2::int[], $3::int[], $4::int[], $5::int[], $6::int[]) AS u(r, d, o, c, rj, b)
            {_ADD}""", *(list(col) for col in zip(*rollup)) if rollup else ([],) * 6)
        await conn.execute("""
            INSERT INTO alert_rules (rule_id, rule_title, platform_rule_id)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
            ON CONFLICT (rule_id) DO UPDATE SET
                rule_title = COALESCE(NULLIF(excluded.rule_title, ''), alert_rules.rule_title),
                platform_rule_id = COALESCE(NULLIF(excluded.platform_rule_id, ''),
                                            alert_rules.platform_rule_id)""",
            *(list(col) for col in zip(*rules)) if rules else ([],) * 3)
        await self.tr.commit()
        self.conn = None
        await self.store.pool.release(conn)

    async def abort(self) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        try:
            await self.tr.rollback()
        except (asyncpg.InterfaceError, asyncpg.PostgresError, OSError):
            conn.terminate()  # a failed commit or a broken connection: never hand it out again
        finally:
            await self.store.pool.release(conn)
