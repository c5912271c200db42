"""Field values of an event as Sigma sees them.

`user.email` is looked up as a literal key first, then as a path through nested mappings (any split
of the dots, so `{"user": {"email.domain": x}}` is reachable too); a list along the path contributes
every element. The result is MISSING when the field is absent, so null (None) stays distinct.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Iterator


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


def lookup(event: Mapping[str, Any], field: str) -> Any:
    """The event's value for `field`, or MISSING."""
    if not isinstance(event, Mapping):
        return MISSING
    value = event.get(field, MISSING)
    if value is not MISSING or "." not in field:
        return value
    found = _path(event, field)
    return found


def _path(node: Any, field: str) -> Any:
    if isinstance(node, Mapping):
        if field in node:
            return node[field]
        dot = field.find(".")
        while dot != -1:
            head = node.get(field[:dot], MISSING)
            if head is not MISSING:
                found = _path(head, field[dot + 1:])
                if found is not MISSING:
                    return found
            dot = field.find(".", dot + 1)
        return MISSING
    if isinstance(node, list):
        # `users.email` over a list of user objects: every element's value counts. Nested lists
        # are walked iteratively, so recursion only follows the dots of the field name.
        out = []
        for element in _mappings_in(node):
            found = _path(element, field)
            if found is MISSING:
                continue
            if isinstance(found, list):
                out.extend(found)
            else:
                out.append(found)
        return out if out else MISSING
    return MISSING


def _mappings_in(values: list) -> Iterator[Mapping]:
    stack = [iter(values)]
    while stack:
        for v in stack[-1]:
            if isinstance(v, list):
                stack.append(iter(v))
                break
            if isinstance(v, Mapping):
                yield v
        else:
            stack.pop()


def leaf_values(value: Any) -> Iterator[Any]:
    """Every scalar in an event (keyword searches look at all of them), nested ones included, in
    document order. Iterative: a hostile event nested thousands deep must not blow the stack."""
    stack = [iter((value,))]
    while stack:
        for v in stack[-1]:
            if isinstance(v, Mapping):
                stack.append(iter(v.values()))
                break
            if isinstance(v, (list, tuple)):
                stack.append(iter(v))
                break
            if v is not None:
                yield v
        else:
            stack.pop()
