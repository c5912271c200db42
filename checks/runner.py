"""Runs the checks over a repository (or the bundles a change touched) and gathers their findings."""
from __future__ import annotations

import gc
import importlib
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Iterator

from .config import Config
from .evaluator.bulk import paused_gc
from .findings import Finding
from .repository import RuleBundle, bundles_for_changed, discover
from .rulefile import RuleFile, parse_rule_file
from .source import FileSource

# check name -> module exposing `run(ctx: CheckContext) -> list[Finding]`
CHECK_MODULES: dict[str, str] = {
    "syntax": "checks.syntax",
    "tests": "checks.tests_check",
    "coverage": "checks.coverage",
    "ads": "checks.ads",
}


@dataclass
class CheckContext:
    source: FileSource
    config: Config
    bundles: list[RuleBundle]
    # Files changed by a pull request; None when checking a whole repository.
    changed: set[str] | None = None
    progress: Callable[[str, int, int], None] | None = None
    # The checks of this run (None: all enabled), so one check can tell whether another reports a problem.
    checks: tuple[str, ...] | None = None
    _rule_files: dict[str, RuleFile] = field(default_factory=dict)
    cache: dict[str, object] = field(default_factory=dict)

    def rule_file(self, path: str) -> RuleFile:
        rf = self._rule_files.get(path)
        if rf is None:
            try:
                raw = self.source.read(path)
            except FileNotFoundError:
                raw = b""
            rf = self._rule_files[path] = parse_rule_file(path, raw)
        return rf

    def read_text(self, path: str) -> str | None:
        try:
            return self.source.read(path).decode("utf-8", errors="replace")
        except FileNotFoundError:
            return None

    def tick(self, label: str, done: int, total: int) -> None:
        if self.progress:
            self.progress(label, done, total)


@dataclass
class RunResult:
    bundles: list[RuleBundle]
    findings: list[Finding]
    checks_run: list[str]
    # The run's context, for what checks leave beside their findings (e.g. coverage tables in ctx.cache).
    context: CheckContext | None = None


def enabled_checks(config: Config, only: Iterable[str] | None = None) -> list[str]:
    wanted = set(only) if only else None
    return [name for name in CHECK_MODULES
            if config.check(name).enabled and (wanted is None or name in wanted)]


def apply_level(findings: list[Finding], config: Config) -> list[Finding]:
    """A check configured at `warning` (or `notice`) reports its failures at that level: advisory, not gating."""
    out = []
    for f in findings:
        cap = config.check(f.check).level
        if f.level == "failure" and cap != "failure":
            f = replace(f, level=cap)  # type: ignore[arg-type]
        out.append(f)
    return out


# At most one full collection this often (seconds): it holds the GIL for tens of milliseconds, which in the bot
# stalls the event loop (webhook answers) once per check run if done every time.
FULL_COLLECTION_INTERVAL = 30.0
_last_full_collection = float("-inf")


@contextmanager
def collector_paused() -> Iterator[None]:
    """The scope of a check run. A run builds a large, long-lived heap (parsed files, pySigma rules,
    compiled rules, evaluations) and makes little cyclic garbage: CPython's collections rescanning that
    heap as it grows took half the run's time. Collection resumes when the run ends (or when the first of
    overlapping runs in the bot's thread pool ends, so the process is never left without it). The run's
    objects then go straight to the oldest generation, where CPython's own schedule would rarely look, so a
    full collection before a run reclaims what earlier runs left (contexts are cyclic): garbage never piles
    up beyond the runs of one FULL_COLLECTION_INTERVAL."""
    global _last_full_collection
    now = time.monotonic()
    if now - _last_full_collection >= FULL_COLLECTION_INTERVAL:
        gc.collect()
        _last_full_collection = time.monotonic()
    with paused_gc():
        yield


def run_checks(source: FileSource, config: Config, changed: Iterable[str] | None = None,
               only: Iterable[str] | None = None,
               progress: Callable[[str, int, int], None] | None = None,
               also: Iterable[str] = ()) -> RunResult:
    """`changed`: check only the bundles these files belong to (None: every rule). `also`: rule files checked as
    well though unchanged (correlations a change broke, see dependents.py); the checks still see them as
    unchanged (e.g. no "ADS not updated" for them)."""
    changed_set = set(changed) if changed is not None else None
    bundles = (bundles_for_changed([*changed_set, *also], source, config) if changed_set is not None
               else discover(source, config))
    names = enabled_checks(config, only)
    ctx = CheckContext(source, config, bundles, changed_set, progress, tuple(names))
    findings: list[Finding] = []
    with collector_paused():
        for name in names:
            module = importlib.import_module(CHECK_MODULES[name])
            findings.extend(module.run(ctx))
    findings = apply_level(findings, config)
    findings.sort(key=lambda f: (f.path, f.start_line, f.start_column or 0, f.check, f.title))
    return RunResult(bundles, findings, names, ctx)
