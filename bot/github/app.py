"""One GitHub App: its credentials, a shared HTTP session, and clients per installation."""
from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import structlog

from ..metrics import Metrics
from .auth import AppJWT, InstallationTokens
from .client import AppCredential, GitHubClient, InstallationCredential
from .retry import RetryPolicy

log = structlog.get_logger("bot.github")
GITHUB_API = "https://api.github.com"


class GitHubApp:
    """Hands out `GitHubClient`s: `app_client()` acts as the App (JWT), `installation_client(id)` as one
    installation (cached installation token). All share one aiohttp session, the token cache and, per
    installation, a semaphore bounding concurrent calls (GitHub's secondary limits punish bursts)."""

    def __init__(self, *, app_id: int | str, private_key: str | bytes, base_url: str = GITHUB_API,
                 session: aiohttp.ClientSession | None = None, requester: str = "detbot",
                 concurrency: int = 8, retry: RetryPolicy | None = None, metrics: Metrics | None = None,
                 token_margin: float = 300.0, timeout: float = 30.0) -> None:
        self.app_id = int(app_id)
        self.base_url = base_url.rstrip("/")
        self.requester = requester
        self.concurrency = concurrency
        self.retry = retry or RetryPolicy()
        self.metrics = metrics
        self.timeout = timeout
        self.jwt = AppJWT(app_id, private_key)
        self.tokens = InstallationTokens(self._fetch_token, margin=token_margin)
        self._session = session
        self._own_session = session is None
        self._semaphores: dict[int, asyncio.Semaphore] = {}
        self._app_semaphore = asyncio.Semaphore(concurrency)

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            # One connection pool for everything; per-host limit is above the per-installation semaphores.
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100, limit_per_host=64))
        return self._session

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> "GitHubApp":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def app_client(self) -> GitHubClient:
        return GitHubClient(self.session, AppCredential(self.jwt), base_url=self.base_url,
                            requester=self.requester, retry=self.retry, semaphore=self._app_semaphore,
                            metrics=self.metrics, timeout=self.timeout)

    def installation_client(self, installation_id: int) -> GitHubClient:
        installation_id = int(installation_id)
        sem = self._semaphores.get(installation_id)
        if sem is None:
            sem = self._semaphores[installation_id] = asyncio.Semaphore(self.concurrency)
        return GitHubClient(self.session, InstallationCredential(self.tokens, installation_id),
                            base_url=self.base_url, requester=self.requester, retry=self.retry, semaphore=sem,
                            metrics=self.metrics, timeout=self.timeout, installation_id=installation_id)

    async def _fetch_token(self, installation_id: int) -> dict:
        return await self.app_client().post(f"/app/installations/{installation_id}/access_tokens", data=b"")

    def forget_installation(self, installation_id: int) -> None:
        """Uninstalled or suspended: drop its token and semaphore."""
        self.tokens.evict(int(installation_id))
        self._semaphores.pop(int(installation_id), None)
        log.info("installation forgotten", installation_id=installation_id)
