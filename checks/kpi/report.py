"""KPIs per rule over a window: totals by status, rejection rate, week over week, and a dense daily series."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from .stats import MIN_TRIAGED, Rejection, WeekChange
from .store import AlertStore, DayCounts

DEFAULT_DAYS = 30
BENIGN_CHOICES = ("closed", "rejected")


@dataclass
class RuleKpi:
    rule_id: str
    title: str
    days: int
    first_day: date
    last_day: date
    open: int
    closed: int              # true positives and closed without a verdict (benign kept apart)
    rejected: int            # closed as false positive
    benign: int              # closed as benign positive; counted as closed or rejected per `benign_as`
    rejection: Rejection
    # The 7 complete UTC days before today against the 7 before them. Today is left out: a partial day would
    # make the two counts cover unequal time, which the test's p = 1/2 assumes they do not.
    week: WeekChange
    daily: list[DayCounts] = field(default_factory=list)
    benign_as: str = "closed"

    @property
    def total(self) -> int:
        return self.open + self.closed + self.rejected + self.benign

    @property
    def has_history(self) -> bool:
        return self.total > 0 or self.week.previous > 0 or self.week.current > 0

    def to_dict(self) -> dict:
        return {
            "rule_id": self.rule_id, "title": self.title, "days": self.days,
            "first_day": self.first_day.isoformat(), "last_day": self.last_day.isoformat(),
            "total": self.total, "open": self.open, "closed": self.closed, "rejected": self.rejected,
            "benign": self.benign, "benign_counted_as": self.benign_as,
            "rejection": self.rejection.to_dict(), "week": self.week.to_dict(),
            "daily": [{"day": d.day.isoformat(), "open": d.open, "closed": d.closed, "rejected": d.rejected,
                       "benign": d.benign} for d in self.daily],
        }


def window(days: int, now: datetime | None = None) -> tuple[date, date]:
    """The last `days` UTC days, today included."""
    if days < 1:
        raise ValueError("days must be at least 1")
    now = now or datetime.now(timezone.utc)
    last = now.astimezone(timezone.utc).date()
    return last - timedelta(days=days - 1), last


def build_kpi(rule_id: str, title: str, by_day: dict[date, DayCounts], days: int, last: date,
              benign_as: str = "closed", min_triaged: int = MIN_TRIAGED) -> RuleKpi:
    if benign_as not in BENIGN_CHOICES:
        raise ValueError(f"benign_as must be one of {', '.join(BENIGN_CHOICES)}")
    first = last - timedelta(days=days - 1)
    daily = [by_day.get(first + timedelta(days=i)) or DayCounts(first + timedelta(days=i)) for i in range(days)]
    total = DayCounts(first)
    for d in daily:
        total.add(d)
    rejected = total.rejected + (total.benign if benign_as == "rejected" else 0)
    triaged = total.closed + total.rejected + total.benign

    def span(start: int, end: int) -> int:  # alerts created from `start` to `end` days ago (0 = today)
        lo, hi = last - timedelta(days=end), last - timedelta(days=start)
        return sum(c.total for d, c in by_day.items() if lo <= d <= hi)

    return RuleKpi(rule_id, title, days, first, last, total.open, total.closed, total.rejected, total.benign,
                   Rejection(rejected, triaged, min_triaged), WeekChange(span(1, 7), span(8, 14)), daily, benign_as)


async def kpis_for_rules(store: AlertStore, rule_ids: Sequence[str], days: int = DEFAULT_DAYS,
                         now: datetime | None = None, *, titles: dict[str, str] | None = None,
                         benign_as: str = "closed", min_triaged: int = MIN_TRIAGED) -> list[RuleKpi]:
    """One RuleKpi per rule id, in the order given. Two queries on the daily rollup, whatever the rule count."""
    first, last = window(days, now)
    query_first = min(first, last - timedelta(days=14))  # the week-over-week comparison needs 14 full days
    ids = list(dict.fromkeys(rule_ids))
    counts = await store.daily(ids, query_first, last)
    titles = dict(titles or {})
    missing = [r for r in ids if not titles.get(r)]
    if missing:
        known = await store.rules(missing)
        titles.update({r: info.rule_title for r, info in known.items() if info.rule_title})
    return [build_kpi(r, titles.get(r, ""), counts.get(r, {}), days, last, benign_as, min_triaged) for r in ids]
