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
import json
from dataclasses import dataclass, field
from posixpath import basename, splitext
from typing import Any, Callable, Iterable, Mapping

from ..config import Config
from ..evaluator import MISSING, lookup
from ..repository import RuleBundle, bundles_for_changed, discover
from ..rule_runs import CompiledDoc, compile_docs
from ..runner import CheckContext
from ..source import FileSource
from ..testevents import TestEvent, bundle_tests
from .backends import BackendError, EmbeddedBackend, ParserBackend, ParseResult, called_pipelines, errors_for
from .cache import ReplayCache, raw_digest
from .settings import ReplaySettings, backend_name_for, build_backends, parse_settings, parser_files

VERDICTS = ("PASS", "RULE_BROKEN", "NEW_MATCH", "FIELD_DRIFT", "UNPARSED", "BACKEND_ERROR", "SKIPPED")
BROKEN = ("RULE_BROKEN", "NEW_MATCH", "FIELD_DRIFT", "UNPARSED", "BACKEND_ERROR")


@dataclass
class FieldChange:
    field: str
    kind: str  # changed | vanished | appeared
    before: Any = None
    after: Any = None

    def describe(self) -> str:
        if self.kind == "vanished":
            return f"{self.field}: {_show(self.before)} → (absent)"
        if self.kind == "appeared":
            return f"{self.field}: (absent) → {_show(self.after)}"
        return f"{self.field}: {_show(self.before)} → {_show(self.after)}"

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "kind": self.kind, "before": self.before, "after": self.after}


@dataclass
class ReplayResult:
    rule_id: str | None
    rule_path: str
    test_name: str
    test_path: str
    test_line: int
    verdict: str
    detail: str
    field_diff: list[FieldChange] = field(default_factory=list)
    rule_title: str = ""
    expect: str = ""
    parser: str | None = None
    backend: str | None = None
    parser_version: str = ""
    cached: bool = False
    # The detail without the list of field changes (shown apart in tables).
    summary: str = ""

    @property
    def broken(self) -> bool:
        return self.verdict in BROKEN

    def to_dict(self) -> dict[str, Any]:
        return {"rule_id": self.rule_id, "rule_path": self.rule_path, "rule_title": self.rule_title,
                "test_name": self.test_name, "test_path": self.test_path, "test_line": self.test_line,
                "expect": self.expect, "verdict": self.verdict, "detail": self.detail,
                "field_diff": [c.to_dict() for c in self.field_diff], "parser": self.parser,
                "backend": self.backend, "parser_version": self.parser_version, "cached": self.cached}


@dataclass
class ReplayReport:
    results: list[ReplayResult] = field(default_factory=list)
    rules: int = 0
    # Rule selectors (ids, paths, names) that named no rule.
    unknown_rules: list[str] = field(default_factory=list)
    cache_hits: int = 0
    # Logs a parser actually ran on (not from the cache, not lost to a backend error).
    parsed: int = 0

    @property
    def counts(self) -> dict[str, int]:
        return {v: sum(r.verdict == v for r in self.results) for v in VERDICTS}

    @property
    def broken(self) -> bool:
        return any(r.broken for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {"rules": self.rules, "counts": self.counts, "broken": self.broken,
                "unknown_rules": self.unknown_rules, "cache_hits": self.cache_hits, "parsed": self.parsed,
                "results": [r.to_dict() for r in self.results]}


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


# --- field comparison ------------------------------------------------------------------------------------

def _norm(value: Any) -> Any:
    """Sigma compares values as strings: 4624 and "4624", true and "true" are the same value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float, str)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _norm(v) for k, v in value.items()}
    return value


def field_diff(fields: Iterable[str], stored: Mapping[str, Any], parsed: Mapping[str, Any]) -> list[FieldChange]:
    out: list[FieldChange] = []
    for f in sorted(fields):
        before, after = lookup(stored, f), lookup(parsed, f)
        if before is MISSING and after is MISSING:
            continue
        if after is MISSING:
            out.append(FieldChange(f, "vanished", before, None))
        elif before is MISSING:
            out.append(FieldChange(f, "appeared", None, after))
        elif _norm(before) != _norm(after):
            out.append(FieldChange(f, "changed", before, after))
    return out


# --- selection ---------------------------------------------------------------------------------------------

def _rule_keys(bundle: RuleBundle, ctx: CheckContext) -> set[str]:
    keys = {bundle.rule_path, bundle.name, splitext(basename(bundle.rule_path))[0]}
    for d in ctx.rule_file(bundle.rule_path).docs:
        if d.rule_id:
            keys.add(d.rule_id)
    return keys


def _parsers_in(changed: Iterable[str], settings: ReplaySettings, source: FileSource) -> set[str]:
    """The parsers a change touches: the changed pipelines and, transitively, the pipelines calling them."""
    touched = {splitext(basename(p))[0] for p in parser_files(changed, settings)}
    if not touched:
        return touched
    embedded = EmbeddedBackend(source, settings.parsers_dir)
    callers: dict[str, set[str]] = {}
    for path in parser_files(source.paths(), settings):
        name = splitext(basename(path))[0]
        try:
            _, doc = embedded.definition(name)
        except (BackendError, LookupError):
            continue
        for called in called_pipelines(doc.data):
            callers.setdefault(called, set()).add(name)
    todo = list(touched)
    while todo:
        for caller in callers.get(todo.pop(), ()):
            if caller not in touched:
                touched.add(caller)
                todo.append(caller)
    return touched


def select_bundles(ctx: CheckContext, settings: ReplaySettings, rule_ids: list[str] | None,
                   changed: Iterable[str] | None) -> tuple[list[RuleBundle], list[str]]:
    """The rules to replay: those named (by id, path or file name), else those a change touched (a changed
    parser pipeline touches every rule whose tests it parses), else all of them."""
    every = discover(ctx.source, ctx.config)
    if rule_ids:
        wanted = {r.strip() for r in rule_ids if r.strip()}
        chosen, seen = [], set()
        for b in every:
            hit = _rule_keys(b, ctx) & wanted
            if hit:
                chosen.append(b)
                seen |= hit
        return chosen, sorted(wanted - seen)
    if changed is None:
        return every, []
    changed = list(changed)
    chosen = bundles_for_changed(changed, ctx.source, ctx.config)
    parsers = _parsers_in(changed, settings, ctx.source)
    if parsers:
        have = {b.rule_path for b in chosen}
        for b in every:
            if b.rule_path not in have and any(_parser_of(t, b, ctx) in parsers for t in bundle_tests(ctx, b).tests):
                chosen.append(b)
    return chosen, []


def _logsource(bundle: RuleBundle, ctx: CheckContext) -> dict[str, Any]:
    for d in ctx.rule_file(bundle.rule_path).docs:
        if isinstance(d.data, dict) and isinstance(d.data.get("logsource"), dict):
            return d.data["logsource"]
    return {}


def _parser_of(test: TestEvent, bundle: RuleBundle, ctx: CheckContext) -> str | None:
    if test.parser:
        return test.parser
    route = ctx.config.parser_for(_logsource(bundle, ctx))
    return route.parser if route else None


def raw_text(raw: Any) -> str:
    """A raw log as the parser receives it: text as is, a structured (JSON) log stored as YAML re-serialised."""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, (dict, list)):
        return json.dumps(raw, ensure_ascii=False, separators=(",", ":"), default=str)
    return str(raw)


# --- parsing through the cache -----------------------------------------------------------------------------

async def parse_cached(backend: ParserBackend, parser: str, raws: list[str],
                       cache: ReplayCache | None) -> tuple[list[ParseResult], list[bool]]:
    """One result per raw log, and whether each came from the cache. Identical logs are parsed once."""
    try:
        version = await backend.parser_version(parser)
    except BackendError as e:
        return errors_for(raws, str(e)), [False] * len(raws)
    digests = [raw_digest(r) for r in raws]
    hits = cache.get_many(backend.name, parser, version, digests) if cache else {}
    todo: dict[str, str] = {}
    for d, r in zip(digests, raws):
        if d not in hits:
            todo.setdefault(d, r)
    fresh: dict[str, ParseResult] = {}
    if todo:
        results = await backend.parse_batch(parser, list(todo.values()))
        fresh = dict(zip(todo.keys(), results))
        if cache:
            cache.put_many(backend.name, parser, version, fresh.items())
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
            w.parser = _parser_of(t, bundle, ctx)
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

        async def run_group(key: tuple[str, str], idx: list[int]) -> None:
            backend = available[key[0]]
            raws = [slots[i].raw for i in idx]  # type: ignore[union-attr]
            results, cached = await parse_cached(backend, key[1], raws, cache)  # type: ignore[arg-type]
            report.cache_hits += sum(cached)
            report.parsed += sum(not c and r.status != "error" for r, c in zip(results, cached))

            def judge() -> None:
                for i, r, c in zip(idx, results, cached):
                    slots[i] = _verdict(slots[i], r, c)  # type: ignore[arg-type]
            await asyncio.to_thread(judge)

        await asyncio.gather(*(run_group(k, v) for k, v in groups.items()))
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
