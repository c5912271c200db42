"""The normalised alert record and the async interface every alert store implements.

A store keeps one row per `(source, alert_id)`: importing the same alert again updates it. Next to the alerts it
keeps a daily rollup per rule (alert counts by status bucket, by the day the alert was created) so that KPIs over
many rules never scan the alerts themselves.
"""
from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

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


def dedupe(alerts: Iterable[Alert]) -> list[Alert]:
    """The last record of each key wins, as a re-import would."""
    latest: dict[tuple[str, str], Alert] = {}
    for a in alerts:
        latest[(a.source, a.alert_id)] = a
    return list(latest.values())


def rollup_delta(new: Iterable[tuple[str, object, int]], old: Iterable[tuple[str, object, int]]) -> list[tuple]:
    """Rollup rows (rule_id, day, n_open, n_closed, n_rejected, n_benign) adding `new` and removing `old`
    (each an iterable of (rule_id, day, bucket code)). Counting here beats a GROUP BY in the database."""
    acc: dict[tuple[str, object], list[int]] = {}
    for sign, items in ((1, new), (-1, old)):
        for rule_id, day, bucket in items:
            counts = acc.get((rule_id, day))
            if counts is None:
                counts = acc[(rule_id, day)] = [0, 0, 0, 0]
            counts[bucket] += sign
    return [(rule_id, day, *counts) for (rule_id, day), counts in acc.items() if any(counts)]


def rule_infos(rows: Iterable[tuple]) -> list[tuple[str, str, str]]:
    """(rule_id, title, platform id) per rule in a batch; the last non-empty value wins."""
    info: dict[str, list[str]] = {}
    for r in rows:
        cur = info.setdefault(r[2], ["", ""])
        if r[4]:
            cur[0] = r[4]
        if r[3]:
            cur[1] = r[3]
    return [(rule_id, title, prid) for rule_id, (title, prid) in info.items()]


class AlertStore(abc.ABC):
    """Async interface shared by the SQLite and PostgreSQL stores (and any SIEM-backed store)."""

    url: str = ""

    @abc.abstractmethod
    async def upsert_many(self, alerts: Iterable[Alert]) -> UpsertResult:
        """Insert or update these alerts (keyed by source and alert_id) in one transaction."""

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

    async def upsert_stream(self, alerts: Iterable[Alert] | AsyncIterable[Alert],
                            batch_size: int = 20_000) -> UpsertResult:
        """Upsert in batches so a long stream is never held in memory.

        One batch is written while the next one is read: the database works while the parser does.
        """
        total = UpsertResult()
        pending: asyncio.Task[UpsertResult] | None = None

        async def flush(batch: list[Alert]) -> None:
            nonlocal pending
            if pending is not None:
                total.__iadd__(await pending)
            pending = asyncio.ensure_future(self.upsert_many(batch))
            await asyncio.sleep(0)  # let it start (hand its work to the database) before reading on

        batch: list[Alert] = []
        try:
            if isinstance(alerts, AsyncIterable):
                async for a in alerts:
                    batch.append(a)
                    if len(batch) >= batch_size:
                        await flush(batch)
                        batch = []
            else:
                for a in alerts:
                    batch.append(a)
                    if len(batch) >= batch_size:
                        await flush(batch)
                        batch = []
            if batch:
                await flush(batch)
            if pending is not None:
                total += await pending
                pending = None
        finally:
            if pending is not None:  # the source failed: let the batch in flight finish, then re-raise
                await asyncio.gather(pending, return_exceptions=True)
        return total

    async def kpis(self, rule_ids: Sequence[str], window_days: int = 30, now: datetime | None = None,
                   **options):
        """KPIs per rule over the window ending at `now` (see checks.kpi.report)."""
        from .report import kpis_for_rules
        return await kpis_for_rules(self, rule_ids, window_days, now, **options)

    async def __aenter__(self) -> "AlertStore":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def store_url(value: str) -> str:
    """A store URL from what a user wrote: a URL as it is, a bare file path as the SQLite database there."""
    if "://" in value:
        return value
    if not value.strip():
        raise StoreError("empty alert store location")
    return "sqlite:///" + value


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
