"""What replay reports: one result per test event, with the referenced fields that changed, and field comparison."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from ..evaluator import MISSING, lookup

VERDICTS = ("PASS", "RULE_BROKEN", "NEW_MATCH", "FIELD_DRIFT", "UNPARSED", "BACKEND_ERROR", "SKIPPED")
BROKEN = ("RULE_BROKEN", "NEW_MATCH", "FIELD_DRIFT", "UNPARSED", "BACKEND_ERROR")


@dataclass
class FieldChange:
    field: str
    kind: str  # changed | vanished | appeared
    before: Any = None
    after: Any = None

    def describe(self) -> str:
        if self.kind == "vanished":
            return f"{self.field}: {_show(self.before)} → (absent)"
        if self.kind == "appeared":
            return f"{self.field}: (absent) → {_show(self.after)}"
        return f"{self.field}: {_show(self.before)} → {_show(self.after)}"

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "kind": self.kind, "before": self.before, "after": self.after}


@dataclass
class ReplayResult:
    rule_id: str | None
    rule_path: str
    test_name: str
    test_path: str
    test_line: int
    verdict: str
    detail: str
    field_diff: list[FieldChange] = field(default_factory=list)
    rule_title: str = ""
    expect: str = ""
    parser: str | None = None
    backend: str | None = None
    parser_version: str = ""
    cached: bool = False
    # The detail without the list of field changes (shown apart in tables).
    summary: str = ""

    @property
    def broken(self) -> bool:
        return self.verdict in BROKEN

    def to_dict(self) -> dict[str, Any]:
        return {"rule_id": self.rule_id, "rule_path": self.rule_path, "rule_title": self.rule_title,
                "test_name": self.test_name, "test_path": self.test_path, "test_line": self.test_line,
                "expect": self.expect, "verdict": self.verdict, "detail": self.detail,
                "field_diff": [c.to_dict() for c in self.field_diff], "parser": self.parser,
                "backend": self.backend, "parser_version": self.parser_version, "cached": self.cached}


@dataclass
class ReplayReport:
    results: list[ReplayResult] = field(default_factory=list)
    rules: int = 0
    # Rule selectors (ids, paths, names) that named no rule.
    unknown_rules: list[str] = field(default_factory=list)
    cache_hits: int = 0
    # Logs a parser actually ran on (not from the cache, not lost to a backend error).
    parsed: int = 0

    @property
    def counts(self) -> dict[str, int]:
        return {v: sum(r.verdict == v for r in self.results) for v in VERDICTS}

    @property
    def broken(self) -> bool:
        return any(r.broken for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {"rules": self.rules, "counts": self.counts, "broken": self.broken,
                "unknown_rules": self.unknown_rules, "cache_hits": self.cache_hits, "parsed": self.parsed,
                "results": [r.to_dict() for r in self.results]}


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


# --- field comparison ------------------------------------------------------------------------------------

def _norm(value: Any) -> Any:
    """Sigma compares values as strings: 4624 and "4624", true and "true" are the same value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float, str)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _norm(v) for k, v in value.items()}
    return value


def field_diff(fields: Iterable[str], stored: Mapping[str, Any], parsed: Mapping[str, Any]) -> list[FieldChange]:
    out: list[FieldChange] = []
    for f in sorted(fields):
        before, after = lookup(stored, f), lookup(parsed, f)
        if before is MISSING and after is MISSING:
            continue
        if after is MISSING:
            out.append(FieldChange(f, "vanished", before, None))
        elif before is MISSING:
            out.append(FieldChange(f, "appeared", None, after))
        elif _norm(before) != _norm(after):
            out.append(FieldChange(f, "changed", before, after))
    return out
