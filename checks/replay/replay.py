"""Replay: re-parse each test's original raw log with the current parser and re-run the rule on the result.

Per test event of the selected rules:

    PASS           the re-parsed event gives the expected outcome and every field the rule uses is unchanged
    RULE_BROKEN    expected a match, the re-parsed event no longer matches
    NEW_MATCH      expected no match, the re-parsed event now matches
    FIELD_DRIFT    the outcome is unchanged but a field the rule uses changed, vanished or appeared
    UNPARSED       the parser rejected or dropped the raw log
    BACKEND_ERROR  the parser backend failed (unreachable, pipeline missing or invalid)
    SKIPPED        no raw log, no parser for it, a rule that cannot be evaluated, or a test that already fails
                   on its stored event (the tests check reports that; there is no baseline to compare with)

Which parser: the test's `parser`, else the config's logsource -> parser routes. Which backend: the route
naming that parser, else `replay.default_backend` (embedded). Field values are compared as Sigma compares
them (a stored 4624 equals a parsed "4624"); dotted and nested spellings of a field are the same field.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from ..config import Config
from ..repository import RuleBundle
from ..rule_runs import CompiledDoc, compile_docs
from ..runner import CheckContext
from ..source import FileSource
from ..testevents import TestEvent, bundle_tests
from .backends import BackendError, ParserBackend, ParseResult, errors_for
from .cache import ReplayCache, raw_digest
from .results import BROKEN, VERDICTS, FieldChange, ReplayReport, ReplayResult, field_diff
from .selection import parser_of, raw_text, select_bundles
from .settings import ReplaySettings, backend_name_for, build_backends, parse_settings

__all__ = ["BROKEN", "VERDICTS", "FieldChange", "ReplayReport", "ReplayResult", "field_diff", "parse_cached",
           "run_replay", "run_replay_sync"]

# --- parsing through the cache -----------------------------------------------------------------------------

async def parse_cached(backend: ParserBackend, parser: str, raws: list[str],
                       cache: ReplayCache | None) -> tuple[list[ParseResult], list[bool]]:
    """One result per raw log, and whether each came from the cache. Identical logs are parsed once."""
    try:
        version = await backend.parser_version(parser)
    except BackendError as e:
        return errors_for(raws, str(e)), [False] * len(raws)
    digests = [raw_digest(r) for r in raws]
    key = getattr(backend, "cache_key", backend.name)
    hits = cache.get_many(key, parser, version, digests) if cache else {}
    todo: dict[str, str] = {}
    for d, r in zip(digests, raws):
        if d not in hits:
            todo.setdefault(d, r)
    fresh: dict[str, ParseResult] = {}
    if todo:
        results = await backend.parse_batch(parser, list(todo.values()))
        fresh = dict(zip(todo.keys(), results))
        if cache:
            cache.put_many(key, parser, version, fresh.items())
    return [hits.get(d) or fresh[d] for d in digests], [d in hits for d in digests]


# --- the run -------------------------------------------------------------------------------------------------

@dataclass
class _Work:
    bundle: RuleBundle
    docs: list[CompiledDoc]
    test: TestEvent
    rule_id: str | None
    title: str
    parser: str | None = None
    backend: str | None = None
    raw: str | None = None


def _evaluate(docs: list[CompiledDoc], event: Mapping[str, Any]) -> tuple[bool, list[str]]:
    matched, errors = False, []
    for d in docs:
        if d.compiled is None:
            continue
        ev = d.compiled.evaluate(event)
        matched = matched or ev.matched
        errors += ev.errors
    return matched, errors


def _verdict(w: _Work, result: ParseResult, cached: bool) -> ReplayResult:
    t = w.test
    base = dict(rule_id=w.rule_id, rule_path=w.bundle.rule_path, test_name=t.name, test_path=t.path,
                test_line=t.line, rule_title=w.title, expect=t.expect, parser=w.parser, backend=w.backend,
                parser_version=result.parser_version, cached=cached)
    where = f"parser [{w.parser}] ({w.backend})"
    if result.status == "error":
        return ReplayResult(verdict="BACKEND_ERROR", detail=f"{where}: {result.message}", **base)
    if result.status != "ok" or result.event is None:
        return ReplayResult(verdict="UNPARSED", detail=f"{where} did not parse the raw log: {result.message}",
                            **base)
    fields: set[str] = set()
    for d in w.docs:
        if d.compiled is not None:
            fields |= d.compiled.fields
    diff = field_diff(fields, t.event, result.event)
    matched, errors = _evaluate(w.docs, result.event)
    stored_matched, _ = _evaluate(w.docs, t.event)
    changes = "; ".join(c.describe() for c in diff)
    note = f" [evaluation: {'; '.join(errors[:3])}]" if errors else ""
    if result.warnings:  # e.g. the pipeline's on_failure ran: the event is only partly parsed
        note += f" [parser: {'; '.join(result.warnings[:3])}]"
    if stored_matched != (t.expect == "match"):
        # The test fails on its stored event already (the tests check says so): no baseline to compare with.
        now = "gives the expected outcome" if matched == (t.expect == "match") else "fails the same way"
        summary = (f"the stored event does not give the expected outcome ({t.expect}), so replay has no "
                   f"baseline; the re-parsed event {now}")
        return ReplayResult(verdict="SKIPPED", detail=summary + (f": {changes}" if changes else "") + note,
                            field_diff=diff, summary=summary, **base)
    if t.expect == "match" and not matched:
        verdict, summary = "RULE_BROKEN", "expected a match; the re-parsed event no longer matches"
    elif t.expect == "no_match" and matched:
        verdict, summary = "NEW_MATCH", "expected no match; the re-parsed event now matches"
    elif diff:
        verdict, summary = "FIELD_DRIFT", f"outcome unchanged ({t.expect}), but {len(diff)} field(s) the rule uses differ"
    else:
        summary = f"{t.expect} as expected; {len(fields)} field(s) unchanged"
        return ReplayResult(verdict="PASS", detail=summary, summary=summary, **base)
    return ReplayResult(verdict=verdict, detail=summary + (f": {changes}" if changes else "") + note,
                        field_diff=diff, summary=summary + note, **base)


def _skipped(w: _Work, detail: str) -> ReplayResult:
    t = w.test
    return ReplayResult(w.rule_id, w.bundle.rule_path, t.name, t.path, t.line, "SKIPPED", detail,
                        rule_title=w.title, expect=t.expect, parser=w.parser, backend=w.backend)


Slots = list["ReplayResult | _Work"]
Groups = dict[tuple[str, str], list[int]]


def _plan(ctx: CheckContext, settings: ReplaySettings, bundles: list[RuleBundle], available: set[str],
          progress: Callable[[str, int, int], None] | None) -> tuple[Slots, Groups]:
    """One slot per test: already a result (SKIPPED) or work to parse, grouped by (backend, parser)."""
    config = ctx.config
    slots: Slots = []
    groups: Groups = {}
    for n, bundle in enumerate(bundles, 1):
        if progress:
            progress("replay", n, len(bundles))
        rf = ctx.rule_file(bundle.rule_path)
        docs, _ = compile_docs(rf.docs, config.placeholders)
        first = next((d for d in rf.docs if isinstance(d.data, dict)), None)
        rule_id = first.rule_id if first else None
        title = str(first.data.get("title") or "") if first else ""
        for t in bundle_tests(ctx, bundle).tests:
            w = _Work(bundle, docs, t, rule_id, title)
            w.parser = parser_of(t, bundle, ctx)
            if w.parser:
                w.backend = backend_name_for(w.parser, config, settings)
            if not any(d.compiled for d in docs):
                reason = next((d.error for d in docs if d.error), None) or "no detection rule in the file"
                slots.append(_skipped(w, f"the rule cannot be evaluated: {reason}"))
            elif t.raw is None or t.raw == "":
                slots.append(_skipped(w, "no raw log (`raw`) to replay"))
            elif not w.parser:
                slots.append(_skipped(w, "no parser: set `parser` on the test or map the rule's logsource "
                                         "to a parser under `parsers:` in .github/detbot.yml"))
            elif w.backend not in available:
                slots.append(_skipped(w, f"parser backend [{w.backend}] is not available here"))
            else:
                w.raw = raw_text(t.raw)
                groups.setdefault((w.backend, w.parser), []).append(len(slots))
                slots.append(w)
    return slots, groups


async def run_replay(source: FileSource, config: Config, rule_ids: list[str] | None = None,
                     cache: ReplayCache | None = None, *, changed: Iterable[str] | None = None,
                     backends: Mapping[str, ParserBackend] | None = None, allow_remote: bool = True,
                     progress: Callable[[str, int, int], None] | None = None) -> ReplayReport:
    """Replay the selected rules' tests (all rules when neither `rule_ids` nor `changed` is given).

    Raises checks.config.ConfigError for an invalid `replay:` section. `backends` replaces the ones the config
    describes (e.g. shared by the bot across runs); `allow_remote=False` keeps to the embedded backend.
    The CPU-bound parts (loading, compiling, evaluating) run in worker threads, so a server's event loop
    stays responsive during a whole-catalog replay."""
    settings = parse_settings(config)
    ctx = CheckContext(source, config, [])
    own = backends is None
    available = dict(backends) if backends is not None else build_backends(settings, source,
                                                                           allow_remote=allow_remote)

    def prepare() -> tuple[list[RuleBundle], list[str], Slots, Groups]:
        bundles, unknown = select_bundles(ctx, settings, rule_ids, changed)
        ctx.bundles = bundles
        return (bundles, unknown, *_plan(ctx, settings, bundles, set(available), progress))

    try:
        bundles, unknown, slots, groups = await asyncio.to_thread(prepare)
        report = ReplayReport(rules=len(bundles), unknown_rules=unknown)

        parsed: list[tuple[list[int], list[ParseResult], list[bool]]] = []

        async def run_group(key: tuple[str, str], idx: list[int]) -> None:
            backend = available[key[0]]
            raws = [slots[i].raw for i in idx]  # type: ignore[union-attr]
            results, cached = await parse_cached(backend, key[1], raws, cache)  # type: ignore[arg-type]
            report.cache_hits += sum(cached)
            report.parsed += sum(not c and r.status != "error" for r, c in zip(results, cached))
            parsed.append((idx, results, cached))

        # Backends work concurrently; the verdicts are then judged in one worker thread, so no compiled rule
        # is evaluated from two threads at once.
        await asyncio.gather(*(run_group(k, v) for k, v in groups.items()))

        def judge() -> None:
            for idx, results, cached in parsed:
                for i, r, c in zip(idx, results, cached):
                    slots[i] = _verdict(slots[i], r, c)  # type: ignore[arg-type]
        await asyncio.to_thread(judge)
    finally:
        if own:
            for b in available.values():
                close = getattr(b, "close", None)
                if close is not None:
                    await close()
    report.results = [s for s in slots if isinstance(s, ReplayResult)]
    return report


def run_replay_sync(*args: Any, **kwargs: Any) -> ReplayReport:
    return asyncio.run(run_replay(*args, **kwargs))
