"""Check runs: created `in_progress` at once, always concluded, annotations 50 per request.

A `CheckRunSet` owns the runs of one job for one head SHA. Every publish first asks `is_current()`: once a newer
head SHA exists for the pull request, nothing but `cancelled` is posted for the stale one.
"""
from __future__ import annotations

import asyncio
import urllib.parse
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Iterable

import structlog

from checks.config import Config, ConfigError
from checks.findings import Finding

from .github.create import create_once
from .summary import Output, clip, render_cancelled, render_error, render_waiting

log = structlog.get_logger(__name__)

PR_CHECKS = ("syntax", "tests", "coverage", "ads")
ANNOTATIONS_PER_REQUEST = 50
MAX_ANNOTATION_TITLE = 255
MAX_ANNOTATION_BYTES = 64 * 1024 - 1
DEFAULT_MAX_ANNOTATIONS = 1000

# requested_action identifiers travel back in check_run.requested_action webhooks.
ACTION_RERUN = "rerun"
ACTION_REPLAY = "replay"
_ACTIONS = {
    ACTION_RERUN: {"label": "Re-run", "description": "Run detbot's checks again", "identifier": ACTION_RERUN},
    ACTION_REPLAY: {"label": "Replay", "description": "Replay raw test logs through parsers",
                    "identifier": ACTION_REPLAY},
}


# Run ids that a job of this process owns right now; the recovery sweep never touches them.
ACTIVE_RUNS: set[int] = set()


def run_name(check: str) -> str:
    return f"detbot/{check}"


def check_of(name: str) -> str | None:
    return name.split("/", 1)[1] if name.startswith("detbot/") else None


def actions_for(check: str) -> list[dict[str, str]]:
    if check == "tests":
        return [_ACTIONS[ACTION_RERUN], _ACTIONS[ACTION_REPLAY]]
    if check == "replay":
        return [_ACTIONS[ACTION_REPLAY]]
    return [_ACTIONS[ACTION_RERUN]]


@dataclass(frozen=True)
class PublishSettings:
    """From the `github:` section of `.github/detbot.yml`."""

    max_annotations: int = DEFAULT_MAX_ANNOTATIONS
    # A check with warnings but no failures concludes `neutral` (visible, not gating) or `success`.
    warnings_conclusion: str = "neutral"

    @classmethod
    def from_config(cls, config: Config) -> "PublishSettings":
        section = config.section("github")
        data = section.data
        max_ann = data.get("max_annotations", DEFAULT_MAX_ANNOTATIONS)
        if isinstance(max_ann, bool) or not isinstance(max_ann, int) or max_ann < 0:
            raise section.error("max_annotations", "must be a whole number >= 0")
        warn = data.get("warnings", "neutral")
        if warn not in ("neutral", "success"):
            raise section.error("warnings", "must be neutral or success")
        return cls(max_annotations=max_ann, warnings_conclusion=warn)


def conclusion_for(findings: Iterable[Finding], settings: PublishSettings) -> str:
    levels = {f.level for f in findings}
    if "failure" in levels:
        return "failure"
    if "warning" in levels:
        return settings.warnings_conclusion
    return "success"


def to_annotation(f: Finding) -> dict[str, Any]:
    start = max(int(f.start_line or 1), 1)
    end = max(int(f.end_line or start), start)
    ann: dict[str, Any] = {
        "path": f.path, "start_line": start, "end_line": end, "annotation_level": f.level,
        "title": clip(f"{f.check}: {f.title}", MAX_ANNOTATION_TITLE, "…"),
        "message": clip(f.message or f.title, MAX_ANNOTATION_BYTES, "…"),
    }
    # GitHub accepts columns only on a single-line annotation.
    if start == end and f.start_column:
        ann["start_column"] = max(int(f.start_column), 1)
        if f.end_column and f.end_column >= ann["start_column"]:
            ann["end_column"] = int(f.end_column)
    return ann


def annotation_batches(findings: list[Finding], cap: int) -> tuple[list[list[dict[str, Any]]], int]:
    """Failures first (they matter most when the cap cuts), then `(batches of 50, how many were left out)`."""
    order = {"failure": 0, "warning": 1, "notice": 2}
    ranked = sorted(findings, key=lambda f: order.get(f.level, 3))
    kept = ranked[:cap]
    anns = [to_annotation(f) for f in kept]
    batches = [anns[i:i + ANNOTATIONS_PER_REQUEST] for i in range(0, len(anns), ANNOTATIONS_PER_REQUEST)]
    return batches, len(ranked) - len(kept)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _always_current() -> bool:
    return True


class CheckRunSet:
    """The detbot check runs of one job on one head SHA."""

    def __init__(self, gh: Any, repo: str, head_sha: str, checks: Iterable[str], *,
                 is_current: Callable[[], Awaitable[bool]] = _always_current,
                 external_id: str | None = None) -> None:
        self.gh, self.repo, self.head_sha = gh, repo, head_sha
        self.checks = list(checks)
        self.is_current = is_current
        self.external_id = external_id
        # Marks the runs of this set on GitHub (the key, e.g. "octo/rules#12", and a token unique to the set).
        token = uuid.uuid4().hex[:12]
        self.run_token = f"{external_id}:{token}" if external_id else token
        self.ids: dict[str, int] = {}
        self.concluded: dict[str, str] = {}
        self.handed_over: set[str] = set()
        self.requests = 0

    @property
    def pending(self) -> list[str]:
        return [c for c in self.checks if c in self.ids and c not in self.concluded and c not in self.handed_over]

    def release(self) -> None:
        """Leave the runs not concluded to the recovery sweep (of this process later, or of the next start)."""
        for check in self.pending:
            self.handed_over.add(check)
            ACTIVE_RUNS.discard(self.ids[check])

    async def hand_over_pending(self) -> None:
        """Shutting down and nobody else will run this job: mark the unfinished runs `queued` and release them,
        so that the next start's recovery sweep runs the checks again (and concludes these)."""
        async def one(check: str) -> None:
            await self._patch(check, {"status": "queued", "output": render_waiting(check).as_dict()})
        await self._each_pending(one)
        self.release()

    async def create(self, waiting: bool = False) -> None:
        """All runs `in_progress` before any work, so the PR shows detbot working within a second. With
        `waiting`, `queued` instead, saying why (work handed over to detbot's next start)."""
        async def one(check: str) -> None:
            body: dict[str, Any] = {
                "name": run_name(check), "head_sha": self.head_sha, "status": "in_progress",
                "started_at": _now(), "external_id": self.run_token,
                "output": {"title": "Checking…", "summary": f"detbot is running **{run_name(check)}**."},
            }
            if waiting:
                del body["started_at"]
                body.update(status="queued", output=render_waiting(check).as_dict())
            run = await create_once(self.gh, f"/repos/{self.repo}/check-runs", body,
                                    find=lambda: self._find_created(check))
            self.ids[check] = int(run["id"])
            ACTIVE_RUNS.add(self.ids[check])
        # Every create is awaited before a failure is raised: a run created after the job already concluded
        # the others on that failure would stay `in_progress` forever (and in ACTIVE_RUNS, out of recovery's reach).
        results = await asyncio.gather(*(one(c) for c in self.checks), return_exceptions=True)
        self.requests += len(self.checks)
        for r in results:
            if isinstance(r, BaseException):
                raise r

    async def _find_created(self, check: str) -> dict[str, Any] | None:
        """The run of `check` this set created, if a create that answered an error was done after all (its
        `external_id` is unique to this set)."""
        name = urllib.parse.quote(run_name(check), safe="")
        url = f"/repos/{self.repo}/commits/{self.head_sha}/check-runs?check_name={name}&filter=all&per_page=100"
        async for run in self.gh.getiter(url, iterable_key="check_runs"):
            if run.get("external_id") == self.run_token:
                return run
        return None

    def _done(self, check: str, conclusion: str) -> None:
        self.concluded[check] = conclusion
        ACTIVE_RUNS.discard(self.ids[check])

    async def _patch(self, check: str, body: dict[str, Any]) -> None:
        await self.gh.patch(f"/repos/{self.repo}/check-runs/{self.ids[check]}", data=body)
        self.requests += 1

    async def conclude(self, check: str, conclusion: str, output: Output,
                       findings: list[Finding] | None = None, max_annotations: int = DEFAULT_MAX_ANNOTATIONS,
                       ) -> str:
        """Publish `findings` as annotations (50 per request) and conclude. Returns the conclusion posted,
        which is `cancelled` when the head SHA went stale in the meantime."""
        if check not in self.ids or check in self.concluded:
            return self.concluded.get(check, "")
        batches, _ = annotation_batches(findings or [], max_annotations)
        out = output.as_dict()
        # Every annotation request re-checks staleness: a long upload must not finish on an old SHA.
        for batch in batches[:-1]:
            if not await self.is_current():
                return await self.cancel(check)
            await self._patch(check, {"status": "in_progress", "output": {**out, "annotations": batch}})
        if conclusion != "cancelled" and not await self.is_current():
            return await self.cancel(check)
        body: dict[str, Any] = {"conclusion": conclusion, "completed_at": _now(), "output": dict(out),
                                "actions": actions_for(check)}
        if batches:
            body["output"]["annotations"] = batches[-1]
        await self._patch(check, body)
        self._done(check, conclusion)
        log.info("check_run.concluded", repo=self.repo, head_sha=self.head_sha, check=check,
                 conclusion=conclusion, annotations=sum(map(len, batches)))
        return conclusion

    async def cancel(self, check: str, reason: str = "a newer commit was pushed") -> str:
        if check not in self.ids or check in self.concluded:
            return self.concluded.get(check, "")
        await self._patch(check, {"conclusion": "cancelled", "completed_at": _now(),
                                  "output": render_cancelled(check, reason).as_dict(),
                                  "actions": actions_for(check)})
        self._done(check, "cancelled")
        return "cancelled"

    async def _each_pending(self, act: Callable[[str], Awaitable[Any]]) -> None:
        """Apply `act` to every run not yet concluded, each independently: one failing request must not leave
        the others hanging."""
        async def one(check: str) -> None:
            try:
                await act(check)
            except Exception as e:  # noqa: BLE001 -- logged; recovery concludes it later
                log.error("check_run.conclude_failed", repo=self.repo, check=check, error=repr(e))
        await asyncio.gather(*(one(c) for c in self.pending))

    async def conclude_pending(self, conclusion: str, output_for: Callable[[str], Output]) -> None:
        await self._each_pending(lambda c: self.conclude(c, conclusion, output_for(c)))

    async def fail_pending(self, reason: str) -> None:
        await self.conclude_pending("failure", lambda c: render_error(c, reason))

    async def cancel_pending(self, reason: str = "a newer commit was pushed") -> None:
        await self._each_pending(lambda c: self.cancel(c, reason))


def config_error_text(e: ConfigError) -> str:
    return f"{e.path}:{e.line}: `{e.key}`: {e.message}"
