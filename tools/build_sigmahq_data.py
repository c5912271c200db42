"""Build checks/data/sigmahq.json, the reference data of the SigmaHQ validators (run by hand; never at run time).

pySigma-validators-sigmaHQ >= 0.21 downloads its reference data (taxonomy, file name prefixes, Windows
event ids and providers) from GitHub on first use. Version 0.20.2 of the same PyPI package shipped that
data inside the wheel (sigma/validators/sigmahq/data/sigmahq_data.py, LGPL-2.1, (c) SigmaHQ); this script
turns it into the parsed form the 0.21 loaders produce, keyed `product_category_service`.

Usage: python tools/build_sigmahq_data.py path/to/sigmahq_data.py > checks/data/sigmahq.json
"""
from __future__ import annotations

import importlib.util
import json
import sys


def key(ls) -> str:
    return f"{ls.product}_{ls.category}_{ls.service}"


def main(path: str) -> None:
    spec = importlib.util.spec_from_file_location("sigmahq_data", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = {
        "source": "pySigma-validators-sigmaHQ 0.20.2 (PyPI), sigma/validators/sigmahq/data/sigmahq_data.py, "
                  "LGPL-2.1-only, (c) SigmaHQ",
        "sigmahq_filename_version": mod.file_pattern_version,
        "sigmahq_filename_pattern": {key(k): v for k, v in mod.ref_sigmahq_logsource_filepattern.items()},
        "sigmahq_taxonomy_version": mod.taxonomy_version,
        "sigmahq_taxonomy_fieldsname": {key(k): sorted(v, key=str.casefold)
                                        for k, v in mod.ref_sigmahq_fieldsname.items()},
        "sigmahq_taxonomy_redundant_fields": {key(k): v for k, v in mod.ref_sigmahq_redundant_field.items()},
        "sigmahq_taxonomy_logsource_definition": {key(k): v for k, v in mod.ref_sigmahq_logsource_definition.items()
                                                  if v},
        "sigmahq_category_no_eventid_version": mod.windows_version,
        "sigmahq_category_no_eventid": list(mod.ref_windows_no_eventid),
        "sigmahq_provider_version": mod.windows_version,
        "sigmahq_provider_name": {k.category: v for k, v in mod.ref_windows_provider_name.items()},
    }
    json.dump(out, sys.stdout, indent=0)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
