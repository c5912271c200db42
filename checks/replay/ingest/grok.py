"""Grok: `%{SYNTAX:semantic:type}` expressions expanded once into one compiled regular expression each.

The standard pattern library ships as data (`patterns/grok-patterns`). Semantics with dots (`source.ip`)
or in ECS bracket form (`[source][ip]`) are nested object paths. Matching is a search (unanchored), as
in Elasticsearch; every match runs under a time limit, so a catastrophic pattern fails instead of hanging.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import regex

from .document import ProcessorError

# Bounds one match: a pattern that backtracks beyond this is a failure, never a hang.
MATCH_TIMEOUT_S = 0.25
MAX_EXPANSION_DEPTH = 64
TYPES = {"int", "long", "float", "double", "boolean", "string"}

_REF = regex.compile(r"%\{(?P<name>[A-Za-z0-9_]+)(?::(?P<semantic>[^:}]+))?(?::(?P<type>[A-Za-z]+))?\}")
# An Oniguruma named group `(?<name>...)`: a lookbehind `(?<=` / `(?<!` is not one.
_NAMED_GROUP = regex.compile(r"\(\?<(?![=!])(?P<name>[^>]+)>")
_ECS_BRACKETS = regex.compile(r"^(?:\[[^\[\]]+\])+$")


class GrokCompileError(ValueError):
    pass


@lru_cache(maxsize=1)
def standard_patterns() -> dict[str, str]:
    text = resources.files(__package__).joinpath("patterns/grok-patterns").read_text("utf-8")
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, definition = line.partition(" ")
            # The library uses no backreferences, so its plain groups need not capture (~15% faster matching).
            out[name] = non_capturing(definition)
    return out


def non_capturing(pattern: str) -> str:
    """`(` -> `(?:` outside character classes and escapes; `(?...)` groups are left as they are."""
    out: list[str] = []
    i, n, in_class = 0, len(pattern), False
    while i < n:
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            in_class = c != "]"
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            out.append(c)
            i += 1
            # `^` and a `]` right after the opening bracket belong to the class.
            if pattern.startswith("^", i):
                out.append("^")
                i += 1
            if pattern.startswith("]", i):
                out.append("]")
                i += 1
            continue
        out.append("(?:" if c == "(" and not pattern.startswith("?", i + 1) else c)
        i += 1
    return "".join(out)


def field_path(semantic: str) -> str:
    """`[source][ip]` (ECS v1 style) and `source.ip` both name the nested field source -> ip."""
    if _ECS_BRACKETS.match(semantic):
        return ".".join(part for part in semantic.strip("[]").split("]["))
    return semantic


@dataclass(frozen=True, slots=True)
class Capture:
    group: str
    field: str
    type: str | None


def _convert(value: str, type_: str | None) -> Any:
    if type_ is None or type_ == "string":
        return value
    try:
        if type_ in ("int", "long"):
            return int(value)
        if type_ in ("float", "double"):
            return float(value)
    except ValueError:
        raise ProcessorError(f"For input string: \"{value}\" (grok type {type_})") from None
    return value.lower() == "true"  # boolean, as Java's Boolean.parseBoolean


class GrokPattern:
    """One grok expression, expanded and compiled."""

    def __init__(self, expression: str, definitions: dict[str, str]):
        self.expression = expression
        self.captures: list[Capture] = []
        expanded = self._expand(expression, definitions, 0, ())
        self._names = tuple(c.group for c in self.captures)
        fields = [c.field for c in self.captures]
        self._repeated = len(set(fields)) != len(fields)
        try:
            self.regex = regex.compile(expanded, regex.VERSION0)
        except regex.error as e:
            raise GrokCompileError(f"invalid grok expression [{expression}]: {e}") from None

    def _group(self, semantic: str, type_: str | None) -> str:
        if type_ is not None and type_ not in TYPES:
            raise GrokCompileError(f"unsupported grok type [{type_}] in [{self.expression}] "
                                   f"(supported: {', '.join(sorted(TYPES))})")
        name = f"g{len(self.captures)}"
        self.captures.append(Capture(name, field_path(semantic), type_))
        return name

    def _expand(self, text: str, definitions: dict[str, str], depth: int, stack: tuple[str, ...]) -> str:
        if depth > MAX_EXPANSION_DEPTH:
            raise GrokCompileError(f"grok patterns nest deeper than {MAX_EXPANSION_DEPTH} levels")
        text = _NAMED_GROUP.sub(lambda m: f"(?P<{self._group(m['name'], None)}>", text)

        def ref(m: regex.Match[str]) -> str:
            name = m["name"]
            if name in stack:
                raise GrokCompileError(f"circular reference in pattern [{name}]: {' -> '.join(stack + (name,))}")
            if name not in definitions:
                raise GrokCompileError(f"Unable to find pattern [{name}] in Grok's pattern dictionary")
            inner = self._expand(definitions[name], definitions, depth + 1, stack + (name,))
            if m["semantic"]:
                return f"(?P<{self._group(m['semantic'], m['type'])}>{inner})"
            return f"(?:{inner})"

        return _REF.sub(ref, text)

    def search(self, value: str) -> regex.Match[str] | None:
        try:
            return self.regex.search(value, timeout=MATCH_TIMEOUT_S)
        except TimeoutError:
            raise ProcessorError(f"grok pattern [{self.expression}] exceeded its time limit "
                                 f"({MATCH_TIMEOUT_S}s) on a value of {len(value)} characters") from None

    def captured(self, m: regex.Match[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if not self.captures:
            return out
        values = m.group(*self._names) if len(self._names) > 1 else (m.group(self._names[0]),)
        if not self._repeated:
            for cap, v in zip(self.captures, values):
                if v is not None:  # None: the group took no part in the match
                    out[cap.field] = v if cap.type is None else _convert(v, cap.type)
            return out
        # A semantic used more than once collects every value that matched, as Elasticsearch 8 does.
        gathered: dict[str, list[Any]] = {}
        for cap, v in zip(self.captures, values):
            if v is not None:
                gathered.setdefault(cap.field, []).append(v if cap.type is None else _convert(v, cap.type))
        return {k: vs[0] if len(vs) == 1 else vs for k, vs in gathered.items()}


class Grok:
    """An ordered list of expressions. Elasticsearch joins them into one alternation `(?:p0)|(?:p1)|...` and
    searches with it, so the match that starts **leftmost** in the text wins, and among matches starting at
    the same place the earlier expression wins (not simply "the first expression that matches anywhere")."""

    def __init__(self, patterns: list[str], pattern_definitions: dict[str, str] | None = None):
        if not patterns:
            raise GrokCompileError("[patterns] must not be empty")
        definitions = {**standard_patterns(), **(pattern_definitions or {})}
        self.patterns = [GrokPattern(p, definitions) for p in patterns]

    def match(self, value: str) -> tuple[int, dict[str, Any]] | None:
        best: tuple[int, regex.Match[str]] | None = None
        for i, p in enumerate(self.patterns):
            m = p.search(value)
            if m is not None and (best is None or m.start() < best[1].start()):
                best = (i, m)
                if m.start() == 0:
                    break  # nothing can start further left
        if best is None:
            return None
        return best[0], self.patterns[best[0]].captured(best[1])
