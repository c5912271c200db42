"""ATT&CK and SigmaHQ reference data are bundled: no validator reaches the network or a disk cache."""
from __future__ import annotations

import urllib.request

import diskcache
import pytest

from checks import attack
from checks.config import parse_config
from checks.runner import run_checks
from checks.source import MemorySource
from tests.test_syntax import GOOD


@pytest.fixture
def no_network(monkeypatch):
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise AssertionError(f"network access attempted: {args[:1]}")
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    import sigma.data.mitre_attack as ma
    import sigma.data.mitre_d3fend as md
    import sigma.validators.sigmahq.data.base as hq
    for module in (ma, md, hq):
        monkeypatch.setattr(module, "urlopen", refuse)
    monkeypatch.setattr(diskcache, "Cache", refuse)
    for module in (ma, md):
        monkeypatch.setattr(module, "_cache", None)
    return calls


def test_every_validator_runs_offline(no_network):
    text = GOOD.replace("    - attack.t1105", "    - attack.t1105\n    - attack.t9999\n    - attack.g0016\n"
                        "    - attack.s0002\n    - d3fend.d3-aa")
    # every known validator, D3FEND's and the ones that need SigmaHQ's taxonomy included
    from checks.validation import known_validators
    cfg = parse_config("validators:\n  validators: [%s]\n" % ", ".join(sorted(known_validators())))
    source = MemorySource({"rules/windows/proc_creation_win_certutil_download.yml": text.encode()})
    findings = run_checks(source, cfg, only=["syntax"]).findings
    assert no_network == []
    assert not [f for f in findings if "failed" in f.title], [f.message for f in findings if "failed" in f.title]
    attack_tags = [f for f in findings if f.title == "validator attacktag"]
    # the unknown technique is flagged; the group (APT29) and software (Mimikatz) ids are known
    assert [f.message for f in attack_tags] == ["Invalid MITRE ATT&CK tagging (tag: attack.t9999)"]


def test_sigmahq_taxonomy_data_is_used(no_network):
    text = GOOD.replace("        Image|endswith: '\\certutil.exe'",
                        "        Image|endswith: '\\certutil.exe'\n        NoSuchField: x")
    assert text != GOOD
    cfg = parse_config("validators:\n  validators: [sigmahq_invalid_fieldname]\n")
    findings = run_checks(MemorySource({"rules/r.yml": text.encode()}), cfg, only=["syntax"]).findings
    assert [f.message for f in findings] == ["A field name do not exist (field: NoSuchField)"]
    assert findings[0].start_line == text.splitlines().index("        NoSuchField: x") + 1


def test_attack_module_api():
    assert attack.technique("T1059.001") == "PowerShell"
    assert attack.technique("t1105") == "Ingress Tool Transfer"
    assert attack.technique("T9999") is None
    assert len(attack.techniques()) > 600
    assert "19" in attack.version() or "2026" in attack.version()
    assert attack.tactic("credential-access") == "Credential Access"
    assert attack.tactic("defense-evasion") == "Defense Evasion"  # legacy, pre-v19
    assert attack.tactic("no-such-tactic") is None
    assert attack.tactics_of("T1003.001") == ["credential-access"]
    assert attack.tag_kind("g0016") == "group" and attack.tag_kind("s0002") == "software"
    assert attack.tag_kind("t1105") == "technique" and attack.tag_kind("t0000") is None
    assert attack.technique_ids_in(["attack.t1059.001", "attack.execution", "car.2013-05-002"]) == ["T1059.001"]
