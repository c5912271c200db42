"""Honest statistics for small alert counts: Wilson intervals and the exact test for two Poisson counts.

No scipy: the binomial tails are summed exactly (integers) for small totals, and in log space beyond.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054  # the 97.5th percentile of the standard normal
MIN_TRIAGED = 10          # below this many triaged alerts a percentage misleads more than it tells
EXACT_LIMIT = 1000        # up to this many alerts, tails are summed in exact integer arithmetic


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (Wilson 1927); (0, 1) when there are no trials."""
    if trials <= 0:
        return 0.0, 1.0
    if not 0 <= successes <= trials:
        raise ValueError("successes must be between 0 and trials")
    p = successes / trials
    z2 = z * z
    denom = 1 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _log_pmf_half(k: int, n: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) - n * math.log(2)


def _upper_tail_half(k: int, n: int) -> float:
    """P(X >= k) for X ~ Binomial(n, 1/2)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if n <= EXACT_LIMIT:
        return sum(math.comb(n, i) for i in range(k, n + 1)) / 2 ** n
    # Terms shrink geometrically away from the mean, so the sum converges after a few hundred terms.
    first = _log_pmf_half(k, n)
    total, term, i = 0.0, 1.0, k
    while i <= n and term > 1e-17:
        total += term
        term *= (n - i) / (i + 1)
        i += 1
    return min(1.0, math.exp(first) * total)


def poisson_rate_test(current: int, previous: int) -> float:
    """Two-sided p-value of the exact conditional test that two Poisson counts over equal time share one rate.

    Given n = current + previous, `current` is Binomial(n, 1/2) under the null hypothesis (Przyborowski and
    Wilenski 1940). With p = 1/2 the distribution is symmetric, so the two-sided p-value is twice the smaller tail.
    """
    if current < 0 or previous < 0:
        raise ValueError("counts must not be negative")
    n = current + previous
    if n == 0:
        return 1.0
    k = max(current, previous)
    if 2 * k == n:
        return 1.0
    return min(1.0, 2 * _upper_tail_half(k, n))


def log2_change(current: int, previous: int) -> float:
    """Symmetric change: +1 is a doubling, -1 a halving; the 0.5 keeps zero counts finite."""
    return math.log2((current + 0.5) / (previous + 0.5))


@dataclass(frozen=True)
class Rejection:
    rejected: int
    triaged: int                  # closed + rejected (benign counted on the side the setting says)
    min_triaged: int = MIN_TRIAGED

    @property
    def shows_rate(self) -> bool:
        return self.triaged >= self.min_triaged and self.triaged > 0

    @property
    def rate(self) -> float | None:
        return self.rejected / self.triaged if self.shows_rate else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson_interval(self.rejected, self.triaged) if self.shows_rate else None

    def text(self) -> str:
        if self.triaged == 0:
            return "none triaged"
        if not self.shows_rate:
            return f"{self.rejected} of {self.triaged} rejected"
        lo, hi = self.interval  # type: ignore[misc]
        return f"{pct(self.rate)} rejected ({pct(lo)}–{pct(hi)}), {self.triaged_text()}"

    def triaged_text(self) -> str:
        return f"{self.rejected} of {self.triaged} triaged"

    def to_dict(self) -> dict:
        interval = self.interval
        return {"rejected": self.rejected, "triaged": self.triaged, "rate": self.rate,
                "ci95": list(interval) if interval else None, "text": self.text()}


@dataclass(frozen=True)
class WeekChange:
    current: int       # alerts created in the last 7 days
    previous: int      # alerts created in the 7 days before

    @property
    def log2(self) -> float:
        return log2_change(self.current, self.previous)

    @property
    def p_value(self) -> float:
        return poisson_rate_test(self.current, self.previous)

    @property
    def significant(self) -> bool:
        return self.p_value < 0.05 and abs(self.log2) >= 1

    @property
    def trend(self) -> str:
        """▲/▼ a significant rise/fall; ↗/↘ a change the counts cannot tell from noise; → no change."""
        if self.current == self.previous:
            return "→"
        up = self.current > self.previous
        if self.significant:
            return "▲" if up else "▼"
        return "↗" if up else "↘"

    def text(self) -> str:
        s = f"{self.current} vs {self.previous}"
        if self.current != self.previous:
            s += f" ({self.log2:+.1f} log2"
            s += f", p={format_p(self.p_value)})" if self.significant else ")"
        return s

    def to_dict(self) -> dict:
        return {"current": self.current, "previous": self.previous, "log2": round(self.log2, 4),
                "p_value": self.p_value, "significant": self.significant, "trend": self.trend}


def pct(x: float | None) -> str:
    return "–" if x is None else f"{round(100 * x)}%"


def format_p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"
