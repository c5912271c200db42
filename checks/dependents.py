"""Rules a change can break without touching them: correlation rules that refer, by id or name, to a rule whose
id or name the change took away (renamed, re-identified, or deleted).

A pull request is checked bundle by bundle, only the bundles it touches; a correlation elsewhere in the repository
that names a rule the pull request renamed would then pass unnoticed. The caller reads the changed and removed rule
files as they were before (`before`) and as they are now (`after`); `lost_references` says which ids and names went
away, `dependent_correlations` which rule files still refer to one of them (to be checked with the change).
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from .config import Config
from .repository import is_rule_path
from .source import FileSource
from .yamldoc import YamlError, load_all


def _documents(raw: bytes) -> list[dict[str, Any]]:
    try:
        return [d.data for d in load_all(raw) if isinstance(d.data, dict)]
    except (YamlError, ValueError):
        return []   # the syntax check reports the file; an unreadable one names nothing


def names_and_ids(raw: bytes) -> set[str]:
    """The ids and names of a rule file's documents, lower case (correlations match them case-insensitively)."""
    out = set()
    for data in _documents(raw):
        for key in ("id", "name"):
            value = data.get(key)
            if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
                out.add(str(value).lower())
    return out


def correlation_references(raw: bytes) -> set[str]:
    """The rules (ids or names, lower case) a file's correlation documents refer to."""
    out: set[str] = set()
    for data in _documents(raw):
        corr = data.get("correlation")
        refs = corr.get("rules") if isinstance(corr, dict) else None
        if isinstance(refs, (str, int)):
            refs = [refs]
        if isinstance(refs, list):
            out.update(str(r).lower() for r in refs if isinstance(r, (str, int)))
    return out


def lost_references(before: Mapping[str, bytes], after: Mapping[str, bytes]) -> set[str]:
    """Ids and names the files had before that none of them has now. A rule that kept its name while moving to
    another file is not lost: that file is a changed one too."""
    had = set().union(*(names_and_ids(raw) for raw in before.values()))
    has = set().union(*(names_and_ids(raw) for raw in after.values()))
    return had - has


def dependent_correlations(source: FileSource, config: Config, lost: set[str],
                           skip: Iterable[str] = ()) -> list[str]:
    """The rule files (other than `skip`) with a correlation referring to one of `lost`. Reads every rule file
    that mentions a correlation at all."""
    if not lost:
        return []
    skipped = set(skip)
    out = []
    for path in sorted(source.paths()):
        if path in skipped or not is_rule_path(path, config):
            continue
        try:
            raw = source.read(path)
        except FileNotFoundError:
            continue
        if b"correlation" in raw and correlation_references(raw) & lost:
            out.append(path)
    return out
