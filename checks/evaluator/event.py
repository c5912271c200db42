"""An event prepared for evaluation: field lookups and their string forms computed once per event.

Many rules read the same fields of the same event; an EventView caches each field's candidates so
case folding and path walking happen once, however many rules and items look at them.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from ipaddress import ip_address
from typing import Any

from .fields import MISSING, leaf_values, lookup

_SURROGATE = re.compile("[\ud800-\udfff]")
_DECIMAL = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*\Z")


def text_of(value: Any) -> str | None:
    """The string a Sigma string value is compared with; None for values with no string form."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, date):  # YAML test events turn unquoted timestamps into datetimes
        return value.isoformat()
    return None


def number_of(value: Any) -> int | float | None:
    """The number a numeric comparison sees: numbers as they are, decimal strings parsed ("4688")."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str) and _DECIMAL.match(value):
        try:
            f = float(value)
        except ValueError:
            return None
        return int(f) if f.is_integer() and abs(f) < 2**53 else f
    return None


class FieldValue:
    """One field of one event: the raw value, its scalar candidates (a list contributes every
    element) and their string and lower-case string forms."""

    __slots__ = ("raw", "scalars", "strs", "lows", "_nums", "_ips")

    def __init__(self, raw: Any):
        self.raw = raw
        if raw is MISSING or raw is None:
            scalars: tuple = ()
        elif isinstance(raw, (list, tuple)):
            scalars = tuple(_flatten(raw))
        else:
            scalars = (raw,)
        self.scalars = scalars
        strs = tuple(_valid(s) for s in map(text_of, scalars) if s is not None)
        self.strs = strs
        self.lows = tuple(s.lower() for s in strs)
        self._nums: tuple | None = None
        self._ips: tuple | None = None

    @property
    def nums(self) -> tuple:
        if self._nums is None:
            self._nums = tuple(n for n in map(number_of, self.scalars) if n is not None)
        return self._nums

    @property
    def ips(self) -> tuple:
        """The string forms that are IP addresses (surrounding space allowed), parsed once per event
        however many CIDR values look at the field."""
        if self._ips is None:
            ips = []
            for x in self.strs:
                try:
                    ips.append(ip_address(x.strip()))
                except ValueError:
                    continue
            self._ips = tuple(ips)
        return self._ips

    @property
    def present(self) -> bool:
        return self.raw is not MISSING

    @property
    def is_null(self) -> bool:
        raw = self.raw
        return raw is MISSING or raw is None or (isinstance(raw, (list, tuple)) and not self.scalars)


def _valid(s: str) -> str:
    """The string with lone surrogates (legal in JSON "\\ud800", not in UTF-8) replaced by U+FFFD:
    RE2 needs valid UTF-8 and would raise on them."""
    if s.isascii():
        return s
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", s)


def _flatten(values: Any) -> list:
    """Elements of nested lists, in order (iteratively: hostile nesting must not blow the stack)."""
    out = []
    stack = [iter(values)]
    while stack:
        for v in stack[-1]:
            if isinstance(v, (list, tuple)):
                stack.append(iter(v))
                break
            if v is not None:
                out.append(v)
        else:
            stack.pop()
    return out


class EventView:
    """Wraps a Mapping; evaluation of many rules against one event should share one view."""

    __slots__ = ("event", "_fields", "_leaves", "errors")

    def __init__(self, event: Mapping[str, Any]):
        self.event = event
        self._fields: dict[str, FieldValue] = {}
        self._leaves: FieldValue | None = None
        # Problems met while matching (regex time-outs), read by the Evaluation.
        self.errors: list[str] = []

    def field(self, name: str) -> FieldValue:
        fv = self._fields.get(name)
        if fv is None:
            fv = self._fields[name] = FieldValue(lookup(self.event, name))
        return fv

    def leaves(self) -> FieldValue:
        """Every scalar of the event as one multi-valued pseudo-field, for keyword searches."""
        if self._leaves is None:
            self._leaves = FieldValue(list(leaf_values(self.event)))
        return self._leaves


def view_of(event: Mapping[str, Any] | EventView) -> EventView:
    return event if isinstance(event, EventView) else EventView(event)
