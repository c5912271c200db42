"""`/replay` on a pull request (a `detbot/replay` check run) and the daily replay of a whole catalog (one issue).

Replay re-parses each test's raw log with the parsers at the head SHA and re-runs the rule (checks.replay). It
runs in a worker thread with its own event loop: its files are read through the TreeSource, whose lazy reads
come back to the server's loop, and parser backends may do their own I/O.
"""
from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
import threading
from concurrent.futures import Executor
from typing import Any, Iterable

import structlog

from checks.config import Config, ConfigError
from checks.replay.cache import ReplayCache, default_cache_path
from checks.replay.replay import ReplayReport, run_replay
from checks.replay.report import render_issue, render_markdown, replay_findings, summary_line
from checks.replay.settings import parse_settings, parser_files

from .fetch import Fetcher, PullRequestSnapshot, branch_snapshot, snapshot
from .pr_flow import IsCurrent, PullRequestTarget, check_executor, describe_error
from .publish import CheckRunSet, PublishSettings, conclusion_for, config_error_text
from .schedule import IssueChange, issue_room, update_tracking_issue
from .summary import TRUNCATED_NOTE, Output, clip, render_config_error

log = structlog.get_logger(__name__)

# Parser backends that call out (generic HTTP, Elasticsearch) are named by the repository's config; the bot
# only follows them when its operator allows it, so a repository cannot make the server reach internal hosts.
ALLOW_REMOTE_BACKENDS = os.environ.get("DETBOT_REPLAY_REMOTE_BACKENDS", "") == "1"


def _parsers_of(config: Config):
    settings = parse_settings(config)
    return lambda paths: parser_files(paths, settings)


_cache: ReplayCache | None = None
_cache_lock = threading.Lock()
_cache_failed = False


def shared_cache() -> ReplayCache | None:
    """One parse-result cache per server process (the user's cache directory, shared by every repository:
    keys hold the parser's content hash, or a remote backend's URL and version). None when it cannot be
    opened, e.g. a read-only home: replay then parses every log."""
    global _cache, _cache_failed
    with _cache_lock:
        if _cache is None and not _cache_failed:
            path = default_cache_path()
            try:
                _cache = ReplayCache(path)
            except (OSError, sqlite3.Error) as e:
                _cache_failed = True
                log.warning("replay.cache_unavailable", path=str(path), error=str(e))
        return _cache


def _replay_in_thread(source: Any, config: Config, rule_ids: list[str] | None,
                      changed: list[str] | None) -> ReplayReport:
    return asyncio.run(run_replay(source, config, rule_ids, shared_cache(), changed=changed,
                                  allow_remote=ALLOW_REMOTE_BACKENDS))


async def replay_off_loop(snap: PullRequestSnapshot, config: Config, rule_ids: list[str] | None,
                          changed: list[str] | None, executor: Executor | None = None) -> ReplayReport:
    loop = asyncio.get_running_loop()
    call = functools.partial(_replay_in_thread, snap.source, config, rule_ids, changed)
    return await loop.run_in_executor(executor or check_executor(), call)


def head_is(gh: Any, target: PullRequestTarget) -> IsCurrent:
    """Current while the pull request's head is still this SHA (asked of GitHub: replay runs beside the PR
    job and must not take the PR's newest-wins key from it)."""
    async def check() -> bool:
        pr = await gh.getitem(f"/repos/{target.repo}/pulls/{target.number}")
        return (pr.get("head") or {}).get("sha") == target.head_sha and pr.get("state", "open") == "open"
    return check


async def replay_pull_request(gh: Any, target: PullRequestTarget, rules: Iterable[str] = (), *,
                              is_current: IsCurrent | None = None, executor: Executor | None = None,
                              ) -> tuple[str, ReplayReport | None]:
    """Replay the named rules (ids, paths or titles), or the rules and parsers the PR changes, and publish a
    `detbot/replay` check run. Returns (conclusion, report)."""
    rule_ids = list(rules) or None
    runs = CheckRunSet(gh, target.repo, target.head_sha, ["replay"], external_id=target.key,
                       **({"is_current": is_current} if is_current else {}))
    await runs.create()
    report: ReplayReport | None = None
    try:
        fetcher = Fetcher(gh, target.repo)
        try:
            config = await fetcher.config(target.default_branch)
            settings = PublishSettings.from_config(config)
            parsers = _parsers_of(config)
        except ConfigError as e:
            await runs.conclude("replay", "failure", render_config_error("replay", config_error_text(e)))
            return runs.concluded["replay"], None
        if not config.check("replay").enabled:
            await runs.conclude("replay", "skipped", Output("Disabled in config", "Replay is disabled in "
                                "`.github/detbot.yml` (`checks.replay`)."))
            return runs.concluded["replay"], None
        # Rules named by id or title can be anywhere in the repository: fetch every rule file then.
        snap = await snapshot(gh, target.repo, target.number, target.head_sha, config, fetcher,
                              all_rules=rule_ids is not None, extra=parsers)
        report = await replay_off_loop(snap, config, rule_ids, None if rule_ids else snap.changed.touched, executor)
        findings = replay_findings(report)
        # Replaying what the PR changes, from a listing GitHub cut at 3,000 files: unseen changes went unreplayed.
        incomplete = rule_ids is None and snap.changed.truncated
        if report.rules == 0 and not report.unknown_rules and not incomplete:
            out = Output("No rule to replay", "This pull request changes no rule, test or parser to replay. "
                         "Name rules to replay others: `/replay RULE_ID`.")
            await runs.conclude("replay", "skipped", out)
        else:
            conclusion = conclusion_for(findings, settings)
            if report.unknown_rules and conclusion == "success":
                conclusion = "neutral"
            title, text = summary_line(report), render_markdown(report)
            if incomplete:
                conclusion, title = "failure", f"Incomplete: {title}"
                text = f"{TRUNCATED_NOTE.replace('checked', 'replayed')}\n\n{text}"
            out = Output(clip(title, 255, "…"), clip(text))
            await runs.conclude("replay", conclusion, out, findings, settings.max_annotations)
        return runs.concluded.get("replay", ""), report
    except asyncio.CancelledError:
        await asyncio.shield(runs.cancel_pending())
        raise
    except Exception as e:  # noqa: BLE001 -- the run must be concluded whatever happened
        log.exception("replay_flow.error", repo=target.repo, pr=target.number)
        await runs.fail_pending(describe_error(e))
        return runs.concluded.get("replay", "failure"), report
    finally:
        if runs.pending:
            await asyncio.shield(runs.fail_pending("detbot stopped before finishing the replay"))


async def replay_catalog(gh: Any, repo: str, branch: str, bot_login: str, *,
                         executor: Executor | None = None) -> tuple[ReplayReport, IssueChange]:
    """The daily replay: every rule of `branch`; breakage opens or updates the tracking issue, which is
    closed once all pass."""
    fetcher = Fetcher(gh, repo)
    config = await fetcher.config(branch)
    snap = await branch_snapshot(gh, repo, branch, config, extra=_parsers_of(config))
    report = await replay_off_loop(snap, config, None, None, executor)
    change = await update_tracking_issue(gh, repo, bot_login, render_issue(report, max_bytes=issue_room()))
    log.info("replay.daily", repo=repo, branch=branch, rules=report.rules, counts=report.counts,
             issue=change.action, number=change.number)
    return report, change
