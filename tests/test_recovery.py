"""Crash safety: runs left in progress by a dead process are re-run or concluded; live ones are left alone."""
from bot.pr_flow import PullRequestTarget, check_pull_request
from bot.publish import ACTIVE_RUNS, PR_CHECKS, CheckRunSet
from bot.recovery import recover, recover_repository
from tests.ghflow_support import BROKEN_RULE, INSTALLATION, example_files, runs_by_name


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


async def test_serve_start_up_sweep_concludes_and_reruns(fake_github, gh):
    """`detbot serve`'s background work (pr_handlers.install): the start-up sweep through the real app."""
    import asyncio

    from aiohttp import web

    from bot.github import GitHubApp
    from bot.pr_handlers import install
    from bot.server import create_app
    from tests.fakegithub.harness import TEST_RETRY, settings_for

    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION, files=example_files())
    pr = fake_github.open_pull(repo, {"rules/windows/bad.yml": BROKEN_RULE})
    stale = await crashed_job(gh, pr)
    settings = settings_for(fake_github)
    app = create_app(settings, github=GitHubApp(app_id=settings.app_id, private_key=settings.private_key,
                                                base_url=settings.github_url, retry=TEST_RETRY))
    install(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        for _ in range(500):
            runs = fake_github.check_runs(repo, pr.head_sha)
            if len(runs) == 8 and all(r.status == "completed" for r in runs):
                break
            await asyncio.sleep(0.02)
    finally:
        await runner.cleanup()
    assert all(fake_github.runs[i].conclusion == "cancelled" for i in stale.ids.values())
    assert runs_by_name(fake_github, repo, pr.head_sha)["detbot/syntax"].conclusion == "failure"


async def test_periodic_sweep_skips_pull_requests_not_updated_recently(fake_github, gh):
    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION, files=example_files())
    pr = fake_github.open_pull(repo, {"rules/windows/bad.yml": BROKEN_RULE})
    await crashed_job(gh, pr)
    pr.updated -= 3 * 24 * 3600
    report = await recover_repository(gh, repo.full_name, fake_github.app_id, None, updated_within=24 * 3600)
    assert report.prs_seen == 0 and report.concluded == []
    report = await recover_repository(gh, repo.full_name, fake_github.app_id, None)
    assert len(report.concluded) == 4


async def test_jobs_left_at_shutdown_are_run_by_the_next_start(fake_github):
    """The in-process queue dies with the server: the running job and the waiting ones leave their check runs
    `queued` (none `in_progress`), and the next server's start-up sweep runs them all to a conclusion."""
    import asyncio

    from bot.pr_handlers import install
    from tests.fakegithub import pull_request_event
    from tests.fakegithub.harness import running_bot

    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION, files=example_files())
    prs = [fake_github.open_pull(repo, {f"rules/windows/bad{i}.yml": BROKEN_RULE}) for i in range(3)]
    fake_github.latency = 0.03      # the first job is still running when the server stops
    async with running_bot(fake_github, prepare=install, workers=1, shutdown_timeout=0.1) as bot:
        for pr in prs:
            assert (await bot.deliver("pull_request", pull_request_event(fake_github, pr, "opened")))[0] == 202
        old_head = prs[2].head_sha       # pushed to while its first job waits: only the newest is handed over
        fake_github.push_to_pull(prs[2], {"rules/windows/bad2.yml": BROKEN_RULE + "# again\n"})
        await bot.deliver("pull_request", pull_request_event(fake_github, prs[2], "synchronize"))
        for _ in range(500):
            if len(fake_github.check_runs(repo, prs[0].head_sha)) == 4:
                break
            await asyncio.sleep(0.01)
    fake_github.latency = 0
    left = fake_github.check_runs(repo)
    assert not [r for r in left if r.status == "in_progress"]
    for pr in prs:      # every job, started or not, left its four checks for the next start
        assert {r.status for r in fake_github.check_runs(repo, pr.head_sha)} == {"queued"}
    assert len(left) == 12 and fake_github.check_runs(repo, old_head) == []

    async with running_bot(fake_github, prepare=install) as bot:
        for _ in range(1000):
            runs = fake_github.check_runs(repo)
            if len(runs) == 24 and all(r.status == "completed" for r in runs):
                break
            await asyncio.sleep(0.02)
        await bot.settle()
    assert all(r.status == "completed" for r in fake_github.check_runs(repo))
    for pr in prs:
        latest = runs_by_name(fake_github, repo, pr.head_sha)
        assert latest["detbot/syntax"].conclusion == "failure" and latest["detbot/tests"].conclusion != "cancelled"
    assert {fake_github.runs[r.id].conclusion for r in left} == {"cancelled"}    # "Interrupted, re-run"


async def test_waiting_base_change_edit_is_handed_over_and_title_edit_is_not(fake_github):
    """An `edited` pull_request with a new base re-runs the checks like a push: waiting at shutdown, it leaves
    its checks `queued` for the next start instead of being dropped. A title edit runs nothing and leaves none."""
    from bot.pr_handlers import hand_over_jobs
    from bot.queue import Job
    from tests.fakegithub import pull_request_event
    from tests.fakegithub.harness import running_bot

    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION, files=example_files())
    moved, titled = (fake_github.open_pull(repo, {f"rules/windows/bad{i}.yml": BROKEN_RULE}) for i in range(2))
    based = pull_request_event(fake_github, moved, "edited")
    based["changes"] = {"base": {"ref": {"from": "dev"}, "sha": {"from": moved.base_sha}}}
    retitled = pull_request_event(fake_github, titled, "edited")
    retitled["changes"] = {"title": {"from": "old"}}
    async with running_bot(fake_github) as bot:
        await hand_over_jobs(bot.github, [Job("pull_request", based, installation_id=INSTALLATION),
                                          Job("pull_request", retitled, installation_id=INSTALLATION)])
    assert {r.status for r in fake_github.check_runs(repo, moved.head_sha)} == {"queued"}
    assert len(fake_github.check_runs(repo, moved.head_sha)) == 4
    assert fake_github.check_runs(repo, titled.head_sha) == []
