"""JSON Lines decoded in a worker process: the same rows and the same reported lines as the serial reader, across
block boundaries; an interrupted import keeps what was committed and leaves no process behind. Real SQLite, real
worker processes."""
from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sqlite3
from datetime import datetime, timezone

import pytest

from checks.kpi import importer, jsonl_worker
from checks.kpi.importer import RowError, import_file
from checks.kpi.settings import ImportSettings, RuleMap
from checks.kpi.store import open_store
from tests.kpi_fixtures import pg_session, store_url  # noqa: F401


def _jsonl_with_bad_lines(n: int) -> tuple[bytes, dict[int, str], dict[str, int]]:
    """An export with a byte order mark, blank lines and broken lines: the errors by line number, and the line of
    each good row by id, in file order."""
    out: list[bytes] = []
    bad: dict[int, str] = {}
    good: dict[str, int] = {}
    for i in range(n):
        line = len(out) + 1
        row = {"alert_id": f"j{i}", "rule_id": f"r{i % 3}", "rule_title": f" T{i % 2} ",
               "created_at": f"2026-03-{1 + i % 9:02d}T10:00:{i % 60:02d}Z", "status": ["open", "Rejected"][i % 2]}
        if i % 53 == 11:
            # An object over two lines: neither is JSON alone, though the two together are.
            head, tail = json.dumps(row).split(", ", 1)
            out += [f"{head},".encode(), tail.encode()]
            bad[line], bad[line + 1] = "not JSON", "not JSON"
        elif i % 47 == 5:
            out.append(json.dumps(row).replace(f"j{i}", f"j{i}\\u00e9").encode().replace(b"\\u00e9", b"\xe9"))
            bad[line] = "not JSON"  # \xe9 alone is not UTF-8
        elif i % 41 == 3:
            out.append(json.dumps([row]).encode())
            bad[line] = "not a JSON object"
        elif i % 37 == 7:
            out.append(json.dumps({**row, "status": "escalated"}).encode())
            bad[line] = "unknown status 'escalated'"
        elif i % 31 == 2:
            out += [b"", b"   ", json.dumps(row).encode()]
            good[row["alert_id"]] = line + 2
        else:
            out.append(json.dumps(row).encode())
            good[row["alert_id"]] = line
    return b"\xef\xbb\xbf" + b"\n".join(out), bad, good  # no newline after the last line


def _table(path: str, sql: str) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _contents(path: str) -> tuple[list[tuple], ...]:
    return (_table(path, "SELECT * FROM alerts ORDER BY source, alert_id"),
            _table(path, "SELECT * FROM alert_daily ORDER BY rule_id, day"),
            _table(path, "SELECT * FROM alert_rules ORDER BY rule_id"))


async def _import(tmp_path, name: str, data_path, in_worker: bool, **kw):
    errors: list[RowError] = []
    db = str(tmp_path / f"{name}.db")
    async with await open_store(f"sqlite:///{db}") as store:
        report = await import_file(store, str(data_path), ImportSettings(), RuleMap(), on_error=errors.append,
                                   in_worker=in_worker, **kw)
    return report, [(e.line, e.message) for e in errors], db


@pytest.mark.parametrize("block", [64, 1000, 1 << 16])
async def test_worker_imports_what_the_serial_reader_does(tmp_path, monkeypatch, block):
    monkeypatch.setattr(jsonl_worker, "BLOCK", block)
    data, bad, good = _jsonl_with_bad_lines(1500)
    path = tmp_path / "x.jsonl"
    path.write_bytes(data)
    serial, serial_errors, serial_db = await _import(tmp_path, "serial", path, False, batch_size=200)
    worker, worker_errors, worker_db = await _import(tmp_path, "worker", path, True, batch_size=200)
    assert {line: message.split(":")[0] for line, message in worker_errors} == bad
    assert [line for line, _ in worker_errors] == sorted(bad)  # reported in file order
    assert worker_errors == serial_errors
    assert (worker.rows, worker.errors, worker.result) == (serial.rows, serial.errors, serial.result)
    assert worker.imported == len(good)
    assert _contents(worker_db) == _contents(serial_db)
    assert {r[1] for r in _table(worker_db, "SELECT * FROM alerts")} == set(good)
    assert multiprocessing.active_children() == []


async def test_worker_reimport_updates(tmp_path, monkeypatch):
    monkeypatch.setattr(jsonl_worker, "BLOCK", 4096)
    data, bad, good = _jsonl_with_bad_lines(800)
    path = tmp_path / "x.jsonl"
    path.write_bytes(data)
    db = tmp_path / "a.db"
    async with await open_store(f"sqlite:///{db}") as store:
        await import_file(store, str(path), ImportSettings(), RuleMap(), in_worker=True)
        path.write_bytes(data.replace(b'"open"', b'"rejected"').replace(b'"Rejected"', b'"rejected"'))
        report = await import_file(store, str(path), ImportSettings(), RuleMap(), in_worker=True)
        assert (report.result.inserted, report.result.updated) == (0, len(good))
        assert {r[0] for r in _table(str(db), "SELECT stage || verdict FROM alerts")} == {"closedfalse_positive"}
        assert _table(str(db), "SELECT SUM(n_open), SUM(n_closed), SUM(n_rejected) FROM alert_daily") == [
            (0, 0, len(good))]


class Boom(Exception):
    pass


async def test_interrupted_worker_import_keeps_committed_batches_and_stops_the_worker(tmp_path, monkeypatch):
    monkeypatch.setattr(jsonl_worker, "BLOCK", 2048)
    data, bad, good = _jsonl_with_bad_lines(3000)
    path = tmp_path / "x.jsonl"
    path.write_bytes(data)
    stop_at = sorted(bad)[len(bad) // 2]

    def on_error(e: RowError) -> None:
        if e.line == stop_at:
            raise Boom(f"interrupted at line {e.line}")

    db = str(tmp_path / "a.db")
    async with await open_store(f"sqlite:///{db}") as store:
        with pytest.raises(Boom):
            await import_file(store, str(path), ImportSettings(), RuleMap(), on_error=on_error, batch_size=100,
                              commit_rows=300, in_worker=True)
        assert multiprocessing.active_children() == []
        # whole transactions of the first rows stayed, with their rollup; the open one was rolled back
        stored = sorted((r[0] for r in _table(db, "SELECT alert_id FROM alerts")), key=lambda a: int(a[1:]))
        before = [a for a, line in good.items() if line < stop_at]
        assert 300 <= len(stored) < len(before)
        assert stored == before[:len(stored)]
        assert _table(db, "SELECT SUM(n_open + n_closed + n_rejected + n_benign) FROM alert_daily") == [
            (len(stored),)]
        # importing again completes it
        report = await import_file(store, str(path), ImportSettings(), RuleMap(), in_worker=True)
        assert (report.result.inserted, report.result.updated) == (len(good) - len(stored), len(stored))
        assert await store.count() == len(good)


async def test_a_killed_worker_fails_the_import_and_keeps_committed_batches(tmp_path, monkeypatch):
    monkeypatch.setattr(jsonl_worker, "BLOCK", 2048)
    monkeypatch.setattr(jsonl_worker, "AHEAD", 1)
    data, bad, good = _jsonl_with_bad_lines(3000)
    path = tmp_path / "x.jsonl"
    path.write_bytes(data)
    killed = []

    def on_error(e: RowError) -> None:
        if e.line > len(data.split(b"\n")) // 2 and not killed:
            (child,) = multiprocessing.active_children()
            os.kill(child.pid, signal.SIGKILL)
            killed.append(child.pid)

    db = str(tmp_path / "a.db")
    async with await open_store(f"sqlite:///{db}") as store:
        with pytest.raises(Exception, match="terminated abruptly"):
            await import_file(store, str(path), ImportSettings(), RuleMap(), on_error=on_error, batch_size=100,
                              commit_rows=300, in_worker=True)
        assert killed and multiprocessing.active_children() == []
        stored = await store.count()
        assert 300 <= stored < len(good)
        assert _table(db, "SELECT SUM(n_open + n_closed + n_rejected + n_benign) FROM alert_daily") == [(stored,)]


@pytest.mark.parametrize("in_worker", [False, True])
async def test_texts_of_any_json_type_and_progress(tmp_path, monkeypatch, in_worker):
    monkeypatch.setattr(jsonl_worker, "BLOCK", 256)
    monkeypatch.setattr(importer, "BLOCK", 256)
    lines = [{"alert_id": 7, "rule_id": " r1 ", "rule_title": None, "created_at": 1772400000, "status": "open"},
             {"alert_id": " x2 ", "rule_id": "r1", "platform_rule_id": 12.5, "source": None,
              "created_at": 1772400000, "status": "open"},
             {"alert_id": None, "rule_id": "r1", "created_at": 1772400000, "status": "open"}] * 20
    path = tmp_path / "x.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    seen: list[tuple[int, int]] = []
    report, errors, db = await _import(tmp_path, "a", path, in_worker, progress=lambda d, t: seen.append((d, t)))
    assert [line for line, _ in errors] == list(range(3, 61, 3))
    assert _table(db, "SELECT source, alert_id, rule_id, platform_rule_id, rule_title FROM alerts ORDER BY 2") == [
        ("file", "7", "r1", "", ""), ("file", "x2", "r1", "12.5", "")]
    assert (report.rows, report.errors, report.imported) == (60, 20, 2)  # one batch: its repeats collapse
    assert seen == sorted(seen) and seen[-1] == (path.stat().st_size,) * 2 and len(seen) > 3


async def test_in_worker_asked_of_any_store(tmp_path, store_url):
    """PostgreSQL takes datetimes: its rows are read here whatever is asked; SQLite's come from the worker."""
    data, bad, good = _jsonl_with_bad_lines(300)
    path = tmp_path / "x.jsonl"
    path.write_bytes(data)
    errors: list[RowError] = []
    async with await open_store(store_url) as store:
        report = await import_file(store, str(path), ImportSettings(), RuleMap(), on_error=errors.append,
                                   in_worker=True)
        assert sorted(e.line for e in errors) == sorted(bad)
        assert report.imported == len(good) == await store.count()
        got = await store.get("file", "j10")
        assert (got.created_at, got.rule_title, got.stage) == (
            datetime(2026, 3, 2, 10, 0, 10, tzinfo=timezone.utc), "T0", "open")
