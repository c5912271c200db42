"""One Sigma value (after pySigma applied the item's modifiers) compiled into a test on a field.

A test is `test(fv: FieldValue, view: EventView) -> bool`. Strings become plain `str` operations on
pre-folded text where the wildcards allow it (exact, prefix, suffix, substring) and one RE2 pattern
otherwise (linear time, so `*a*a*a*...` cannot blow up). pySigma has already applied windash,
base64/base64offset, utf16*, contains/startswith/endswith, cidr, re flags; this module only matches.
"""
from __future__ import annotations

import operator
import re
from datetime import datetime
from functools import lru_cache
from typing import Any, Callable

import re2

from sigma.types import (
    CompareOperators,
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaString,
    SigmaTimestampPart,
    SpecialChars,
    TimestampPart,
)

from .event import EventView, FieldValue
from .regex_guard import GuardedRegex, RegexTimeout

Test = Callable[[FieldValue, EventView], bool]

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


@lru_cache(maxsize=4096)
def _wildcard_matcher(pattern: str) -> Any:
    # Shared: catalogs repeat the same wildcard values across many rules.
    return re2.compile(pattern, _RE2_OPTIONS).fullmatch


class UnsupportedValue(Exception):
    """A value the evaluator cannot match (e.g. a placeholder with no configured values)."""


def never(fv: FieldValue, view: EventView) -> bool:
    return False


# --- strings ----------------------------------------------------------------------------------

_M = SpecialChars.WILDCARD_MULTI


def string_shape(s: SigmaString) -> tuple[str, str | None]:
    """(kind, text): kind is exact|prefix|suffix|contains|any|pattern; text is the literal part.
    Placeholders (unresolved |expand) make it a pattern."""
    parts = s.s
    n = len(parts)
    if n == 0:
        return "exact", ""
    types = [type(p) is str for p in parts]
    if all(types):
        return "exact", "".join(parts)  # type: ignore[arg-type]
    if n == 1:
        return ("any", None) if parts[0] is _M else ("pattern", None)
    if n == 2:
        if parts[0] is _M and types[1]:
            return "suffix", parts[1]  # type: ignore[return-value]
        if types[0] and parts[1] is _M:
            return "prefix", parts[0]  # type: ignore[return-value]
    elif n == 3 and parts[0] is _M and parts[2] is _M and types[1]:
        return "contains", parts[1]  # type: ignore[return-value]
    return "pattern", None


def wildcard_regex(s: SigmaString, fold: bool) -> str:
    out = []
    for p in s.s:
        if isinstance(p, str):
            out.append(re.escape(p.lower() if fold else p))
        elif p is SpecialChars.WILDCARD_MULTI:
            out.append(".*")
        elif p is SpecialChars.WILDCARD_SINGLE:
            out.append(".")
        else:
            raise UnsupportedValue(f"unresolved placeholder %{p.name}%")
    return "(?s)" + "".join(out)


def string_test(s: SigmaString) -> Test:
    cased = isinstance(s, SigmaCasedString)
    kind, text = string_shape(s)
    if text is not None and not cased:
        text = text.lower()
    attr = "strs" if cased else "lows"
    if kind == "exact":
        def test(fv: FieldValue, view: EventView) -> bool:
            return text in getattr(fv, attr)
    elif kind == "any":
        def test(fv: FieldValue, view: EventView) -> bool:
            return bool(fv.strs)
    elif kind == "prefix":
        def test(fv: FieldValue, view: EventView) -> bool:
            return any(x.startswith(text) for x in getattr(fv, attr))
    elif kind == "suffix":
        def test(fv: FieldValue, view: EventView) -> bool:
            return any(x.endswith(text) for x in getattr(fv, attr))
    elif kind == "contains":
        def test(fv: FieldValue, view: EventView) -> bool:
            return any(text in x for x in getattr(fv, attr))
    else:
        full = _wildcard_matcher(wildcard_regex(s, not cased))

        def test(fv: FieldValue, view: EventView) -> bool:
            return any(full(x) is not None for x in getattr(fv, attr))
    test.shape = (kind, text, cased)  # type: ignore[attr-defined]
    test.atom = _atom(kind, text, s)  # type: ignore[attr-defined]
    return test


def plain_shapes(v: Any) -> list[tuple] | None:
    """[(kind, lower-cased text, False)] for a case-insensitive string (or an expansion of them,
    from windash/base64offset) without placeholders whose shape has a direct str-method test
    (exact, prefix, suffix, contains); None otherwise."""
    if isinstance(v, SigmaExpansion):
        out: list[tuple] = []
        for sub in v.values:
            shapes = plain_shapes(sub)
            if shapes is None:
                return None
            out.extend(shapes)
        return out
    if type(v) is not SigmaString:
        return None
    kind, text = string_shape(v)
    if kind in ("any", "pattern"):
        return None
    low = text.lower()  # type: ignore[union-attr]
    return [(kind, text if low == text else low, False)]  # share pySigma's string when already lower


@lru_cache(maxsize=65536)
def shape_atom(kind: str, text: str, cased: bool = False) -> tuple:
    """("s", RE2 pattern on lower-cased text, rough chance it holds in an event)."""
    esc = re.escape(text.lower())
    chance = {"exact": 0.02, "prefix": 0.05, "suffix": 0.05}.get(kind, 0.3 if len(text) < 4 else 0.1)
    return ("s", "(?s)" + {"exact": f"^{esc}$", "prefix": f"^{esc}", "suffix": f"{esc}$",
                           "contains": esc}[kind], chance)


def _atom(kind: str, text: str | None, s: SigmaString) -> tuple | None:
    """An RE2 pattern on lower-cased text that holds whenever the string test holds (cased tests
    included: a case-sensitive match is also a case-insensitive one). Used by the rule index."""
    if kind == "any":
        return None
    if kind == "pattern":
        return ("s", "^(?:" + wildcard_regex(s, True) + ")$", 0.1)
    return shape_atom(kind, text)  # type: ignore[arg-type]


# Holds whenever the field has any value with a string form: every value test but null and exists
# needs one (numbers, booleans, addresses and timestamps all have a string form in FieldValue.lows).
PRESENT = ("s", "(?s)^", 0.9)


def test_atoms(test: Test) -> list[tuple] | None:
    """Atoms one of which holds whenever `test` holds; None when no such list is known."""
    if test is null_test or test is never or getattr(test, "absent_ok", False):
        return None
    parts = getattr(test, "parts", None)
    if parts is not None:
        out: list[tuple] = []
        for p in parts:
            sub = test_atoms(p)
            if sub is None:
                return None
            out.extend(sub)
        return out
    atoms = getattr(test, "atoms", None)
    if atoms is not None:
        return list(atoms)
    atom = getattr(test, "atom", None)
    return [atom if atom is not None else PRESENT]


# --- other value types --------------------------------------------------------------------------

def number_test(n: SigmaNumber) -> Test:
    target = n.number

    def test(fv: FieldValue, view: EventView) -> bool:
        return target in fv.nums
    test.atom = ("n", target, 0.1)  # type: ignore[attr-defined]
    return test


def bool_test(b: SigmaBool) -> Test:
    # Matched on string forms, as every other value is: true/false in any case, and 1/0 (how many
    # stores keep booleans, SQLite among them) whether the event carries the number or its text.
    accept = ("true", "1") if b.boolean else ("false", "0")

    def test(fv: FieldValue, view: EventView) -> bool:
        return any(x in accept for x in fv.lows)
    return test


def null_test(fv: FieldValue, view: EventView) -> bool:
    return fv.is_null


def regex_test(r: SigmaRegularExpression) -> Test:
    flags = 0
    for flag in r.flags:
        flags |= SigmaRegularExpression.sigma_to_python_flags[flag]
    # pySigma validated the pattern when it parsed the rule; compile on first use (saves memory).
    rx = GuardedRegex(str(r.regexp), flags, lazy=True)
    search = rx.search

    def test(fv: FieldValue, view: EventView) -> bool:
        for x in fv.strs:
            try:
                if search(x):
                    return True
            except RegexTimeout as e:
                view.errors.append(str(e))
        return False
    test.regex = rx  # type: ignore[attr-defined]
    return test


@lru_cache(maxsize=1024)
def _ipv4_atoms(network: str) -> tuple[tuple, ...]:
    """Octet-aligned text prefixes (pySigma's own expansion) cover every dotted-quad address of the
    network, which is all ip_address() accepts for IPv4. ip_address() sees the value after
    str.strip(), which removes more kinds of space than RE2's \\s: any non-digits may surround it.
    Cached: expanding through ipaddress is slow and catalogs repeat the same few networks."""
    return tuple(("s", "(?s)^[^0-9]*" + re.escape(p.rstrip("*")) + ("" if p.endswith("*") else "[^0-9]*$"), 0.05)
                 for p in SigmaCIDRExpression(network).expand())


def cidr_test(c: SigmaCIDRExpression) -> Test:
    network = c.network

    def test(fv: FieldValue, view: EventView) -> bool:
        for ip in fv.ips:
            if ip in network:
                return True
        return False
    if network.version == 4:
        test.atoms = _ipv4_atoms(str(network))  # type: ignore[attr-defined]
    return test


_COMPARE = {
    CompareOperators.LT: operator.lt, CompareOperators.LTE: operator.le,
    CompareOperators.GT: operator.gt, CompareOperators.GTE: operator.ge,
    CompareOperators.NEQ: operator.ne,
}


def compare_test(c: SigmaCompareExpression) -> Test:
    op, target = _COMPARE[c.op], c.number.number

    def test(fv: FieldValue, view: EventView) -> bool:
        return any(op(x, target) for x in fv.nums)
    return test


def exists_test(e: SigmaExists) -> Test:
    want = bool(e.exists)

    def test(fv: FieldValue, view: EventView) -> bool:
        return fv.present is want
    test.absent_ok = True  # type: ignore[attr-defined]
    return test


def fieldref_test(f: SigmaFieldReference) -> Test:
    other = f.field
    if f.starts_with and f.ends_with:
        rel: Callable[[str, str], bool] = lambda a, b: b in a
    elif f.starts_with:
        rel = str.startswith
    elif f.ends_with:
        rel = str.endswith
    else:
        rel = operator.eq

    def test(fv: FieldValue, view: EventView) -> bool:
        refs = view.field(other).lows
        return any(rel(a, b) for a in fv.lows for b in refs)
    return test


_PARTS = {
    TimestampPart.MINUTE: lambda d: d.minute, TimestampPart.HOUR: lambda d: d.hour,
    TimestampPart.DAY: lambda d: d.day, TimestampPart.WEEK: lambda d: d.isocalendar()[1],
    TimestampPart.MONTH: lambda d: d.month, TimestampPart.YEAR: lambda d: d.year,
}


def timestamp_test(t: SigmaTimestampPart) -> Test:
    part, target = _PARTS[t.timestamp_part], t.number

    def test(fv: FieldValue, view: EventView) -> bool:
        for x in fv.strs:
            try:
                d = datetime.fromisoformat(x.strip().replace("Z", "+00:00"))
            except ValueError:
                continue
            if part(d) == target:
                return True
        return False
    return test


def any_of(tests: list[Test]) -> Test:
    if len(tests) == 1:
        return tests[0]

    def test(fv: FieldValue, view: EventView) -> bool:
        for t in tests:
            if t(fv, view):
                return True
        return False
    test.parts = tests  # type: ignore[attr-defined]
    return test


def resolve_placeholders(value: Any, placeholders: dict[str, list[str]]) -> list[Any]:
    """`|expand`: each %name% becomes the configured values (or-linked); unknown names are an error."""
    def callback(p: Placeholder):
        if p.name not in placeholders:
            raise UnsupportedValue(f"placeholder %{p.name}% has no values in the configuration")
        for v in placeholders[p.name]:
            yield SigmaString(str(v))
    return value.replace_placeholders(callback)


def value_test(value: Any, placeholders: dict[str, list[str]]) -> Test:
    """Compile one pySigma value; raises UnsupportedValue for what cannot be matched."""
    if isinstance(value, SigmaExpansion):
        return any_of([value_test(v, placeholders) for v in value.values])
    if isinstance(value, (SigmaString, SigmaRegularExpression)) and value.contains_placeholder():
        return any_of([value_test(v, placeholders) for v in resolve_placeholders(value, placeholders)])
    if isinstance(value, SigmaString):
        return string_test(value)
    if isinstance(value, SigmaTimestampPart):
        return timestamp_test(value)
    if isinstance(value, SigmaNumber):
        return number_test(value)
    if isinstance(value, SigmaBool):
        return bool_test(value)
    if isinstance(value, SigmaNull):
        return null_test
    if isinstance(value, SigmaRegularExpression):
        return regex_test(value)
    if isinstance(value, SigmaCIDRExpression):
        return cidr_test(value)
    if isinstance(value, SigmaCompareExpression):
        return compare_test(value)
    if isinstance(value, SigmaExists):
        return exists_test(value)
    if isinstance(value, SigmaFieldReference):
        return fieldref_test(value)
    raise UnsupportedValue(f"values of type {type(value).__name__} are not supported")


def keyword_value(value: Any) -> Any:
    """A keyword (no field) matches anywhere inside any value of the event: plain strings get
    wildcards around them, as full-text search does."""
    if isinstance(value, SigmaExpansion):
        return SigmaExpansion([keyword_value(v) for v in value.values])
    if isinstance(value, SigmaString):
        cls = type(value)
        out = value
        if not out.startswith(SpecialChars.WILDCARD_MULTI):
            out = SpecialChars.WILDCARD_MULTI + out
        if not out.endswith(SpecialChars.WILDCARD_MULTI):
            out = out + SpecialChars.WILDCARD_MULTI
        if cls is not type(out):
            out = SigmaCasedString.from_sigma_string(out)
        return out
    if isinstance(value, SigmaNumber):
        return SigmaString("*" + str(value.number) + "*")
    return value
