"""Webhook handlers of the pull request flow, registered on ghcore's routers (bot/routes/*), and the background
work of `detbot serve` (crash recovery at start-up and periodically, the daily replay).

Handlers are called as `await handler(event, gh, ctx)` inside a queue job (`ctx.run`: newest-wins API).
"""
from __future__ import annotations

import asyncio
from datetime import time as dtime, timedelta
from typing import Any, Awaitable, Callable

import structlog
from aiohttp import web
from cachetools import TTLCache
from gidgethub import sansio

from checks.config import Config, ConfigError
from checks.replay.report import summary_line
from checks.yamldoc import YamlError, load_all

from .command_handlers import CommandError, handle_issue_comment
from .fetch import Fetcher, PullRequestSnapshot
from .kpi_comment import KPI_MARKER, upsert_marked_comment
from .payloads import payload_problem
from .pr_flow import PullRequestTarget, check_pull_request
from .publish import ACTION_REPLAY, ACTION_RERUN, PR_CHECKS, CheckRunSet, check_of
from .recovery import recover
from .replay_flow import head_is, replay_catalog, replay_pull_request
from .routes import job_key, own_pull_numbers, pr_key
from .schedule import DailyScheduler, RedisLastRuns, schedule_time

log = structlog.get_logger(__name__)

RECOVERY_INTERVAL = 600.0  # seconds between sweeps for runs left in progress
RECOVERY_MIN_AGE = 900.0  # a periodic sweep only takes runs older than this (another worker may own younger)
RECOVERY_WINDOW = 24 * 3600.0  # a periodic sweep looks at pull requests updated this recently


# ---------------------------------------------------------------- finding the pull request

async def find_pull_request(gh: Any, repo: str, head_sha: str, numbers: list[int]) -> dict | None:
    """The open pull request of a check event. Fork PRs' check events carry no `pull_requests`: then the open
    PR whose head is `head_sha` (GitHub's API has no lookup by SHA for forks)."""
    for n in numbers:
        pr = await gh.getitem(f"/repos/{repo}/pulls/{n}")
        if pr.get("state") == "open":
            return pr
    async for pr in gh.getiter(f"/repos/{repo}/pulls?state=open&per_page=100"):
        if (pr.get("head") or {}).get("sha") == head_sha:
            return pr
    return None


async def _target_of_check_event(event: sansio.Event, gh: Any, ctx: Any, holder: dict) -> PullRequestTarget | None:
    repo = event.data["repository"]["full_name"]
    numbers = own_pull_numbers(event.data, holder)
    pr = await find_pull_request(gh, repo, holder.get("head_sha", ""), numbers)
    if pr is None:
        log.info("check_event.no_open_pr", repo=repo, head_sha=holder.get("head_sha"))
        return None
    target = PullRequestTarget.from_pull_request(pr, ctx.installation_id)
    # A rerun targets the PR's newest head: an old commit's checks no longer gate the merge.
    await ctx.run.claim(pr_key(target.repo, target.number), target.head_sha)
    return target


# ---------------------------------------------------------------- the work

async def run_pr_checks(gh: Any, ctx: Any, target: PullRequestTarget) -> None:
    result = await check_pull_request(gh, target, is_current=ctx.run.is_current)
    if result.snapshot is not None and result.config is not None and await ctx.run.is_current():
        await post_kpi_comment(gh, ctx, target, result.config, result.snapshot)


def changed_rules(snap: PullRequestSnapshot) -> list[tuple[str, str, str]]:
    """(rule id, title, path) of the rules a pull request touches, read from the fetched files."""
    out = []
    for path in snap.rule_paths:
        try:
            docs = load_all(snap.source.files.get(path, b""))
        except YamlError:
            docs = []
        data = next((d.data for d in docs if isinstance(d.data, dict)), {})
        out.append((str(data.get("id") or ""), str(data.get("title") or ""), path))
    return out


_stores: dict[str, Any] = {}
_store_lock = asyncio.Lock()


async def alert_store(url: str) -> Any:
    from checks.kpi.store import open_store
    async with _store_lock:
        if url not in _stores:
            _stores[url] = await open_store(url)
        return _stores[url]


async def close_stores() -> None:
    for store in list(_stores.values()):
        await store.close()
    _stores.clear()


async def read_alert_store(url: str, read: Callable[[Any], Awaitable[str]]) -> str:
    """`read(store)`, or CommandError with a message fit for a public comment: the store's own errors name its
    URL, which may hold a password."""
    try:
        return await read(await alert_store(url))
    except Exception as e:  # noqa: BLE001 -- whatever the backend raises (StoreError, OSError, driver errors)
        log.warning("kpi.store_unavailable", error=repr(e))
        raise CommandError("the alert store could not be read (the server log says why)") from e


def _alert_settings(config: Config) -> Any:
    from checks.kpi.settings import alert_settings
    return alert_settings(config)


async def post_kpi_comment(gh: Any, ctx: Any, target: PullRequestTarget, config: Config,
                           snap: PullRequestSnapshot) -> None:
    """The PR's one KPI comment, when the server has an alert store and the PR touches rules."""
    settings = ctx.settings
    if settings is None or not settings.alert_store or not snap.rule_paths:
        return
    from checks.kpi.views import kpi_comment
    try:
        alert_cfg = _alert_settings(config)
    except ConfigError as e:
        log.warning("kpi_comment.config_error", repo=target.repo, error=str(e))
        return
    rules = changed_rules(snap)
    try:
        body = await read_alert_store(settings.alert_store, lambda store: kpi_comment(store, rules, alert_cfg))
    except CommandError as e:   # the checks are concluded already; the comment says why there are no figures
        body = (f"{KPI_MARKER}\n### Production alerts of the changed rules\n\n:warning: No figures this time: "
                f"{e}. They come back with the next push, or comment `/kpi`.")
    result = await upsert_marked_comment(gh, target.repo, target.number, body, bot_login=settings.bot_login)
    log.info("kpi_comment", repo=target.repo, pr=target.number, action=result.action, comment=result.id)


class ServerActions:
    """What the comment commands do inside the server (see command_handlers.CommandActions)."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx

    async def recheck(self, gh: Any, target: PullRequestTarget) -> str | None:
        if not await self.ctx.run.claim(pr_key(target.repo, target.number), target.head_sha):
            # A push that arrived after the comment holds the PR: its checks are the ones that count.
            return ("A newer commit of this pull request is being checked already, so `/recheck` did not run: "
                    "the newest commit's check runs are the ones that count.")
        await run_pr_checks(gh, self.ctx, target)
        return None

    async def replay(self, gh: Any, target: PullRequestTarget, rules: tuple[str, ...]) -> str | None:
        conclusion, report = await replay_pull_request(gh, target, rules, is_current=head_is(gh, target))
        if report is None:
            raise CommandError(f"replay could not run (`detbot/replay` concluded {conclusion}); see the check run")
        if report.unknown_rules:
            raise CommandError("no rule matches " + ", ".join(f"`{u}`" for u in report.unknown_rules[:10]))
        # The conclusion too: the counts alone read as a pass when the replay was incomplete (3,000-file cut).
        return (f"Replay at {target.head_sha[:7]}: {summary_line(report)}; the `detbot/replay` check run "
                f"concluded **{conclusion}**.")

    async def kpi(self, gh: Any, target: PullRequestTarget, days: int) -> str | None:
        settings = self.ctx.settings
        if settings is None or not settings.alert_store:
            raise CommandError("this detbot has no alert store configured (DETBOT_ALERT_STORE)")
        from checks.kpi.views import kpi_view
        from .fetch import snapshot
        fetcher = Fetcher(gh, target.repo)
        config = await fetcher.config(target.default_branch)
        snap = await snapshot(gh, target.repo, target.number, target.head_sha, config, fetcher, all_rules=False)
        rules = [r for r in changed_rules(snap) if r[0]]
        if not rules:
            return "No rule with an `id` changes in this pull request: no KPIs to show."
        alert_cfg = _alert_settings(config)
        return await read_alert_store(settings.alert_store, lambda store: kpi_view(
            store, [r[0] for r in rules], alert_cfg, days=days, titles={r[0]: r[1] for r in rules}))


# ---------------------------------------------------------------- webhook handlers (registered in bot/routes)

async def on_pull_request(event: sansio.Event, gh: Any, ctx: Any) -> None:
    pr = event.data["pull_request"]
    if pr.get("state", "open") != "open":
        return
    await run_pr_checks(gh, ctx, PullRequestTarget.from_pull_request(pr, ctx.installation_id))


async def on_pull_request_edited(event: sansio.Event, gh: Any, ctx: Any) -> None:
    """A pull request moved to another base branch changes its files (and so which rules need checking) under
    the same head SHA: the checks of the old base no longer hold. Title and body edits change nothing."""
    if not base_changed(event.data):
        return
    target = PullRequestTarget.from_pull_request(event.data["pull_request"], ctx.installation_id)
    # Claimed here, not from the payload (routes.job_key): a title edit must not supersede a running job.
    if await ctx.run.claim(target.key, target.head_sha):
        await run_pr_checks(gh, ctx, target)


async def on_check_suite_rerequested(event: sansio.Event, gh: Any, ctx: Any) -> None:
    target = await _target_of_check_event(event, gh, ctx, event.data["check_suite"])
    if target is not None:
        await run_pr_checks(gh, ctx, target)


async def on_check_run(event: sansio.Event, gh: Any, ctx: Any) -> None:
    """`rerequested` (GitHub's Re-run) and `requested_action` (detbot's buttons) on one of our runs."""
    run = event.data["check_run"]
    app_id = (run.get("app") or {}).get("id")
    if ctx.settings is not None and app_id is not None and int(app_id) != ctx.settings.app_id:
        return
    check = check_of(run.get("name", ""))
    if check is None:
        return
    action = event.data.get("action")
    wanted = (event.data.get("requested_action") or {}).get("identifier") if action == "requested_action" else (
        ACTION_REPLAY if check == "replay" else ACTION_RERUN)
    target = await _target_of_check_event(event, gh, ctx, run)
    if target is None:
        return
    if wanted == ACTION_REPLAY:
        await replay_pull_request(gh, target, is_current=ctx.run.is_current)
    elif wanted == ACTION_RERUN:
        await run_pr_checks(gh, ctx, target)
    else:
        log.info("check_run.unknown_action", identifier=wanted)


async def on_issue_comment(event: sansio.Event, gh: Any, ctx: Any) -> None:
    await handle_issue_comment(event.data, gh, ServerActions(ctx))


# ---------------------------------------------------------------- background work of `detbot serve`

async def installation_repositories(github: Any) -> list[tuple[Any, int, list[dict]]]:
    """(installation client, installation id, repositories) of every active installation."""
    out = []
    async for inst in github.app_client().getiter("/app/installations?per_page=100"):
        if inst.get("suspended_at"):
            continue
        gh = github.installation_client(inst["id"])
        repos = [r async for r in gh.getiter("/installation/repositories?per_page=100",
                                              iterable_key="repositories")]
        out.append((gh, int(inst["id"]), repos))
    return out


async def recover_all(github: Any, queue: Any, settings: Any, *, min_age: float,
                      updated_within: float | None = None) -> Any:
    """Re-run (through the queue, newest wins) or conclude every check run left in progress."""
    from .queue import Job

    clients = [(gh, [r["full_name"] for r in repos]) for gh, _, repos in await installation_repositories(github)]

    async def enqueue(target: PullRequestTarget) -> None:
        payload = {"action": "rerequested", "repository": {"full_name": target.repo},
                   "installation": {"id": target.installation_id},
                   "check_suite": {"head_sha": target.head_sha, "pull_requests": [{"number": target.number}]}}
        await queue.enqueue(Job("check_suite", payload, delivery_id=f"recovery-{target.key}-{target.head_sha}",
                                installation_id=target.installation_id, key=target.key, sha=target.head_sha))

    report = await recover(clients, settings.app_id, enqueue, min_age=min_age, updated_within=updated_within)
    log.info("recovery.sweep", prs=report.prs_seen, stale=len(report.stale_runs), rerun=report.rerun)
    return report


def base_changed(data: dict[str, Any]) -> bool:
    """An `edited` open pull request moved to another base branch: the only edit that changes its checks."""
    pr = data.get("pull_request") or {}
    return "base" in (data.get("changes") or {}) and pr.get("state", "open") == "open"


def _edited_base_key(data: dict[str, Any]) -> tuple[str | None, str | None]:
    """An `edited` pull_request runs the checks when its base changed (on_pull_request_edited); its key is not
    taken from the payload (a title edit must not supersede a running job), so it is worked out here."""
    pr, repo = data.get("pull_request") or {}, (data.get("repository") or {}).get("full_name")
    if not base_changed(data) or not repo:
        return None, None
    return pr_key(repo, int(pr["number"])), (pr.get("head") or {}).get("sha")


def _pr_check_target(job: Any) -> tuple[str, str, str, int] | None:
    """(repository, PR key, head sha, installation id) of a waiting job that would run the PR checks."""
    try:
        data = job.data
    except ValueError:
        return None
    if payload_problem(job.event, data) is not None:
        return None
    if job.event == "check_run" and (check_of(data["check_run"].get("name", "")) not in PR_CHECKS or (
            data.get("action") == "requested_action"
            and (data.get("requested_action") or {}).get("identifier") != ACTION_RERUN)):
        return None
    key, sha = job_key(job.event, data)
    if key is None and job.event == "pull_request" and data.get("action") == "edited":
        key, sha = _edited_base_key(data)
    if key is None or sha is None:
        return None
    installation_id = job.installation_id or (data.get("installation") or {}).get("id")
    return (key.rpartition("#")[0], key, sha, installation_id) if installation_id else None


async def hand_over_jobs(github: Any, jobs: list[Any]) -> None:
    """At shutdown, the waiting jobs of the in-process queue die with the process: the PR checks they would have
    run are created `queued`, which the next start's recovery sweep runs. Other jobs (e.g. comment commands) are
    named in the log; their authors have to ask again."""
    newest: dict[str, tuple[Any, tuple[str, str, str, int]]] = {}   # PR key -> its latest job (newest wins)
    for job in sorted(jobs, key=lambda j: j.enqueued_at):
        target = _pr_check_target(job)
        if target is None:
            log.warning("job dropped at shutdown", delivery_id=job.delivery_id, github_event=job.event)
        else:
            newest[target[1]] = (job, target)

    async def one(job: Any, repo: str, key: str, sha: str, installation_id: int) -> None:
        runs = CheckRunSet(github.installation_client(installation_id), repo, sha, PR_CHECKS, external_id=key)
        await runs.create(waiting=True)
        runs.release()
        log.info("job handed over to the next start", repo=repo, key=key, head_sha=sha,
                 delivery_id=job.delivery_id)
    results = await asyncio.gather(*(one(job, *target) for job, target in newest.values()), return_exceptions=True)
    for (job, _), result in zip(newest.values(), results):
        if isinstance(result, Exception):
            log.error("job hand-over failed", delivery_id=job.delivery_id, error=repr(result))


def install(app: web.Application) -> None:
    """Background work for `detbot serve`: the recovery sweep (at start-up, then every RECOVERY_INTERVAL) and
    the daily replay scheduler."""
    from .server import GITHUB_APP, QUEUE, SETTINGS, add_background_task

    async def sweeps(app: web.Application) -> None:
        # At start-up no job of ours is running: every in-progress run on any open PR is stale. Later sweeps
        # take only old runs on recently updated PRs (GitHub's rate limit is per installation and hour).
        min_age, window = 0.0, None
        while True:
            try:
                await recover_all(app[GITHUB_APP], app[QUEUE], app[SETTINGS], min_age=min_age,
                                  updated_within=window)
            except Exception as e:  # noqa: BLE001 -- retried at the next sweep
                log.error("recovery.failed", error=repr(e))
            min_age, window = RECOVERY_MIN_AGE, RECOVERY_WINDOW
            await asyncio.sleep(RECOVERY_INTERVAL)

    async def daily(app: web.Application) -> None:
        github, settings = app[GITHUB_APP], app[SETTINGS]

        # The scheduler ticks every minute; installations and each repository's configured time are read far
        # less often (GitHub's rate limit is per installation and per hour).
        listing: TTLCache = TTLCache(maxsize=1, ttl=600)
        slots: TTLCache = TTLCache(maxsize=100_000, ttl=3600)

        async def repositories() -> list[tuple[Any, str, str]]:
            if "all" not in listing:
                listing["all"] = [(gh, r["full_name"], r.get("default_branch") or "main")
                                  for gh, _, repos in await installation_repositories(github) for r in repos]
            return listing["all"]

        async def slot_for(gh: Any, repo: str, branch: str) -> dtime | None:
            if repo not in slots:
                try:
                    slots[repo] = schedule_time(await Fetcher(gh, repo).config(branch))
                except ConfigError as e:
                    log.warning("schedule.config_error", repo=repo, error=str(e))
                    slots[repo] = None
            return slots[repo]

        async def replay_repo(gh: Any, repo: str, branch: str) -> None:
            await replay_catalog(gh, repo, branch, settings.bot_login)

        # The queue's Redis, when there is one, keeps the last runs across restarts (exact catch-up).
        queue = app[QUEUE]
        redis = getattr(queue, "redis", None)
        last_runs = RedisLastRuns(redis, f"{getattr(queue, 'prefix', 'detbot')}:replay:last-run") if redis else None
        scheduler = DailyScheduler(repositories, slot_for, replay_repo, last_runs=last_runs,
                                   catch_up=timedelta(seconds=settings.replay_catch_up))
        try:
            await scheduler.run_forever()
        finally:
            await close_stores()

    add_background_task(app, sweeps)
    add_background_task(app, daily)
    github = app[GITHUB_APP]
    app[QUEUE].handover = lambda jobs: hand_over_jobs(github, jobs)
