"""End to end through the real detbot server (webhook, queue, routers) and the fake GitHub, with GitHub's real
webhook payloads adapted and signed."""
import asyncio

import pytest

from bot.fetch import BLOBS
from bot.pr_handlers import recover_all
from bot.publish import ACTIVE_RUNS, PR_CHECKS, CheckRunSet
from bot.server import SETTINGS
from tests.fakegithub import check_run_event, check_suite_event, pull_request_event
from tests.fakegithub.harness import running_bot
from tests.ghflow_support import (BROKEN_RULE, INSTALLATION, annotation_requests, example_files, new_bundle,
                                  new_rule_path, runs_by_name)

DETBOT_RUNS = {f"detbot/{c}" for c in PR_CHECKS}


@pytest.fixture(autouse=True)
def _fresh_cache():
    BLOBS.clear()


@pytest.fixture
def repo(fake_github):
    return fake_github.add_repo("octo/rules", installation_id=INSTALLATION, files=example_files())


async def test_pr_opened_runs_created_and_concluded_with_annotations(fake_github, repo):
    pr = fake_github.open_pull(repo, {"rules/windows/new.yml": BROKEN_RULE, **new_bundle(1)})
    async with running_bot(fake_github) as bot:
        status, _ = await bot.deliver("pull_request", pull_request_event(fake_github, pr, "opened"))
        assert status in (200, 202)
        await bot.settle()
    runs = runs_by_name(fake_github, repo, pr.head_sha)
    assert set(runs) == DETBOT_RUNS
    assert all(r.status == "completed" for r in runs.values())
    syntax = runs["detbot/syntax"]
    assert syntax.conclusion == "failure"
    assert [(a["path"], a["start_line"]) for a in syntax.annotations] == [("rules/windows/new.yml", 5)]
    assert runs["detbot/tests"].conclusion == "success"
    assert f"`{new_rule_path(1)}`" in runs["detbot/tests"].output["summary"]


async def test_synchronize_mid_run_cancels_older_runs_and_posts_nothing_stale(fake_github, repo):
    pr = fake_github.open_pull(repo, {f"rules/bulk/r{i:03d}.yml": BROKEN_RULE for i in range(60)})
    first_sha = pr.head_sha
    fake_github.latency = 0.03  # slow enough that the second push lands while the first job works
    async with running_bot(fake_github) as bot:
        await bot.deliver("pull_request", pull_request_event(fake_github, pr, "opened"))
        for _ in range(500):
            if len(fake_github.check_runs(repo, first_sha)) == 4:
                break
            await asyncio.sleep(0.01)
        fake_github.push_to_pull(pr, {"rules/bulk/r000.yml": new_bundle(2)[new_rule_path(2)]})
        await bot.deliver("pull_request", pull_request_event(fake_github, pr, "synchronize"))
        await bot.settle(30)
    old = fake_github.check_runs(repo, first_sha)
    assert {r.name for r in old} == DETBOT_RUNS
    assert {r.conclusion for r in old} == {"cancelled"}
    assert not any(r.annotations for r in old)
    stale_ids = {r.id for r in old}
    for req in fake_github.requests_to("/repos/*/check-runs/*", "PATCH"):
        if int(req.path.rsplit("/", 1)[1]) in stale_ids:
            assert req.body.get("conclusion") in (None, "cancelled") and not req.body.get("output", {}).get(
                "annotations"), req.body
    new = runs_by_name(fake_github, repo, pr.head_sha)
    assert {r.status for r in new.values()} == {"completed"}
    yaml_errors = [a for a in new["detbot/syntax"].annotations if "YAML" in a["title"]]
    assert new["detbot/syntax"].conclusion == "failure" and len(yaml_errors) == 59
    assert "rules/bulk/r000.yml" not in {a["path"] for a in yaml_errors}


async def test_120_findings_three_annotation_requests(fake_github, repo):
    pr = fake_github.open_pull(repo, {f"rules/bulk/r{i:03d}.yml": BROKEN_RULE for i in range(120)})
    async with running_bot(fake_github) as bot:
        await bot.deliver("pull_request", pull_request_event(fake_github, pr, "opened"))
        await bot.settle(30)
    reqs = annotation_requests(fake_github, repo, "detbot/syntax")
    assert [len(r.body["output"]["annotations"]) for r in reqs] == [50, 50, 20]
    assert len(runs_by_name(fake_github, repo, pr.head_sha)["detbot/syntax"].annotations) == 120


async def test_pr_touching_no_rule_all_skipped(fake_github, repo):
    pr = fake_github.open_pull(repo, {"README.md": "new readme\n"})
    async with running_bot(fake_github) as bot:
        await bot.deliver("pull_request", pull_request_event(fake_github, pr, "opened"))
        await bot.settle()
    runs = runs_by_name(fake_github, repo, pr.head_sha)
    assert set(runs) == DETBOT_RUNS and {r.conclusion for r in runs.values()} == {"skipped"}


async def test_fork_pr_checked_on_check_suite_rerequested(fake_github, repo):
    pr = fake_github.open_pull(repo, {"rules/windows/new.yml": BROKEN_RULE}, fork_owner="outsider")
    payload = check_suite_event(fake_github, pr, "rerequested")
    assert payload["check_suite"]["pull_requests"] == []
    async with running_bot(fake_github) as bot:
        await bot.deliver("check_suite", payload)
        await bot.settle()
    runs = runs_by_name(fake_github, repo, pr.head_sha)
    assert set(runs) == DETBOT_RUNS
    assert runs["detbot/syntax"].conclusion == "failure"
    assert fake_github.requests_to(f"/repos/{repo.full_name}/pulls", "GET")


async def test_rerun_button_and_github_rerequest(fake_github, repo):
    pr = fake_github.open_pull(repo, new_bundle(4))
    async with running_bot(fake_github) as bot:
        await bot.deliver("pull_request", pull_request_event(fake_github, pr, "opened"))
        await bot.settle()
        first = runs_by_name(fake_github, repo, pr.head_sha)["detbot/ads"]
        await bot.deliver("check_run", check_run_event(fake_github, first, "requested_action", pr,
                                                       requested_action="rerun"))
        await bot.settle()
        second = runs_by_name(fake_github, repo, pr.head_sha)["detbot/ads"]
        assert second.id != first.id and second.conclusion == "success"
        await bot.deliver("check_run", check_run_event(fake_github, second, "rerequested", pr))
        await bot.settle()
    assert len(fake_github.check_runs(repo, pr.head_sha, "detbot/ads")) == 3


async def test_config_error_fails_every_run_naming_key(fake_github):
    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION,
                                files=example_files("rules: ['rules/**/*.yml']\nchecks:\n  sytnax: true\n"))
    pr = fake_github.open_pull(repo, new_bundle(1))
    async with running_bot(fake_github) as bot:
        await bot.deliver("pull_request", pull_request_event(fake_github, pr, "opened"))
        await bot.settle()
    runs = runs_by_name(fake_github, repo, pr.head_sha)
    assert {r.conclusion for r in runs.values()} == {"failure"}
    assert all("checks.sytnax" in r.output["summary"] and ":3:" in r.output["summary"] for r in runs.values())


async def test_internal_error_fails_with_reason(fake_github, repo):
    pr = fake_github.open_pull(repo, new_bundle(1))
    fake_github.fail("/repos/*/git/trees/*", times=20, status=502)
    async with running_bot(fake_github) as bot:
        await bot.deliver("pull_request", pull_request_event(fake_github, pr, "opened"))
        await bot.settle(30)
    runs = runs_by_name(fake_github, repo, pr.head_sha)
    assert {r.conclusion for r in runs.values()} == {"failure"}
    assert all("502" in r.output["summary"] for r in runs.values())


async def test_crash_recovery_concludes_stale_runs_and_reruns(fake_github, repo):
    pr = fake_github.open_pull(repo, {"rules/windows/new.yml": BROKEN_RULE})
    async with running_bot(fake_github) as bot:
        # A previous process created the runs and died before concluding them.
        dead = CheckRunSet(bot.github.installation_client(INSTALLATION), repo.full_name, pr.head_sha, PR_CHECKS)
        await dead.create()
        ACTIVE_RUNS.difference_update(dead.ids.values())
        report = await recover_all(bot.github, bot.queue, bot.app[SETTINGS], min_age=0)
        await bot.settle()
    assert sorted(report.concluded) == sorted(dead.ids.values())
    assert all(fake_github.runs[i].conclusion == "cancelled" for i in dead.ids.values())
    assert all(r.status == "completed" for r in fake_github.check_runs(repo))
    assert runs_by_name(fake_github, repo, pr.head_sha)["detbot/syntax"].conclusion == "failure"


async def test_job_timeout_concludes_timed_out(fake_github, repo):
    pr = fake_github.open_pull(repo, new_bundle(1))
    fake_github.latency = 0.05
    async with running_bot(fake_github, job_timeout=0.4) as bot:
        await bot.deliver("pull_request", pull_request_event(fake_github, pr, "opened"))
        await bot.settle(30)
    runs = runs_by_name(fake_github, repo, pr.head_sha)
    assert set(runs) == DETBOT_RUNS and {r.conclusion for r in runs.values()} == {"timed_out"}
    assert all("job timeout" in r.output["summary"] for r in runs.values())


async def test_base_branch_change_rechecks_title_edit_does_not(fake_github, repo):
    """Retargeted from `dev` (which already has the broken rule) to `main`, the pull request now brings that rule:
    the `success` computed against `dev` must not keep gating the merge."""
    pr = fake_github.open_pull(repo, {"rules/windows/from_dev.yml": BROKEN_RULE, **new_bundle(1)})
    main_sha = pr.base_sha
    pr.base_ref, pr.base_sha = "dev", fake_github.push(repo, "dev", {"rules/windows/from_dev.yml": BROKEN_RULE}).sha
    async with running_bot(fake_github) as bot:
        await bot.deliver("pull_request", pull_request_event(fake_github, pr, "opened"))
        await bot.settle()
        assert runs_by_name(fake_github, repo, pr.head_sha)["detbot/syntax"].conclusion == "success"
        pr.base_ref, pr.base_sha = "main", main_sha
        edited = pull_request_event(fake_github, pr, "edited")
        edited["changes"] = {"base": {"ref": {"from": "dev"}, "sha": {"from": main_sha}}}
        await bot.deliver("pull_request", edited)
        await bot.settle()
        assert runs_by_name(fake_github, repo, pr.head_sha)["detbot/syntax"].conclusion == "failure"
        titled = pull_request_event(fake_github, pr, "edited")
        titled["changes"] = {"title": {"from": "Old title"}}
        await bot.deliver("pull_request", titled)
        await bot.settle()
    assert len(fake_github.check_runs(repo, pr.head_sha)) == 8


async def test_check_event_ignores_pull_requests_of_other_repositories(fake_github, repo):
    """GitHub lists in `pull_requests` every PR whose head matches, also one based in another repository (a fork
    syncing from this one). Its number named an unrelated open PR here, which was re-checked instead."""
    import copy
    pr = fake_github.open_pull(repo, {"rules/windows/new.yml": BROKEN_RULE})
    other = fake_github.open_pull(repo, new_bundle(1))
    payload = check_suite_event(fake_github, pr, "rerequested")
    foreign = copy.deepcopy(payload["check_suite"]["pull_requests"][0])
    foreign["number"] = other.number
    foreign["base"]["repo"].update(id=424242, name="rules-fork", url=f"{fake_github.url}/repos/someone/rules-fork")
    payload["check_suite"]["pull_requests"].insert(0, foreign)
    async with running_bot(fake_github) as bot:
        await bot.deliver("check_suite", payload)
        await bot.settle()
    assert not fake_github.check_runs(repo, other.head_sha)
    assert runs_by_name(fake_github, repo, pr.head_sha)["detbot/syntax"].conclusion == "failure"
