"""When to retry a GitHub API call, and after how long.

GitHub asks integrators to honour `Retry-After` on secondary rate limits, to wait until `x-ratelimit-reset` when
`x-ratelimit-remaining` is 0 (primary limit, 403 or 429), and to wait at least a minute on a secondary limit that
names no time. Server errors get exponential backoff with jitter. A cap on the total wait keeps a job from hanging
behind a rate limit for an hour: past it the error is raised and the job concludes with it.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Mapping

RETRYABLE_SERVER_ERRORS = frozenset({500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    base_delay: float = 0.5        # first backoff on a server error; doubles each attempt
    max_delay: float = 30.0        # no single backoff longer than this (rate-limit waits excepted)
    max_total_wait: float = 120.0  # give up when honouring GitHub would make us wait longer than this in total
    secondary_default: float = 60.0  # secondary limit without Retry-After: GitHub says wait at least a minute

    def delay(self, status: int | None, headers: Mapping[str, str], attempt: int, body: bytes = b"",
              now: float | None = None) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None when the response is final."""
        if status is None or status in RETRYABLE_SERVER_ERRORS:   # None: connection error or timeout
            backoff = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
            return backoff / 2 + random.uniform(0, backoff / 2)
        if status not in (403, 429):
            return None
        retry_after = headers.get("retry-after")
        if retry_after is not None:
            try:
                return max(0.0, float(retry_after))
            except ValueError:
                return None
        if headers.get("x-ratelimit-remaining") == "0" and headers.get("x-ratelimit-reset"):
            try:
                reset = float(headers["x-ratelimit-reset"])
            except ValueError:
                return None
            # +0.1 s: the reset epoch has one-second resolution and our clock may run slightly ahead.
            return max(0.0, reset - (time.time() if now is None else now)) + 0.1
        if status == 429 or b"secondary rate limit" in body.lower():
            return self.secondary_default
        return None   # a plain 403 (permissions) is final
