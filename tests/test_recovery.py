"""Crash safety: runs left in progress by a dead process are re-run or concluded; live ones are left alone."""
import pytest

from bot.pr_flow import PullRequestTarget, check_pull_request
from bot.publish import ACTIVE_RUNS, PR_CHECKS, CheckRunSet
from bot.recovery import recover, recover_repository
from tests.ghflow_support import INSTALLATION, BROKEN_RULE, example_files, runs_by_name, gh, gh_app  # noqa: F401


async def crashed_job(gh, pr, checks=PR_CHECKS):
    """Runs created in_progress by a process that then died (so no job of ours owns them any more)."""
    runs = CheckRunSet(gh, pr.repo.full_name, pr.head_sha, checks)
    await runs.create()
    ACTIVE_RUNS.difference_update(runs.ids.values())
    return runs


async def test_restart_reruns_pr_checks_and_concludes_the_stale_runs(fake_github, gh):
    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION, files=example_files())
    pr = fake_github.open_pull(repo, {"rules/windows/bad.yml": BROKEN_RULE})
    other = fake_github.open_pull(repo, {"rules/windows/x.yml": BROKEN_RULE})
    stale = await crashed_job(gh, pr)
    enqueued: list[PullRequestTarget] = []

    async def enqueue(target):
        enqueued.append(target)
        await check_pull_request(gh, target)

    report = await recover_repository(gh, repo.full_name, fake_github.app_id, enqueue)
    assert report.prs_seen == 2
    assert [t.number for t in enqueued] == [pr.number] and enqueued[0].head_sha == pr.head_sha
    assert sorted(report.concluded) == sorted(stale.ids.values())
    for run_id in stale.ids.values():
        old = fake_github.runs[run_id]
        assert old.status == "completed" and old.conclusion == "cancelled"
        assert "re-run" in old.output["title"].lower()
    latest = runs_by_name(fake_github, repo, pr.head_sha)
    assert latest["detbot/syntax"].conclusion == "failure"
    assert all(r.status == "completed" for r in fake_github.check_runs(repo))
    assert fake_github.check_runs(repo, other.head_sha) == []


async def test_live_and_young_runs_are_left_alone(fake_github, gh):
    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION, files=example_files())
    pr = fake_github.open_pull(repo, {"rules/windows/bad.yml": BROKEN_RULE})
    live = CheckRunSet(gh, repo.full_name, pr.head_sha, ["syntax"])
    await live.create()
    await crashed_job(gh, pr, ["tests"])
    report = await recover_repository(gh, repo.full_name, fake_github.app_id, None, min_age=600)
    assert report.concluded == []  # the crashed one is younger than min_age
    report = await recover_repository(gh, repo.full_name, fake_github.app_id, None)
    (run_id,) = report.concluded
    assert fake_github.runs[run_id].name == "detbot/tests"
    # Without a queue to re-run into, the stale run fails visibly rather than hanging.
    assert fake_github.runs[run_id].conclusion == "failure"
    assert fake_github.runs[live.ids["syntax"]].status == "in_progress"
    await live.cancel_pending()


async def test_stuck_replay_is_concluded_not_rerun(fake_github, gh):
    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION, files=example_files())
    pr = fake_github.open_pull(repo, {"rules/windows/bad.yml": BROKEN_RULE})
    await crashed_job(gh, pr, ["replay"])
    enqueued = []

    async def enqueue(target):
        enqueued.append(target)

    report = await recover([(gh, [repo.full_name])], fake_github.app_id, enqueue)
    assert enqueued == [] and len(report.concluded) == 1
    run = fake_github.runs[report.concluded[0]]
    assert run.conclusion == "failure" and "/replay" in run.output["summary"]
