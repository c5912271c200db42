"""Why a rule did or did not match an event, in a reviewer's words.

  expected match, but the rule did not match: selection true, filter_main_edge true.
  filter_main_edge: Image|endswith '\\msedge.exe' matched 'C:\\...\\msedge.exe', so the filter excluded the event.

The decisive identifiers are those whose flip alone would flip the outcome; each is explained by the items
that made it true (what matched, with which value) or false (what failed, against which value).
"""
from __future__ import annotations

from typing import Any, Iterable

from sigma.conditions import ConditionIdentifier, ConditionNOT

from .evaluator import MISSING, CompiledRule, Evaluation, ItemResult

MAX_VALUE_CHARS = 80
MAX_LISTED = 4


def polarity(compiled: CompiledRule) -> dict[str, bool]:
    """identifier -> True when it selects (even number of `not` above it), False when it filters."""
    out: dict[str, bool] = {}

    def walk(node: Any, positive: bool) -> None:
        if isinstance(node, ConditionIdentifier):
            out.setdefault(node.identifier, positive)
            return
        flip = isinstance(node, ConditionNOT)
        for a in getattr(node, "args", ()):
            walk(a, positive != flip)

    for tree in getattr(compiled, "trees", []):
        walk(tree, True)
    return out


def decisive(compiled: CompiledRule, values: dict[str, bool]) -> list[str]:
    """Identifiers whose flip alone flips the outcome."""
    base = compiled.outcome(values)
    out = []
    for name in compiled.identifiers:
        flipped = dict(values)
        flipped[name] = not values.get(name, False)
        if compiled.outcome(flipped) != base:
            out.append(name)
    return out


def quote(value: Any) -> str:
    if value is MISSING:
        return "(absent)"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        shown = ", ".join(quote(v) for v in value[:MAX_LISTED])
        more = f", … {len(value) - MAX_LISTED} more" if len(value) > MAX_LISTED else ""
        return f"[{shown}{more}]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    text = str(value)
    if len(text) > MAX_VALUE_CHARS:
        text = text[: MAX_VALUE_CHARS - 1] + "…"
    return f"'{text}'"


def item_label(item: ItemResult) -> str:
    if item.field is None:
        return "keywords"
    return "|".join([item.field, *item.modifiers])


def values_text(values: list[Any], indexes: Iterable[int] | None = None) -> str:
    picked = [values[i] for i in indexes if 0 <= i < len(values)] if indexes is not None else values
    if len(picked) == 1:
        return quote(picked[0])
    shown = ", ".join(quote(v) for v in picked[:MAX_LISTED])
    more = f" (+{len(picked) - MAX_LISTED} more)" if len(picked) > MAX_LISTED else ""
    return f"one of {shown}{more}" if indexes is None else shown + more


def _values_for(item: ItemResult) -> str:
    if "all" in item.modifiers:
        shown = ", ".join(quote(v) for v in item.values[:MAX_LISTED])
        more = f" (+{len(item.values) - MAX_LISTED} more)" if len(item.values) > MAX_LISTED else ""
        return f"all of {shown}{more}" if len(item.values) > 1 else shown
    if len(item.values) == 1:
        return quote(item.values[0])
    shown = ", ".join(quote(v) for v in item.values[:MAX_LISTED])
    more = f" (+{len(item.values) - MAX_LISTED} more)" if len(item.values) > MAX_LISTED else ""
    return f"any of {shown}{more}"


def describe_item(item: ItemResult) -> str:
    """`Image|endswith '\\msedge.exe' matched 'C:\\...\\msedge.exe'`, or why it did not."""
    label = item_label(item)
    if item.field is None:
        if item.matched:
            return f"keyword {values_text(item.values, item.matched_values)} found in {quote(item.actual)}"
        return f"keywords {_values_for(item)} found in no field of the event"
    if item.matched:
        if item.actual is MISSING and not item.matched_values:
            return f"{label} {_values_for(item)} held: the event has no {item.field}"
        hits = item.matched_values if item.matched_values else range(len(item.values))
        return f"{label} {values_text(item.values, hits)} matched {_excerpt(item, hits)}"
    if item.actual is MISSING:
        return f"{label} {_values_for(item)} failed: the event has no field {item.field}"
    if "all" in item.modifiers and item.matched_values:
        missing = [i for i in range(len(item.values)) if i not in item.matched_values]
        return (f"{label} {_values_for(item)} did not match {quote(item.actual)} "
                f"(missing {values_text(item.values, missing)})")
    return f"{label} {_values_for(item)} did not match {quote(item.actual)}"


def _excerpt(item: ItemResult, hits: Iterable[int]) -> str:
    """The event's value, or for a long one the part around what matched ('…-nop -enc JAB…')."""
    actual = item.actual
    if not isinstance(actual, str) or len(actual) <= MAX_VALUE_CHARS:
        return quote(actual)
    for i in hits:
        v = item.values[i] if 0 <= i < len(item.values) else None
        if isinstance(v, str) and v.strip("*"):
            at = actual.lower().find(v.strip("*").lower())
            if at >= 0:
                start = max(0, at - 30)
                end = min(len(actual), at + len(v.strip("*")) + 30)
                text = ("…" if start else "") + actual[start:end] + ("…" if end < len(actual) else "")
                return f"'{text}'"
    return quote(actual)


def _alternatives(items: list[ItemResult]) -> dict[Any, list[ItemResult]]:
    """Items of a list-of-maps identifier grouped by map (the list index in the YAML path)."""
    groups: dict[Any, list[ItemResult]] = {}
    for it in items:
        key = it.yaml_path[2] if len(it.yaml_path) > 2 and isinstance(it.yaml_path[2], int) else None
        groups.setdefault(key, []).append(it)
    return groups


def why_identifier(name: str, value: bool, items: list[ItemResult]) -> str:
    """The items that made identifier `name` true or false."""
    mine = [it for it in items if it.identifier == name]
    if not mine:
        return "(no detail)"
    groups = _alternatives(mine)
    if value:
        if len(groups) > 1 or None not in groups:
            # A list of maps: the first map that matched entirely.
            for key, its in groups.items():
                if all(i.matched for i in its):
                    where = f"map {key + 1}: " if isinstance(key, int) else ""
                    return where + "; ".join(describe_item(i) for i in its)
        matched = [it for it in mine if it.matched]
        return "; ".join(describe_item(i) for i in (matched or mine))
    if len(groups) > 1 or None not in groups:
        # None of the maps matched: show the closest one.
        key, its = max(groups.items(), key=lambda kv: sum(i.matched for i in kv[1]) / len(kv[1]))
        failed = [i for i in its if not i.matched]
        return (f"none of its {len(groups)} maps matched; closest, map {key + 1 if isinstance(key, int) else 1}: "
                + "; ".join(describe_item(i) for i in failed))
    failed = [it for it in mine if not it.matched]
    return "; ".join(describe_item(i) for i in (failed or mine))


def _consequence(name: str, value: bool, positive: bool) -> str:
    if positive:
        return "so it selected the event" if value else "so the selection did not match"
    return "so the filter excluded the event" if value else "so the filter did not exclude the event"


def explain_evaluation(compiled: CompiledRule, ev: Evaluation) -> str:
    """`a true, b false. b: <why>, so ...` for one rule and one event (evaluated with full=True)."""
    values = ev.identifiers
    states = ", ".join(f"{n} {'true' if values.get(n) else 'false'}" for n in compiled.identifiers)
    pol = polarity(compiled)
    decisive_ids = decisive(compiled, values)
    parts = [f"{states}."]
    if decisive_ids:
        for name in decisive_ids:
            v = bool(values.get(name))
            parts.append(f"{name}: {why_identifier(name, v, ev.items)}, {_consequence(name, v, pol.get(name, True))}.")
    else:
        # No single identifier decides (e.g. two selections both true): explain every one that agrees with
        # the outcome.
        agreeing = [n for n in compiled.identifiers if bool(values.get(n)) == (pol.get(n, True) == ev.matched)]
        if agreeing:
            parts.append("no single identifier decides the outcome; " + " ".join(
                f"{n}: {why_identifier(n, bool(values.get(n)), ev.items)}." for n in agreeing[:MAX_LISTED]))
    if ev.errors:
        parts.append("evaluation problems: " + "; ".join(ev.errors[:3]) + ".")
    return " ".join(parts)


def explain_outcome(expect: str | None, compiled: list[tuple[str, CompiledRule]],
                    evaluations: list[Evaluation]) -> str:
    """An event against every detection rule of its file; `expect` None when there is no expectation."""
    matched = any(e.matched for e in evaluations)
    did = "matched" if matched else "did not match"
    if expect is None:
        head = f"the rule {did}"
    elif (expect == "match") != matched:
        head = f"expected {expect}, but the rule {did}"
    else:
        head = f"expected {expect}, and the rule {did}"
    if len(compiled) == 1:
        return f"{head}: {explain_evaluation(compiled[0][1], evaluations[0])}"
    parts = [f"{head}."]
    for (label, c), ev in zip(compiled, evaluations):
        if ev.matched == matched:
            parts.append(f"[{label}] {'matched' if ev.matched else 'no match'}: {explain_evaluation(c, ev)}")
    return " ".join(parts)
