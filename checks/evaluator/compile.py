"""Compile a pySigma rule once into closures; evaluate events against it fast, or fully.

`CompiledRule.matches(event)` is the hot path (short-circuit, no allocation beyond the EventView).
`evaluate(event, full=True)` evaluates every identifier and every item with the per-value outcome
that coverage and explanations need.
"""
from __future__ import annotations

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
from .values import Test, UnsupportedValue, keyword_value, never, value_test


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
    """One detection item (`Field|mods: values`, or keywords) with one test per value as written."""

    def __init__(self, identifier: str, path: tuple, item: SigmaDetectionItem, modifiers: list[str],
                 placeholders: dict[str, list[str]], errors: list[str]):
        self.identifier, self.yaml_path, self.field = identifier, path, item.field
        self.modifiers = modifiers
        originals = item.original_value if item.original_value is not None else item.value
        self.values = [_plain(v) for v in originals]
        self.all = item.value_linking is ConditionAND
        self.negated = bool(item.negated)
        values = item.value
        if self.field is None:
            values = [keyword_value(v) for v in values]
        self.tests: list[Test] = []
        for v in values:
            try:
                self.tests.append(value_test(v, placeholders))
            except (UnsupportedValue, ValueError) as e:
                errors.append(f"{'.'.join(map(str, path))}: {e}")
                self.tests.append(never)
        if len(self.tests) != len(self.values):
            # A modifier that turned one value into several: report them all as one value each.
            self.values = [_plain(v) for v in values]
        self.refs = {v.field for v in values if isinstance(v, SigmaFieldReference)}
        self.fast = self._build_fast()

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
                          list(self.values), matched, hits, actual)

    def _keyword_actual(self, fv: FieldValue, view: EventView) -> Any:
        for x in fv.scalars:
            one = FieldValue(x)
            if any(t(one, view) for t in self.tests):
                return x
        return MISSING


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
        fasts = [c.fast for c in self.children]
        if len(fasts) == 1:
            self.fast = fasts[0]
        elif self.all:
            self.fast = lambda view: all(f(view) for f in fasts)
        else:
            self.fast = lambda view: any(f(view) for f in fasts)

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
        self.fields: set[str] = set()
        for d in self.detections.values():
            for it in d.items():
                if it.field is not None:
                    self.fields.add(it.field)
                self.fields |= it.refs
        dets = self.detections
        fast = [cond.build(t, lambda i: dets[i].fast) for t in self.trees]
        self._fast = fast[0] if len(fast) == 1 else (lambda view: any(f(view) for f in fast))
        outcome = [cond.build(t, lambda i: (lambda values: bool(values[i]))) for t in self.trees]
        self._outcome = outcome[0] if len(outcome) == 1 else (lambda v: any(f(v) for f in outcome))
        # Same tree, asking a resolver that records each identifier it evaluates.
        traced = [cond.build(t, lambda i: (lambda resolve: resolve(i))) for t in self.trees]
        self._traced = traced[0] if len(traced) == 1 else (lambda r: any(f(r) for f in traced))

    def matches(self, event: Mapping[str, Any] | EventView) -> bool:
        """The outcome only: the fastest way to ask."""
        return self._fast(view_of(event))

    def outcome(self, identifier_values: Mapping[str, bool]) -> bool:
        return self._outcome(identifier_values)

    def evaluate(self, event: Mapping[str, Any] | EventView, full: bool = False) -> Evaluation:
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


def _dedupe(xs: list[str]) -> list[str]:
    return list(dict.fromkeys(xs))


def compile_rule(rule: SigmaRule, placeholders: dict[str, list[str]] | None = None,
                 data: Mapping[str, Any] | None = None) -> CompiledRule:
    """Compile once. `data` (the rule's YAML mapping) gives exact YAML paths and modifier spellings;
    without it they are rebuilt from pySigma's objects."""
    return CompiledRule(rule, placeholders, data)
