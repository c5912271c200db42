"""Compile a pySigma rule once into closures; evaluate events against it fast, or fully.

`CompiledRule.matches(event)` is the hot path (short-circuit, no allocation beyond the EventView).
`evaluate(event, full=True)` evaluates every identifier and every item with the per-value outcome
that coverage and explanations need.
"""
from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field as dc_field
from typing import Any, Callable

from sigma.conditions import ConditionAND
from sigma.modifiers import reverse_modifier_mapping
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule
from sigma.types import (
    SigmaBool,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaString,
)

from . import condition as cond
from .event import EventView, FieldValue, view_of
from .fields import MISSING
from .values import (Test, UnsupportedValue, keyword_value, never, plain_shapes, shape_atom, test_atoms,
                     value_test)


class CompileError(ValueError):
    """The rule cannot be evaluated at all (no detection, broken condition)."""


@dataclass
class ItemResult:
    identifier: str
    yaml_path: tuple
    field: str | None
    modifiers: list[str]
    values: list[Any]
    matched: bool
    matched_values: list[int]
    actual: Any


@dataclass
class Evaluation:
    matched: bool
    identifiers: dict[str, bool]
    items: list[ItemResult] = dc_field(default_factory=list)
    errors: list[str] = dc_field(default_factory=list)


def _plain(v: Any) -> Any:
    if isinstance(v, SigmaString):
        return v.original
    if isinstance(v, SigmaNumber):
        return v.number
    if isinstance(v, SigmaBool):
        return v.boolean
    if isinstance(v, SigmaNull):
        return None
    return str(v)


class _Item:
    """One detection item (`Field|mods: values`, or keywords) with one test per value as written.

    The commonest items (plain case-insensitive strings of one shape on one field) get their fast
    matcher straight from the values; their per-value tests are built only when a full evaluation
    asks, which keeps a catalog of thousands of rules small in memory.
    """

    __slots__ = ("identifier", "yaml_path", "field", "modifiers", "item", "all", "negated", "refs",
                 "fast", "_tests", "_specs", "_placeholders", "_shapes", "_texts")

    def __init__(self, identifier: str, path: tuple, item: SigmaDetectionItem, modifiers: list[str],
                 placeholders: dict[str, list[str]], errors: list[str]):
        self.identifier, self.yaml_path, self.field = identifier, path, item.field
        # Interned and shared: a catalog repeats the same few modifier chains thousands of times.
        self.modifiers = _mods(modifiers)
        self.item = item
        self.all = item.value_linking is ConditionAND
        self.negated = bool(item.negated)
        values = item.value
        if self.field is None:
            values = [keyword_value(v) for v in values]
        self._specs = values
        self._placeholders = placeholders
        refs = {v.field for v in values if isinstance(v, SigmaFieldReference)}
        self.refs = refs or _NO_REFS
        self._tests: list[Test] | None = None
        self._shapes = False
        direct = None
        if self.field is not None and not self.negated:
            shapes = [plain_shapes(v) for v in values]
            if shapes and all(shapes):
                if self.all:
                    direct = _direct_all(shapes, self.field)  # type: ignore[arg-type]
                else:
                    # A bound method and a tuple per item: much smaller than a closure with cells.
                    found = _direct_fast([sh for group in shapes for sh in group])  # type: ignore[union-attr]
                    if found is not None:
                        method, self._texts = found
                        direct = getattr(self, method)
                # Only a flag is kept: the shapes are recomputed for the (one-off) rule index.
                self._shapes = direct is not None
        if direct is None:
            self._build_tests(errors)
            direct = self._build_fast()
        self.fast = direct

    # The direct matchers (see _direct_fast); `self._texts` holds what they look for.
    def _exact(self, view: EventView) -> bool:
        return not self._texts.isdisjoint(view.field(self.field).lows)

    def _suffix(self, view: EventView) -> bool:
        texts = self._texts
        for x in view.field(self.field).lows:
            if x.endswith(texts):
                return True
        return False

    def _prefix(self, view: EventView) -> bool:
        texts = self._texts
        for x in view.field(self.field).lows:
            if x.startswith(texts):
                return True
        return False

    def _contains(self, view: EventView) -> bool:
        texts = self._texts
        for x in view.field(self.field).lows:
            for t in texts:
                if t in x:
                    return True
        return False

    def _build_tests(self, errors: list[str]) -> list[Test]:
        tests: list[Test] = []
        for v in self._specs:
            try:
                tests.append(value_test(v, self._placeholders))
            except (UnsupportedValue, ValueError) as e:
                errors.append(f"{'.'.join(map(str, self.yaml_path))}: {e}")
                tests.append(never)
        self._tests = tests
        return tests

    @property
    def tests(self) -> list[Test]:
        return self._tests if self._tests is not None else self._build_tests([])

    @property
    def values(self) -> list[Any]:
        """The rule's values as written (one per test)."""
        originals = self.item.original_value
        if originals is None or len(originals) != len(self._specs):
            # A modifier that turned one value into several: report them all as one value each.
            originals = self._specs
        return [_plain(v) for v in originals]

    def clauses(self) -> list[list[tuple]]:
        """Necessary conditions in conjunctive form: every clause (a list of (field, atom) pairs)
        has an atom that holds whenever this item holds. [] when nothing is known."""
        if self.negated or not self._specs:
            return []
        if self._shapes:
            per_value = [[shape_atom(*sh) for sh in plain_shapes(v)] for v in self._specs]  # type: ignore[union-attr]
        else:
            per_value = [test_atoms(t) for t in self.tests]
        if self.all:
            return [[(self.field, a) for a in atoms] for atoms in per_value if atoms]
        if any(a is None for a in per_value):
            return []
        return [[(self.field, a) for atoms in per_value for a in atoms]]  # type: ignore[union-attr]

    def _fieldvalue(self, view: EventView) -> FieldValue:
        return view.field(self.field) if self.field is not None else view.leaves()

    def _build_fast(self) -> Callable[[EventView], bool]:
        tests, name, negated = self.tests, self.field, self.negated
        if self.all:
            def combined(fv: FieldValue, view: EventView) -> bool:
                for t in tests:
                    if not t(fv, view):
                        return False
                return True
        else:
            combined = _grouped_any(tests)
        if name is None:
            if negated:
                return lambda view: not combined(view.leaves(), view)
            return lambda view: combined(view.leaves(), view)
        if negated:
            return lambda view: not combined(view.field(name), view)
        return lambda view: combined(view.field(name), view)

    def full(self, view: EventView) -> ItemResult:
        fv = self._fieldvalue(view)
        hits = [i for i, t in enumerate(self.tests) if t(fv, view)]
        matched = len(hits) == len(self.tests) if self.all else bool(hits)
        if self.negated:
            matched = not matched
        if self.field is not None:
            actual = fv.raw
        else:
            actual = self._keyword_actual(fv, view) if hits else MISSING
        return ItemResult(self.identifier, self.yaml_path, self.field, list(self.modifiers),
                          self.values, matched, hits, actual)

    def _keyword_actual(self, fv: FieldValue, view: EventView) -> Any:
        for x in fv.scalars:
            one = FieldValue(x)
            if any(t(one, view) for t in self.tests):
                return x
        return MISSING


MAX_CLAUSES = 4
USEFUL = 0.9  # a clause this likely to hold (a bare "has a value") filters too little to be worth counting


def _chance(clause: list[tuple]) -> float:
    """Rough chance that some atom of the clause holds (each atom carries its own estimate)."""
    return min(1.0, sum(atom[2] for _, atom in clause))


def _combine(children: list[list[list[tuple]]], conjunction: bool) -> list[list[tuple]]:
    """AND: every child's clauses hold (keep the most selective); OR: one clause made of each
    child's most selective clause."""
    if conjunction:
        ranked = sorted((c for child in children for c in child), key=_chance)
        kept = [c for c in ranked[:MAX_CLAUSES] if _chance(c) < USEFUL]
        return kept or ranked[:1]
    if any(not child for child in children):
        return []
    if len(children) == 1:
        return children[0]
    # (A1 and A2) or (B1 and B2) = (A1 or B1) and (A1 or B2) and (A2 or B1) and (A2 or B2):
    # distribute while the product stays small, keep the most selective resulting clauses.
    product: list[tuple[float, list[tuple]]] = [(0.0, [])]
    for child in children:
        if len(product) * len(child) > 64:
            return [[a for child in children for a in min(child, key=_chance)]]
        scored = [(_chance(clause), clause) for clause in child]
        product = [(p + q, acc + clause) for p, acc in product for q, clause in scored]
    product.sort(key=lambda pc: pc[0])
    kept = [c for p, c in product[:MAX_CLAUSES] if p < USEFUL]
    return kept or [product[0][1]]


_NO_REFS: frozenset[str] = frozenset()
_MODS: dict[tuple, tuple] = {}


def _mods(modifiers: list[str]) -> tuple[str, ...]:
    key = tuple(modifiers)
    found = _MODS.get(key)
    if found is None:
        found = tuple(sys.intern(m) for m in key)
        if len(_MODS) < 10_000:  # bounded: a long-running bot sees many repositories
            _MODS[key] = found
    return found


def _direct_fast(shapes: list[tuple]) -> tuple[str, Any] | None:
    """The hot path for the commonest item -- one field, plain case-insensitive strings of one
    shape: (name of the _Item method that matches it, the texts it needs)."""
    kinds = {sh[0] for sh in shapes}
    if len(kinds) != 1:
        return None
    kind = kinds.pop()
    texts = tuple(sh[1] for sh in shapes)
    if kind == "exact":
        return "_exact", frozenset(texts)
    if kind in ("suffix", "prefix", "contains"):
        return "_" + kind, texts
    return None


def _direct_all(groups: list[list[tuple]], name: str) -> Callable[[EventView], bool] | None:
    """`|contains|all`: every value (each possibly expanded) is a substring of some field value."""
    if any(sh[0] != "contains" for group in groups for sh in group):
        return None
    needles = tuple(tuple(sh[1] for sh in group) for group in groups)

    def fast(view: EventView) -> bool:
        xs = view.field(name).lows
        for alternatives in needles:
            for x in xs:
                if any(t in x for t in alternatives):
                    break
            else:
                return False
        return True
    return fast


def _grouped_any(tests: list[Test]) -> Test:
    """OR over tests, with plain string shapes folded into one set lookup / one startswith tuple."""
    groups: dict[tuple[str, bool], list[str]] = {}
    others: list[Test] = []
    for t in tests:
        shape = getattr(t, "shape", None)
        if shape and shape[0] in ("exact", "prefix", "suffix", "contains"):
            groups.setdefault((shape[0], shape[2]), []).append(shape[1])
        else:
            others.append(t)
    checks: list[Callable[[tuple], bool]] = []
    for (kind, cased), texts in groups.items():
        attr = "strs" if cased else "lows"
        if kind == "exact":
            s = frozenset(texts)
            checks.append((attr, lambda xs, s=s: not s.isdisjoint(xs)))
        elif kind == "prefix":
            p = tuple(texts)
            checks.append((attr, lambda xs, p=p: any(x.startswith(p) for x in xs)))
        elif kind == "suffix":
            p = tuple(texts)
            checks.append((attr, lambda xs, p=p: any(x.endswith(p) for x in xs)))
        else:
            ts = tuple(texts)
            checks.append((attr, lambda xs, ts=ts: any(c in x for x in xs for c in ts)))
    if len(checks) == 1 and not others:
        attr, check = checks[0]
        if attr == "lows":
            return lambda fv, view: check(fv.lows)
        return lambda fv, view: check(fv.strs)

    def test(fv: FieldValue, view: EventView) -> bool:
        for attr, check in checks:
            if check(getattr(fv, attr)):
                return True
        for t in others:
            if t(fv, view):
                return True
        return False
    return test


class _Detection:
    """A search identifier's definition: a map (AND of items), or a list (OR of maps / values)."""

    __slots__ = ("all", "children", "fast")

    def __init__(self, identifier: str, path: tuple, det: SigmaDetection, raw: Any,
                 placeholders: dict[str, list[str]], errors: list[str]):
        self.all = det.item_linking is ConditionAND
        self.children: list[_Item | _Detection] = []
        raw_keys = list(raw.keys()) if isinstance(raw, Mapping) else None
        for i, child in enumerate(det.detection_items):
            if isinstance(child, SigmaDetection):
                sub = raw[i] if isinstance(raw, list) and i < len(raw) else None
                self.children.append(_Detection(identifier, path + (i,), child, sub, placeholders, errors))
                continue
            if raw_keys is not None and i < len(raw_keys):
                key = str(raw_keys[i])
                mods = key.split("|")[1:]
                item_path = path + (raw_keys[i],)
            elif child.field is None and not child.modifiers:
                mods, item_path = [], path
            else:
                mods = [reverse_modifier_mapping.get(m.__name__, m.__name__) for m in child.modifiers]
                item_path = path + ("|".join([child.field or "", *mods]),)
            self.children.append(_Item(identifier, item_path, child, mods, placeholders, errors))
        fasts = tuple(c.fast for c in self.children)
        if len(fasts) == 1:
            self.fast = fasts[0]
        elif self.all:
            def every(view: EventView) -> bool:
                for f in fasts:
                    if not f(view):
                        return False
                return True
            self.fast = every
        else:
            def some(view: EventView) -> bool:
                for f in fasts:
                    if f(view):
                        return True
                return False
            self.fast = some

    def clauses(self) -> list[list[tuple]]:
        return _combine([c.clauses() for c in self.children], self.all)

    def items(self) -> list[_Item]:
        out: list[_Item] = []
        for c in self.children:
            out.extend(c.items() if isinstance(c, _Detection) else [c])
        return out

    def full(self, view: EventView, results: list[ItemResult]) -> bool:
        values = []
        for c in self.children:
            if isinstance(c, _Detection):
                values.append(c.full(view, results))
            else:
                r = c.full(view)
                results.append(r)
                values.append(r.matched)
        return all(values) if self.all else any(values)


class CompiledRule:
    """A rule compiled once. `rule`, `identifiers`, `fields`, `detections` (name -> compiled
    detection), `trees` (expanded condition trees) and `errors` (compile-time problems) are public."""

    # A catalog holds thousands of these: no per-instance __dict__.
    __slots__ = ("rule", "errors", "trees", "identifiers", "detections", "_fields", "_fast", "_outcome_fn")

    def __init__(self, rule: SigmaRule, placeholders: dict[str, list[str]] | None = None,
                 data: Mapping[str, Any] | None = None):
        self.rule = rule
        self.errors: list[str] = []  # compile-time problems that make some value never match
        detections = getattr(rule.detection, "detections", None)
        if not detections or not getattr(rule.detection, "condition", None):
            raise CompileError("the rule has no usable detection")
        try:
            self.trees = cond.parse_conditions(rule)
        except Exception as e:  # pySigma raises SigmaConditionError, pyparsing errors, ...
            raise CompileError(f"condition: {e}") from e
        ids: list[str] = []
        for t in self.trees:
            cond.identifiers_of(t, ids)
        missing = [i for i in ids if i not in detections]
        if missing:
            raise CompileError(f"condition names undefined search identifier(s): {', '.join(missing)}")
        self.identifiers = ids
        raw_det = data.get("detection") if isinstance(data, Mapping) else None
        placeholders = placeholders or {}
        self.detections: dict[str, _Detection] = {}
        for name in ids:
            raw = raw_det.get(name) if isinstance(raw_det, Mapping) else None
            self.detections[name] = _Detection(name, ("detection", name), detections[name], raw,
                                               placeholders, self.errors)
        self._fields: set[str] | None = None
        dets = self.detections
        fast = [cond.build(t, lambda i: dets[i].fast) for t in self.trees]
        self._fast = fast[0] if len(fast) == 1 else (lambda view: any(f(view) for f in fast))
        self._outcome_fn: Callable[[Any], bool] | None = None

    @property
    def fields(self) -> set[str]:
        """Field names the rule reads (items and field references); computed on first use."""
        if self._fields is None:
            fields: set[str] = set()
            for d in self.detections.values():
                for it in d.items():
                    if it.field is not None:
                        fields.add(it.field)
                    fields |= it.refs
            self._fields = fields
        return self._fields

    def _outcome(self, values: Mapping[str, bool]) -> bool:
        if self._outcome_fn is None:
            self._outcome_fn = self._tree_fn(lambda i: (lambda values: bool(values[i])))
        return self._outcome_fn(values)

    def _traced(self, resolve: Callable[[str], bool]) -> bool:
        # The same tree as `outcome`, asking a resolver that evaluates (and records) identifiers.
        return self._outcome(_Resolving(resolve))

    def _tree_fn(self, leaf: Callable[[str], Any]) -> Callable[[Any], bool]:
        fns = [cond.build(t, leaf) for t in self.trees]
        return fns[0] if len(fns) == 1 else (lambda x: any(f(x) for f in fns))

    def necessary_clauses(self) -> list[list[tuple]]:
        """Clauses of (field, atom) pairs: in every event the rule matches, each clause has an atom
        that holds. The rule index uses them to skip rules that cannot match. [] = no constraint."""
        return _combine([self._tree_clauses(t) for t in self.trees], False)

    def _tree_clauses(self, tree: Any) -> list[list[tuple]]:
        from sigma.conditions import ConditionIdentifier, ConditionNOT, ConditionOR
        if isinstance(tree, ConditionIdentifier):
            return self.detections[tree.identifier].clauses()
        if isinstance(tree, ConditionNOT):
            return []
        return _combine([self._tree_clauses(a) for a in tree.args], not isinstance(tree, ConditionOR))

    def matches(self, event: Mapping[str, Any] | EventView) -> bool:
        """The outcome only: the fastest way to ask."""
        return self._fast(view_of(event))

    def outcome(self, identifier_values: Mapping[str, bool]) -> bool:
        return self._outcome(identifier_values)

    def evaluate(self, event: Mapping[str, Any] | EventView, full: bool = False) -> Evaluation:
        """full=True: every identifier and every item, items in YAML order. Otherwise the
        condition short-circuits: `identifiers` holds the ones it needed and `items` is empty.
        `errors` holds compile-time problems and any regex time-out met on this event."""
        view = view_of(event)
        start = len(view.errors)
        if full:
            items: list[ItemResult] = []
            values = {name: self.detections[name].full(view, items) for name in self.identifiers}
            matched = self.outcome(values)
        else:
            items = []
            values = {}
            dets = self.detections

            def resolve(name: str) -> bool:
                if name not in values:
                    values[name] = dets[name].fast(view)
                return values[name]
            matched = self._traced(resolve)
        errors = list(self.errors) + _dedupe(view.errors[start:])
        return Evaluation(matched, values, items, errors)


class _Resolving:
    """A mapping view of a resolver function, so one condition closure serves both uses."""

    __slots__ = ("resolve",)

    def __init__(self, resolve: Callable[[str], bool]):
        self.resolve = resolve

    def __getitem__(self, name: str) -> bool:
        return self.resolve(name)


def _dedupe(xs: list[str]) -> list[str]:
    return list(dict.fromkeys(xs))


def compile_rule(rule: SigmaRule, placeholders: dict[str, list[str]] | None = None,
                 data: Mapping[str, Any] | None = None) -> CompiledRule:
    """Compile once. `data` (the rule's YAML mapping) gives exact YAML paths and modifier spellings;
    without it they are rebuilt from pySigma's objects."""
    return CompiledRule(rule, placeholders, data)
