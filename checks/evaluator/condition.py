"""A rule's condition(s) as closures over search identifiers.

Built from pySigma's parse tree before post-processing, so identifiers stay identifiers; `1 of x*`
and `all of them` are expanded with pySigma's own resolver (same pattern rules, same `_` exclusion).
"""
from __future__ import annotations

from typing import Any, Callable

from sigma.conditions import (
    ConditionAND,
    ConditionIdentifier,
    ConditionItem,
    ConditionNOT,
    ConditionOR,
    ConditionSelector,
)
from sigma.rule import SigmaRule

# A node evaluates with a resolver: resolve(identifier) -> bool.
Node = Callable[[Callable[[str], bool]], bool]


def expand(tree: Any, rule: SigmaRule) -> Any:
    """Replace selectors with AND/OR over the identifiers they match."""
    if isinstance(tree, ConditionSelector):
        ids = tree.resolve_referenced_detections(rule.detection)
        if not ids:
            raise ValueError(f"'{tree.args[0]} of {tree.pattern}' matches no search identifier")
        return ids[0] if len(ids) == 1 else tree.cond_class(list(ids))
    if isinstance(tree, ConditionIdentifier):
        return tree
    if isinstance(tree, ConditionItem):
        return type(tree)([expand(a, rule) for a in tree.args if a is not None])
    raise ValueError(f"unexpected condition element {tree!r}")


def identifiers_of(tree: Any, out: list[str]) -> list[str]:
    if isinstance(tree, ConditionIdentifier):
        if tree.identifier not in out:
            out.append(tree.identifier)
    else:
        for a in tree.args:
            identifiers_of(a, out)
    return out


def build(tree: Any, leaf: Callable[[str], Any]) -> Any:
    """Closure tree; `leaf(identifier)` gives the leaf callable, called with one argument."""
    if isinstance(tree, ConditionIdentifier):
        return leaf(tree.identifier)
    args = [build(a, leaf) for a in tree.args]
    if isinstance(tree, ConditionNOT):
        inner = args[0]
        return lambda x: not inner(x)
    if isinstance(tree, ConditionAND):
        if len(args) == 2:
            a, b = args
            return lambda x: a(x) and b(x)
        def every(x: Any) -> bool:
            for f in args:
                if not f(x):
                    return False
            return True
        return every
    if isinstance(tree, ConditionOR):
        if len(args) == 2:
            a, b = args
            return lambda x: a(x) or b(x)
        def some(x: Any) -> bool:
            for f in args:
                if f(x):
                    return True
            return False
        return some
    raise ValueError(f"unexpected condition element {tree!r}")


try:  # pySigma's cached pyparsing step; SigmaCondition.parse deep-copies its result on every call
    from sigma.conditions import _parse_condition_string
except ImportError:  # pragma: no cover - older/newer pySigma
    _parse_condition_string = None


# Parse trees by condition text. pySigma's own cache keeps 256 texts; a catalog has more distinct
# conditions than that, and each miss is a pyparsing run costing more than compiling the rule.
_PARSED: dict[str, Any] = {}
_EXPANDED: dict[tuple, Any] = {}
_MAX_CACHED = 4096  # bounded: a long-running bot sees many repositories


def _parse(c: Any) -> Any:
    # The cached tree is shared, which is safe here: nothing below mutates it (expand builds new
    # operator nodes and only reads identifiers and selectors). The deep copy cost more than the
    # rest of compiling a rule.
    tree = _PARSED.get(c.condition)
    if tree is not None:
        return tree
    if _parse_condition_string is None or "|" in c.condition:
        return c.parse(postprocess=False)
    try:
        tree = _parse_condition_string(c.condition)
    except Exception:
        return c.parse(postprocess=False)  # raises pySigma's own error for the message
    if len(_PARSED) < _MAX_CACHED:
        _PARSED[c.condition] = tree
    return tree


def parse_conditions(rule: SigmaRule) -> list[Any]:
    """Expanded condition trees. Shared between rules with the same condition text and the same
    search identifiers (catalogs repeat `1 of selection_* and not 1 of filter_*` endlessly)."""
    names = tuple(rule.detection.detections)
    out = []
    for c in rule.detection.parsed_condition:
        key = (c.condition, names)
        tree = _EXPANDED.get(key)
        if tree is None:
            tree = expand(_parse(c), rule)
            if len(_EXPANDED) < _MAX_CACHED:
                _EXPANDED[key] = tree
        out.append(tree)
    return out
