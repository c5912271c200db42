"""A correlation rule's inputs and result over test events, shared by the tests and coverage checks.

The event stream is the correlation's own tests when its file has some (written as a scenario, in order, with
`timestamp`s), else the test events of the rules it references, rule after rule. Referenced rules are found in
the same file first, then anywhere in the repository (also in pull request mode, where the run's bundles are
only the changed ones).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from sigma.correlations import SigmaCorrelationRule

from .evaluator import CompiledRule, CorrelationResult, evaluate_correlation
from .repository import RuleBundle, discover
from .rule_runs import BundleRuns, CompiledDoc, bundle_runs, when
from .rulefile import RuleDoc
from .testevents import TestEvent


@dataclass
class CorrelationRun:
    doc: RuleDoc
    refs: list[str]
    compiled: dict[str, CompiledRule] = field(default_factory=dict)
    # (position in `rules:`, reference, what is wrong with it, level)
    problems: list[tuple[int, str, str, str]] = field(default_factory=list)
    # test events matching each referenced rule, over the rule's own tests (or the stream, when own)
    matched_by_ref: dict[str, int] = field(default_factory=dict)
    # the stream: (test, event), in order
    events: list[tuple[TestEvent, Mapping[str, Any]]] = field(default_factory=list)
    own: bool = False
    result: CorrelationResult | None = None

    @property
    def rule(self) -> SigmaCorrelationRule:
        assert isinstance(self.doc.rule, SigmaCorrelationRule)
        return self.doc.rule


@dataclass
class RuleIndex:
    """Every detection rule of the repository by name and by id, and how many listed rule files could not be
    read (the bot fetches only what a pull request touched), so an unknown reference is not called absent
    when it may just be unfetched."""

    rules: dict[str, tuple[RuleBundle, RuleDoc]] = field(default_factory=dict)
    unreadable: int = 0


def _rule_index(ctx: Any) -> RuleIndex:
    """Built once per run, and only when a correlation needs a rule outside its own file."""
    hit = ctx.cache.get("correlation:rule_index")
    if hit is None:
        hit = RuleIndex()
        for b in discover(ctx.source, ctx.config):
            if not ctx.source.exists(b.rule_path):
                hit.unreadable += 1
                continue
            for d in ctx.rule_file(b.rule_path).docs:
                if isinstance(d.data, dict) and "correlation" not in d.data:
                    for key in (d.data.get("name"), d.data.get("id")):
                        if isinstance(key, str):
                            hit.rules.setdefault(key, (b, d))
        ctx.cache["correlation:rule_index"] = hit
    return hit


def _usable(runs: BundleRuns) -> list[CompiledDoc]:
    return [d for d in runs.docs if d.compiled is not None]


def _matches(runs: BundleRuns, cdoc: CompiledDoc) -> int:
    i = _usable(runs).index(cdoc)
    return sum(1 for r in runs.runs for evs in r.evaluations if evs[i].matched)


def correlation_run(ctx: Any, bundle: RuleBundle, corr_doc: RuleDoc, runs: BundleRuns) -> CorrelationRun:
    key = f"correlation:{bundle.rule_path}:{corr_doc.index}"
    hit = ctx.cache.get(key)
    if hit is not None:
        return hit
    corr = corr_doc.rule
    assert isinstance(corr, SigmaCorrelationRule)
    run = CorrelationRun(corr_doc, [r.reference for r in corr.rules] if corr.rules else [])
    same_file: dict[str, CompiledDoc] = {}
    for d in runs.docs:
        for k in (d.doc.data.get("name"), d.doc.data.get("id")):
            if isinstance(k, str):
                same_file[k] = d
    own = [(t, ev) for t in runs.tests.tests for ev in t.events]
    run.own = bool(own)
    referenced: list[tuple[TestEvent, Mapping[str, Any]]] = []
    for i, ref in enumerate(run.refs):
        if ref in same_file:
            cdoc, ref_runs = same_file[ref], runs
        else:
            index = _rule_index(ctx)
            found = index.rules.get(ref)
            if found is None:
                if index.unreadable:
                    run.problems.append((i, ref, f"referenced rule '{ref}' is not among the files this run could "
                                                 f"read ({index.unreadable} rule files were not fetched)", "warning"))
                else:
                    run.problems.append((i, ref, f"referenced rule '{ref}' is not in the repository", "failure"))
                continue
            ref_bundle, ref_doc = found
            ref_runs = bundle_runs(ctx, ref_bundle)
            cdoc = next((d for d in ref_runs.docs if d.doc.index == ref_doc.index), None)
        if cdoc is None or cdoc.compiled is None:
            run.problems.append((i, ref, f"referenced rule '{ref}' cannot be evaluated", "failure"))
            continue
        run.compiled[ref] = cdoc.compiled
        if own:
            run.matched_by_ref[ref] = sum(1 for _, ev in own if cdoc.compiled.matches(ev))
        else:
            run.matched_by_ref[ref] = _matches(ref_runs, cdoc)
            referenced += [(t, ev) for r in ref_runs.runs for t in [r.test] for ev in t.events]
    run.events = own or referenced
    if run.compiled and run.events:
        run.result = evaluate_correlation(corr, run.compiled, [(ev, when(t, ev)) for t, ev in run.events])
    ctx.cache[key] = run
    return run


def counted_events(result: CorrelationResult) -> dict[int, tuple]:
    """Stream index -> group key, for the events a reached group counted."""
    out: dict[int, tuple] = {}
    for key, g in result.groups.items():
        if g.reached:
            for i in g.events:
                out.setdefault(i, key)
    return out


def describe_groups(result: CorrelationResult, limit: int = 4) -> str:
    parts = []
    for key, g in list(result.groups.items())[:limit]:
        name = ", ".join("(none)" if k is None else str(k) for k in key) or "all events"
        parts.append(f"{name}: {g.value}{' (reached)' if g.reached else ''}")
    more = f", … {len(result.groups) - limit} more" if len(result.groups) > limit else ""
    return "; ".join(parts) + more
