"""Parse results cached in a small SQLite file, keyed by (backend, parser, parser version, sha256 of the raw log).

A new parser version is a new key, so an unchanged log under an unchanged parser is never parsed twice and a
changed parser is always re-run. Only definite answers (`ok`, `unparsed`) are kept; backend errors are not.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Iterable

from .backends import ParseResult

DEFAULT_MAX_ROWS = 500_000
SCHEMA_VERSION = 2
# A rowid table (not WITHOUT ROWID): rows carry whole parsed events, and SQLite keeps large rows out of the key's
# B-tree that way (inserts and lookups a third faster). The file is a cache: an older layout is dropped.
_SCHEMA = """
DROP TABLE IF EXISTS parse_results;
CREATE TABLE parse_results (
    backend TEXT NOT NULL,
    parser TEXT NOT NULL,
    version TEXT NOT NULL,
    raw_sha256 TEXT NOT NULL,
    status TEXT NOT NULL,
    event TEXT,
    warnings TEXT NOT NULL,
    message TEXT,
    stored_at REAL NOT NULL,
    PRIMARY KEY (backend, parser, version, raw_sha256)
);
CREATE INDEX parse_results_age ON parse_results (stored_at);
"""
_encode = json.JSONEncoder(separators=(",", ":"), default=str).encode


def raw_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def default_cache_path() -> Path:
    """The user's cache directory (XDG), for callers that have no repository directory to use."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "detbot" / "replay.sqlite"


class ReplayCache:
    def __init__(self, path: str | os.PathLike[str], max_rows: int = DEFAULT_MAX_ROWS):
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), timeout=10, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        if self._db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            # One transaction, so two processes opening an old file at once take turns.
            self._db.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")
        self.hits = 0
        self.misses = 0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "ReplayCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get_many(self, backend: str, parser: str, version: str, digests: Iterable[str]) -> dict[str, ParseResult]:
        wanted = list(dict.fromkeys(digests))
        out: dict[str, ParseResult] = {}
        with self._lock:
            for i in range(0, len(wanted), 500):
                chunk = wanted[i:i + 500]
                rows = self._db.execute(
                    f"SELECT raw_sha256, status, event, warnings, message FROM parse_results "
                    f"WHERE backend = ? AND parser = ? AND version = ? AND raw_sha256 IN "
                    f"({','.join('?' * len(chunk))})", (backend, parser, version, *chunk)).fetchall()
                for sha, status, event, warnings, message in rows:
                    out[sha] = ParseResult(status, json.loads(event) if event is not None else None,
                                           json.loads(warnings) if warnings != "[]" else [], version, message)
        self.hits += len(out)
        self.misses += len(wanted) - len(out)
        return out

    def put_many(self, backend: str, parser: str, version: str, items: Iterable[tuple[str, ParseResult]]) -> int:
        now = time.time()
        rows = [(backend, parser, version, sha, r.status, _encode(r.event) if r.event is not None else None,
                 _encode(r.warnings) if r.warnings else "[]", r.message, now)
                for sha, r in items if r.status in ("ok", "unparsed")]
        if not rows:
            return 0
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany("INSERT OR REPLACE INTO parse_results VALUES (?,?,?,?,?,?,?,?,?)", rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        self._prune()
        return len(rows)

    def _prune(self) -> None:
        with self._lock:
            (count,) = self._db.execute("SELECT count(*) FROM parse_results").fetchone()
            if count > self.max_rows:
                self._db.execute("DELETE FROM parse_results WHERE stored_at <= (SELECT stored_at FROM "
                                 "parse_results ORDER BY stored_at LIMIT 1 OFFSET ?)", (count - self.max_rows - 1,))

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM parse_results").fetchone()[0]
