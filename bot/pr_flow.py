"""The pull request flow: fetch what a PR touches, run the checks off the event loop, publish check runs.

`check_pull_request` is one job for one head SHA. It creates the runs before any work, and concludes every one of
them whatever happens: results, `skipped` (no rule touched, or check disabled), `failure` naming the reason
(config error, detbot error), or `cancelled` (superseded by a newer push: cancellation of the job, or a stale SHA
noticed before a publish).
"""
from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
from collections import defaultdict
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable

import structlog
from gidgethub import HTTPException

from checks.config import Config, ConfigError
from checks.findings import Finding
from checks.repository import is_rule_path
from checks.runner import RunResult, run_checks

from .fetch import Fetcher, PullRequestSnapshot, snapshot
from .queue import SHUTDOWN, SUPERSEDED, TIMEOUT, current_run
from .publish import PR_CHECKS, CheckRunSet, PublishSettings, conclusion_for, config_error_text
from .summary import (MAX_TITLE, TRUNCATED_NOTE, Output, clip, render_check_output, render_config_error,
                      render_disabled, render_skipped)

log = structlog.get_logger(__name__)

IsCurrent = Callable[[], Awaitable[bool]]

_executor: Executor | None = None


def check_executor() -> Executor:
    """Checks are CPU-bound pure Python: a worker thread keeps the event loop answering webhooks, and lets the
    checks read lazily fetched files back through the loop (see fetch.TreeSource)."""
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="detbot-checks")
    return _executor


@dataclass(frozen=True)
class PullRequestTarget:
    """Which commit of which pull request a job is about."""

    repo: str  # owner/name of the base repository (where check runs and comments live)
    number: int
    head_sha: str
    default_branch: str
    installation_id: int | None = None

    @property
    def key(self) -> str:
        """The queue key: one live job per pull request, newest head SHA wins."""
        return f"{self.repo}#{self.number}"

    @classmethod
    def from_pull_request(cls, pr: dict[str, Any], installation_id: int | None = None) -> "PullRequestTarget":
        base = pr["base"]["repo"]
        return cls(base["full_name"], int(pr["number"]), pr["head"]["sha"],
                   base.get("default_branch") or "main", installation_id)


class HeadTracker:
    """The newest head SHA seen per pull request, from webhooks. A job's SHA is current until a newer push
    arrives; a worker that never saw the PR's events treats its own SHA as current."""

    def __init__(self) -> None:
        self._heads: dict[str, str] = {}

    def update(self, key: str, head_sha: str) -> None:
        self._heads[key] = head_sha

    def newest(self, key: str) -> str | None:
        return self._heads.get(key)

    def is_current(self, target: PullRequestTarget) -> IsCurrent:
        async def check() -> bool:
            return self._heads.get(target.key, target.head_sha) == target.head_sha
        return check


def describe_error(e: BaseException) -> str:
    """One line a reviewer can act on: GitHub's status and message, or the exception."""
    if isinstance(e, HTTPException):
        return f"the GitHub API answered {int(e.status_code)} {e.status_code.phrase}: {e}"
    return f"{type(e).__name__}: {e}"


def group_by_check(findings: Iterable[Finding]) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        out[f.check].append(f)
    return out


async def run_checks_off_loop(snap: PullRequestSnapshot, config: Config,
                              executor: Executor | None = None) -> RunResult:
    loop = asyncio.get_running_loop()
    call = functools.partial(run_checks, snap.source, config, changed=snap.changed.touched, also=snap.dependents)
    return await loop.run_in_executor(executor or check_executor(), call)


async def publish_results(runs: CheckRunSet, result: RunResult, settings: PublishSettings,
                          checks: Iterable[str], incomplete: bool = False) -> dict[str, str]:
    """`incomplete`: GitHub listed only part of the pull request's files."""
    note = TRUNCATED_NOTE if incomplete else ""
    by_check = group_by_check(result.findings)
    shown = [c for c in PR_CHECKS if c in result.checks_run]

    async def one(check: str) -> tuple[str, str]:
        if check not in result.checks_run:
            # Enabled, but this detbot has no implementation of it: say so rather than pass silently.
            out = Output("Not available", f"**detbot/{check}** is not available in this version of detbot.")
            return check, await runs.conclude(check, "skipped", out)
        mine = by_check.get(check, [])
        left_out = max(0, len(mine) - settings.max_annotations)
        output = render_check_output(check, result.bundles, result.findings, shown, left_out, note)
        conclusion = conclusion_for(mine, settings)
        if incomplete:
            # Files beyond GitHub's listing were never seen: a rule among them may be broken, so no pass.
            conclusion, output = "failure", dataclasses.replace(output, title=clip(f"Incomplete: {output.title}",
                                                                                  MAX_TITLE, "…"))
        return check, await runs.conclude(check, conclusion, output, mine, settings.max_annotations)

    return dict(await asyncio.gather(*(one(c) for c in checks)))


CANCEL_REASONS = {
    SUPERSEDED: "a newer commit was pushed",
    SHUTDOWN: "detbot was restarted while checking; another detbot process runs the checks again",
}


async def _cancel_after(creating: asyncio.Future, runs: CheckRunSet) -> None:
    """Conclude the runs of a cancelled job, saying why: the queue records the reason on the job's run."""
    await asyncio.wait([creating])
    run = current_run()
    reason = run.cancel_reason if run is not None else None
    if reason == SHUTDOWN and run is not None and not run.queue.requeues_on_shutdown:
        # No other process will run this job again: leave the runs to the next start's recovery sweep.
        await runs.hand_over_pending()
    elif reason == TIMEOUT:
        await runs.conclude_pending("timed_out", lambda c: Output(
            "Timed out", f"**detbot/{c}** did not finish within detbot's job timeout. Use Re-run or `/recheck`."))
    else:
        await runs.cancel_pending(CANCEL_REASONS.get(reason or SUPERSEDED, "the job was cancelled"))


@dataclass
class FlowResult:
    conclusions: dict[str, str]
    config: Config | None = None
    snapshot: PullRequestSnapshot | None = None


async def check_pull_request(gh: Any, target: PullRequestTarget, *, is_current: IsCurrent | None = None,
                             executor: Executor | None = None, checks: Iterable[str] = PR_CHECKS,
                             ) -> FlowResult:
    """Run the checks for one head SHA and conclude its check runs (`conclusions`: check -> conclusion
    posted). The config and snapshot are handed back for the work that follows (the KPI comment)."""
    config: Config | None = None
    snap: PullRequestSnapshot | None = None
    started = time.perf_counter()
    bound = log.bind(repo=target.repo, pr=target.number, head_sha=target.head_sha)
    runs = CheckRunSet(gh, target.repo, target.head_sha, checks, external_id=target.key,
                       **({"is_current": is_current} if is_current else {}))
    if is_current is not None and not await is_current():
        bound.info("pr_flow.stale_before_start")
        return FlowResult({})
    # Shielded: a cancellation while the runs are being created must still let us learn their ids to
    # conclude them.
    creating = asyncio.ensure_future(runs.create())
    try:
        await asyncio.shield(creating)
        fetcher = Fetcher(gh, target.repo)
        try:
            config = await fetcher.config(target.default_branch)
            settings = PublishSettings.from_config(config)
        except ConfigError as e:
            text = config_error_text(e)
            bound.info("pr_flow.config_error", error=text)
            await runs.conclude_pending("failure", lambda c: render_config_error(c, text))
            return FlowResult(dict(runs.concluded))
        snap = await snapshot(gh, target.repo, target.number, target.head_sha, config, fetcher, dependents=True)
        if not snap.rule_paths:
            changed_count, note = snap.changed.listed, TRUNCATED_NOTE if snap.changed.truncated else ""
            deleted = [p for p in snap.changed.removed if is_rule_path(p, config)]
            # Not a pass when GitHub listed only part of the change: the unseen files may hold rules.
            await runs.conclude_pending("failure" if note else "skipped",
                                        lambda c: render_skipped(c, changed_count, note, deleted))
            return FlowResult(dict(runs.concluded), config, snap)
        disabled = [c for c in runs.checks if not config.check(c).enabled]
        await asyncio.gather(*(runs.conclude(c, "skipped", render_disabled(c)) for c in disabled))
        if not await runs.is_current():
            await runs.cancel_pending()
            return FlowResult(dict(runs.concluded), config, snap)
        result = await run_checks_off_loop(snap, config, executor)
        await publish_results(runs, result, settings, [c for c in runs.checks if c not in disabled],
                              snap.changed.truncated)
        bound.info("pr_flow.done", rules=len(snap.rule_paths), findings=len(result.findings),
                   seconds=round(time.perf_counter() - started, 3), conclusions=runs.concluded)
        return FlowResult(dict(runs.concluded), config, snap)
    except asyncio.CancelledError:
        bound.info("pr_flow.cancelled")
        await asyncio.shield(_cancel_after(creating, runs))
        raise
    except Exception as e:  # noqa: BLE001 -- every failure must still conclude the runs
        bound.exception("pr_flow.error")
        await runs.fail_pending(describe_error(e))
        return FlowResult(dict(runs.concluded), config, snap)
    finally:
        if runs.pending:
            await asyncio.shield(runs.fail_pending("detbot stopped before finishing this check"))
