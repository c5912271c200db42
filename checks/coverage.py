"""The coverage check: do a rule's test events exercise its logic?

Per detection rule, over every event of its tests (evaluated once, shared with the tests check):
1. outcome: at least one `match` and one `no_match` test;
2. decisive identifiers (MC/DC at identifier level): each search identifier is shown deciding the outcome by
   its own truth: an event where it is true and flipping it alone would flip the result. For a selection,
   a matching event that needs it; for a filter under `not`, a non-matching event that only it excludes;
3. values: each alternative of a value list and each map of a list of maps matched by some event, as a
   percentage with the unmatched ones listed (notice by default; `coverage:` config sets the bar);
4. correlation rules: each referenced rule covered by its tests, the threshold shown reached and not reached.

Config, section `coverage:` of .github/detbot.yml:
    value_min_percent: 100    value coverage below this is reported ...
    value_level: notice       ... at this level (failure | warning | notice)
    max_listed: 8             unmatched values named per rule
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sigma.conditions import ConditionAND, ConditionIdentifier, ConditionNOT, ConditionOR
from sigma.correlations import SigmaCorrelationRule

from .config import ConfigError, ConfigSection
from .evaluator import CompiledRule
from .explain import item_label, polarity, quote
from .findings import Finding, Level
from .correlation_runs import correlation_run
from .repository import RuleBundle
from .rule_runs import BundleRuns, CompiledDoc, TestRun, evaluated_bundles
from .rulefile import RuleDoc
from .runner import CheckContext

CHECK = "coverage"
CONFIG_KEYS = ("value_min_percent", "value_level", "max_listed")
_VERBS = {"endswith": "ending in", "startswith": "starting with", "contains": "containing", "re": "matching",
          "cidr": "in", "lt": "below", "lte": "at most", "gt": "above", "gte": "at least",
          "fieldref": "equal to the field"}


@dataclass
class CoverageSettings:
    value_min_percent: float = 100.0
    value_level: Level = "notice"
    max_listed: int = 8


def settings_from(section: ConfigSection) -> CoverageSettings:
    st = CoverageSettings()
    data = section.data or {}
    for key in data:
        if key not in CONFIG_KEYS:
            raise section.error(str(key), f"unknown key (known: {', '.join(CONFIG_KEYS)})")
    if "value_min_percent" in data:
        v = data["value_min_percent"]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 100:
            raise section.error("value_min_percent", "must be a number from 0 to 100")
        st.value_min_percent = float(v)
    if "value_level" in data:
        if data["value_level"] not in ("failure", "warning", "notice"):
            raise section.error("value_level", "must be failure, warning or notice")
        st.value_level = data["value_level"]
    if "max_listed" in data:
        v = data["max_listed"]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise section.error("max_listed", "must be a whole number >= 1")
        st.max_listed = v
    return st


# --- the per-rule table ------------------------------------------------------------------------------------------

@dataclass
class IdentifierRow:
    name: str
    line: int
    positive: bool  # selects (True) or filters (under an odd number of `not`)
    seen_true: int = 0
    seen_false: int = 0
    decisive: int = 0  # events where it is true and its flip alone flips the outcome
    decisive_by: str | None = None  # the first test that shows it


@dataclass
class RuleCoverage:
    path: str
    title: str
    rows: list[IdentifierRow] = field(default_factory=list)
    values_total: int = 0
    values_covered: int = 0
    unmatched: list[str] = field(default_factory=list)
    unmatched_lines: list[int] = field(default_factory=list)  # each one's line in the rule file
    match_tests: int = 0
    no_match_tests: int = 0

    @property
    def identifiers_shown(self) -> int:
        return sum(1 for r in self.rows if r.decisive)

    @property
    def value_percent(self) -> float:
        return 100.0 * self.values_covered / self.values_total if self.values_total else 100.0


@dataclass
class RepositoryCoverage:
    rules: list[RuleCoverage] = field(default_factory=list)

    @property
    def identifiers(self) -> tuple[int, int]:
        return sum(r.identifiers_shown for r in self.rules), sum(len(r.rows) for r in self.rules)

    @property
    def values(self) -> tuple[int, int]:
        return sum(r.values_covered for r in self.rules), sum(r.values_total for r in self.rules)

    def percent(self) -> float:
        shown, total = self.identifiers
        return 100.0 * shown / total if total else 100.0

    def summary(self) -> dict[str, Any]:
        shown, total = self.identifiers
        vc, vt = self.values
        return {"rules": len(self.rules), "identifiers_decisive": shown, "identifiers": total,
                "identifier_percent": round(self.percent(), 1), "values_matched": vc, "values": vt,
                "value_percent": round(100.0 * vc / vt if vt else 100.0, 1)}


def format_table(cov: RuleCoverage) -> str:
    width = max([len("identifier"), *(len(r.name) for r in cov.rows)])
    lines = [f"{cov.path}: {cov.title} ({cov.match_tests} match / {cov.no_match_tests} no_match tests, "
             f"values {cov.values_covered}/{cov.values_total})",
             f"  {'identifier'.ljust(width)}  role    true  false  decisive"]
    for r in cov.rows:
        lines.append(f"  {r.name.ljust(width)}  {'select' if r.positive else 'filter'}  {r.seen_true:>4}  "
                     f"{r.seen_false:>5}  {'yes (' + str(r.decisive) + ')' if r.decisive else 'NO'}")
    return "\n".join(lines)


def format_report(repo: RepositoryCoverage) -> str:
    s = repo.summary()
    tables = "\n\n".join(format_table(r) for r in repo.rules)
    total = (f"coverage: {s['identifiers_decisive']}/{s['identifiers']} identifiers shown decisive "
             f"({s['identifier_percent']}%), {s['values_matched']}/{s['values']} values matched "
             f"({s['value_percent']}%) over {s['rules']} rules")
    return f"{tables}\n\n{total}" if tables else total


def repository_coverage(ctx: CheckContext) -> RepositoryCoverage:
    """The tables gathered by the last coverage run in this context (empty when it did not run)."""
    hit = ctx.cache.get("coverage:repository")
    return hit if isinstance(hit, RepositoryCoverage) else RepositoryCoverage()


# --- hints -------------------------------------------------------------------------------------------------------

def _item_phrase(item: Any) -> str:
    if item.field is None:
        return f"{quote(item.values[0])} anywhere in the event" if item.values else "its keywords"
    mods = [m for m in item.modifiers if m not in ("all", "i", "m", "s", "cased", "windash")]
    verb = next((_VERBS[m] for m in mods if m in _VERBS), None)
    if "exists" in item.modifiers:
        return f"{item.field} {'present' if item.values and item.values[0] else 'absent'}"
    values = item.values
    if not values:
        return item.field
    if values[0] is None:
        return f"{item.field} empty or absent"
    if "all" in item.modifiers and len(values) > 1:
        shown = " and ".join(quote(v) for v in values[:3]) + (" …" if len(values) > 3 else "")
    else:
        shown = quote(values[0]) + (f" (or another of its {len(values)} values)" if len(values) > 1 else "")
    return f"{item.field} {verb or 'equal to'} {shown}"


@dataclass
class Partners:
    """What must hold for an identifier's flip to reach the outcome: every AND sibling on its way up true,
    every OR sibling (and every other condition of a list) false."""
    inside: list[str]  # AND siblings below the nearest `not` (a filter `not (a and b)` needs a and b)
    outside: list[str]  # AND siblings above it (`selection and not filter`: the selection must match)
    false: list[str]  # OR siblings that are plain identifiers (`not 1 of filter_*`: the other filters)


def partners(compiled: CompiledRule, name: str) -> Partners:
    def first_ids(node: Any) -> list[str]:
        if isinstance(node, ConditionIdentifier):
            return [node.identifier]
        if isinstance(node, ConditionOR):
            return first_ids(node.args[0]) if node.args else []
        if isinstance(node, ConditionAND):
            return [i for a in node.args for i in first_ids(a)]
        return []  # a nested `not`: nothing simple to ask for

    def path_to(node: Any, trail: list[Any]) -> list[Any] | None:
        if isinstance(node, ConditionIdentifier):
            return trail + [node] if node.identifier == name else None
        for a in getattr(node, "args", ()):
            found = path_to(a, trail + [node])
            if found:
                return found
        return None

    trees = getattr(compiled, "trees", [])
    if sum(_occurrences(t, name) for t in trees) != 1:
        return Partners([], [], [])  # used twice, what one use needs may be wrong for the other
    for tree in trees:
        trail = path_to(tree, [])
        if not trail:
            continue
        inside: list[str] = []
        outside: list[str] = []
        false = [t.identifier for t in trees if t is not tree and isinstance(t, ConditionIdentifier)]
        true = inside
        for parent, child in zip(reversed(trail[:-1]), reversed(trail[1:])):
            others = [a for a in parent.args if a is not child]
            if isinstance(parent, ConditionNOT):
                true = outside
            elif isinstance(parent, ConditionAND):
                true += [i for a in others for i in first_ids(a)]
            elif isinstance(parent, ConditionOR):
                false += [a.identifier for a in others if isinstance(a, ConditionIdentifier)]

        def keep(ids: list[str], taken: list[str]) -> list[str]:
            return [i for i in dict.fromkeys(ids) if i != name and i not in taken]
        inside = keep(inside, [])
        outside = keep(outside, inside)
        return Partners(inside, outside, keep(false, inside + outside))
    return Partners([], [], [])


def _occurrences(node: Any, name: str) -> int:
    if isinstance(node, ConditionIdentifier):
        return int(node.identifier == name)
    return sum(_occurrences(a, name) for a in getattr(node, "args", ()))


def decisive_kinds(compiled: CompiledRule, name: str, limit: int = 12) -> set[bool] | None:
    """The outcomes (True: match) of the identifier assignments where `name` is true and its flip alone
    flips the outcome: the kinds of test event that can show it decisive. An identifier used both as a
    selection and a filter may need either; one the condition never depends on (`a or (a and b)`: b),
    neither. None beyond `limit` identifiers, where trying every assignment costs too much."""
    others = [i for i in compiled.identifiers if i != name]
    if len(others) > limit:
        return None
    kinds: set[bool] = set()
    for bits in range(1 << len(others)):
        values = {o: bool(bits >> k & 1) for k, o in enumerate(others)}
        values[name] = True
        base = compiled.outcome(values)
        values[name] = False
        if compiled.outcome(values) != base:
            kinds.add(base)
            if len(kinds) == 2:
                break
    return kinds


def hint(compiled: CompiledRule, name: str) -> str:
    det = compiled.detections[name]
    items = det.items()
    # A list of maps: one map is enough to make it true.
    first = det.children[0] if det.children and not det.all and hasattr(det.children[0], "items") else None
    if first is not None:
        items = first.items()
    elif not det.all and len(items) > 1:
        items = items[:1]
    return " and ".join(_item_phrase(i) for i in items[:4]) or name


# --- the analysis of one detection rule --------------------------------------------------------------------------

def _value_units(compiled: CompiledRule) -> list[tuple[str, Any, int | None, str, tuple]]:
    """(identifier, item key, value index or None for a whole map, description, YAML path of the alternative)
    for every alternative; the path puts its finding on the value's own line."""
    units = []
    for name in compiled.identifiers:
        det = compiled.detections[name]
        maps = [c for c in det.children if hasattr(c, "items")] if not det.all else []
        if maps and len(maps) == len(det.children) and len(maps) > 1:
            for i, m in enumerate(maps):
                desc = " and ".join(f"{item_label(it)} {quote(it.values[0]) if len(it.values) == 1 else quote(it.values)}"
                                    for it in m.items()[:3])
                units.append((name, ("map", i), None, f"{name} map {i + 1} ({desc})", ("detection", name, i)))
            continue
        for it in det.items():
            if "all" in it.modifiers or len(it.values) < 2:
                continue
            for vi, v in enumerate(it.values):
                units.append((name, it.yaml_path, vi, f"{name}: {item_label(it)} {quote(v)}",
                              (*it.yaml_path, vi)))
    return units


def analyse(cdoc: CompiledDoc, doc_index: int, runs: list[TestRun], path: str) -> RuleCoverage:
    compiled = cdoc.compiled
    assert compiled is not None
    pol = polarity(compiled)
    rows = {n: IdentifierRow(n, cdoc.doc.doc.line(("detection", n)), pol.get(n, True)) for n in compiled.identifiers}
    units = _value_units(compiled)
    covered: set[int] = set()
    unit_index: dict[tuple, list[int]] = {}
    for k, (name, key, *_) in enumerate(units):
        unit_index.setdefault((name, key), []).append(k)
    cov = RuleCoverage(path, cdoc.label, list(rows.values()))
    for run in runs:
        if run.test.expect == "match":
            cov.match_tests += 1
        else:
            cov.no_match_tests += 1
        for evs in run.evaluations:
            ev = evs[doc_index]
            values = ev.identifiers
            base = ev.matched
            for name, row in rows.items():
                v = bool(values.get(name))
                if v:
                    row.seen_true += 1
                    flipped = dict(values)
                    flipped[name] = False
                    if compiled.outcome(flipped) != base:
                        row.decisive += 1
                        row.decisive_by = row.decisive_by or run.test.name
                else:
                    row.seen_false += 1
            if units:
                _mark_values(ev, units, unit_index, covered)
    cov.values_total = len(units)
    cov.values_covered = len(covered)
    cov.unmatched = [units[k][3] for k in range(len(units)) if k not in covered]
    cov.unmatched_lines = [cdoc.doc.doc.line(units[k][4]) for k in range(len(units)) if k not in covered]
    return cov


def _mark_values(ev: Any, units: list, unit_index: dict, covered: set[int]) -> None:
    maps: dict[tuple[str, int], bool] = {}
    for it in ev.items:
        for k in unit_index.get((it.identifier, it.yaml_path), ()):
            if units[k][2] in it.matched_values:
                covered.add(k)
        if len(it.yaml_path) > 2 and isinstance(it.yaml_path[2], int):
            key = (it.identifier, it.yaml_path[2])
            maps[key] = maps.get(key, True) and it.matched
    for (name, i), ok in maps.items():
        if ok:
            for k in unit_index.get((name, ("map", i)), ()):
                covered.add(k)


def check_rule(cdoc: CompiledDoc, doc_index: int, runs: BundleRuns, bundle: RuleBundle,
               settings: CoverageSettings) -> tuple[RuleCoverage, list[Finding]]:
    compiled = cdoc.compiled
    assert compiled is not None
    doc = cdoc.doc
    cov = analyse(cdoc, doc_index, runs.runs, bundle.rule_path)
    out: list[Finding] = []
    rid = doc.rule_id
    det_line = doc.doc.line(("detection",))

    def add(line: int, level: Level, title: str, message: str) -> None:
        out.append(Finding(CHECK, bundle.rule_path, line, line, level, title, message, rid))

    if not runs.tests.tests:
        why = ("its test files could not be read (see the tests check)" if runs.tests.findings else
               f"add {bundle.name}.tests.yml with at least one match and one no_match event")
        add(det_line, "failure", "No tests", f"{cdoc.label}: no test events; {why}")
        return cov, out
    if cov.match_tests == 0:
        add(det_line, "failure", "No match test",
            f"{cdoc.label}: no test expects a match; add a match event that the rule detects")
    if cov.no_match_tests == 0:
        add(det_line, "failure", "No no_match test",
            f"{cdoc.label}: no test expects no_match; add a benign event the rule must not detect")
    for row in cov.rows:
        if not row.decisive:
            level, title, msg = _not_decisive(compiled, row)
            add(row.line, level, title, msg)
    if cov.values_total and cov.value_percent < settings.value_min_percent:
        listed = cov.unmatched[: settings.max_listed]
        more = f" and {len(cov.unmatched) - len(listed)} more" if len(cov.unmatched) > len(listed) else ""
        # At the first unmatched value's line, where a GitHub annotation shows it.
        add(cov.unmatched_lines[0], settings.value_level, "Value coverage",
            f"{cdoc.label}: {cov.value_percent:.0f}% of values matched by a test event ({cov.values_covered}/"
            f"{cov.values_total}); unmatched: {'; '.join(listed)}{more}")
    return cov, out


def _not_decisive(compiled: CompiledRule, row: IdentifierRow) -> tuple[Level, str, str]:
    """The finding for an identifier no test shows decisive, naming the kind of event that would."""
    name = row.name
    seen = f" ({name} was true in {row.seen_true} and false in {row.seen_false} test events)"
    kinds = decisive_kinds(compiled, name)
    if kinds is None:
        kinds = {row.positive}
    if not kinds:
        return ("warning", "Identifier never decisive",
                f"{name} can never decide the outcome: for any truth of the other identifiers the condition "
                f"gives the same result with {name} true or false; drop it or fix the condition" + seen)
    what = hint(compiled, name)
    with_ = partners(compiled, name)
    if kinds == {True}:
        where = _where(with_.inside + with_.outside, with_.false)
        msg = (f"no test where {name} alone makes the rule match: add a match event with {what}{where} (and "
               f"the rest of the condition met)")
    elif kinds == {False}:
        extra = "".join(f" and {hint(compiled, p)} ({p})" for p in with_.inside[:3])
        # A filter excludes only what the rest of the condition would match.
        msg = (f"no test where {name} alone excludes the event: add a no_match event with {what}{extra}"
               f"{_where(with_.outside, with_.false)}")
    else:  # used both as a selection and as a filter
        msg = (f"no test where {name} alone decides the outcome: add a match event it alone makes match, or a "
               f"no_match event it alone excludes, with {what}")
    return "failure", "Identifier not decisive", msg + seen


def _where(true: list[str], false: list[str]) -> str:
    """' where a is also true and b false': the other identifiers a test event must set (three of each)."""
    def names(ids: list[str]) -> str:
        return " and ".join(ids[:3]) + (" …" if len(ids) > 3 else "") + (" is" if len(ids) == 1 else " are")
    parts = ([f"{names(true)} also true"] if true else []) + ([f"{names(false)} false"] if false else [])
    return " where " + " and ".join(parts) if parts else ""


# --- correlations ------------------------------------------------------------------------------------------------

def check_correlation(ctx: CheckContext, bundle: RuleBundle, corr_doc: RuleDoc, runs: BundleRuns) -> list[Finding]:
    run = correlation_run(ctx, bundle, corr_doc, runs)
    corr = run.rule
    out: list[Finding] = []

    def add(line: int, title: str, message: str, level: Level = "failure") -> None:
        out.append(Finding(CHECK, bundle.rule_path, line, line, level, title, message, corr_doc.rule_id))

    for i, ref, problem, level in run.problems:
        add(corr_doc.doc.line(("correlation", "rules", i)), "Correlation rule not covered", problem, level)
    for i, ref in enumerate(run.refs):
        if ref in run.matched_by_ref and run.matched_by_ref[ref] == 0:
            where = "the correlation's tests" if run.own else "its tests"
            add(corr_doc.doc.line(("correlation", "rules", i)), "Correlation rule not covered",
                f"no test event in {where} matches the referenced rule '{ref}': add one that does")
    result = run.result
    if result is None:
        return out
    line = corr_doc.doc.line(("correlation", "condition"))
    groups = ", ".join(corr.group_by or []) or "(no group-by)"
    # A group without its group-by values shows nothing about the threshold (a SIEM's `by` drops such events).
    keyed = [g for g in result.groups.values() if not (corr.group_by and None in g.key)]
    if not any(g.reached for g in keyed):
        add(line, "Correlation threshold not shown",
            f"the test events never reach the threshold ({result.threshold}, {result.type}, grouped by {groups}): "
            f"add events that do")
    if all(g.reached for g in keyed):
        add(line, "Correlation threshold not shown",
            f"the test events never show the threshold ({result.threshold}) not reached: add events of a group "
            f"({groups}) that stays below it" + ("" if corr.group_by or run.own else
                                                  ", or give the correlation its own tests file"))
    for e in result.errors[:3]:
        add(line, "Correlation not evaluated", e, "warning")
    return out


# --- entry point -------------------------------------------------------------------------------------------------

def run(ctx: CheckContext) -> list[Finding]:
    try:
        settings = settings_from(ctx.config.section("coverage"))
    except ConfigError as e:
        return [Finding(CHECK, e.path, e.line, e.line, "failure", "Configuration error", f"{e.key}: {e.message}")]
    repo = RepositoryCoverage()
    findings: list[Finding] = []
    for bundle, runs in evaluated_bundles(ctx, "coverage"):
        usable = [d for d in runs.docs if d.compiled is not None]
        referenced = _referenced_in_file(runs)
        for i, cdoc in enumerate(usable):
            # A base rule that only feeds a correlation in the same file is covered through it.
            if referenced and any(k in referenced for k in (cdoc.doc.data.get("name"), cdoc.doc.data.get("id"))):
                continue
            cov, found = check_rule(cdoc, i, runs, bundle, settings)
            repo.rules.append(cov)
            findings += found
        for corr_doc in runs.correlations:
            findings += check_correlation(ctx, bundle, corr_doc, runs)
    ctx.cache["coverage:repository"] = repo
    return findings


def _referenced_in_file(runs: BundleRuns) -> set[str]:
    out: set[str] = set()
    for d in runs.correlations:
        if isinstance(d.rule, SigmaCorrelationRule) and d.rule.rules:
            out.update(r.reference for r in d.rule.rules)
    return out

