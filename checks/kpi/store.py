"""The normalised alert record and the async interface every alert store implements.

A store keeps one row per `(source, alert_id)`: importing the same alert again updates it. Next to the alerts it
keeps a daily rollup per rule (alert counts by status bucket, by the day the alert was created) so that KPIs over
many rules never scan the alerts themselves.
"""
from __future__ import annotations

import abc
import asyncio
import contextlib
import functools
from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from itertools import islice
from operator import itemgetter

STAGES = ("open", "in_progress", "closed")
VERDICTS = ("true_positive", "benign_positive", "false_positive", "undetermined")
# The buckets the store counts. `benign` is kept apart so the KPI layer can count it as closed or as rejected
# (a setting) and still show it as its own number.
BUCKETS = ("open", "closed", "rejected", "benign")
EPOCH_DAY = date(1970, 1, 1)


class StoreError(Exception):
    """A store URL that cannot be opened, or a database that refuses the schema."""


def bucket_of(stage: str, verdict: str | None) -> str:
    if stage != "closed":
        return "open"
    if verdict == "false_positive":
        return "rejected"
    if verdict == "benign_positive":
        return "benign"
    return "closed"


@dataclass(slots=True)
class Alert:
    source: str
    alert_id: str
    rule_id: str                      # the Sigma rule's `id`
    created_at: datetime              # timezone-aware, UTC
    stage: str = "open"               # open | in_progress | closed
    verdict: str | None = None        # true_positive | benign_positive | false_positive | undetermined | None
    platform_rule_id: str = ""
    rule_title: str = ""
    closed_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {', '.join(STAGES)}, not {self.stage!r}")
        if self.verdict is not None and self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, not {self.verdict!r}")
        if self.created_at.tzinfo is None:
            raise ValueError("created_at must carry a timezone")
        if not self.alert_id or not self.rule_id or not self.source:
            raise ValueError("source, alert_id and rule_id must not be empty")

    @property
    def bucket(self) -> str:
        return bucket_of(self.stage, self.verdict)

    def status(self, benign_as: str = "closed") -> str:
        """open (not closed), rejected (closed as false positive), closed (closed otherwise)."""
        b = self.bucket
        return benign_as if b == "benign" else b


@dataclass(slots=True)
class DayCounts:
    day: date
    open: int = 0
    closed: int = 0
    rejected: int = 0
    benign: int = 0

    @property
    def total(self) -> int:
        return self.open + self.closed + self.rejected + self.benign

    def add(self, other: "DayCounts") -> None:
        self.open += other.open
        self.closed += other.closed
        self.rejected += other.rejected
        self.benign += other.benign


@dataclass
class UpsertResult:
    inserted: int = 0
    updated: int = 0

    def __iadd__(self, other: "UpsertResult") -> "UpsertResult":
        self.inserted += other.inserted
        self.updated += other.updated
        return self


@dataclass
class RuleInfo:
    rule_id: str
    rule_title: str = ""
    platform_rule_id: str = ""
    extra: dict = field(default_factory=dict)


def day_number(d: date) -> int:
    return (d - EPOCH_DAY).days


def day_of(ts: datetime) -> date:
    return ts.astimezone(timezone.utc).date()


def from_day_number(n: int) -> date:
    return EPOCH_DAY + timedelta(days=n)


# A normalised alert as the stores write it, in their column order:
# (source, alert_id, rule_id, platform_rule_id, rule_title, created_at, closed_at, stage, verdict).
# Importers build these directly: an Alert object per row costs more than the database write of it.
Row = tuple
BUCKET_CODE = {"open": 0, "closed": 1, "rejected": 2, "benign": 3}
# The bucket code of every valid (stage, verdict): one dict lookup per row on the import path.
STATUS_BUCKET = {(s, v): BUCKET_CODE[bucket_of(s, v)] for s in STAGES for v in (None, *VERDICTS)}
# Rows written in one transaction before it commits (file imports): the rollup of all of them is written once,
# at the commit, and an interrupted import keeps everything committed before, consistently.
COMMIT_ROWS = 1_000_000
BATCH_ROWS = 50_000  # rows per write: enough for COPY and executemany to run at full speed
CHUNK_ROWS = 2_000   # rows a source hands over at a time (see AlertStore.overlap_writes)
_KEY, _RULE, _PLATFORM, _TITLE = itemgetter(0, 1), itemgetter(2), itemgetter(3), itemgetter(4)
_STATUS, _RULE_PLATFORM, _RULE_TITLE = itemgetter(7, 8), itemgetter(2, 3), itemgetter(2, 4)


def epoch_rows(rows: list[Row]) -> list[Row]:
    """The rows with their times as integer seconds since the epoch, as SQLite stores them (and as a JSON Lines
    worker process sends them: an int pickles in a tenth of a datetime's time). Rows converted already pass."""
    if not rows or rows[0][5].__class__ is int:
        return rows
    # A comprehension: twice as fast as transposing with zip.
    return [(s, i, r, p, t, int(c.timestamp()), cl and int(cl.timestamp()), st, v)
            for s, i, r, p, t, c, cl, st, v in rows]


def alert_row(a: Alert) -> Row:
    return (a.source, a.alert_id, a.rule_id, a.platform_rule_id, a.rule_title, a.created_at, a.closed_at,
            a.stage, a.verdict)


def dedupe(rows: list[Row]) -> list[Row]:
    """The last row of each (source, alert_id) wins, as a re-import would."""
    latest = dict(zip(map(_KEY, rows), rows))
    return rows if len(latest) == len(rows) else list(latest.values())


class BatchWriter(abc.ABC):
    """One write transaction over any number of batches (a store opens it, `AlertStore.upsert_rows` drives it).

    The rollup change and what the batches say of each rule are gathered here and written once, at commit: for a
    big import, upserting the rollup after every batch cost more than writing the alerts.
    """

    def __init__(self) -> None:
        self.result = UpsertResult()
        self.rows = 0
        self._cells: Counter[tuple[str, int, int]] = Counter()   # (rule_id, day number, bucket code) -> change
        self._titles: dict[str, str] = {}
        self._platform_ids: dict[str, str] = {}

    async def write(self, rows: list[Row]) -> None:
        rows = dedupe(rows)
        old = await self._write(rows)
        self._cells.subtract(old)
        self.result += UpsertResult(inserted=len(rows) - len(old), updated=len(old))
        self.rows += len(rows)

    def _count(self, rows: list[Row], days: Iterable[int]) -> None:
        """Count new rows into the rollup; `days` are their creation days, as the store numbers them."""
        # map/filter/zip over itemgetters: the loops run in C, which at millions of rows is seconds saved.
        buckets = map(STATUS_BUCKET.__getitem__, map(_STATUS, rows))
        self._cells.update(zip(map(_RULE, rows), days, buckets))
        self._titles.update(map(_RULE_TITLE, filter(_TITLE, rows)))
        self._platform_ids.update(map(_RULE_PLATFORM, filter(_PLATFORM, rows)))

    def rollup(self) -> list[tuple[str, int, int, int, int, int]]:
        """(rule_id, day, n_open, n_closed, n_rejected, n_benign) to add, in one order (concurrent writers take
        their row locks in it, so they cannot deadlock)."""
        acc: dict[tuple[str, int], list[int]] = {}
        for (rule_id, day, bucket), n in self._cells.items():
            if n:
                acc.setdefault((rule_id, day), [0, 0, 0, 0])[bucket] += n
        return [(rule_id, day, *counts) for (rule_id, day), counts in sorted(acc.items())]

    def rule_rows(self) -> list[tuple[str, str, str]]:
        """(rule_id, title, platform id) of every rule written; empty when the batches never said."""
        rules = sorted({k[0] for k in self._cells})
        return [(r, self._titles.get(r, ""), self._platform_ids.get(r, "")) for r in rules]

    @abc.abstractmethod
    async def _write(self, rows: list[Row]) -> list[tuple[str, int, int]]:
        """Insert or update these rows (unique keys), count them with `_count`, and return (rule_id, day, bucket)
        of the stored alerts they replaced."""

    async def commit(self) -> UpsertResult:
        """Write the rollup and rule facts, commit, and say what was written."""
        await self._commit(self.rollup(), self.rule_rows())
        return self.result

    @abc.abstractmethod
    async def _commit(self, rollup: list[tuple], rules: list[tuple[str, str, str]]) -> None:
        """Add `rollup` (see `rollup()`) to the daily counts, upsert `rules` (an empty title or platform id keeps
        the stored one), and commit."""

    @abc.abstractmethod
    async def abort(self) -> None:
        """Roll back everything since the transaction began."""


class AlertStore(abc.ABC):
    """Async interface shared by the SQLite and PostgreSQL stores (and any SIEM-backed store)."""

    url: str = ""
    # Whether `upsert_rows` takes rows whose times are `epoch_rows` seconds (all rows of a batch alike).
    takes_epoch_rows = False

    @functools.cached_property
    def _write_lock(self) -> asyncio.Lock:
        """One write transaction at a time per store object (a connection holds one transaction)."""
        return asyncio.Lock()

    @abc.abstractmethod
    async def daily(self, rule_ids: Sequence[str], first: date, last: date) -> dict[str, dict[date, DayCounts]]:
        """Counts per rule and creation day, first..last inclusive; days without alerts are absent."""

    @abc.abstractmethod
    async def rules(self, rule_ids: Sequence[str] | None = None) -> dict[str, RuleInfo]:
        """What the store knows of these rules (all when None): their latest title and platform id."""

    @abc.abstractmethod
    async def active_rules(self, first: date, last: date) -> list[str]:
        """Rules with at least one alert created first..last."""

    @abc.abstractmethod
    async def get(self, source: str, alert_id: str) -> Alert | None:
        """One stored alert, or None."""

    @abc.abstractmethod
    async def count(self) -> int:
        """How many alerts are stored."""

    @abc.abstractmethod
    async def schema_version(self) -> int: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    # Whether the source may go on being read while a batch is written. Yes when the database works in another
    # process (the source then yields to the event loop between chunks, and the write moves on); no when the
    # writes run on a thread of this process, where source and writer would only fight over the GIL.
    overlap_writes = False

    @abc.abstractmethod
    async def _begin(self) -> BatchWriter:
        """Open a write transaction."""

    async def upsert_rows(self, chunks: Iterable[list[Row]] | AsyncIterable[list[Row]],
                          commit_rows: int = COMMIT_ROWS, batch_rows: int = BATCH_ROWS) -> UpsertResult:
        """Write chunks of rows, in batches of `batch_rows`, committing each time `commit_rows` rows have been
        written since the last commit (0: after every batch) and at the end. When the source or a write fails,
        the open transaction is rolled back: what was committed before stays, with its rollup, and importing
        again completes it."""
        total = UpsertResult()

        async def step(writer: BatchWriter, rows: list[Row]) -> BatchWriter | None:
            """Write one batch; the writer while its transaction stays open, None once committed."""
            await writer.write(rows)
            if writer.rows < commit_rows:
                return writer
            total.__iadd__(await writer.commit())
            return None

        async with self._write_lock, contextlib.aclosing(_each(chunks)) as source:
            writer: BatchWriter | None = None
            pending: asyncio.Future[BatchWriter | None] | None = None
            batch: list[Row] = []
            try:
                async for chunk in source:
                    batch += chunk
                    if batch and len(batch) >= batch_rows:
                        if pending is not None:
                            writer, pending = await pending, None
                        pending = asyncio.ensure_future(step(writer or await self._begin(), batch))
                        batch = []
                        if not self.overlap_writes:
                            writer, pending = await pending, None
                    elif pending is not None:
                        await asyncio.sleep(0)  # the write in flight sends on while the source is read
                if pending is not None:
                    writer, pending = await pending, None
                if batch:
                    writer = await step(writer or await self._begin(), batch)
                if writer is not None:
                    total += await writer.commit()
                    writer = None
            finally:
                if pending is not None:  # a failure while a batch was in flight: let it end, then roll back
                    try:
                        writer = await pending
                    except BaseException:
                        pass
                if writer is not None:
                    await writer.abort()
        return total

    async def upsert_many(self, alerts: Iterable[Alert]) -> UpsertResult:
        """Insert or update these alerts (keyed by source and alert_id) in one transaction."""
        return await self.upsert_rows([[alert_row(a) for a in alerts]], commit_rows=0, batch_rows=0)

    async def upsert_stream(self, alerts: Iterable[Alert] | AsyncIterable[Alert],
                            batch_size: int = 20_000) -> UpsertResult:
        """Upsert in batches so a long stream is never held in memory. A stream read from the network (async)
        commits every batch, so no transaction stays open while it waits; a local one commits every
        COMMIT_ROWS."""
        if isinstance(alerts, AsyncIterable):
            return await self.upsert_rows(_abatches(alerts, CHUNK_ROWS), commit_rows=0, batch_rows=batch_size)
        return await self.upsert_rows(chunked(map(alert_row, alerts), CHUNK_ROWS), batch_rows=batch_size)

    async def kpis(self, rule_ids: Sequence[str], window_days: int = 30, now: datetime | None = None,
                   **options):
        """KPIs per rule over the window ending at `now` (see checks.kpi.report)."""
        from .report import kpis_for_rules
        return await kpis_for_rules(self, rule_ids, window_days, now, **options)

    async def __aenter__(self) -> "AlertStore":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def _each(chunks: Iterable[list[Row]] | AsyncIterable[list[Row]]) -> AsyncIterator[list[Row]]:
    if isinstance(chunks, AsyncIterable):
        async for chunk in chunks:
            yield chunk
    else:
        for chunk in chunks:
            yield chunk


def chunked(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


async def _abatches(alerts: AsyncIterable[Alert], size: int) -> AsyncIterator[list[Row]]:
    batch: list[Row] = []
    async for a in alerts:
        batch.append(alert_row(a))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def store_url(value: str) -> str:
    """A store URL from what a user wrote: a URL as it is, a bare file path as the SQLite database there."""
    if "://" in value:
        return value
    if not value.strip():
        raise StoreError("empty alert store location")
    return "sqlite:///" + value


def without_password(url: str) -> str:
    """The URL for messages: they reach logs (detbot serve) and terminals, and a DSN's password must not."""
    scheme, sep, rest = url.partition("://")
    return scheme + sep + rest.rpartition("@")[2] if sep else url


async def open_store(url: str) -> AlertStore:
    """`sqlite:///relative.db`, `sqlite:////absolute.db`, `postgresql://user@host/db[?schema=name]`, or a bare
    file path (an SQLite database)."""
    url = store_url(url)
    if url.startswith("sqlite://"):
        from .sqlite_store import SQLiteStore
        return await SQLiteStore.open(url)
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres_store import PostgresStore
        return await PostgresStore.open(url)
    raise StoreError(f"unsupported alert store URL {url!r} (use sqlite:///path.db or postgresql://...)")
