"""The tests check: every test event is evaluated; one whose outcome differs from `expect` is a failure at
the test's line, explained (which identifiers were true and false, and why the decisive one was)."""
from __future__ import annotations

from .correlation_runs import correlation_run, counted_events, describe_groups
from .explain import explain_outcome
from .findings import Finding
from .repository import RuleBundle
from .rule_runs import BundleRuns, CompiledDoc, TestRun, evaluated_bundles
from .rulefile import RuleDoc, condition_errors
from .runner import CheckContext
from .testevents import bundle_tests

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


def correlation_tests(ctx: CheckContext, bundle: RuleBundle, corr_doc: RuleDoc, runs: BundleRuns) -> list[Finding]:
    """A correlation's own tests are one scenario, in order: a `match` test is an event the correlation must count
    in a group that reaches its threshold; a `no_match` test, one it must not."""
    run = correlation_run(ctx, bundle, corr_doc, runs)
    out: list[Finding] = []
    if not run.own:
        return out
    if run.result is None:
        why = "; ".join(p for _, _, p, _ in run.problems) or "no referenced rule can be evaluated"
        line = corr_doc.doc.line(("correlation",))
        return [Finding(CHECK, bundle.rule_path, line, line, "warning", "Tests not run",
                        f"the correlation's tests were not run: {why}", corr_doc.rule_id)]
    result = run.result
    counted = counted_events(result)
    positions: dict[int, list[int]] = {}
    for i, (t, _) in enumerate(run.events):
        positions.setdefault(id(t), []).append(i)
    for t in runs.tests.tests:
        idx = positions.get(id(t), [])
        hit = [i for i in idx if i in counted]
        if t.expect == "match" and not hit:
            ev = run.events[idx[0]][1] if idx else {}
            refs = [ref for ref, c in run.compiled.items() if c.matches(ev)]
            why = (f"it matches none of the referenced rules ({', '.join(run.refs)})" if not refs else
                   f"it matches {', '.join(refs)}, but no window holding it reached the threshold "
                   f"({result.threshold}); per group: {describe_groups(result)}")
            message = f"test '{t.name}': expected match, but the correlation did not count this event: {why}"
        elif t.expect == "no_match" and hit:
            key = counted[hit[0]]
            group = result.groups[key]
            name = ", ".join(str(k) for k in key) or "all events"
            message = (f"test '{t.name}': expected no_match, but the correlation counted this event in group "
                       f"{name}, which reached {group.value} ({result.threshold})")
        else:
            continue
        out.append(Finding(CHECK, t.path, t.line, t.line, "failure", "Test failed", message, corr_doc.rule_id))
    return out


def syntax_gates(ctx: CheckContext) -> bool:
    """Whether the syntax check fails what it rejects (enabled, at failure level): then a rule that does not
    parse fails there already. Disabled or advisory, a rule whose tests cannot run would otherwise pass."""
    syntax = ctx.config.check("syntax")
    runs = syntax.enabled if ctx.checks is None else "syntax" in ctx.checks
    return runs and syntax.level == "failure"


def _syntax_fails(ctx: CheckContext, rd: RuleDoc) -> bool:
    return syntax_gates(ctx) and (rd.rule is None or bool(rd.errors) or bool(condition_errors(rd.rule)))


def not_run(ctx: CheckContext, bundle: RuleBundle, d: CompiledDoc, tests: int) -> Finding:
    """A rule with tests that cannot be evaluated: a failure, unless the syntax check fails the rule already
    (no second failure for one cause; a warning says why the tests did not run)."""
    line = d.doc.doc.line(("detection",))
    level = "warning" if _syntax_fails(ctx, d.doc) else "failure"
    return Finding(CHECK, bundle.rule_path, line, line, level, "Tests not run",
                   f"{d.label}: the rule cannot be evaluated ({d.error}); its {tests} test(s) could not run",
                   d.doc.rule_id)


def unparsed_files(ctx: CheckContext) -> list[Finding]:
    """Rule files that hold no rule at all (a YAML error) but have tests, when the syntax check does not fail
    them (evaluated_bundles leaves such files to it)."""
    out: list[Finding] = []
    if syntax_gates(ctx):
        return out
    for bundle in ctx.bundles:
        rf = ctx.rule_file(bundle.rule_path)
        if any(isinstance(d.data, dict) for d in rf.docs):
            continue
        tests = bundle_tests(ctx, bundle).tests
        if tests:
            e = rf.yaml_error
            line, why = (e.line, e.message) if e else (1, "the file holds no Sigma rule")
            out.append(Finding(CHECK, bundle.rule_path, line, line, "failure", "Tests not run",
                               f"the rule file does not parse ({why}); its {len(tests)} test(s) could not run"))
    return out


def run(ctx: CheckContext) -> list[Finding]:
    findings: list[Finding] = unparsed_files(ctx)
    for bundle, runs in evaluated_bundles(ctx, "tests"):
        findings += runs.tests.findings
        rule_id = next((d.doc.rule_id for d in runs.docs), None)
        if runs.tests.tests:
            findings += [not_run(ctx, bundle, d, len(runs.tests.tests)) for d in runs.docs if d.compiled is None]
        if runs.correlations:
            # The file's tests are the correlation's scenario, not single-event tests of its base rules.
            for corr_doc in runs.correlations:
                findings += correlation_tests(ctx, bundle, corr_doc, runs)
            continue
        for r in runs.runs:
            if r.passed:
                continue
            t = r.test
            findings.append(Finding(CHECK, t.path, t.line, t.line, "failure", "Test failed",
                                    f"test '{t.name}': {explain_run(r, runs)}", rule_id))
    return findings
