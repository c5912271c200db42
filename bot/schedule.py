"""The daily replay of each installed repository's whole catalog, and the one issue that tracks breakage.

The time of day comes from the `replay:` section of `.github/detbot.yml` on the default branch
(`schedule: "03:00"`, UTC; `schedule: off` disables it). Breakage opens or updates ONE issue (found by a hidden
marker and the bot's login) listing the broken rules with the fields that changed; it is closed when all pass.
"""
from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import datetime, time as dtime, timedelta, timezone
from typing import Any, Awaitable, Callable, Iterable, Protocol

import structlog

from checks.config import Config
from checks.replay.report import MAX_ISSUE_BODY

from .github.create import create_once, post_comment_once
from .summary import clip

log = structlog.get_logger(__name__)

DEFAULT_TIME = dtime(3, 0)
ISSUE_MARKER = "<!-- detbot:replay-daily -->"
ISSUE_TITLE = "detbot: daily replay found broken rules"
_CUT_NOTE = "\n\n_… cut at GitHub's size limit: run `detbot replay --all` to see all._"
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def schedule_time(config: Config) -> dtime | None:
    """The configured time of day (UTC), None when the daily replay is off. Raises ConfigError."""
    section = config.section("replay")
    value = section.data.get("schedule", DEFAULT_TIME.strftime("%H:%M"))
    if value is False or (isinstance(value, str) and value.strip().lower() in ("off", "none", "false")):
        return None
    # YAML 1.1 reads an unquoted 03:00 as the sexagesimal integer 180.
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        return dtime(value // 60, value % 60)
    m = _HHMM.match(str(value).strip()) if isinstance(value, str) else None
    if not m:
        raise section.error("schedule", 'must be a time of day "HH:MM" (UTC), or off')
    return dtime(int(m.group(1)), int(m.group(2)))


def last_slot(at: dtime, now: datetime) -> datetime:
    """The latest time of day `at` that is not after `now`."""
    slot = datetime.combine(now.date(), at, tzinfo=timezone.utc)
    return slot if slot <= now else slot - timedelta(days=1)


def due(at: dtime, now: datetime, last_run: datetime | None) -> bool:
    """True once today's slot has passed and it has not run since that slot."""
    return last_run is None or last_run < last_slot(at, now)


def next_slot(at: dtime, now: datetime) -> datetime:
    slot = datetime.combine(now.date(), at, tzinfo=timezone.utc)
    return slot if slot > now else slot + timedelta(days=1)


@dataclass(frozen=True)
class IssueChange:
    action: str  # opened | updated | unchanged | closed | none
    number: int | None = None


def issue_room(marker: str = ISSUE_MARKER) -> int:
    """The UTF-8 bytes left for the body once `update_tracking_issue` put the marker line before it."""
    return MAX_ISSUE_BODY - len(f"{marker}\n".encode("utf-8"))


async def find_tracking_issue(gh: Any, repo: str, bot_login: str, marker: str = ISSUE_MARKER) -> dict | None:
    url = f"/repos/{repo}/issues?state=open&creator={bot_login}&per_page=100"
    async for issue in gh.getiter(url):
        if issue.get("pull_request"):
            continue
        if marker in (issue.get("body") or "") and (issue.get("user") or {}).get("login", "").lower() \
                == bot_login.lower():
            return issue
    return None


async def update_tracking_issue(gh: Any, repo: str, bot_login: str, body: str | None, *,
                                title: str = ISSUE_TITLE, marker: str = ISSUE_MARKER) -> IssueChange:
    """`body` None means all pass: close the open issue if there is one. Otherwise open or update it."""
    issue = await find_tracking_issue(gh, repo, bot_login, marker)
    if body is None:
        if issue is None:
            return IssueChange("none")
        await post_comment_once(gh, repo, int(issue["number"]), "All rules pass the daily replay again. Closing.")
        await gh.patch(f"/repos/{repo}/issues/{issue['number']}",
                       data={"state": "closed", "state_reason": "completed"})
        return IssueChange("closed", int(issue["number"]))
    # The body is rendered to fit (`issue_room`); the clip is the last guard, with a note, never a silent cut.
    body = clip(f"{marker}\n{body}", MAX_ISSUE_BODY, _CUT_NOTE)
    if issue is None:
        created = await create_once(gh, f"/repos/{repo}/issues", {"title": title, "body": body},
                                    find=lambda: find_tracking_issue(gh, repo, bot_login, marker))
        return IssueChange("opened", int(created["number"]))
    if issue.get("body") == body:
        return IssueChange("unchanged", int(issue["number"]))
    await gh.patch(f"/repos/{repo}/issues/{issue['number']}", data={"body": body})
    return IssueChange("updated", int(issue["number"]))


class LastRuns(Protocol):
    """When each repository's daily replay last ran."""

    async def get(self, repo: str) -> datetime | None: ...

    async def put(self, repo: str, when: datetime) -> None: ...

    async def claim(self, repo: str, slot: datetime, when: datetime) -> bool:
        """Record a run at `when` unless one is recorded at or after `slot`, in one step: True when this caller
        is the one to run it (two `detbot serve` sharing Redis must not both replay and open two issues)."""
        ...


class MemoryLastRuns:
    """Kept by this process only: forgotten at a restart (see DailyScheduler's `catch_up`)."""

    def __init__(self) -> None:
        self._runs: dict[str, datetime] = {}

    async def get(self, repo: str) -> datetime | None:
        return self._runs.get(repo)

    async def put(self, repo: str, when: datetime) -> None:
        self._runs[repo] = when

    async def claim(self, repo: str, slot: datetime, when: datetime) -> bool:
        last = self._runs.get(repo)
        if last is not None and last >= slot:
            return False
        self._runs[repo] = when
        return True


class RedisLastRuns:
    """In a Redis hash (the queue's Redis): survives restarts and is shared by every `detbot serve`."""

    def __init__(self, redis: Any, key: str) -> None:
        self.redis, self.key = redis, key

    async def get(self, repo: str) -> datetime | None:
        raw = await self.redis.hget(self.key, repo)
        return datetime.fromisoformat(raw.decode()) if raw else None

    async def put(self, repo: str, when: datetime) -> None:
        await self.redis.hset(self.key, repo, when.isoformat())

    # ISO times in UTC compare as strings (the slot has no fraction; "+" sorts before ".").
    _CLAIM = ("local v = redis.call('HGET', KEYS[1], ARGV[1]) "
              "if v and v >= ARGV[2] then return 0 end "
              "redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) return 1")

    async def claim(self, repo: str, slot: datetime, when: datetime) -> bool:
        utc = timezone.utc
        return bool(await self.redis.eval(self._CLAIM, 1, self.key, repo, slot.astimezone(utc).isoformat(),
                                          when.astimezone(utc).isoformat()))


class DailyScheduler:
    """Wakes every `tick` seconds; runs `replay_repo(gh, repo)` for each repository whose slot has passed.

    `repositories()` yields (installation client, repository full name, default branch); `slot_for(gh, repo,
    branch)` reads the configured time (None: off). Last runs are kept in `last_runs` (persisted with Redis).
    A repository without a record (first deploy, new repository, or a restart that forgot it) is replayed at once
    when its slot passed less than `catch_up` ago -- a restart just after the slot must not skip the day -- and
    otherwise counted as just run, so that a deploy does not replay every catalog at once.
    """

    def __init__(self, repositories: Callable[[], Awaitable[Iterable[tuple[Any, str, str]]]],
                 slot_for: Callable[[Any, str, str], Awaitable[dtime | None]],
                 replay_repo: Callable[[Any, str, str], Awaitable[Any]], *, tick: float = 60.0,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                 last_runs: LastRuns | None = None, catch_up: timedelta = timedelta(0)) -> None:
        self.repositories, self.slot_for, self.replay_repo = repositories, slot_for, replay_repo
        self.tick, self.clock = tick, clock
        self.last_runs: LastRuns = last_runs if last_runs is not None else MemoryLastRuns()
        self.catch_up = catch_up
        self._task: asyncio.Task | None = None

    async def _is_due(self, repo: str, at: dtime, now: datetime) -> bool:
        last = await self.last_runs.get(repo)
        if last is not None:
            return due(at, now, last)
        if now - last_slot(at, now) <= self.catch_up:
            log.info("schedule.catch_up", repo=repo, slot=at.strftime("%H:%M"))
            return True
        await self.last_runs.put(repo, now)
        return False

    async def run_due(self) -> list[str]:
        ran = []
        for gh, repo, branch in await self.repositories():
            try:
                at = await self.slot_for(gh, repo, branch)
                now = self.clock()
                if at is None or not await self._is_due(repo, at, now):
                    continue
                # Recorded before running: a failing replay waits for tomorrow.
                if not await self.last_runs.claim(repo, last_slot(at, now), now):
                    continue   # another process took this slot meanwhile
                await self.replay_repo(gh, repo, branch)
                ran.append(repo)
            except Exception as e:  # noqa: BLE001 -- one repository must not stop the others' replay
                log.error("schedule.replay_failed", repo=repo, error=repr(e))
        return ran

    async def run_forever(self) -> None:
        while True:
            await self.run_due()
            await asyncio.sleep(self.tick)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run_forever(), name="detbot-daily-replay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
