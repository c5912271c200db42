"""Correlation rules (event_count, value_count, temporal, temporal_ordered) over an ordered event list.

The events are a rule's test events in order, each with its timestamp (or None). Windows slide: one
starts at each matching event and spans `timespan`; a group (one value of the group-by fields)
reaches the threshold when some window satisfies the condition. Events without a timestamp are
treated as falling inside every window that starts at or before them -- test events often carry no
time, and order is then all that is known.
"""
from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sigma.correlations import (
    CorrelationConditionAND,
    CorrelationConditionNOT,
    CorrelationConditionOR,
    SigmaCorrelationConditionOperator as Op,
    SigmaCorrelationRule,
    SigmaCorrelationType as CType,
    SigmaExtendedCorrelationCondition,
    SigmaRuleReference,
)

from .compile import CompiledRule
from .event import EventView, text_of
from .fields import MISSING

_OPS = {Op.LT: operator.lt, Op.LTE: operator.le, Op.GT: operator.gt, Op.GTE: operator.ge,
        Op.EQ: operator.eq, Op.NEQ: operator.ne}
_OP_TEXT = {Op.LT: "<", Op.LTE: "<=", Op.GT: ">", Op.GTE: ">=", Op.EQ: "==", Op.NEQ: "!="}


@dataclass
class GroupResult:
    key: tuple                      # the group-by values (None where the event lacks the field)
    value: int                      # best count reached in one window (events, distinct values or rules)
    reached: bool                   # some window satisfied the condition
    events: list[int] = field(default_factory=list)   # indices of the events that counted
    rules: list[str] = field(default_factory=list)    # referenced rules seen in this group


@dataclass
class CorrelationResult:
    matched: bool
    type: str
    threshold: str                  # the condition in words, e.g. ">= 5" or "brute and success"
    groups: dict[tuple, GroupResult] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def reached(self) -> list[tuple]:
        return [k for k, g in self.groups.items() if g.reached]

    @property
    def not_reached(self) -> list[tuple]:
        return [k for k, g in self.groups.items() if not g.reached]


def _ref_names(corr: SigmaCorrelationRule) -> list[str]:
    if corr.rules:
        return [r.reference for r in corr.rules]
    if isinstance(corr.condition, SigmaExtendedCorrelationCondition):
        return corr.condition.get_referenced_rules()
    return []


def _extended(node: Any, seen: set[str]) -> bool:
    if isinstance(node, SigmaRuleReference):
        return node.reference in seen
    if isinstance(node, CorrelationConditionNOT):
        return not _extended(node.args[0], seen)
    if isinstance(node, CorrelationConditionAND):
        return all(_extended(a, seen) for a in node.args)
    if isinstance(node, CorrelationConditionOR):
        return any(_extended(a, seen) for a in node.args)
    raise ValueError(f"unexpected correlation condition element {node!r}")


def _field_for(corr: SigmaCorrelationRule, name: str, ref: str, rule: CompiledRule) -> str:
    alias = corr.aliases.aliases.get(name) if corr.aliases else None
    if alias is None:
        return name
    for r, f in alias.mapping.items():
        key = r.reference if isinstance(r, SigmaRuleReference) else str(r)
        if key == ref or key == rule.rule.name or key == str(rule.rule.id):
            return f
    return name


def evaluate_correlation(corr: SigmaCorrelationRule, rules: Mapping[str, CompiledRule],
                         events: Sequence[tuple[Mapping[str, Any], datetime | None]]) -> CorrelationResult:
    ctype = corr.type
    condition = corr.condition
    refs = _ref_names(corr)
    extended = isinstance(condition, SigmaExtendedCorrelationCondition)
    temporal = ctype in (CType.TEMPORAL, CType.TEMPORAL_ORDERED)
    if extended:
        threshold = condition.expression
    elif temporal and condition.op is Op.GTE and condition.count == 1:
        # pySigma's default when no condition is given; for temporal it means "all of the rules".
        threshold = f">= {len(refs)} rules"
    else:
        threshold = f"{_OP_TEXT[condition.op]} {condition.count}"
    result = CorrelationResult(False, str(ctype.name).lower(), threshold)
    if ctype not in (CType.EVENT_COUNT, CType.VALUE_COUNT, CType.TEMPORAL, CType.TEMPORAL_ORDERED):
        result.errors.append(f"correlation type {ctype.name.lower()} is not supported by the evaluator")
        return result
    compiled: list[tuple[str, CompiledRule]] = []
    for ref in refs:
        if ref not in rules:
            result.errors.append(f"referenced rule '{ref}' is not available")
        else:
            compiled.append((ref, rules[ref]))
    if not compiled:
        return result
    span = corr.timespan.seconds if corr.timespan else None
    group_by = list(corr.group_by or [])
    value_field = condition.fieldref if (not extended and ctype is CType.VALUE_COUNT) else None
    if isinstance(value_field, list):
        value_field = value_field[0] if value_field else None

    # Matching events per group: (index, time, rule ref, distinct value)
    groups: dict[tuple, list[tuple[int, datetime | None, str, Any]]] = {}
    for index, (event, when) in enumerate(events):
        view = EventView(event)
        for ref, rule in compiled:
            ev = rule.evaluate(view)
            result.errors.extend(e for e in ev.errors if e not in result.errors)
            if not ev.matched:
                continue
            key = tuple(_key_value(view, _field_for(corr, g, ref, rule)) for g in group_by)
            value = None
            if value_field is not None:
                value = _key_value(view, _field_for(corr, value_field, ref, rule))
                if value is None:
                    continue  # an event without the field adds no distinct value
            groups.setdefault(key, []).append((index, when, ref, value))

    for key, hits in groups.items():
        if all(h[1] is not None for h in hits):
            hits.sort(key=lambda h: (h[1], h[0]))  # time order, ties in the order given
        best, reached, best_window = 0, False, []
        for start in range(len(hits)):
            window = _window(hits, start, span)
            measure, ok = _measure(ctype, condition, extended, refs, window, value_field)
            if ok and not reached:
                reached, best_window = True, window
            if measure > best:
                best = measure
                if not reached:
                    best_window = window
        rules_seen = list(dict.fromkeys(h[2] for h in hits))
        result.groups[key] = GroupResult(key, best, reached, [h[0] for h in best_window], rules_seen)
    result.matched = any(g.reached for g in result.groups.values())
    return result


def _key_value(view: EventView, name: str) -> Any:
    fv = view.field(name)
    if fv.raw is MISSING or fv.raw is None:
        return None
    return fv.strs[0] if len(fv.strs) == 1 else tuple(fv.strs) or text_of(fv.raw)


def _window(hits: list, start: int, span: int | None) -> list:
    t0 = hits[start][1]
    out = []
    for h in hits[start:]:
        if span is not None and t0 is not None and h[1] is not None and (h[1] - t0).total_seconds() > span:
            break
        out.append(h)
    return out


def _measure(ctype: CType, condition: Any, extended: bool, refs: list[str], window: list,
             value_field: str | None) -> tuple[int, bool]:
    if ctype is CType.EVENT_COUNT:
        n = len(window)
        return n, _OPS[condition.op](n, condition.count)
    if ctype is CType.VALUE_COUNT:
        n = len({h[3] for h in window})
        return n, _OPS[condition.op](n, condition.count)
    if ctype is CType.TEMPORAL:
        seen = {h[2] for h in window}
        n = len(seen)
    else:
        # temporal_ordered: the longest prefix of the rule list seen in that order
        n = 0
        for h in window:
            if n < len(refs) and h[2] == refs[n]:
                n += 1
        seen = set(refs[:n])
    if extended:
        return n, _extended(condition.parsed, seen)
    if condition.op is Op.GTE and condition.count == 1:
        return n, n >= len(refs)
    return n, _OPS[condition.op](n, condition.count)
