"""`detbot explain RULE EVENT`: why a rule matches an event or not, for engineers tuning a rule.

EVENT is a YAML or JSON event, one test, a tests file (each test explained, with its expectation), a
SigmaHQ JSON export, or a directory of such files (e.g. the `<name>.tests/` layout; Sigma rules in it are
skipped). Exit 0, or 1 when a test in EVENT does not get the outcome it expects, 2 on bad input.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from checks.config import CONFIG_PATH, Config, ConfigError, parse_config
from checks.explain import explain_outcome
from checks.correlation_runs import counted_events, describe_groups
from checks.evaluator import evaluate_correlation
from checks.repository import looks_like_rule
from checks.rule_runs import CompiledDoc, compile_docs, evaluate_test, when
from checks.rulefile import parse_rule_file
from checks.source import LocalSource
from checks.testevents import TestEvent, load_event_file


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="explain why a rule matches an event or not")
    p.add_argument("rule", help="the Sigma rule file")
    p.add_argument("event", help="an event (YAML/JSON), a test, a tests file, a SigmaHQ JSON export, or a "
                   "directory of them")
    p.add_argument("--config", default=None,
                   help=f"config file for placeholders (default: the nearest {CONFIG_PATH} above the rule)")
    p.set_defaults(func=main)


def _find_config(rule: Path) -> Path | None:
    for d in [rule.resolve().parent, *rule.resolve().parents]:
        candidate = d / CONFIG_PATH
        if candidate.is_file():
            return candidate
    return None


def main(args: argparse.Namespace) -> int:
    rule_path, event_path = Path(args.rule), Path(args.event)
    if not rule_path.is_file():
        print(f"detbot: {rule_path}: " + ("a directory; RULE is one rule file" if rule_path.is_dir() else
                                          "no such file"), file=sys.stderr)
        return 2
    if not event_path.exists():
        print(f"detbot: {event_path}: no such file or directory", file=sys.stderr)
        return 2
    config = Config()
    config_path = Path(args.config) if args.config else _find_config(rule_path)
    if config_path is not None:
        try:
            config = parse_config(config_path.read_bytes(), str(config_path))
        except (ConfigError, OSError) as e:
            print(f"detbot: config error: {e}", file=sys.stderr)
            return 2
    rf = parse_rule_file(str(rule_path), rule_path.read_bytes())
    if rf.yaml_error:
        print(f"{rule_path}:{rf.yaml_error.line}: YAML error: {rf.yaml_error.message}", file=sys.stderr)
        return 2
    docs, _ = compile_docs(rf.docs, config.placeholders)
    usable = [d for d in docs if d.compiled is not None]
    for d in docs:
        if d.compiled is None:
            print(f"{rule_path}: {d.label}: cannot be evaluated: {d.error}", file=sys.stderr)
    if not usable:
        errors = [str(e) for d in rf.docs for e in d.errors]
        print(f"detbot: {rule_path}: no detection rule to evaluate" + (f" ({errors[0]})" if errors else ""),
              file=sys.stderr)
        return 2
    loaded = _load_events(event_path, rule_path)
    if loaded is None:
        return 2
    base, tests, bare = loaded
    if not tests:
        return 2
    labelled = [(d.label, d.compiled) for d in usable]
    # A correlation's tests are one scenario, judged by the correlation (as the tests check does), not event by
    # event against its base rules.
    judged = [t for t in tests if id(t) not in bare]
    verdicts = _correlation_verdicts(rf.docs, usable, judged, rule_path) if judged else None
    wrong = 0
    for t in tests:
        run = evaluate_test(t, usable)
        for i, evs in enumerate(run.evaluations):
            # A test's own line, unless its events live elsewhere (a SigmaHQ export) or are several.
            several = len(run.evaluations) > 1 or t.events_path != t.path
            line = t.event_lines[i] if several and i < len(t.event_lines) else t.line
            expect = None if id(t) in bare or verdicts is not None else t.expect
            text = explain_outcome(expect, labelled, evs)  # type: ignore[arg-type]
            print(f"{base / (t.events_path or t.path)}:{line}: {t.name}: {text}")
        if id(t) in bare:
            continue
        if verdicts is not None:
            ok, text = verdicts[id(t)]
            print(f"{base / t.path}:{t.line}: {t.name}: {text}")
            wrong += not ok
        elif not run.passed:
            wrong += 1
    return 1 if wrong else 0


def _load_events(event_path: Path, rule_path: Path) -> tuple[Path, list[TestEvent], set[int]] | None:
    """The tests in EVENT (a file, or every event file under a directory, in path order, as the tests check
    reads a `<name>.tests/` directory), the directory their paths are relative to, and the ids of the bare
    events (no expectation to judge). Problems go to stderr; None when the directory holds no event file."""
    if event_path.is_dir():
        source = LocalSource(event_path)
        files = [p for p in source.paths() if p.endswith((".yml", ".yaml", ".json"))
                 and (event_path / p).resolve() != rule_path.resolve() and source.exists(p)
                 and not looks_like_rule(source.read(p))]
        if not files:
            print(f"detbot: {event_path}: a directory with no event file (.yml, .yaml or .json other than Sigma "
                  "rules)", file=sys.stderr)
            return None
        base = event_path
    else:
        source, base, files = LocalSource(event_path.parent), event_path.parent, [event_path.name]
    tests: list[TestEvent] = []
    bare: set[int] = set()
    for name in files:
        loaded = load_event_file(source, name)
        for f in loaded.findings:
            print(f"{base / f.path}:{f.start_line}: {f.level}: {f.title}: {f.message}", file=sys.stderr)
        tests += loaded.tests
        if loaded.bare:
            bare.update(id(t) for t in loaded.tests)
    return base, tests, bare


def _correlation_verdicts(docs: list, usable: list[CompiledDoc], tests: list[TestEvent],
                          rule_path: Path) -> dict[int, tuple[bool, str]] | None:
    """Per test (by id): passed, and what the file's first correlation made of it; None without a correlation."""
    corr_doc = next((d for d in docs if d.is_correlation and d.rule is not None), None)
    if corr_doc is None:
        return None
    by_key = {k: d.compiled for d in usable for k in (d.doc.data.get("name"), d.doc.data.get("id"))
              if isinstance(k, str)}
    refs = [r.reference for r in corr_doc.rule.rules or []]
    missing = [r for r in refs if r not in by_key]
    if missing or not refs:
        print(f"detbot: {rule_path}: the correlation refers to {', '.join(missing) or 'no rule'} outside this file; "
              f"the base rules' outcomes are shown without judging the tests (run `detbot check`)", file=sys.stderr)
        return {id(t): (True, "correlation not evaluated") for t in tests}
    stream = [(t, ev) for t in tests for ev in t.events]
    result = evaluate_correlation(corr_doc.rule, {r: by_key[r] for r in refs}, [(ev, when(t, ev)) for t, ev in stream])
    counted = counted_events(result)
    out: dict[int, tuple[bool, str]] = {}
    for i, (t, _) in enumerate(stream):
        if i in counted and id(t) not in out:
            key = counted[i]
            name = ", ".join(str(k) for k in key) or "all events"
            out[id(t)] = (t.expect == "match", f"expected {t.expect}, {'and' if t.expect == 'match' else 'but'} the "
                          f"correlation counted it in group {name} ({result.groups[key].value} {result.threshold})")
    for t in tests:
        if id(t) not in out:
            out[id(t)] = (t.expect == "no_match", f"expected {t.expect}, {'and' if t.expect == 'no_match' else 'but'} "
                          f"the correlation did not count it; per group: {describe_groups(result)}")
    return out
