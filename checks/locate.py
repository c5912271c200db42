"""Where in a rule file a pySigma error or validator issue belongs.

pySigma keeps no positions. Errors and issues name what is wrong (a quoted value, a modifier, a tag, a
detection item object); this module finds that element in the YAML document and returns its position,
falling back to the rule attribute the error's class is about, then to the document start.
"""
from __future__ import annotations

import re
from dataclasses import fields, is_dataclass
from functools import lru_cache
from typing import Any, Iterator

from sigma.exceptions import (SigmaAuthorError, SigmaConditionError, SigmaCorrelationRuleError, SigmaDateError,
                              SigmaDescriptionError, SigmaDetectionError, SigmaFalsePositivesError,
                              SigmaFieldsError, SigmaIdentifierError, SigmaLevelError, SigmaLicenseError,
                              SigmaLogsourceError, SigmaModifiedError, SigmaReferencesError,
                              SigmaRelatedError, SigmaScopeError, SigmaStatusError, SigmaTagError,
                              SigmaTaxonomyError, SigmaTitleError)
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaLogSource, SigmaRuleTag
from sigma.types import SigmaString

from .rulefile import RuleDoc, RuleFile
from .yamldoc import Pos

Path = tuple[Any, ...]

# The attribute each error class is about, in the order of preference.
_ERROR_KEYS: list[tuple[type, Path]] = [
    (SigmaTitleError, ("title",)), (SigmaIdentifierError, ("id",)), (SigmaDateError, ("date",)),
    (SigmaModifiedError, ("modified",)), (SigmaLevelError, ("level",)), (SigmaStatusError, ("status",)),
    (SigmaLogsourceError, ("logsource",)), (SigmaConditionError, ("detection", "condition")),
    (SigmaDetectionError, ("detection",)), (SigmaReferencesError, ("references",)),
    (SigmaFalsePositivesError, ("falsepositives",)), (SigmaDescriptionError, ("description",)),
    (SigmaAuthorError, ("author",)), (SigmaRelatedError, ("related",)), (SigmaFieldsError, ("fields",)),
    (SigmaScopeError, ("scope",)), (SigmaTaxonomyError, ("taxonomy",)), (SigmaLicenseError, ("license",)),
    (SigmaTagError, ("tags",)), (SigmaCorrelationRuleError, ("correlation",)),
]

# Validator issue classes whose name says which attribute they are about.
_ISSUE_WORDS: list[tuple[str, Path]] = [
    ("Title", ("title",)), ("Description", ("description",)), ("Modified", ("modified",)),
    ("Date", ("date",)), ("Status", ("status",)), ("Level", ("level",)), ("Author", ("author",)),
    ("Tag", ("tags",)), ("Logsource", ("logsource",)), ("Link", ("references",)),
    ("Reference", ("references",)), ("Falsepositive", ("falsepositives",)),
    ("Condition", ("detection", "condition")), ("Correlation", ("correlation",)), ("Identifier", ("id",)),
    ("Fields", ("fields",)), ("Field", ("detection",)), ("Detection", ("detection",)),
]

_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'")


def walk(data: Any, prefix: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Every (path, value) under `data`, containers included, depth first in document order."""
    stack = [(prefix, data)]
    while stack:
        path, value = stack.pop()
        yield path, value
        if isinstance(value, dict):
            stack.extend(reversed([(path + (k,), v) for k, v in value.items()]))
        elif isinstance(value, list):
            stack.extend(reversed([(path + (i,), v) for i, v in enumerate(value)]))


def get(data: Any, path: Path) -> Any:
    for key in path:
        if isinstance(data, dict) and key in data:
            data = data[key]
        elif isinstance(data, list) and isinstance(key, int) and key < len(data):
            data = data[key]
        else:
            return None
    return data


class Locator:
    """Positions inside one document of a rule file."""

    def __init__(self, rf: RuleFile, rd: RuleDoc):
        self.rf, self.rd, self.doc = rf, rd, rd.doc
        self.data = rd.data if isinstance(rd.data, dict) else {}

    # -- primitives ---------------------------------------------------------------------------
    def at(self, path: Path) -> Pos:
        return self.doc.pos(path)

    def value_at(self, path: Path) -> Pos:
        return self.doc.value_pos(path)

    def has(self, path: Path) -> bool:
        return path in self.doc.keys or path in self.doc.values

    def token(self, path: Path, token: str, offset: int | None = None) -> Pos:
        """The position of `token` inside the scalar at `path` (found in the source text), else the scalar."""
        base = self.value_at(path)
        if not token and offset is None:
            return base
        lines = self.rf.lines
        for ln in range(base.line, min(base.end_line, len(lines)) + 1):
            text = lines[ln - 1]
            start = base.column - 1 if ln == base.line else 0
            if offset is not None and ln == base.line:
                # An offset into the condition string: skip an opening quote of the scalar.
                col = start + offset + (1 if text[start:start + 1] in "'\"" else 0)
                if col <= len(text):
                    return Pos(ln, col + 1, ln, col + 1 + len(token))
                return base
            idx = _find_word(text, token, start)
            if idx >= 0:
                return Pos(ln, idx + 1, ln, idx + 1 + len(token))
        return base

    def find_value(self, pred: Any, under: Path = ()) -> Path | None:
        for path, value in walk(get(self.data, under), under):
            if not isinstance(value, (dict, list)) and value is not None and pred(value):
                return path
        return None

    def find_key(self, pred: Any, under: Path = ()) -> Path | None:
        for path, value in walk(get(self.data, under), under):
            if path[len(under):] and isinstance(path[-1], str) and pred(path[-1]):
                return path
        return None

    # -- Sigma elements -----------------------------------------------------------------------
    def condition_paths(self) -> list[Path]:
        cond = get(self.data, ("detection", "condition"))
        if isinstance(cond, list):
            return [("detection", "condition", i) for i in range(len(cond))]
        return [("detection", "condition")]

    def in_condition(self, token: str, index: int | None = None, offset: int | None = None) -> Pos:
        paths = self.condition_paths()
        if index is not None and index < len(paths):
            paths = [paths[index]]
        for path in paths:
            text = get(self.data, path)
            if offset is not None:
                return self.token(path, token, offset)
            if isinstance(text, str) and _find_word(text, token, 0) >= 0:
                return self.token(path, token)
        return self.at(paths[0])

    def field_key(self, field: str | None, modifiers: list[str] | None = None, under: Path = ("detection",),
                  having: str | None = None) -> Path | None:
        """The detection key `field|mod|mod`: with exactly `modifiers` if given, else one using the modifier
        `having` if any, else the first with that field."""
        candidates = []
        for path, _ in walk(get(self.data, under), under):
            if path[len(under):] and isinstance(path[-1], str) and path[-1] != "condition":
                parts = path[-1].split("|")
                if field is not None and parts[0] == field:
                    candidates.append((path, parts[1:]))
        if not candidates:
            return None
        if modifiers:
            for path, mods in candidates:
                if [m.lower() for m in mods] == [m.lower() for m in modifiers]:
                    return path
        if having:
            for path, mods in candidates:
                if having in (m.lower() for m in mods):
                    return path
        return candidates[0][0]

    def tag(self, name: str) -> Path | None:
        name = name.lower()
        return self.find_value(lambda v: str(v).strip().lower() == name, ("tags",))

    def detection_item(self, item: SigmaDetectionItem) -> Path | None:
        rule = self.rd.rule
        detections = getattr(getattr(rule, "detection", None), "detections", None) or {}
        for name, det in detections.items():
            if _contains(det, item):
                under = ("detection", name)
                mods = [_modifier_name(m) for m in item.modifiers]
                path = self.field_key(item.field, mods, under) if item.field is not None else None
                if path is None and item.value:
                    path = self.value(item.value[0], under)
                return path or under
        if item.field is not None:
            return self.field_key(item.field)
        return None

    def value(self, value: Any, under: Path = ("detection",)) -> Path | None:
        text = value.original if isinstance(value, SigmaString) else str(value)
        return (self.find_value(lambda v: str(v) == text, under)
                or self.find_value(lambda v: text in str(v), under))

    # -- errors -------------------------------------------------------------------------------
    def error(self, err: Exception, condition_index: int | None = None) -> Pos:
        # The bare message: str() of a SigmaError appends " in <source>".
        msg = str(err.args[0]) if err.args else str(err)
        quoted = _QUOTED.findall(msg)
        if isinstance(err, SigmaConditionError) or condition_index is not None:
            m = re.search(r"\(at char (\d+)\)", msg)
            if m:
                return self.in_condition("", condition_index, int(m.group(1)))
            if quoted:
                token = quoted[0]
                sel = re.match(r"(?:1|all|any) of (\S+)$", token)
                return self.in_condition(sel.group(1) if sel else token, condition_index)
            if condition_index is not None or self.has(("detection", "condition")):
                return self.at(self.condition_paths()[condition_index or 0])
        if msg.startswith("Unknown modifier") and quoted:
            path = self.find_key(lambda k: quoted[0] in k.split("|")[1:], ("detection",))
            if path:
                return self.at(path)
        if "tag" in msg.lower().split()[:3] and "tags" in self.data:
            bad = self.find_value(lambda v: "." not in str(v), ("tags",))
            if bad:
                return self.value_at(bad)
        correlation = self.data.get("correlation")
        if isinstance(err, SigmaCorrelationRuleError) and isinstance(correlation, dict):
            # "... group-by definition must be ...": the correlation attribute the message names.
            for key in sorted(correlation, key=lambda k: -len(str(k))):
                if re.search(rf"\b{re.escape(str(key))}\b", msg) and not quoted:
                    return self.value_at(("correlation", key))
        for text in quoted:
            # A quoted value in the message (a regex, a CIDR, a date): point at it in the rule.
            path = self.value(text, ("detection",)) or self.value(text, ())
            if path:
                return self.token(path, text)
        for cls, key in _ERROR_KEYS:
            if isinstance(err, cls):
                # "must be a string", "is invalid": the value is wrong; "must have": the key is missing.
                return self.value_at(key) if self.has(key) else self.at(key)
        return self.at(())

    # -- validator issues ---------------------------------------------------------------------
    def issue(self, issue: Any) -> Pos:
        # A modifier the issue class is about ("SigmahqInvalidAllModifierIssue" -> all) picks among keys
        # naming the same field.
        words = {w.lower() for w in re.findall(r"[A-Z][a-z0-9]*", type(issue).__name__)}
        having = next((m for m in _modifier_names() if m in words), None)
        for f in fields(issue) if is_dataclass(issue) else ():
            if f.name in ("rules",):
                continue
            pos = self._issue_field(f.name, getattr(issue, f.name, None), having)
            if pos is not None:
                return pos
        name = type(issue).__name__
        if "Them" in name:  # "all of them" / "1 of them" conditions
            return self.in_condition("them")
        for word, key in _ISSUE_WORDS:
            if word in name and self.has(key):
                return self.at(key)
        return self.at(())

    def _issue_field(self, name: str, value: Any, having: str | None = None) -> Pos | None:
        if isinstance(value, (list, tuple, set)) and value and not isinstance(value, str):
            return self._issue_field(name, next(iter(value)), having)
        if isinstance(value, SigmaRuleTag):
            path = self.tag(f"{value.namespace}.{value.name}")
            return self.value_at(path) if path else None
        if isinstance(value, SigmaDetectionItem):
            path = self.detection_item(value)
            return self.at(path) if path else None
        if isinstance(value, SigmaString):
            path = self.value(value)
            return self.value_at(path) if path else None
        if isinstance(value, SigmaLogSource):
            return self.at(("logsource",))
        if not isinstance(value, str) or not value:
            return None
        if name in ("detection_name", "selection"):
            if self.has(("detection", value)):
                return self.at(("detection", value))
            return self.in_condition(value)
        if name == "condition_name":
            return self.in_condition(value)
        if name in ("field", "fieldname"):
            path = self.field_key(value, having=having) or self.find_key(lambda k: k == value)
            if path is None:
                path = self.find_value(lambda v: str(v) == value, ("fields",))
            return self.at(path) if path else None
        if name in ("tag", "missing_tactic", "techniques", "tlp"):
            path = self.tag(value if "." in value else f"{'tlp' if name == 'tlp' else 'detection'}.{value}")
            return self.value_at(path) if path else None
        if name in ("value", "link", "reference", "word", "unsupported_regexp", "user"):
            path = self.find_value(lambda v: value in str(v))
            return self.token(path, value) if path else None
        if name == "title" and self.has(("title",)):
            return self.value_at(("title",))
        return None


def _find_word(text: str, token: str, start: int) -> int:
    """Index of `token` as a whole identifier in text (not inside a longer name)."""
    for m in re.finditer(re.escape(token), text[start:]):
        i = start + m.start()
        before = text[i - 1] if i > 0 else " "
        after = text[i + len(token)] if i + len(token) < len(text) else " "
        if not (before.isalnum() or before == "_") and not (after.isalnum() or after in "_"):
            return i
    return text.find(token, start)


def _contains(det: Any, item: SigmaDetectionItem) -> bool:
    if det is item:
        return True
    if isinstance(det, SigmaDetection):
        return any(_contains(d, item) for d in det.detection_items)
    return False


@lru_cache(maxsize=1)
def _modifier_names() -> tuple[str, ...]:
    from sigma.modifiers import modifier_mapping
    return tuple(modifier_mapping)


def _modifier_name(mod: type) -> str:
    from sigma.modifiers import reverse_modifier_mapping
    return reverse_modifier_mapping.get(mod.__name__, mod.__name__)
