"""JSON Lines decoded in a worker process while this one writes to the store.

Decoding a row costs about as much as SQLite's insert of it, and sqlite3 takes the GIL for every row, so a parser
thread would not overlap the writes; a process does. Blocks of whole lines go to one worker, each with the number
of the file line it starts at; results come back block by block in file order, each with the errors of its bad
lines, so the rows imported and the lines reported are exactly those of the serial reader. The rows come back
with their times as integer seconds (`epoch_rows`): a datetime pickles ten times slower than an int.
"""
from __future__ import annotations

import gc
import multiprocessing
import signal
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import BinaryIO

from .importer import AlertReader, RowError, read_blocks
from .settings import ImportSettings, RuleMap
from .store import Row, epoch_rows

BLOCK = 1 << 22     # bytes of lines per task: ~20,000 rows, few enough round trips, little held in memory
AHEAD = 4           # tasks queued: the worker goes on decoding while a batch is written
MIN_BYTES = 16 << 20  # a smaller file is read here: starting the worker (~0.1 s) would not pay

_reader: AlertReader | None = None   # the worker's, built once from the import's settings
_errors: list[RowError] = []


def _start(settings: ImportSettings, rule_map: RuleMap) -> None:
    # Ctrl-C is the importing process's to handle: it rolls back and shuts the pool down.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Decoding makes no reference cycles (and the worker ends with its import): the collector would only scan
    # the rows over and over, ~4% of the time.
    gc.disable()
    global _reader
    _reader = AlertReader(settings, rule_map, _errors.append)


def _decode(first_line: int, block: bytes) -> tuple[list[Row], list[RowError], int]:
    """(rows, errors, rows read) of one block whose first line is line `first_line + 1`."""
    reader = _reader
    assert reader is not None
    reader.rows = 0
    _errors.clear()
    rows = epoch_rows(list(reader.jsonl_rows((block,), first_line)))
    return rows, list(_errors), reader.rows


class JsonlWorker:
    """One worker process for one import; a context manager that shuts it down, also on error."""

    def __init__(self, settings: ImportSettings, rule_map: RuleMap) -> None:
        # spawn: forking a process that runs an event loop and an SQLite thread is not safe.
        self.pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=_start,
                                        initargs=(settings, rule_map))

    def __enter__(self) -> "JsonlWorker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def chunks(self, f: BinaryIO, total: int, reader: AlertReader,
               progress: Callable[[int, int], None] | None) -> Iterator[list[Row]]:
        """The file's rows, a block's at a time; rows read and errors are counted on `reader` and reported
        through its `on_error`, in line order."""
        pending: deque[tuple[Future, int]] = deque()
        line = done = 0
        blocks = read_blocks(f, None, total, BLOCK)
        while True:
            for block in blocks:
                pending.append((self.pool.submit(_decode, line, block), len(block)))
                line += block.count(b"\n")
                if len(pending) >= AHEAD:
                    break
            if not pending:
                return
            task, size = pending.popleft()
            rows, errors, read = task.result()
            reader.rows += read
            for e in errors:
                reader.fail(e.line, e.message)
            done += size
            if progress is not None:
                progress(done, total)
            yield rows
