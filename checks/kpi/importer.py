"""Alerts from CSV and JSON Lines exports, streamed: a malformed row is reported at its line and skipped.

The file is read in blocks and written in batches, so a file of millions of rows never sits in memory. Each row
becomes a store row (a tuple) straight away: status words are looked up once per distinct spelling, and no
Alert object is built, which matters at millions of rows (see bench/bench_kpi.py). JSON Lines bound for SQLite
are decoded in a worker process (jsonl_worker.py), overlapping the writes.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any, BinaryIO

from .normalise import get_path, stage_of, status_of, timestamp, verdict_of
from .settings import ImportSettings, RuleMap
from .store import CHUNK_ROWS, COMMIT_ROWS, AlertStore, Row, UpsertResult, chunked

FORMATS = ("csv", "jsonl")
MAX_FIELD = 1 << 20  # one field of an alert export is never a megabyte; a longer one is a broken row
BLOCK = 1 << 18      # bytes read at a time (whole lines of them are parsed; progress moves block by block)
MEMO_SIZE = 1024     # distinct spellings of statuses remembered per import
# The record's fields in the order AlertReader.row takes them.
FIELD_ORDER = ("alert_id", "source", "rule_id", "platform_rule_id", "rule_title", "created_at", "closed_at",
               "stage", "verdict", "status")
# What a JSON record lacking the field reads: the texts (the first five) read empty, as `_text` makes a null.
TEXT_DEFAULTS = ("",) * 5 + (None,) * 5


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
        self._stage = _Memo(stage_of)
        self._verdict = _Memo(verdict_of)
        self._status = _Memo(lambda value: status_of(value, settings.statuses))

    def fail(self, line: int, message: str) -> None:
        self.errors += 1
        self.on_error(RowError(line, message))

    def row(self, line: int, v: list[Any], record: dict | None) -> Row | None:
        """A store row from one record's values, in the order of FIELD_ORDER; the first five (the texts) stripped
        already, or None."""
        alert_id, source, rule_id, platform, title, created_raw, closed_raw, stage_raw, verdict_raw, status_raw = v
        c = self._cols
        try:
            if not alert_id:
                raise ValueError(f"no alert id (column {c['alert_id']!r})")
            platform = platform or ""
            rule_id = rule_id or self.rule_map.sigma_id(platform, record)
            if not rule_id:
                raise ValueError(f"no rule id (column {c['rule_id']!r})" +
                                 (f", and platform rule {platform!r} is not mapped" if platform else ""))
            source = source or self.settings.source
            if not source:
                raise ValueError(f"no source (column {c['source']!r}, or alerts.import.source)")
            created = timestamp(created_raw)
            closed = timestamp(closed_raw) if closed_raw not in (None, "") else None
            if stage_raw not in (None, ""):
                stage, verdict = self._stage(stage_raw), self._verdict(verdict_raw)
            else:
                if status_raw in (None, ""):
                    raise ValueError(f"no status (column {c['status']!r} or {c['stage']!r})")
                stage, verdict = self._status(status_raw)
                if verdict_raw not in (None, ""):
                    verdict = self._verdict(verdict_raw)
            return (source, alert_id, rule_id, platform, title or "", created, closed, stage, verdict)
        except ValueError as e:
            self.fail(line, str(e))
            return None

    def csv_rows(self, blocks: Iterable[bytes]) -> Iterator[Row]:
        lines = _TextLines(blocks)
        reader = csv.reader(lines, strict=False)
        header: list[str] | None = None
        values: Callable[[list[str]], tuple] = tuple
        last_line = 0
        while True:
            bad_before = lines.bad
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                self.rows += 1
                self.fail(reader.line_num, f"malformed CSV: {e}")
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
                # A column the file lacks reads the None appended to each row.
                values = itemgetter(*(index.get(self._cols[f], len(header)) for f in FIELD_ORDER))
                continue
            if not row or row == [""]:
                continue
            self.rows += 1
            if lines.bad != bad_before:
                self.fail(line, "not valid UTF-8")
                continue
            if len(row) != len(header):
                self.fail(line, f"{len(row)} fields where the header has {len(header)}")
                continue
            row = list(map(str.strip, row))  # every field is read stripped; in C here
            row.append(None)
            r = self.row(line, values(row), None)
            if r is not None:
                yield r

    def jsonl_rows(self, blocks: Iterable[bytes], first_line: int = 0) -> Iterator[Row]:
        """Rows of these blocks of whole lines, the first of which is line `first_line + 1` of the file."""
        paths = [self._cols[f] for f in FIELD_ORDER]
        flat = not any("." in p for p in paths)  # then a field is one dict lookup, not get_path's search
        decode = json.JSONDecoder().decode       # what json.loads does with text, minus its checks
        number = first_line
        for block in blocks:
            try:
                lines: list[Any] = block.decode("utf-8").split("\n")
                parse: Callable[[Any], Any] = decode
                if number == 0 and lines[0].startswith("\ufeff"):
                    lines[0] = lines[0][1:]
            except UnicodeDecodeError:  # some line is not UTF-8: json.loads of each line says which
                lines, parse = block.split(b"\n"), json.loads
            if not lines[-1]:
                lines.pop()  # after the block's last newline
            for raw in lines:
                number += 1
                if not raw.strip():
                    continue
                self.rows += 1
                try:
                    record = parse(raw)
                except (json.JSONDecodeError, UnicodeDecodeError) as e:
                    self.fail(number, f"not JSON: {e}")
                    continue
                if not isinstance(record, dict):
                    self.fail(number, "not a JSON object")
                    continue
                v = list(map(record.get, paths, TEXT_DEFAULTS)) if flat else [get_path(record, p) for p in paths]
                try:  # mostly strings, stripped in C
                    v[:5] = map(str.strip, v[:5])
                except TypeError:  # a null or a number among them
                    v[:5] = map(_text, v[:5])
                r = self.row(number, v, record)
                if r is not None:
                    yield r


class ImportFailed(Exception):
    """The file cannot be imported at all (no header, unreadable): nothing was written."""


def _text(value: Any) -> str:
    return "" if value is None else (value.strip() if isinstance(value, str) else str(value))


class _Memo(dict):
    """A lookup by raw text (a status word) remembered for the rest of the import, failures excepted."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        super().__init__()
        self.fn = fn

    def __call__(self, value: Any) -> Any:
        try:
            return self[value]
        except (KeyError, TypeError):  # not seen yet, or not hashable (a JSON list or object)
            pass
        result = self.fn(value)  # raises ValueError on an unknown word: never remembered
        if value.__class__ is str and len(self) < MEMO_SIZE:
            self[value] = result
        return result


def read_blocks(f: BinaryIO, progress: Callable[[int, int], None] | None, total: int,
                size: int = 0) -> Iterator[bytes]:
    """The file as blocks of whole lines (the last one may lack its newline), reporting progress after each;
    a block is `size` bytes (BLOCK by default) and the rest of a line cut there."""
    done, rest = 0, b""
    while block := f.read(size or BLOCK):
        if rest:
            block = rest + block
        cut = block.rfind(b"\n") + 1
        if not cut:
            rest = block
            continue
        rest = block[cut:]
        yield block[:cut]
        done += cut
        if progress is not None:
            progress(done, total)
    if rest:
        yield rest


class _TextLines:
    """Lines as text for the CSV reader, split at newlines only (as the file's lines are numbered). A line that is
    not UTF-8 still parses (surrogateescape) but is counted, so the reader can skip the record it belongs to."""

    def __init__(self, blocks: Iterable[bytes]):
        self.blocks, self.bad = blocks, 0

    def __iter__(self) -> Iterator[str]:
        for block in self.blocks:
            try:
                lines = block.decode("utf-8").split("\n")
            except UnicodeDecodeError:
                yield from self._one_by_one(block)
                continue
            last = lines.pop()
            yield from [line + "\n" for line in lines]  # the reader needs them to keep newlines in quoted fields
            if last:
                yield last

    def _one_by_one(self, block: bytes) -> Iterator[str]:
        for raw in io.BytesIO(block):
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                self.bad += 1
                yield raw.decode("utf-8", "surrogateescape")


async def import_file(store: AlertStore, path: str, settings: ImportSettings, rule_map: RuleMap,
                      fmt: str | None = None, on_error: Callable[[RowError], None] = lambda e: None,
                      progress: Callable[[int, int], None] | None = None, batch_size: int = 50_000,
                      commit_rows: int = COMMIT_ROWS, in_worker: bool | None = None) -> ImportReport:
    """Import one export. JSON Lines into a store that takes `epoch_rows` (SQLite, whose writes hold the GIL) are
    decoded in a worker process when `in_worker` (by default: a file of some size); the rows and errors are the
    same either way. The worker is spawned: a script calling this needs the `if __name__ == "__main__"` guard."""
    from . import jsonl_worker  # it builds on this module
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
    with f, contextlib.ExitStack() as stack:
        total = os.fstat(f.fileno()).st_size
        if in_worker is None:  # the worker's start pays off on a file of some size
            in_worker = total >= jsonl_worker.MIN_BYTES
        if in_worker and fmt == "jsonl" and store.takes_epoch_rows:
            worker = stack.enter_context(jsonl_worker.JsonlWorker(settings, rule_map))
            chunks = worker.chunks(f, total, reader, progress)
        else:
            blocks = read_blocks(f, progress, total)
            rows = reader.csv_rows(blocks) if fmt == "csv" else reader.jsonl_rows(blocks)
            chunks = chunked(rows, CHUNK_ROWS)
        report.result = await store.upsert_rows(chunks, commit_rows=commit_rows, batch_rows=batch_size)
        if progress is not None:
            progress(total, total)
    report.rows, report.errors = reader.rows, reader.errors
    return report
