"""The tests check: every test event is evaluated; one whose outcome differs from `expect` is a failure at
the test's line, explained (which identifiers were true and false, and why the decisive one was)."""
from __future__ import annotations

from .explain import explain_outcome
from .findings import Finding
from .rule_runs import BundleRuns, TestRun, evaluated_bundles
from .runner import CheckContext

CHECK = "tests"


def _labelled(runs: BundleRuns) -> list[tuple[str, object]]:
    return [(d.label, d.compiled) for d in runs.docs if d.compiled is not None]


def explain_run(run: TestRun, runs: BundleRuns) -> str:
    """The explanation of a failed test: the first event whose outcome went against the expectation."""
    t = run.test
    compiled = _labelled(runs)
    n = len(run.evaluations)
    wrong = next((i for i in range(n) if run.event_matched(i) != (t.expect == "match")), 0)
    text = explain_outcome(t.expect, compiled, run.evaluations[wrong])  # type: ignore[arg-type]
    if n > 1:
        needed = t.match_count if t.match_count is not None else 1
        line = t.event_lines[wrong] if wrong < len(t.event_lines) else None
        where = f"{t.events_path}:{line}" if line else t.events_path
        if t.expect == "match":
            head = f"{run.matches} of {n} events matched, {max(needed, 1)} needed; first unmatched event ({where}): "
        else:
            head = f"{run.matches} of {n} events matched, none may; first matching event ({where}): "
        text = head + text
    return text


def run(ctx: CheckContext) -> list[Finding]:
    findings: list[Finding] = []
    for bundle, runs in evaluated_bundles(ctx, "tests"):
        findings += runs.tests.findings
        rule_id = next((d.doc.rule_id for d in runs.docs), None)
        for d in runs.docs:
            if d.compiled is None and runs.tests.tests:
                line = d.doc.doc.line(("detection",))
                findings.append(Finding(CHECK, bundle.rule_path, line, line, "warning", "Tests not run",
                                        f"{d.label}: the rule cannot be evaluated ({d.error}); its "
                                        f"{len(runs.tests.tests)} test(s) were not run", d.doc.rule_id))
        for r in runs.runs:
            if r.passed:
                continue
            t = r.test
            findings.append(Finding(CHECK, t.path, t.line, t.line, "failure", "Test failed",
                                    f"test '{t.name}': {explain_run(r, runs)}", rule_id))
    return findings
