"""Alerts from CSV and JSON Lines exports, streamed: a malformed row is reported at its line and skipped.

Rows are read one at a time and written in batches, so a file of millions of rows never sits in memory.
"""
from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from .normalise import get_path, stage_of, status_of, timestamp, verdict_of
from .settings import ImportSettings, RuleMap
from .store import Alert, AlertStore, UpsertResult

FORMATS = ("csv", "jsonl")
MAX_FIELD = 1 << 20  # one field of an alert export is never a megabyte; a longer one is a broken row
# The record's fields in the order AlertReader.alert takes them.
FIELD_ORDER = ("alert_id", "source", "rule_id", "platform_rule_id", "rule_title", "created_at", "closed_at",
               "stage", "verdict", "status")


@dataclass
class RowError:
    line: int
    message: str


@dataclass
class ImportReport:
    path: str
    rows: int = 0                       # data rows read (header excluded)
    result: UpsertResult = field(default_factory=UpsertResult)
    errors: int = 0

    @property
    def imported(self) -> int:
        return self.result.inserted + self.result.updated

    def summary(self) -> str:
        return (f"{self.path}: {self.rows:,} rows read, {self.imported:,} imported "
                f"({self.result.inserted:,} new, {self.result.updated:,} updated), {self.errors:,} skipped")


def guess_format(path: str) -> str:
    suffix = Path(path).suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    return "csv"


class AlertReader:
    """Builds normalised alerts from one export's records, reporting each bad row through `on_error`."""

    def __init__(self, settings: ImportSettings, rule_map: RuleMap, on_error: Callable[[RowError], None]):
        self.settings, self.rule_map, self.on_error = settings, rule_map, on_error
        self.rows = 0
        self.errors = 0
        self._cols = {name: settings.column(name) for name in FIELD_ORDER}

    def _fail(self, line: int, message: str) -> None:
        self.errors += 1
        self.on_error(RowError(line, message))

    def alert(self, line: int, v: list[Any], record: dict | None) -> Alert | None:
        """An alert from one record's values, in the order of FIELD_ORDER."""
        alert_id, source, rule_id, platform, title, created_raw, closed_raw, stage_raw, verdict_raw, status_raw = v
        c = self._cols
        try:
            alert_id = _text(alert_id)
            if not alert_id:
                raise ValueError(f"no alert id (column {c['alert_id']!r})")
            platform = _text(platform)
            rule_id = _text(rule_id) or self.rule_map.sigma_id(platform, record)
            if not rule_id:
                raise ValueError(f"no rule id (column {c['rule_id']!r})" +
                                 (f", and platform rule {platform!r} is not mapped" if platform else ""))
            created = timestamp(created_raw)
            closed = timestamp(closed_raw) if closed_raw not in (None, "") else None
            if stage_raw not in (None, ""):
                stage, verdict = stage_of(stage_raw), verdict_of(verdict_raw)
            else:
                if status_raw in (None, ""):
                    raise ValueError(f"no status (column {c['status']!r} or {c['stage']!r})")
                stage, verdict = status_of(status_raw, self.settings.statuses)
                if verdict_raw not in (None, ""):
                    verdict = verdict_of(verdict_raw)
            return Alert(_text(source) or self.settings.source, alert_id, rule_id, created, stage, verdict,
                         platform, _text(title), closed)
        except ValueError as e:
            self._fail(line, str(e))
            return None

    def csv_alerts(self, stream: BinaryIO) -> Iterator[Alert]:
        lines = _DecodedLines(stream)
        reader = csv.reader(lines, strict=False)
        header: list[str] | None = None
        positions: list[int | None] = []
        last_line = 0
        while True:
            bad_before = lines.bad
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                self.rows += 1
                self._fail(reader.line_num, f"malformed CSV: {e}")
                last_line = reader.line_num
                continue
            line, last_line = last_line + 1, reader.line_num
            if header is None:
                header = [h.strip() for h in row]
                if header and header[0].startswith("\ufeff"):
                    header[0] = header[0][1:]
                missing = [c for c in (self._cols["alert_id"], self._cols["created_at"]) if c not in header]
                if missing:
                    raise ImportFailed(f"line 1: the header has no column {', '.join(map(repr, missing))} "
                                       f"(columns are mapped under alerts.import.columns)")
                index = {name: i for i, name in enumerate(header)}
                positions = [index.get(self._cols[f]) for f in FIELD_ORDER]
                continue
            if not row or row == [""]:
                continue
            self.rows += 1
            if lines.bad != bad_before:
                self._fail(line, "not valid UTF-8")
                continue
            if len(row) != len(header):
                self._fail(line, f"{len(row)} fields where the header has {len(header)}")
                continue
            a = self.alert(line, [None if i is None else row[i] for i in positions], None)
            if a is not None:
                yield a

    def jsonl_alerts(self, stream: BinaryIO) -> Iterator[Alert]:
        paths = [self._cols[f] for f in FIELD_ORDER]
        for number, raw in enumerate(stream, 1):
            if not raw.strip():
                continue
            self.rows += 1
            try:
                record = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                self._fail(number, f"not JSON: {e}")
                continue
            if not isinstance(record, dict):
                self._fail(number, "not a JSON object")
                continue
            a = self.alert(number, [get_path(record, p) for p in paths], record)
            if a is not None:
                yield a


class ImportFailed(Exception):
    """The file cannot be imported at all (no header, unreadable): nothing was written."""


def _text(value: Any) -> str:
    return "" if value is None else (value.strip() if isinstance(value, str) else str(value))


class _DecodedLines:
    """Lines as text for the CSV reader; a line that is not UTF-8 still parses (surrogateescape) but is counted,
    so the reader can skip the record it belongs to."""

    def __init__(self, stream: BinaryIO):
        self.stream, self.bad = stream, 0

    def __iter__(self) -> Iterator[str]:
        for raw in self.stream:
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                self.bad += 1
                yield raw.decode("utf-8", "surrogateescape")


class _Counting:
    """A binary file that remembers how far it has been read, for the progress bar."""

    def __init__(self, f: BinaryIO):
        self.f, self.done = f, 0

    def __iter__(self) -> Iterator[bytes]:
        for line in self.f:
            self.done += len(line)
            yield line


async def import_file(store: AlertStore, path: str, settings: ImportSettings, rule_map: RuleMap,
                      fmt: str | None = None, on_error: Callable[[RowError], None] = lambda e: None,
                      progress: Callable[[int, int], None] | None = None, batch_size: int = 50_000) -> ImportReport:
    fmt = fmt or guess_format(path)
    if fmt not in FORMATS:
        raise ImportFailed(f"unknown format {fmt!r} (csv or jsonl)")
    csv.field_size_limit(MAX_FIELD)
    report = ImportReport(path)
    reader = AlertReader(settings, rule_map, on_error)
    try:
        f = open(path, "rb")
    except OSError as e:
        raise ImportFailed(f"{path}: {e.strerror or e}") from None
    with f:
        total = Path(path).stat().st_size
        counting = _Counting(f)
        stream: Any = counting
        alerts = reader.csv_alerts(stream) if fmt == "csv" else reader.jsonl_alerts(stream)

        def with_progress() -> Iterator[Alert]:
            for i, a in enumerate(alerts):
                if progress is not None and i % 10_000 == 0:
                    progress(counting.done, total)
                yield a

        report.result = await store.upsert_stream(with_progress(), batch_size=batch_size)
        if progress is not None:
            progress(total, total)
    report.rows, report.errors = reader.rows, reader.errors
    return report
