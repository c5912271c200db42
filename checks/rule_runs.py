"""A rule file's compiled rules and the full evaluation of each of its test events, computed once per run and
shared through `ctx.cache` by the checks that need them (tests, coverage)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterator, Mapping

from sigma.correlations import SigmaCorrelationRule
from sigma.rule import SigmaRule

from .evaluator import CompileError, CompiledRule, Evaluation, compile_rule
from .repository import RuleBundle
from .rulefile import RuleDoc
from .testevents import LoadedTests, TestEvent, bundle_tests


@dataclass
class CompiledDoc:
    """One detection rule of a rule file (most files hold one)."""

    doc: RuleDoc
    compiled: CompiledRule | None
    error: str | None = None

    @property
    def label(self) -> str:
        return str(self.doc.data.get("title") or f"document {self.doc.index + 1}")


@dataclass
class TestRun:
    test: TestEvent
    # evaluations[event index][detection doc index]
    evaluations: list[list[Evaluation]] = field(default_factory=list)

    __test__ = False

    def event_matched(self, i: int) -> bool:
        return any(e.matched for e in self.evaluations[i])

    @property
    def matches(self) -> int:
        return sum(self.event_matched(i) for i in range(len(self.evaluations)))

    @property
    def passed(self) -> bool:
        t = self.test
        if t.expect == "no_match":
            return self.matches == 0
        needed = t.match_count if t.match_count is not None else 1
        return self.matches >= max(needed, 1)


@dataclass
class BundleRuns:
    docs: list[CompiledDoc]
    correlations: list[RuleDoc]
    tests: LoadedTests
    runs: list[TestRun]


def compile_docs(docs: list[RuleDoc], placeholders: Mapping[str, list[str]]) -> tuple[list[CompiledDoc],
                                                                                        list[RuleDoc]]:
    compiled: list[CompiledDoc] = []
    correlations: list[RuleDoc] = []
    for d in docs:
        if isinstance(d.rule, SigmaCorrelationRule):
            correlations.append(d)
        elif isinstance(d.rule, SigmaRule):
            try:
                compiled.append(CompiledDoc(d, compile_rule(d.rule, dict(placeholders), data=d.data)))
            except CompileError as e:
                compiled.append(CompiledDoc(d, None, str(e)))
            except Exception as e:  # pySigma can raise plain errors on odd rules; never crash a run
                compiled.append(CompiledDoc(d, None, f"{type(e).__name__}: {e}"))
        elif isinstance(d.data, dict):  # pySigma could not build it at all: its tests cannot run either
            compiled.append(CompiledDoc(d, None, str(d.errors[0]) if d.errors else "not a Sigma rule"))
    return compiled, correlations


def evaluate_test(test: TestEvent, docs: list[CompiledDoc]) -> TestRun:
    run = TestRun(test)
    usable = [d.compiled for d in docs if d.compiled is not None]
    for event in test.events:
        run.evaluations.append([c.evaluate(event, full=True) for c in usable])
    return run


def bundle_runs(ctx: Any, bundle: RuleBundle) -> BundleRuns:
    key = f"rule_runs:{bundle.rule_path}"
    hit = ctx.cache.get(key)
    if hit is None:
        rf = ctx.rule_file(bundle.rule_path)
        docs, correlations = compile_docs(rf.docs, ctx.config.placeholders)
        tests = bundle_tests(ctx, bundle)
        runs = [evaluate_test(t, docs) for t in tests.tests] if any(d.compiled for d in docs) else []
        hit = ctx.cache[key] = BundleRuns(docs, correlations, tests, runs)
    return hit


def evaluated_bundles(ctx: Any, label: str) -> Iterator[tuple[RuleBundle, BundleRuns]]:
    """Each bundle of the run whose rule file holds a rule, with its shared runs; progress ticks as it goes.
    Files that hold no rule at all are the syntax check's business."""
    for n, bundle in enumerate(ctx.bundles, 1):
        ctx.tick(label, n, len(ctx.bundles))
        if any(isinstance(d.data, dict) for d in ctx.rule_file(bundle.rule_path).docs):
            yield bundle, bundle_runs(ctx, bundle)


_TIME_FIELDS = ("@timestamp", "timestamp", "TimeCreated_SystemTime", "UtcTime", "time", "EventTime")


def when(test: TestEvent, event: Mapping[str, Any]) -> datetime | None:
    """The time of a test event, for correlations: the test's `timestamp`, else a usual time field."""
    for value in (test.timestamp, *(event.get(f) for f in _TIME_FIELDS)):
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        if isinstance(value, str):
            try:
                t = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            except ValueError:
                continue
            return t if t.tzinfo else t.replace(tzinfo=timezone.utc)
    return None
