"""A pull request that renames or deletes a rule another file's correlation refers to fails detbot/syntax on that
correlation, though the pull request does not touch it (checks/dependents.py, bot/fetch.py)."""
import pytest

from bot.fetch import BLOBS
from checks.dependents import correlation_references, lost_references, names_and_ids
from tests.fakegithub import pull_request_event
from tests.fakegithub.harness import running_bot
from tests.ghflow_support import INSTALLATION, example_files, new_bundle, new_rule_path, runs_by_name

RULE = new_rule_path(1)
CORR = "rules/windows/correlation_certutil_burst.yml"
CORRELATION = """\
title: Many Certutil Downloads
id: 5d1d2f9e-6a0b-4b8e-9e7a-2f5d1c0a9b13
status: test
description: Several certutil downloads from one computer within an hour.
author: detbot tests
date: 2026-11-01
correlation:
    type: event_count
    rules:
        - certutil_dl_1
    group-by:
        - Computer
    timespan: 1h
    condition:
        gte: 3
level: high
"""


def named_bundle(name: str = "certutil_dl_1") -> dict[str, str]:
    bundle = new_bundle(1)
    bundle[RULE] = bundle[RULE].replace("\nstatus:", f"\nname: {name}\nstatus:", 1)
    return bundle


@pytest.fixture(autouse=True)
def _fresh():
    BLOBS.clear()


@pytest.fixture
def repo(fake_github):
    return fake_github.add_repo("octo/rules", installation_id=INSTALLATION,
                                files={**example_files(), **named_bundle(), CORR: CORRELATION})


def correlation_findings(fake, repo, pr):
    syntax = runs_by_name(fake, repo, pr.head_sha)["detbot/syntax"]
    return syntax, [a for a in syntax.annotations if a["path"] == CORR]


@pytest.mark.parametrize("change", ["rename", "delete"])
async def test_taking_away_a_correlated_rule_fails_the_correlation(fake_github, repo, change):
    if change == "rename":
        pr = fake_github.open_pull(repo, {RULE: named_bundle("certutil_download_1")[RULE]})
    else:
        pr = fake_github.open_pull(repo, delete=tuple(named_bundle()))
    async with running_bot(fake_github) as bot:
        await bot.deliver("pull_request", pull_request_event(fake_github, pr, "opened"))
        await bot.settle()
    syntax, found = correlation_findings(fake_github, repo, pr)
    assert syntax.conclusion == "failure"
    (note,) = found                                      # the correlation is otherwise clean
    assert note["title"] == "syntax: Unknown correlated rule" and "certutil_dl_1" in note["message"]
    assert note["start_line"] == CORRELATION.splitlines().index("        - certutil_dl_1") + 1


async def test_a_change_keeping_the_name_leaves_the_correlation_alone(fake_github, repo):
    retitled = named_bundle()[RULE].replace("title: Certutil Download From Internet 1", "title: Certutil DL 1")
    pr = fake_github.open_pull(repo, {RULE: retitled})
    async with running_bot(fake_github) as bot:
        await bot.deliver("pull_request", pull_request_event(fake_github, pr, "opened"))
        await bot.settle()
    syntax, found = correlation_findings(fake_github, repo, pr)
    assert found == [] and syntax.conclusion == "success"
    assert f"`{CORR}`" not in syntax.output["summary"]
    assert fake_github.requests_to(f"/repos/octo/rules/pulls/{pr.number}", "GET")   # it did look at the base


def test_lost_references_are_ids_and_names_gone_from_every_changed_file():
    before = {"a.yml": b"id: A1\nname: Alpha\n", "b.yml": b"id: B1\n"}
    moved = {"c.yml": b"id: a1\nname: alpha\n"}                 # same rule, moved and re-cased
    assert lost_references(before, {**moved, "b.yml": b"id: B2\n"}) == {"b1"}
    assert lost_references(before, {}) == {"a1", "alpha", "b1"}
    assert names_and_ids(b"not: [valid") == set() and names_and_ids(b"id: true\nname: ''\n") == set()
    assert correlation_references(b"correlation:\n  rules: Alpha\n") == {"alpha"}
