"""The gidgethub client detbot uses for every GitHub call.

gidgethub builds requests and parses responses; this subclass adds what a production App needs around each HTTP
attempt: the credential (app JWT or installation token, fetched per attempt so a refreshed token is picked up),
`X-GitHub-Api-Version`, retries (server errors, secondary and primary rate limits; see retry.py; a POST that may
have been carried out is not repeated, see create.py), one token refresh on a 401, a semaphore bounding concurrent
calls per installation, and metrics.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, Mapping, Protocol

import aiohttp
import structlog
from gidgethub import aiohttp as gh_aiohttp

from ..metrics import Metrics
from .auth import AppJWT, InstallationTokens
from .retry import RetryPolicy

API_VERSION = "2022-11-28"
log = structlog.get_logger("bot.github")


class Credential(Protocol):
    async def header(self) -> str: ...
    async def refresh(self, stale_header: str) -> None: ...


class AppCredential:
    def __init__(self, jwt: AppJWT) -> None:
        self._jwt = jwt

    async def header(self) -> str:
        return f"Bearer {self._jwt.token()}"

    async def refresh(self, stale_header: str) -> None:
        self._jwt.token(fresh=True)


class InstallationCredential:
    def __init__(self, tokens: InstallationTokens, installation_id: int) -> None:
        self._tokens = tokens
        self.installation_id = installation_id

    async def header(self) -> str:
        return f"token {await self._tokens.get(self.installation_id)}"

    async def refresh(self, stale_header: str) -> None:
        self._tokens.invalidate(self.installation_id, stale_header.partition(" ")[2])


# POSTs that can be sent twice with the effect of once: a new installation token; a reaction (GitHub answers 200
# with the existing one).
_REPEATABLE_POSTS = ("/access_tokens", "/reactions")


def repeatable(method: str, url: str) -> bool:
    """Whether a request may be sent again after a server error or a lost answer, when it may have been done."""
    return method != "POST" or url.partition("?")[0].endswith(_REPEATABLE_POSTS)


class GitHubClient(gh_aiohttp.GitHubAPI):
    """A gidgethub GitHubAPI bound to one credential (the App, or one installation)."""

    def __init__(self, session: aiohttp.ClientSession, credential: Credential, *, base_url: str,
                 requester: str = "detbot", retry: RetryPolicy | None = None,
                 semaphore: asyncio.Semaphore | None = None, metrics: Metrics | None = None,
                 timeout: float = 30.0, installation_id: int | None = None) -> None:
        super().__init__(session, requester, base_url=base_url.rstrip("/"))
        self.credential = credential
        self.retry = retry or RetryPolicy()
        self.semaphore = semaphore
        self.metrics = metrics
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.installation_id = installation_id

    async def _request(self, method: str, url: str, headers: Mapping[str, str],
                       body: bytes = b"") -> tuple[int, Mapping[str, str], bytes]:
        headers = dict(headers)
        headers["x-github-api-version"] = API_VERSION
        attempt = 0
        waited = 0.0
        refreshed = False
        while True:
            attempt += 1
            auth = await self.credential.header()
            headers["authorization"] = auth
            status: int | None = None
            resp_headers: Mapping[str, str] = {}
            data = b""
            error: BaseException | None = None
            started = time.monotonic()
            try:
                if self.semaphore is not None:
                    async with self.semaphore:
                        status, resp_headers, data = await self._send(method, url, headers, body)
                else:
                    status, resp_headers, data = await self._send(method, url, headers, body)
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError) as e:
                error = e
            self._record(method, status, time.monotonic() - started)
            if status == 401 and not refreshed:
                # An expired or revoked credential: get a new one, once. A second 401 is real.
                refreshed = True
                await self.credential.refresh(auth)
                self._count_retry("unauthorized")
                log.info("github credential refused; refreshing", url=url, method=method)
                continue
            delay = self.retry.delay(status, resp_headers, attempt, data)
            if delay is not None and (status is None or status >= 500) and not repeatable(method, url):
                # GitHub may have done it: repeating could create a second comment or check run. Callers
                # that create things look first (create.py).
                delay = None
            if (delay is None or attempt >= self.retry.max_attempts
                    or waited + delay > self.retry.max_total_wait):
                if error is not None:
                    raise error
                assert status is not None
                return status, resp_headers, data
            reason = self._reason(status, resp_headers)
            self._count_retry(reason)
            log.warning("github call retried", method=method, url=url, status=status, reason=reason,
                        attempt=attempt, delay=round(delay, 3), error=repr(error) if error else None)
            await self.sleep(delay)
            waited += delay

    async def _send(self, method: str, url: str, headers: Mapping[str, str],
                    body: bytes) -> tuple[int, Mapping[str, str], bytes]:
        async with self._session.request(method, url, headers=headers, data=body, timeout=self.timeout) as resp:
            return resp.status, resp.headers, await resp.read()

    @staticmethod
    def _reason(status: int | None, headers: Mapping[str, str]) -> str:
        if status is None:
            return "connection"
        if status >= 500:
            return "server_error"
        if "retry-after" in headers:
            return "secondary_rate_limit"
        if headers.get("x-ratelimit-remaining") == "0":
            return "primary_rate_limit"
        return "rate_limit"

    def _record(self, method: str, status: int | None, seconds: float) -> None:
        if self.metrics is not None:
            self.metrics.github_calls.inc(method=method, status=status or 0)
            self.metrics.github_seconds.observe(seconds)

    def _count_retry(self, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.github_retries.inc(reason=reason)

    async def paginate(self, url: str, url_vars: Mapping[str, Any] | None = None, *, per_page: int = 100,
                       iterable_key: str | None = "items", limit: int | None = None) -> list[Any]:
        """All items of a paginated list endpoint (following Link: next), up to `limit`."""
        sep = "&" if "?" in url else "?"
        items: list[Any] = []
        async for item in self.getiter(f"{url}{sep}per_page={per_page}", url_vars or {},
                                       iterable_key=iterable_key):
            items.append(item)
            if limit is not None and len(items) >= limit:
                break
        return items
