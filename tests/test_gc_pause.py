"""Bulk work runs with the cyclic collector paused; what it leaves behind must still be collectable."""
from __future__ import annotations

import gc
import weakref

from checks.config import Config
from checks.evaluator import paused_gc
from checks.runner import run_checks
from checks.source import MemorySource


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_garbage_made_while_paused_is_collected_afterwards():
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
        ref = weakref.ref(Node())
        kept = Node()
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0  # promoted to the oldest generation, not left frozen
    gc.collect()
    assert ref() is None
    assert kept.me is kept


def test_a_pause_inside_a_pause_leaves_the_collector_off():
    with paused_gc():
        with paused_gc():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()


def test_collector_left_off_when_it_was_off():
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_check_run_restores_the_collector_and_frees_earlier_runs(monkeypatch):
    monkeypatch.setattr("checks.runner._last_full_collection", float("-inf"))
    rule = ("title: t\nid: 3c1d2f9e-6a0b-4b8e-9e7a-2f5d1c0a9b11\nlogsource: {product: windows}\n"
            "detection:\n  selection: {Image: x}\n  condition: selection\nlevel: low\n")
    source = MemorySource({"rules/r.yml": rule.encode()})
    result = run_checks(source, Config(), only=["syntax"])
    assert gc.isenabled()
    ctx = weakref.ref(result.context)
    del result
    run_checks(source, Config(), only=["syntax"])     # within the interval: no full collection yet
    monkeypatch.setattr("checks.runner._last_full_collection", float("-inf"))   # the interval has passed
    run_checks(source, Config(), only=["syntax"])
    assert ctx() is None  # the third run's collection freed it
