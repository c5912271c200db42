"""`detbot explain RULE EVENT`: why a rule matches an event or not, for engineers tuning a rule.

EVENT is a YAML or JSON event, one test, a tests file (each test explained, with its expectation), or a
SigmaHQ JSON export. Exit 0, or 1 when a test in EVENT does not get the outcome it expects, 2 on bad input.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from checks.config import CONFIG_PATH, Config, ConfigError, parse_config
from checks.explain import explain_outcome
from checks.rule_runs import compile_docs, evaluate_test
from checks.rulefile import parse_rule_file
from checks.source import LocalSource
from checks.testevents import load_event_file


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="explain why a rule matches an event or not")
    p.add_argument("rule", help="the Sigma rule file")
    p.add_argument("event", help="an event (YAML/JSON), a test, a tests file, or a SigmaHQ JSON export")
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
    for p in (rule_path, event_path):
        if not p.is_file():
            print(f"detbot: {p}: no such file", file=sys.stderr)
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
    loaded = load_event_file(LocalSource(event_path.parent), event_path.name)
    for f in loaded.findings:
        print(f"{event_path.parent / f.path}:{f.start_line}: {f.level}: {f.title}: {f.message}", file=sys.stderr)
    if not loaded.tests:
        return 2
    labelled = [(d.label, d.compiled) for d in usable]
    bare = loaded.bare
    wrong = 0
    for t in loaded.tests:
        run = evaluate_test(t, usable)
        for i, evs in enumerate(run.evaluations):
            # A test's own line, unless its events live elsewhere (a SigmaHQ export) or are several.
            several = len(run.evaluations) > 1 or t.events_path != t.path
            line = t.event_lines[i] if several and i < len(t.event_lines) else t.line
            expect = None if bare else t.expect
            text = explain_outcome(expect, labelled, evs)  # type: ignore[arg-type]
            print(f"{event_path.parent / t.events_path if t.events_path else event_path}:{line}: {t.name}: {text}")
        if not bare and not run.passed:
            wrong += 1
    return 1 if wrong else 0
