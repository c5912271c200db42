"""Which rules a replay covers, and which parser serves each of their tests."""
from __future__ import annotations

import json
from posixpath import basename, splitext
from typing import Any, Iterable

from ..repository import RuleBundle, bundles_for_changed, discover
from ..runner import CheckContext
from ..source import FileSource
from ..testevents import TestEvent, bundle_tests
from .backends import BackendError, EmbeddedBackend, called_pipelines
from .settings import ReplaySettings, parser_files


def _rule_keys(bundle: RuleBundle, ctx: CheckContext) -> set[str]:
    """What names a rule on the command line or in `/replay`: its path, file name, id or title (any case)."""
    keys = {bundle.rule_path, bundle.name, splitext(basename(bundle.rule_path))[0]}
    for d in ctx.rule_file(bundle.rule_path).docs:
        if d.rule_id:
            keys.add(d.rule_id)
        if isinstance(d.data, dict) and isinstance(d.data.get("title"), str):
            keys.add(d.data["title"].strip())
    return {k.lower() for k in keys}


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
        wanted = {r.strip().lower(): r.strip() for r in rule_ids if r.strip()}
        # `/replay Certutil Download From Internet`: an unquoted title arrives word by word.
        phrase = " ".join(wanted) if len(wanted) > 1 else None
        chosen, seen = [], set()
        for b in every:
            keys = _rule_keys(b, ctx)
            hit = keys & wanted.keys()
            if phrase in keys:
                hit = set(wanted)
            if hit:
                chosen.append(b)
                seen |= hit
        return chosen, sorted(v for k, v in wanted.items() if k not in seen)
    if changed is None:
        return every, []
    changed = list(changed)
    chosen = bundles_for_changed(changed, ctx.source, ctx.config)
    parsers = _parsers_in(changed, settings, ctx.source)
    if parsers:
        have = {b.rule_path for b in chosen}
        for b in every:
            if b.rule_path not in have and any(parser_of(t, b, ctx) in parsers for t in bundle_tests(ctx, b).tests):
                chosen.append(b)
    return chosen, []


def _logsource(bundle: RuleBundle, ctx: CheckContext) -> dict[str, Any]:
    for d in ctx.rule_file(bundle.rule_path).docs:
        if isinstance(d.data, dict) and isinstance(d.data.get("logsource"), dict):
            return d.data["logsource"]
    return {}


def parser_of(test: TestEvent, bundle: RuleBundle, ctx: CheckContext) -> str | None:
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
