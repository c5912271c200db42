"""A generated corpus (small scale) with broken rules of every kind: each broken rule becomes a finding."""
from __future__ import annotations

from bench.bench_check import verify
from bench.corpus import BROKEN_KINDS, DUPLICATE_ID, generate
from checks.config import Config
from checks.runner import run_checks
from checks.source import LocalSource


def test_every_broken_rule_yields_a_finding_and_the_run_completes(tmp_path):
    # one broken rule in twenty, cycling through the kinds: 20 * (kinds + 1) rules cover every kind once
    n = 20 * (len(BROKEN_KINDS) + 1)
    manifest = generate(tmp_path / "corpus", rules=n, seed=11)
    assert set(manifest.values()) == set(BROKEN_KINDS) | {DUPLICATE_ID}
    result = run_checks(LocalSource(tmp_path / "corpus"), Config(), only=["syntax"])
    assert len(result.bundles) == n
    assert verify(result.findings, manifest) == []
    # the valid rules were checked too: validators ran on them, and nothing else was reported
    broken = set(manifest) | {f.path for f in result.findings if f.title == "Duplicate rule id"}
    valid_findings = [f for f in result.findings if f.path not in broken]
    assert valid_findings and all(f.title.startswith("validator ") for f in valid_findings)


def test_corpus_is_deterministic(tmp_path):
    a = generate(tmp_path / "a", rules=60, seed=3)
    b = generate(tmp_path / "b", rules=60, seed=3)
    assert a == b
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.yml"))
    assert files_a == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.yml"))
    assert all((tmp_path / "a" / p).read_bytes() == (tmp_path / "b" / p).read_bytes() for p in files_a)
