"""Statistics against published values (and scipy, when it is installed)."""
from __future__ import annotations

import math
from datetime import date, datetime, timedelta, timezone

import pytest

from checks.kpi.report import build_kpi, window
from checks.kpi.stats import Rejection, WeekChange, log2_change, poisson_rate_test, wilson_interval
from checks.kpi.store import DayCounts


def test_wilson_2_of_3_is_21_to_94_percent():
    lo, hi = wilson_interval(2, 3)
    assert (round(lo * 100), round(hi * 100)) == (21, 94)


def test_wilson_published_examples():
    # Newcombe (1998), Table I: 81/263 -> 0.2553 to 0.3662; 15/148 -> 0.0624 to 0.1605; 0/20 -> 0 to 0.1611.
    for k, n, lo_ref, hi_ref in [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611)]:
        lo, hi = wilson_interval(k, n)
        assert lo == pytest.approx(lo_ref, abs=5e-4) and hi == pytest.approx(hi_ref, abs=5e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(4, 3)


def test_poisson_10_vs_2_is_about_0_039():
    assert poisson_rate_test(10, 2) == pytest.approx(79 / 2048, rel=1e-12)  # 2 * P(X >= 10 | n=12, p=1/2)
    assert round(poisson_rate_test(10, 2), 3) == 0.039
    assert poisson_rate_test(2, 10) == poisson_rate_test(10, 2)


def test_poisson_edges():
    assert poisson_rate_test(0, 0) == 1.0
    assert poisson_rate_test(5, 5) == 1.0
    assert poisson_rate_test(1, 0) == 1.0          # 2 * 0.5
    assert poisson_rate_test(5, 0) == pytest.approx(2 / 32)


def test_large_counts_agree_with_exact_arithmetic():
    # Beyond the exact limit the tail is summed in log space; it must agree with exact integers.
    n, k = 1500, 800
    exact = 2 * sum(math.comb(n, i) for i in range(k, n + 1)) / 2 ** n
    assert poisson_rate_test(k, n - k) == pytest.approx(exact, rel=1e-9)
    assert poisson_rate_test(60_000, 40_000) < 1e-300 or poisson_rate_test(60_000, 40_000) == 0.0
    assert poisson_rate_test(50_100, 49_900) == pytest.approx(0.5272, abs=2e-3)  # normal approximation agrees


def test_against_scipy_if_installed():
    stats = pytest.importorskip("scipy.stats")
    for cur, prev in [(10, 2), (3, 9), (40, 25), (700, 650), (1200, 1100)]:
        ref = stats.binomtest(cur, cur + prev, 0.5).pvalue
        assert poisson_rate_test(cur, prev) == pytest.approx(ref, rel=1e-6)


def test_log2_change_is_symmetric():
    assert log2_change(10, 2) == pytest.approx(math.log2(10.5 / 2.5))
    assert log2_change(2, 10) == pytest.approx(-log2_change(10, 2))
    assert log2_change(0, 0) == 0


def test_week_change_flags_only_significant_doubling():
    assert WeekChange(10, 2).significant and WeekChange(10, 2).trend == "▲"
    assert WeekChange(2, 10).trend == "▼"
    assert not WeekChange(3, 1).significant and WeekChange(3, 1).trend == "↗"   # doubled, but p = 0.625
    big = WeekChange(1100, 1000)   # significant-ish p, but far from a doubling
    assert big.p_value < 0.05 and not big.significant and big.trend == "↗"
    assert WeekChange(4, 4).trend == "→"
    assert "p=0.039" in WeekChange(10, 2).text()


def test_rejection_text_below_and_above_the_minimum():
    assert Rejection(2, 3).text() == "2 of 3 rejected"
    assert Rejection(2, 3).rate is None and Rejection(2, 3).interval is None
    r = Rejection(24, 31)
    assert r.text() == "77% rejected (60%–89%), 24 of 31 triaged"
    assert Rejection(0, 0).text() == "none triaged"
    assert Rejection(5, 9, min_triaged=5).rate == pytest.approx(5 / 9)


def _counts(days_ago_to_counts: dict[int, DayCounts], last: date) -> dict[date, DayCounts]:
    out = {}
    for ago, c in days_ago_to_counts.items():
        d = last - timedelta(days=ago)
        out[d] = DayCounts(d, c.open, c.closed, c.rejected, c.benign)
    return out


def test_build_kpi_totals_benign_setting_and_weeks():
    last = date(2026, 3, 15)
    by_day = _counts({0: DayCounts(last, open=2),  # today: in the totals, not in the week comparison
                      1: DayCounts(last, open=1, closed=2, rejected=3, benign=1),
                      8: DayCounts(last, rejected=4), 20: DayCounts(last, closed=5),
                      40: DayCounts(last, rejected=100)}, last)  # outside a 30-day window
    k = build_kpi("r", "T", by_day, 30, last)
    assert (k.total, k.open, k.closed, k.rejected, k.benign) == (18, 3, 7, 7, 1)
    assert (k.rejection.rejected, k.rejection.triaged) == (7, 15)
    assert (k.week.current, k.week.previous) == (7, 4)
    assert len(k.daily) == 30 and k.daily[-1].day == last and k.daily[0].day == last - timedelta(days=29)
    k2 = build_kpi("r", "T", by_day, 30, last, benign_as="rejected")
    assert (k2.rejection.rejected, k2.rejection.triaged) == (8, 15)
    assert k2.benign == 1  # always its own number
    # a window shorter than two weeks still compares full weeks
    short = build_kpi("r", "T", by_day, 3, last)
    assert short.total == 9 and (short.week.current, short.week.previous) == (7, 4)
    with pytest.raises(ValueError):
        build_kpi("r", "T", by_day, 30, last, benign_as="ignored")


def test_window_is_utc_days_including_today():
    now = datetime(2026, 3, 15, 23, 30, tzinfo=timezone(timedelta(hours=-5)))  # already the 16th in UTC
    assert window(30, now) == (date(2026, 2, 15), date(2026, 3, 16))
