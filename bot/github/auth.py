"""GitHub App credentials: the app JWT and installation access tokens.

Installation tokens live an hour; they are cached until shortly before `expires_at` and fetched once per
installation even when many requests need one at the same moment (a lock per installation: the first caller
fetches, the others wait and reuse).
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Awaitable, Callable

import jwt
import structlog
from cachetools import TLRUCache

log = structlog.get_logger("bot.github.auth")

JWT_BACKDATE = 60        # GitHub's advice: iat 60 s in the past against clock drift
JWT_LIFETIME = 540       # exp - now; GitHub refuses exp more than 10 minutes ahead
JWT_REUSE = 300          # sign a new JWT after this long


class AppJWT:
    """Signs (and briefly reuses) the RS256 JWT that authenticates as the App itself."""

    def __init__(self, app_id: int | str, private_key: str | bytes) -> None:
        self.app_id = str(app_id)
        self.private_key = private_key
        self._token: str | None = None
        self._renew_at = 0.0

    def token(self, *, fresh: bool = False) -> str:
        now = time.monotonic()
        if fresh or self._token is None or now >= self._renew_at:
            issued = int(time.time())
            self._token = jwt.encode({"iat": issued - JWT_BACKDATE, "exp": issued + JWT_LIFETIME,
                                      "iss": self.app_id}, self.private_key, algorithm="RS256")
            self._renew_at = now + JWT_REUSE
        return self._token


@dataclass(frozen=True)
class InstallationToken:
    token: str
    expires_at: float    # wall clock (epoch seconds), as GitHub gives it
    refresh_at: float    # monotonic clock: stop using the token from here on


def parse_expires_at(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


TokenFetcher = Callable[[int], Awaitable[dict]]


class InstallationTokens:
    """Installation id -> access token, cached until `margin` before expiry (at most a tenth of the token's
    life, so short-lived tokens are still reused)."""

    def __init__(self, fetch: TokenFetcher, *, margin: float = 300.0, maxsize: int = 4096) -> None:
        self._fetch = fetch
        self.margin = margin
        self._cache: TLRUCache = TLRUCache(maxsize=maxsize, ttu=lambda _k, v, _now: v.refresh_at,
                                           timer=time.monotonic)
        self._locks: dict[int, asyncio.Lock] = {}
        self.fetches = 0

    def cached(self, installation_id: int) -> InstallationToken | None:
        return self._cache.get(installation_id)

    async def get(self, installation_id: int) -> str:
        tok = self._cache.get(installation_id)
        if tok is not None:
            return tok.token
        lock = self._locks.setdefault(installation_id, asyncio.Lock())
        async with lock:
            tok = self._cache.get(installation_id)
            if tok is not None:
                return tok.token
            data = await self._fetch(installation_id)
            self.fetches += 1
            expires_at = parse_expires_at(data["expires_at"])
            life = expires_at - time.time()
            refresh_at = time.monotonic() + life - min(self.margin, max(life, 0.0) / 10)
            tok = InstallationToken(data["token"], expires_at, refresh_at)
            if refresh_at > time.monotonic():
                self._cache[installation_id] = tok
            log.info("installation token issued", installation_id=installation_id,
                     expires_at=data["expires_at"])
            return tok.token

    def invalidate(self, installation_id: int, token: str | None = None) -> None:
        """Drop the cached token (only if it is still `token`: a concurrent refresh may have replaced it)."""
        tok = self._cache.get(installation_id)
        if tok is not None and (token is None or tok.token == token):
            self._cache.pop(installation_id, None)

    def evict(self, installation_id: int) -> None:
        """The installation is gone (uninstalled, suspended): forget everything about it."""
        self._cache.pop(installation_id, None)
        lock = self._locks.get(installation_id)
        if lock is not None and not lock.locked():
            del self._locks[installation_id]
