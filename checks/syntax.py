"""The syntax check: YAML errors, Sigma errors and validator issues, each at the line of the offending element.

Per rule document: pySigma's collected errors, the conditions (which pySigma parses lazily, so an undefined
selection only shows when forced), then the configured validators. Across the repository: duplicate rule
ids, and the rules a correlation refers to. Anything pySigma raises becomes a finding; nothing is fatal.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, fields, is_dataclass
from fnmatch import fnmatchcase
from typing import Any

from sigma.exceptions import SigmaError, SigmaTagError
from sigma.modifiers import reverse_modifier_mapping
from sigma.rule import SigmaDetectionItem, SigmaLogSource

from . import attack, offline
from .config import ConfigError
from .findings import Finding, Level
from .locate import Locator
from .repository import is_rule_path
from .rulefile import RuleDoc, RuleFile, condition_errors
from .runner import CheckContext
from .validation import SEVERITY_LEVEL, ValidatorSet, build_validators
from .yamldoc import Pos

CHECK = "syntax"
_IDENTIFIER = re.compile(r"[A-Za-z0-9_*\-]+")
_CONDITION_WORDS = {"and", "or", "not", "of", "them", "all", "any"}


def _finding(path: str, pos: Pos, level: Level, title: str, message: str, rule_id: str | None) -> Finding:
    end_col = pos.end_column if pos.end_line == pos.line and pos.end_column > pos.column else None
    return Finding(CHECK, path, pos.line, pos.line, level, title, message, rule_id=rule_id,
                   start_column=pos.column, end_column=end_col)


def _message(err: Exception) -> str:
    # SigmaError's str() appends " in <absolute path>"; the finding carries the path already.
    return str(err.args[0]) if err.args else type(err).__name__


def _error_title(err: Exception) -> str:
    if not isinstance(err, SigmaError):
        return "pySigma crashed"
    if isinstance(err, SigmaTagError) or "tag" in _message(err).lower().split()[:3]:
        return "Sigma tag error"
    words = re.findall(r"[A-Z][a-z]+", type(err).__name__.removeprefix("Sigma").removesuffix("Error"))
    return f"Sigma {' '.join(w.lower() for w in words)} error".replace("  ", " ") if words else "Sigma error"


def _issue_message(issue: Any) -> str:
    details = []
    for f in fields(issue) if is_dataclass(issue) else ():
        if f.name in ("rules", "description", "severity"):
            continue
        value = getattr(issue, f.name, None)
        if isinstance(value, (list, tuple, set)):
            value = ", ".join(str(v) for v in value)
        elif isinstance(value, dict):
            continue
        elif hasattr(value, "original"):
            value = value.original
        elif isinstance(value, SigmaDetectionItem):
            value = _describe_item(value)
        elif isinstance(value, SigmaLogSource):
            value = "/".join(str(v) for v in (value.product, value.category, value.service) if v)
        if value not in (None, ""):
            details.append(f"{f.name}: {value}")
    text = type(issue).description
    return f"{text} ({'; '.join(details)})" if details else text


def _describe_item(item: SigmaDetectionItem) -> str:
    mods = "".join(f"|{reverse_modifier_mapping.get(m.__name__, m.__name__)}" for m in item.modifiers)
    values = ", ".join(str(getattr(v, "original", v)) for v in item.value)
    return f"{item.field or '(keywords)'}{mods}: {values}"


def _drop_legacy_tactic_issue(issue: Any, rule: Any) -> bool:
    """A v19 tactic reported missing while the rule carries the legacy tactic that it replaced."""
    missing = str(getattr(issue, "missing_tactic", "")).removeprefix("attack.")
    if not missing:
        return False
    tags = {f"{t.namespace}.{t.name}".lower() for t in getattr(rule, "tags", None) or []}
    return any(f"attack.{legacy}" in tags and missing in successors
               for legacy, successors in attack.LEGACY_TACTICS.items())


class SyntaxRun:
    def __init__(self, ctx: CheckContext):
        self.ctx = ctx
        self.findings: list[Finding] = []
        self.validators: ValidatorSet | None = None
        self.rule_docs: dict[int, tuple[RuleFile, RuleDoc]] = {}
        try:
            self.validators = build_validators(ctx.config)
        except ConfigError as e:
            self.findings.append(Finding(CHECK, e.path, e.line, e.line, "failure", "Invalid validator config",
                                         f"{e.key}: {e.message}"))

    # -- per file ---------------------------------------------------------------------------------
    def file(self, rf: RuleFile) -> None:
        if rf.yaml_error:
            e = rf.yaml_error
            self.findings.append(Finding(CHECK, rf.path, e.line, e.line, "failure", "YAML error", e.message,
                                         start_column=e.column))
        elif not rf.docs:
            self.findings.append(Finding(CHECK, rf.path, 1, 1, "failure", "Empty rule file",
                                         "the file holds no YAML document"))
        rules = [rd for rd in rf.docs if isinstance(rd.data, dict)]
        if len(rules) > 1:
            self.findings.append(Finding(CHECK, rf.path, 1, 1, "notice", "Multi-document file",
                                         f"{len(rules)} rules in one file share its test events and ADS "
                                         "document", rule_id=rules[0].rule_id))
        for rd in rf.docs:
            if not isinstance(rd.data, dict):
                pos = rd.doc.pos(())
                kind = "empty document" if rd.data is None else f"a {type(rd.data).__name__}"
                self.findings.append(_finding(rf.path, pos, "failure", "Not a Sigma rule",
                                              f"document {rd.index + 1} is {kind}, not a mapping", None))
                continue
            self.document(rf, rd)

    def document(self, rf: RuleFile, rd: RuleDoc) -> None:
        loc = Locator(rf, rd)
        for path, pos in rd.doc.duplicates:
            first = rd.doc.keys.get(path)
            self.add(rf, pos, "failure", "Duplicate key",
                     f"key {'.'.join(map(str, path))!r} repeats line {first.line if first else '?'}; YAML keeps only "
                     "this last one, the earlier value is silently lost", rd)
        for err in rd.errors:
            pos, title, message = loc.error(err), _error_title(err), _message(err)
            if title == "Sigma tag error" and 0 < pos.line <= len(rf.lines):
                message = f"{rf.lines[pos.line - 1][pos.column - 1:].strip()!r}: {message}"
            self.add(rf, pos, "failure", title, message, rd)
        rule = rd.rule
        conditions = getattr(getattr(rule, "detection", None), "parsed_condition", None)
        if conditions is None:
            # pySigma gave up on the detection (e.g. a bad value): still name undefined selections.
            self.undefined_identifiers(rf, rd, loc)
        if rule is None:
            return
        self.rule_docs[id(rule)] = (rf, rd)
        clean = not rd.errors
        for i, err in condition_errors(rule):
            clean = False
            self.add(rf, loc.error(err, i), "failure", _error_title(err), _message(err), rd)
        if clean and self.validators is not None:
            self.validate(rf, rd, loc)

    def undefined_identifiers(self, rf: RuleFile, rd: RuleDoc, loc: Locator) -> None:
        detection = rd.data.get("detection")
        if not isinstance(detection, dict):
            return
        names = [str(k) for k in detection if k != "condition"]  # YAML keys may be null or numbers
        conditions = detection.get("condition")
        for i, cond in enumerate(conditions if isinstance(conditions, list) else [conditions]):
            if not isinstance(cond, str):
                continue
            for token in sorted(set(_IDENTIFIER.findall(cond)) - _CONDITION_WORDS, key=cond.find):
                if token.isdigit() or any(fnmatchcase(n, token) for n in names):
                    continue
                message = (f"Selector '{token}' doesn't match any detection" if "*" in token
                           else f"Detection '{token}' not defined in detections")
                self.add(rf, loc.in_condition(token, i), "failure", "Sigma condition error", message, rd)

    def validate(self, rf: RuleFile, rd: RuleDoc, loc: Locator) -> None:
        for name, validator in self.validators.for_rule(rd.rule_id):
            try:
                issues = validator.validate(rd.rule)
            except Exception as err:  # a validator tripping over an odd rule must not stop the run
                self.add(rf, loc.at(()), "warning", f"validator {name} failed",
                         f"{type(err).__name__}: {err}", rd)
                continue
            for issue in issues:
                self.issue(name, issue, rf, rd, loc)

    def issue(self, name: str, issue: Any, rf: RuleFile, rd: RuleDoc, loc: Locator) -> None:
        if _drop_legacy_tactic_issue(issue, rd.rule):
            return
        level = SEVERITY_LEVEL.get(issue.severity, "notice")
        self.add(rf, loc.issue(issue), level, f"validator {name}", _issue_message(issue), rd)

    def finalize(self) -> None:
        """Issues validators emit across rules (duplicate titles, file names), at each rule involved."""
        if self.validators is None:
            return
        for name, validator in self.validators.validators.items():
            try:
                issues = validator.finalize()
            except Exception:
                continue
            for issue in issues:
                for rule in issue.rules:
                    hit = self.rule_docs.get(id(rule))
                    if hit:
                        rf, rd = hit
                        if name not in self.validators.exclusions.get(str(rd.rule_id).lower(), set()):
                            self.issue(name, issue, rf, rd, Locator(rf, rd))

    def add(self, rf: RuleFile, pos: Pos, level: Level, title: str, message: str, rd: RuleDoc | None) -> None:
        self.findings.append(_finding(rf.path, pos, level, title, message, rd.rule_id if rd else None))


# -- across the repository ---------------------------------------------------------------------------
_ID_LINE = re.compile(rb"^id:[ \t]*['\"]?([^'\"\s#]+)", re.M)
_NAME_LINE = re.compile(rb"^name:[ \t]*['\"]?([^'\"\s#]+)", re.M)


@dataclass
class RuleIndex:
    """Every rule id and name known in the repository -> [(path, line, "id" or "name")]."""

    entries: dict[str, list[tuple[str, int, str]]]
    # False when some rule files were not read (see repository_rule_ids): absence proves nothing then.
    complete: bool


def _already_read(source: Any, path: str) -> bytes | None:
    """A file's content if the source holds it without fetching (MemorySource and the bot's tree source
    keep what they fetched in `files`); other sources (a local checkout) read it."""
    files = getattr(source, "files", None)
    if isinstance(files, dict):
        return files.get(path)
    try:
        return source.read(path)
    except FileNotFoundError:
        return None


def repository_rule_ids(ctx: CheckContext) -> RuleIndex:
    """Ids and names of the checked rules from their parsed documents, of the others from a line scan.

    On GitHub (pull request mode) the other rules are not fetched one blob at a time just for this: only
    what was fetched anyway is scanned, and the index says it is incomplete.
    """
    cached = ctx.cache.get("syntax.rule_ids")
    if isinstance(cached, RuleIndex):
        return cached
    checked = {b.rule_path for b in ctx.bundles}
    index = RuleIndex({}, complete=True)
    for path in ctx.source.paths():
        if not is_rule_path(path, ctx.config):
            continue
        if path in checked:
            rf = ctx.rule_file(path)
            for rd in rf.docs:
                if isinstance(rd.data, dict):
                    for key in ("id", "name"):
                        if rd.data.get(key) is not None:
                            entry = (path, _key_line(rf, rd, key), key)
                            entries = index.entries.setdefault(str(rd.data[key]).lower(), [])
                            if entry not in entries:  # documents of a legacy collection share the global id
                                entries.append(entry)
            continue
        raw = _already_read(ctx.source, path)
        if raw is None:
            index.complete = False
            continue
        for key, rx in (("id", _ID_LINE), ("name", _NAME_LINE)):
            for m in rx.finditer(raw):
                value = m.group(1).decode("utf-8", "replace").lower()
                index.entries.setdefault(value, []).append((path, raw.count(b"\n", 0, m.start()) + 1, key))
    ctx.cache["syntax.rule_ids"] = index
    return index


def _key_line(rf: RuleFile, rd: RuleDoc, key: str) -> int:
    """The line of the document's own `key:`, or for a value inherited from a legacy collection's
    `action: global` document, of that document's."""
    if (key,) in rd.doc.keys:
        return rd.doc.keys[(key,)].line
    value = str(rd.data.get(key))
    return next((i for i, ln in enumerate(rf.lines, 1) if ln.startswith(f"{key}:") and value in ln), 1)


def duplicate_ids(ctx: CheckContext, run: SyntaxRun) -> None:
    index = repository_rule_ids(ctx)
    for path in {b.rule_path for b in ctx.bundles}:
        rf = ctx.rule_file(path)
        reported: set[int] = set()
        for rd in rf.docs:
            rule_id = rd.rule_id
            if not rule_id or _key_line(rf, rd, "id") in reported:
                continue
            reported.add(_key_line(rf, rd, "id"))
            line = _key_line(rf, rd, "id")
            pos = rd.doc.value_pos(("id",)) if ("id",) in rd.doc.keys else Pos(line, 1, line, 1)
            # Ids and names share the index (correlations may name either); compare only ids.
            others = [(p, ln) for p, ln, kind in index.entries.get(rule_id.lower(), [])
                      if kind == "id" and (p, ln) != (path, line)]
            if others:
                where = ", ".join(f"{p}:{ln}" for p, ln in others)
                run.add(rf, pos, "failure", "Duplicate rule id", f"rule id {rule_id} is also used by {where}", rd)


def correlation_references(ctx: CheckContext, run: SyntaxRun) -> None:
    index = repository_rule_ids(ctx)
    if not index.complete:
        return  # a referenced rule may be among those not read: absence would prove nothing
    for path in {b.rule_path for b in ctx.bundles}:
        rf = ctx.rule_file(path)
        for rd in rf.docs:
            corr = rd.data.get("correlation") if isinstance(rd.data, dict) else None
            refs = corr.get("rules") if isinstance(corr, dict) else None
            if isinstance(refs, str):
                refs = [refs]
            if not isinstance(refs, list):
                continue
            for i, ref in enumerate(refs):
                if str(ref).lower() not in index.entries:
                    pos = rd.doc.value_pos(("correlation", "rules", i)) if isinstance(corr.get("rules"), list) \
                        else rd.doc.value_pos(("correlation", "rules"))
                    run.add(rf, pos, "failure", "Unknown correlated rule",
                            f"correlation refers to {ref!r}, which is no rule id or name in this repository", rd)


def run(ctx: CheckContext) -> list[Finding]:
    offline.use_bundled_data()
    syntax = SyntaxRun(ctx)
    total = len(ctx.bundles)
    for n, bundle in enumerate(ctx.bundles, 1):
        ctx.tick("syntax", n, total)
        try:
            syntax.file(ctx.rule_file(bundle.rule_path))
        except Exception as err:  # last resort: a crash on one file is a finding, the run goes on
            syntax.findings.append(Finding(CHECK, bundle.rule_path, 1, 1, "failure", "Internal error",
                                           f"detbot could not check this file: {type(err).__name__}: {err}"))
    syntax.finalize()
    duplicate_ids(ctx, syntax)
    correlation_references(ctx, syntax)
    return syntax.findings


__all__ = ["run", "CHECK"]
