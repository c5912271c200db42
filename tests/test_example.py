"""The bundled example repository: its formats, its one planted syntax problem, and syntax findings planted
into its real rules landing on the right line, one kind of finding at a time."""
from __future__ import annotations

import json
import re

import pytest
import yaml

from checks import attack
from checks.config import load_config
from checks.repository import discover
from checks.runner import run_checks
from checks.source import LocalSource, MemorySource
from tests.conftest import EXAMPLES

SOURCE = LocalSource(EXAMPLES)
CONFIG = load_config(SOURCE)
BUNDLES = discover(SOURCE, CONFIG)
RULES = {b.rule_path: yaml.safe_load((EXAMPLES / b.rule_path).read_text()) for b in BUNDLES}
SECTIONS = ("Goal", "Categorization", "Strategy Abstract", "Technical Context", "Blind Spots and Assumptions",
            "False Positives", "Validation", "Priority", "Response")


def text_of(path: str) -> str:
    return (EXAMPLES / path).read_text()


def line_with(path: str, needle: str) -> int:
    return next(i for i, ln in enumerate(text_of(path).splitlines(), 1) if needle in ln)


def test_a_dozen_rules_across_windows_cloud_and_network():
    assert len(BUNDLES) == 12
    products = {(r["logsource"].get("product"), r["logsource"].get("category") or r["logsource"].get("service"))
                for r in RULES.values()}
    assert {("windows", "process_creation"), ("windows", "network_connection"), ("m365", "audit"),
            ("azure", "signinlogs"), ("zeek", "dns")} <= products
    modifiers = {m for r in RULES.values() for sel in r["detection"].values() if isinstance(sel, (dict, list))
                 for item in (sel if isinstance(sel, list) else [sel]) for key in item for m in key.split("|")[1:]}
    assert {"cidr", "windash", "expand", "re", "contains", "endswith", "startswith"} <= modifiers


def test_the_only_syntax_finding_is_the_planted_tag():
    findings = run_checks(SOURCE, CONFIG, only=["syntax"]).findings
    path = "rules/windows/proc_creation_win_mshta_remote_url.yml"
    assert [(f.path, f.start_line, f.start_column, f.title, f.level) for f in findings] == \
        [(path, line_with(path, "- attack:defense-evasion"), 7, "Sigma tag error", "failure")]


def test_every_check_finds_exactly_its_planted_problem():
    from checks.runner import CHECK_MODULES
    result = run_checks(SOURCE, CONFIG)
    failures = [(f.check, f.path) for f in result.findings if f.level == "failure"]
    planted = {
        "syntax": "rules/windows/proc_creation_win_mshta_remote_url.yml",
        "tests": "rules/windows/proc_creation_win_powershell_encoded_cmd.tests.yml",
        "coverage": "rules/windows/proc_creation_win_rundll32_susp_path.yml",
        "ads": "rules/windows/proc_creation_win_procdump_lsass.ads.md",
    }
    expected = sorted((check, path) for check, path in planted.items() if check in CHECK_MODULES)
    assert sorted(failures) == expected
    assert not [f for f in result.findings if f.level == "warning"]


def _tests(bundle):
    assert bundle.test_paths, bundle.rule_path
    return yaml.safe_load(text_of(bundle.test_paths[0]))


@pytest.mark.parametrize("bundle", BUNDLES, ids=lambda b: b.name)
def test_test_events_have_the_documented_shape(bundle):
    tests = _tests(bundle)
    rule = RULES[bundle.rule_path]
    route = CONFIG.parser_for(rule["logsource"])
    assert route is not None
    assert {t["expect"] for t in tests} == {"match", "no_match"}
    assert len({t["name"] for t in tests}) == len(tests)
    fields = {k.split("|")[0] for sel in rule["detection"].values() if isinstance(sel, (dict, list))
              for item in (sel if isinstance(sel, list) else [sel]) for k in item}
    for t in tests:
        assert set(t) == {"name", "expect", "event", "raw", "parser"}
        assert t["parser"] == route.parser
        raw = json.loads(t["raw"])  # every example raw log is a JSON record
        assert isinstance(raw, dict) and fields & set(t["event"])
        if route.parser in ("sysmon", "zeek_dns"):
            # these parsers keep the record's own field names: the event is a projection of the raw log
            for k, v in t["event"].items():
                assert raw.get(k, v) == v or str(raw.get(k)) == str(v), (t["name"], k)


@pytest.mark.parametrize("bundle", BUNDLES, ids=lambda b: b.name)
def test_ads_documents_follow_palantir_and_agree_with_the_rule(bundle):
    text = text_of(bundle.ads_path)
    headings = re.findall(r"^## (.+)$", text, re.M)
    assert set(SECTIONS) <= set(headings)
    body = dict(zip(headings, re.split(r"^## .+$", text, flags=re.M)[1:]))
    rule = RULES[bundle.rule_path]
    named = set(re.findall(r"\bT\d{4}(?:\.\d{3})?\b", body["Categorization"]))
    assert named == set(attack.technique_ids_in(rule["tags"]))
    for tid in named:
        assert attack.technique(tid) in body["Categorization"]
    assert rule["level"].lower() in body["Priority"].lower()
    for fp in rule["falsepositives"]:
        assert fp.split(";")[0][:40] in body["False Positives"]


def test_exactly_one_ads_section_is_a_placeholder():
    placeholders = [b.ads_path for b in BUNDLES
                    if re.search(r"^## [^\n]+\n\n(TODO|TBD|N/A)\s*$", text_of(b.ads_path), re.M)]
    assert placeholders == ["rules/windows/proc_creation_win_procdump_lsass.ads.md"]


def test_readme_documents_each_planted_problem():
    readme = (EXAMPLES / "README.md").read_text()
    for name in ("proc_creation_win_mshta_remote_url", "proc_creation_win_powershell_encoded_cmd",
                 "proc_creation_win_rundll32_susp_path", "proc_creation_win_procdump_lsass"):
        assert name in readme
    assert f"line ({line_with('rules/windows/proc_creation_win_mshta_remote_url.yml', 'attack:')})" in readme
    rundll32 = "rules/windows/proc_creation_win_rundll32_susp_path.yml"
    assert f"line ({line_with(rundll32, 'filter_optional_citrix:')})" in readme


# -- each kind of syntax finding, planted into a real rule of the example ------------------------------
def _repo_with(path: str, old: str, new: str) -> tuple[MemorySource, str]:
    files = {p: SOURCE.read(p) for p in SOURCE.paths()}
    text = files[path].decode()
    assert old in text, old
    text = text.replace(old, new, 1)
    files[path] = text.encode()
    return MemorySource(files), text


PS = "rules/windows/proc_creation_win_powershell_encoded_cmd.yml"
DNS = "rules/network/zeek/zeek_dns_susp_tld.yml"
M365 = "rules/cloud/m365/m365_aitm_proxy_signin.yml"
ENTRA = "rules/cloud/azure/azure_signin_aitm_infrastructure.yml"


@pytest.mark.parametrize("path,old,new,needle,title", [
    (PS, "and not filter_main_sccm", "and not filter_main_scm", "filter_main_scm", "Sigma condition error"),
    (PS, "CommandLine|windash|contains:", "CommandLine|windash|contain:", "|contain:", "Sigma modifier error"),
    (PS, "date: 2026-09-20", "date: 2026-09-31", "2026-09-31", "Sigma date error"),
    (DNS, "level: low", "level: severe", "severe", "Sigma level error"),
    (M365, "            - '203.0.113.0/25'", "            - '203.0.113.0/33'", "203.0.113.0/33", "Sigma type error"),
    (DNS, "    - attack.t1071.004", "    - attack.t1071.999", "attack.t1071.999", "validator attacktag"),
    (ENTRA, "    infra_asn:", "    enrich_geo:\n        source.ip: '192.0.2.1'\n    infra_asn:", "enrich_geo:",
     "validator dangling_detection"),
    (DNS, "    selection:\n        query|endswith:", "    selection:\n        query|endswith:\n            - '.top'",
     "- '.top'", "validator sigmahq_field_duplicate_value"),
    (PS, "    filter_main_sccm:", "    selection_img:\n        Image: x\n    filter_main_sccm:", "selection_img:",
     "Duplicate key"),
])
def test_planted_syntax_finding_lands_on_its_line(path, old, new, needle, title):
    source, text = _repo_with(path, old, new)
    findings = [f for f in run_checks(source, CONFIG, only=["syntax"]).findings if f.path == path]
    hits = [f for f in findings if f.title == title]
    assert hits, [(f.title, f.message) for f in findings]
    lines = [i for i, ln in enumerate(text.splitlines(), 1) if needle in ln]
    expected_line = lines[-1] if title in ("Duplicate key", "validator sigmahq_field_duplicate_value") else lines[0]
    if title == "validator sigmahq_field_duplicate_value":
        expected_line = lines[0] - 1  # at the field key, the line before its first value
    assert hits[0].start_line == expected_line, (hits[0], expected_line)
    line_text = text.splitlines()[hits[0].start_line - 1]
    assert hits[0].start_column is not None and 1 <= hits[0].start_column <= len(line_text) + 1


def test_duplicate_id_across_example_rules_names_the_other_file():
    other = "rules/network/zeek/zeek_dns_txt_tunnel.yml"
    ps_id = RULES[PS]["id"]
    source, _ = _repo_with(other, f"id: {RULES[other]['id']}", f"id: {ps_id}")
    dups = [f for f in run_checks(source, CONFIG, only=["syntax"]).findings if f.title == "Duplicate rule id"]
    assert {(f.path, f.start_line) for f in dups} == {(PS, line_with(PS, "id: ")), (other, 2)}
    assert all(other in f.message or PS in f.message for f in dups)
