"""The example repository: its good rules pass the tests, coverage and ads checks; the planted problems are
flagged where its README says."""
from __future__ import annotations

import pytest

from checks.config import load_config
from checks.runner import run_checks
from checks.source import LocalSource
from tests.conftest import EXAMPLES

PLANTED = {
    "tests": "rules/windows/proc_creation_win_powershell_encoded_cmd",
    "coverage": "rules/windows/proc_creation_win_rundll32_susp_path",
    "ads": "rules/windows/proc_creation_win_procdump_lsass",
}


@pytest.fixture(scope="module")
def result():
    source = LocalSource(EXAMPLES)
    return run_checks(source, load_config(source), only=["tests", "coverage", "ads"])


@pytest.mark.parametrize("check", ["tests", "coverage", "ads"])
def test_only_the_planted_rule_fails_each_check(result, check):
    failing = {f.path.rsplit(".", 2)[0] if f.path.endswith((".tests.yml", ".ads.md")) else f.path.rsplit(".", 1)[0]
               for f in result.findings if f.check == check and f.level == "failure"}
    assert failing == {PLANTED[check]}


def test_planted_problems_are_reported_at_their_lines(result):
    by_check = {c: [f for f in result.findings if f.check == c and f.level == "failure"] for c in PLANTED}
    [t] = by_check["tests"]
    assert t.path.endswith("powershell_encoded_cmd.tests.yml")
    assert "encoded command from an SCCM script in a user session" in t.message
    assert "filter_main_sccm" in t.message and "so the filter excluded the event" in t.message
    # The README names the filter and its line; read both from the rule so the example may evolve.
    rule = (EXAMPLES / f"{PLANTED['coverage']}.yml").read_text().splitlines()
    line, name = next((n, text.strip().rstrip(":")) for n, text in enumerate(rule, 1)
                      if text.strip().startswith("filter_optional"))
    [c] = by_check["coverage"]
    assert c.start_line == line and f"no test where {name} alone excludes the event" in c.message
    [a] = by_check["ads"]
    assert (a.path.endswith("procdump_lsass.ads.md"), a.title) == (True, "ADS section empty")
    assert "'Blind Spots and Assumptions'" in a.message and "'TBD'" in a.message


def test_every_rule_shows_a_coverage_table(result):
    from checks.coverage import repository_coverage
    repo = repository_coverage(result.context)
    assert len(repo.rules) == len(result.bundles) == 12
    assert 80 < repo.percent() < 100
