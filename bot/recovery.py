"""Crash safety: check runs of this app left `queued`/`in_progress` on open pull requests are re-run or concluded.

A restart (or a worker that died) must never leave a required check hanging. At start-up every such run is stale;
the periodic sweep only takes runs older than `min_age` that no job of this process is working on.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Awaitable, Callable, Iterable

import structlog

from .pr_flow import PullRequestTarget
from .publish import ACTIVE_RUNS, PR_CHECKS, actions_for, check_of

log = structlog.get_logger(__name__)

Enqueue = Callable[[PullRequestTarget], Awaitable[Any]]


@dataclass
class RecoveryReport:
    prs_seen: int = 0
    stale_runs: list[int] = field(default_factory=list)
    rerun: list[str] = field(default_factory=list)  # PR keys enqueued again
    concluded: list[int] = field(default_factory=list)


def _age_seconds(run: dict[str, Any], now: float) -> float:
    stamp = run.get("started_at") or run.get("created_at")
    return now - _stamp(stamp) if stamp else float("inf")


def _summary(check: str, rerun: bool) -> dict[str, str]:
    if rerun:
        return {"title": "Interrupted, re-run",
                "summary": f"detbot stopped while **detbot/{check}** was running. It was started again; the new "
                           f"run replaces this one."}
    return {"title": "Interrupted",
            "summary": f"detbot stopped while **detbot/{check}** was running. Comment "
                       f"`/{'replay' if check == 'replay' else 'recheck'}` or use the button to run it again."}


async def stale_runs(gh: Any, repo: str, head_sha: str, app_id: int, *, min_age: float = 0.0,
                     now: float | None = None) -> list[dict[str, Any]]:
    now = time.time() if now is None else now
    out = []
    url = f"/repos/{repo}/commits/{head_sha}/check-runs?app_id={app_id}&filter=latest&per_page=100"
    async for run in gh.getiter(url, iterable_key="check_runs"):
        if (run.get("status") in ("queued", "in_progress") and check_of(run.get("name", ""))
                and int(run["id"]) not in ACTIVE_RUNS and _age_seconds(run, now) >= min_age
                and (run.get("app") or {}).get("id", app_id) == app_id):
            out.append(run)
    return out


def _stamp(value: str | None) -> float:
    try:
        return datetime.fromisoformat((value or "").replace("Z", "+00:00")).timestamp()
    except ValueError:
        return float("inf")


async def recover_repository(gh: Any, repo: str, app_id: int, enqueue: Enqueue | None, *,
                             min_age: float = 0.0, updated_within: float | None = None,
                             report: RecoveryReport | None = None) -> RecoveryReport:
    """`updated_within` (seconds): only pull requests updated that recently (a run left hanging was started by
    an event that updated its PR); one request per PR is too many for every open PR of an organisation."""
    report = report or RecoveryReport()
    cutoff = time.time() - updated_within if updated_within is not None else None
    async for pr in gh.getiter(f"/repos/{repo}/pulls?state=open&sort=updated&direction=desc&per_page=100"):
        if cutoff is not None and _stamp(pr.get("updated_at")) < cutoff:
            continue
        report.prs_seen += 1
        target = PullRequestTarget.from_pull_request(pr, getattr(gh, "installation_id", None))
        runs = await stale_runs(gh, repo, target.head_sha, app_id, min_age=min_age)
        if not runs:
            continue
        report.stale_runs += [int(r["id"]) for r in runs]
        # The PR checks are re-run as a whole (a new job creates fresh runs, which GitHub shows instead);
        # replay is on demand only, so a stuck replay is concluded and the reviewer asked to ask again.
        rerun = enqueue is not None and any(check_of(r["name"]) in PR_CHECKS for r in runs)
        if rerun:
            await enqueue(target)
            report.rerun.append(target.key)
        for r in runs:
            check = check_of(r["name"]) or r["name"]
            again = rerun and check in PR_CHECKS
            await gh.patch(f"/repos/{repo}/check-runs/{r['id']}", data={
                "conclusion": "cancelled" if again else "failure",
                "completed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "output": _summary(check, again), "actions": actions_for(check)})
            report.concluded.append(int(r["id"]))
        log.info("recovery.pr", repo=repo, pr=target.number, head_sha=target.head_sha,
                 stale=[r["name"] for r in runs], rerun=rerun)
    return report


async def recover(clients: Iterable[tuple[Any, Iterable[str]]], app_id: int, enqueue: Enqueue | None, *,
                  min_age: float = 0.0, updated_within: float | None = None) -> RecoveryReport:
    """`clients`: (installation client, its repositories' full names) pairs."""
    report = RecoveryReport()
    for gh, repos in clients:
        for repo in repos:
            try:
                await recover_repository(gh, repo, app_id, enqueue, min_age=min_age, updated_within=updated_within,
                                         report=report)
            except Exception as e:  # noqa: BLE001 -- one repository's failure must not stop the sweep
                log.error("recovery.repo_failed", repo=repo, error=repr(e))
    return report
