"""pySigma with no network: its downloading data loaders replaced by data bundled in checks/data/.

pySigma (ATT&CK, D3FEND) and the SigmaHQ validators (taxonomy, file name prefixes, Windows event ids and
providers) fetch reference data from GitHub on first use and keep it in a disk cache under ~/.cache.
Each of those modules resolves its data attributes through a module-level `__getattr__`; replacing it
(and the loader functions behind it) leaves no path to urlopen or to the disk cache.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

from . import attack

SIGMAHQ_DATA = Path(__file__).parent / "data" / "sigmahq.json"

# D3FEND's ontology is not bundled: its tactics are fixed by the framework, its technique ids are unknown
# here, so the d3fend tag validator is left out of `all` (checks/validation.py).
D3FEND = {
    "mitre_d3fend_version": "unbundled",
    "mitre_d3fend_tactics": {t: t for t in ("Model", "Harden", "Detect", "Isolate", "Deceive", "Evict", "Restore")},
    "mitre_d3fend_techniques": {},
    "mitre_d3fend_artifacts": {},
}

_SIGMAHQ_MODULES = ("data_taxonomy", "data_filename", "data_windows_eventid", "data_windows_provider")


def _serve(module: ModuleType, data: dict[str, Any]) -> None:
    def getattr_(name: str) -> Any:
        if name in data:
            return data[name]
        raise AttributeError(f"module {module.__name__!r} has no attribute {name!r}")

    module.__getattr__ = getattr_  # type: ignore[attr-defined]


def _refuse(*_: Any, **__: Any) -> Any:
    raise RuntimeError("detbot never downloads reference data; it is bundled in checks/data/")


@lru_cache(maxsize=1)
def use_bundled_data() -> None:
    from sigma.data import mitre_attack, mitre_d3fend

    data = attack.pysigma_attack_data()
    mitre_attack._load_mitre_attack_data = lambda: data  # type: ignore[attr-defined]
    mitre_attack._get_cached_data = lambda: data  # type: ignore[attr-defined]
    mitre_d3fend._load_mitre_d3fend_data = lambda: D3FEND  # type: ignore[attr-defined]
    mitre_d3fend._get_cached_data = lambda: D3FEND  # type: ignore[attr-defined]
    try:
        from importlib import import_module

        from sigma.validators.sigmahq.data import base
    except ImportError:  # the SigmaHQ validators are optional
        return
    base.SigmahqDataLoader._fetch_json = _refuse  # type: ignore[method-assign]
    sigmahq = json.loads(SIGMAHQ_DATA.read_text(encoding="utf-8"))
    for name in _SIGMAHQ_MODULES:
        _serve(import_module(f"sigma.validators.sigmahq.data.{name}"), sigmahq)
