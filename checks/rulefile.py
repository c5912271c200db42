"""A rule file parsed once: YAML data and positions, and the pySigma object built from that same data."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError, SigmaRuleLocation
from sigma.rule import SigmaRule

from .evaluator.policy import RULE_POLICY
from .yamldoc import Document, YamlError, decode, load_all

# Rule files beyond this size are refused before parsing: no real rule comes near it.
MAX_RULE_BYTES = 5 * 1024 * 1024
# Documents per file beyond which the rest are not built (legacy collections hold a handful).
MAX_DOCS = 500


@dataclass
class RuleDoc:
    path: str
    index: int
    doc: Document
    rule: SigmaRule | SigmaCorrelationRule | None = None
    # Errors pySigma collected, or raised while building the rule.
    errors: list[Exception] = field(default_factory=list)

    @property
    def data(self) -> Any:
        return self.doc.data

    @property
    def rule_id(self) -> str | None:
        if isinstance(self.data, dict) and self.data.get("id") is not None:
            return str(self.data["id"])
        return None

    @property
    def is_correlation(self) -> bool:
        return isinstance(self.data, dict) and "correlation" in self.data


@dataclass
class RuleFile:
    path: str
    docs: list[RuleDoc] = field(default_factory=list)
    yaml_error: YamlError | None = None
    # The decoded text, split in lines, for locating tokens inside a scalar (e.g. a name in a condition).
    lines: list[str] = field(default_factory=list)


class _Location(SigmaRuleLocation):
    """The rule's repository path as pySigma's source. Its str() stays the relative path: pySigma's own
    resolves it against the working directory, a file system call each time a validator formats it."""

    def __str__(self) -> str:
        return self.path.as_posix()


def build_rule(data: dict[str, Any], path: str | None = None
               ) -> tuple[SigmaRule | SigmaCorrelationRule | None, list[Exception]]:
    cls = SigmaCorrelationRule if "correlation" in data else SigmaRule
    try:
        # The source lets pySigma's file-name validators see the path; RULE_POLICY lets look-around
        # regexes load (validated, never run here) and knows `utf16le`.
        rule = cls.from_dict(data, collect_errors=True, source=_Location(path) if path else None,
                             policy=RULE_POLICY)
    except SigmaError as e:
        return None, [e]
    except Exception as e:  # pySigma raises plain Python errors on some malformed inputs
        return None, [e]
    return rule, list(rule.errors)


def condition_errors(rule: Any) -> list[tuple[int, Exception]]:
    """The conditions pySigma cannot parse (it parses them lazily), with their index."""
    out: list[tuple[int, Exception]] = []
    for i, cond in enumerate(getattr(getattr(rule, "detection", None), "parsed_condition", None) or []):
        try:
            cond.parse()
        except Exception as err:  # anything pySigma raises on a condition is an error of the rule
            out.append((i, err))
    return out


def _merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in overlay.items():
        out[k] = _merge(out[k], v) if isinstance(out.get(k), dict) and isinstance(v, dict) else v
    return out


def parse_rule_file(path: str, raw: bytes) -> RuleFile:
    rf = RuleFile(path)
    if len(raw) > MAX_RULE_BYTES:
        rf.yaml_error = YamlError(f"file is {len(raw):,} bytes; rule files above {MAX_RULE_BYTES:,} are not read", 1, 1)
        return rf
    docs: list[Document] = []
    try:
        text = decode(raw)
    except YamlError as e:
        rf.yaml_error = e
        return rf
    rf.lines = text.splitlines()
    try:
        for d in load_all(text):
            if len(docs) == MAX_DOCS:
                line = d.pos(()).line
                raise YamlError(f"more than {MAX_DOCS} YAML documents in one file; the rest are not read", line, 1)
            docs.append(d)
    except YamlError as e:
        rf.yaml_error = e
    # Legacy multi-document collections: `action: global` is merged into the documents after it.
    glob: dict[str, Any] = {}
    for i, d in enumerate(docs):
        data = d.data
        if isinstance(data, dict) and data.get("action") in ("global", "reset", "repeat"):
            action = data["action"]
            body = {k: v for k, v in data.items() if k != "action"}
            if action == "global":
                glob = body
            elif action == "reset":
                glob = {}
            rd = RuleDoc(path, i, d)
            if action == "repeat" and rf.docs and isinstance(rf.docs[-1].data, dict):
                merged = _merge(rf.docs[-1].data, body)
                rd.doc = replace(d, data=merged)
                rd.rule, rd.errors = build_rule(merged, path)
                rf.docs.append(rd)
            continue
        rd = RuleDoc(path, i, d)
        if isinstance(data, dict):
            merged = _merge(glob, data) if glob else data
            if glob:
                rd.doc = replace(d, data=merged)
            rd.rule, rd.errors = build_rule(merged, path)
        rf.docs.append(rd)
    return rf
