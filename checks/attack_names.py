"""ATT&CK techniques as people write them in documents: ids, names, and 'Parent: Sub' names."""
from __future__ import annotations

import re
from functools import lru_cache

from . import attack

# T1059 or T1059.001, and ATT&CK's URL form of a sub-technique (attack.mitre.org/techniques/T1059/001/): read as
# T1059.001 once "/" is replaced by ".".
TECHNIQUE_MENTION = re.compile(r"\bT\d{4}(?:[./]\d{3})?\b", re.IGNORECASE)


def full_name(tid: str) -> str | None:
    """A sub-technique named as ATT&CK writes it: 'Command and Scripting Interpreter: PowerShell'."""
    name = attack.technique(tid)
    if name is None:
        return None
    if "." in tid:
        parent = attack.technique(tid.split(".")[0])
        if parent:
            return f"{parent}: {name}"
    return name


@lru_cache(maxsize=1)
def _by_name() -> dict[str, list[str]]:
    """Lower-cased names (plain, and 'Parent: Sub' for sub-techniques) -> ids. Plain sub-technique names are
    ambiguous ('Cloud Accounts' sits under several parents), so a name maps to every id that carries it."""
    out: dict[str, list[str]] = {}
    for tid in sorted(attack.techniques()):
        for name in dict.fromkeys([attack.technique(tid), full_name(tid)]):
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
