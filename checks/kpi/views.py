"""One call from an open store to the text the GitHub side posts: the PR comment and the `/kpi` reply."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from .comment import ChangedRule, render_comment, render_kpi_view
from .report import kpis_for_rules
from .settings import AlertSettings
from .store import AlertStore


async def kpi_comment(store: AlertStore, changed_rules: Sequence[ChangedRule], settings: AlertSettings | None = None,
                      *, now: datetime | None = None, link: Callable[[str], str] | None = None) -> str:
    """The body of the pull request's KPI comment (marker first). `changed_rules`: (rule_id, title, path)."""
    settings = settings or AlertSettings()
    ids = [rule_id for rule_id, _, _ in changed_rules if rule_id]
    rows = await kpis_for_rules(store, ids, settings.days, now, titles={r: t for r, t, _ in changed_rules if r and t},
                                benign_as=settings.benign_positive, min_triaged=settings.min_triaged)
    return render_comment(rows, changed_rules, days=settings.days, charts=settings.charts, link=link)


async def kpi_view(store: AlertStore, rule_ids: Sequence[str], settings: AlertSettings | None = None, *,
                   days: int | None = None, titles: dict[str, str] | None = None,
                   now: datetime | None = None) -> str:
    """The `/kpi [--days N]` reply for these rules."""
    settings = settings or AlertSettings()
    days = days or settings.days
    rows = await kpis_for_rules(store, rule_ids, days, now, titles=titles, benign_as=settings.benign_positive,
                                min_triaged=settings.min_triaged)
    return render_kpi_view(rows, days=days, charts=min(settings.charts, 1) if len(rows) > 1 else settings.charts)
