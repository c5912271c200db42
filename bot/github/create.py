"""Creating things on GitHub exactly once: comments, check runs, issues.

A POST that GitHub answers 5xx (or whose answer is lost to a timeout or a dropped connection) may have been carried
out anyway. Sending it again would post a second comment or a second check run, so the client does not repeat such
POSTs by itself (client.py); `create_once` does, after looking for what the first attempt may have made:

    run = await create_once(gh, f"/repos/{repo}/check-runs", body, find=lambda: our_run_if_made())

`find` returns the created object (as GitHub's create would have answered) or None.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable

import aiohttp
import structlog
from gidgethub import GitHubBroken

from .retry import RetryPolicy

log = structlog.get_logger("bot.github")

Find = Callable[[], Awaitable[dict[str, Any] | None]]
# What a create may have done before failing: a server error, or no answer at all.
UNCERTAIN = (GitHubBroken, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError)


async def create_once(gh: Any, url: str, data: dict[str, Any], *, find: Find) -> dict[str, Any]:
    """POST `data` to `url`; after an uncertain failure, return what `find()` finds, or POST again (as often as
    the client's retry policy allows a request to be tried)."""
    policy: RetryPolicy = getattr(gh, "retry", None) or RetryPolicy()
    attempt = 0
    while True:
        attempt += 1
        try:
            return await gh.post(url, data=data)
        except UNCERTAIN as e:
            status = int(e.status_code) if isinstance(e, GitHubBroken) else None
            delay = policy.delay(status, {}, attempt)
            last = delay is None or attempt >= policy.max_attempts
            if not last:
                await asyncio.sleep(delay)    # give GitHub's write time to show before looking for it
            found = await find()
            if found is not None:
                log.info("github create was done despite its error answer", url=url, status=status,
                         attempt=attempt, error=repr(e))
                return found
            if last:
                raise
            log.warning("github create retried", url=url, status=status, attempt=attempt, error=repr(e))


async def post_comment_once(gh: Any, repo: str, number: int, body: str) -> dict[str, Any]:
    """A comment on issue or pull request `number`, posted once: after an error answer, a bot's comment with the
    same body made since just before the first attempt counts as ours."""
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))   # 60 s: clock skew

    async def posted() -> dict[str, Any] | None:
        async for c in gh.getiter(f"/repos/{repo}/issues/{number}/comments?since={since}&per_page=100"):
            if c.get("body") == body and (c.get("user") or {}).get("type") == "Bot":
                return c
        return None
    return await create_once(gh, f"/repos/{repo}/issues/{number}/comments", {"body": body}, find=posted)
