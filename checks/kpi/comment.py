"""The KPI comment on a pull request, and the `/kpi` reply: Markdown tables and Mermaid xychart-beta charts.

The comment always fits GitHub's 65,536-character limit: rules are listed noisiest first while they fit, and the
rest are summarised in one line.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from urllib.parse import quote

from .report import RuleKpi
from .stats import format_p, pct

MARKER = "<!-- detbot:kpi -->"
GITHUB_LIMIT = 65_536
# Lines in chart order; GitHub renders xychart-beta without a legend, so the colours are fixed and named below.
SERIES = (("open", "#bf8700", "🟨"), ("closed", "#1a7f37", "🟩"), ("rejected", "#cf222e", "🟥"),
          ("benign", "#8250df", "🟪"))
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~])")

ChangedRule = tuple[str, str, str]  # (rule_id, title, path) of a rule the pull request changes


def size(text: str) -> int:
    """What counts against the limit: UTF-8 bytes, never fewer than characters, so it holds either way."""
    return len(text.encode("utf-8"))


def md_text(text: str, limit: int = 100) -> str:
    text = " ".join(str(text).split())
    if len(text) > limit:
        text = text[:limit - 1] + "…"
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")  # no HTML from a rule file
    return _MD_SPECIAL.sub(r"\\\1", text)


def md_code(text: str) -> str:
    text = " ".join(str(text).split()).replace("`", "'")
    return f"`{text.replace('|', chr(92) + '|')}`"  # GitHub tables take an escaped pipe even in code


def _chart_text(text: str, limit: int = 60) -> str:
    text = re.sub(r"[\"\\`\n\r\t]", "'", " ".join(str(text).split()))
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _rule_cell(rule_id: str, title: str, path: str, link: Callable[[str], str] | None) -> str:
    where = md_code(path) if path else md_code(rule_id)
    if not title:
        return where
    name = md_text(title)
    if link and path:
        name = f"[{name}]({quote(link(path), safe=':/?&=#%')})"
    return f"**{name}**<br>{where}"


def _row(k: RuleKpi, cell: str) -> str:
    rej = k.rejection
    rejection = rej.text() if not rej.shows_rate else (
        f"**{pct(rej.rate)}** ({pct(rej.interval[0])}–{pct(rej.interval[1])})<br>"  # type: ignore[index]
        f"{rej.rejected} of {rej.triaged} triaged")
    w = k.week
    change = f"{w.current} vs {w.previous}"
    if w.significant:
        p = format_p(w.p_value)
        change += f"<br>{w.log2:+.1f} log₂, p{p if p.startswith('<') else '=' + p}"
    return (f"| {cell} | {k.total:,} | {k.open:,} | {k.closed:,} | {k.rejected:,} | {k.benign:,} | {rejection} "
            f"| {change} | {w.trend} |")


def _new_row(cell: str, why: str = "no production history") -> str:
    return f"| {cell} | {why} | | | | | | | |"


def table_header(days: int) -> str:
    return (f"| Rule | Alerts ({days} d) | Open | Closed | Rejected | Benign | Rejection rate (95% CI) "
            "| 7 full days vs 7 before | Trend |\n|---|--:|--:|--:|--:|--:|---|---|:-:|")


def chart(k: RuleKpi) -> str:
    """A Mermaid xychart-beta of daily alerts by status, one line per status."""
    labels = ", ".join(f'"{d.day.strftime("%m-%d")}"' for d in k.daily)
    top = max([max(d.open, d.closed, d.rejected, d.benign) for d in k.daily] + [1])
    palette = ", ".join(color for _, color, _ in SERIES)
    lines = [
        "```mermaid",
        '%%{init: {"themeVariables": {"xyChart": {"plotColorPalette": "' + palette + '"}}}}%%',
        "xychart-beta",
        f'    title "{_chart_text(k.title or k.rule_id)}"',
        f"    x-axis [{labels}]",
        f'    y-axis "Alerts per day" 0 --> {top}',
    ]
    for name, _, _ in SERIES:
        lines.append(f"    line [{', '.join(str(getattr(d, name)) for d in k.daily)}]")
    lines.append("```")
    return "\n".join(lines)


def legend(k: RuleKpi) -> str:
    benign = f"counted as {k.benign_as}"
    return ("Lines: " + " · ".join(f"{mark} {name}" for name, _, mark in SERIES) +
            f" (benign positives {benign} in the rejection rate)")


def _charts(rows: Sequence[RuleKpi], count: int) -> list[str]:
    noisy = sorted((k for k in rows if k.total > 0), key=lambda k: (-k.total, k.rule_id))[:count]
    return [f"<details><summary>Daily alerts: {md_text(k.title or k.rule_id, 80)} ({k.total:,} in {k.days} d)"
            f"</summary>\n\n{chart(k)}\n\n{legend(k)}\n</details>" for k in noisy]


def _fit(head: str, rows: list[str], rest_note: Callable[[int], str], tail: list[str], limit: int) -> str:
    """Head, as many rows as fit, a note for the rows left out, then the tail blocks (charts).

    Charts are budgeted first, up to half the limit: five charts of the noisiest rules say more than the
    thousandth table row.
    """
    note_room = 1024
    kept_tail: list[str] = []
    tail_size = 0
    for block in tail:
        n = size(block) + 2
        if tail_size + n <= (limit - size(head) - note_room) // 2:
            kept_tail.append(block)
            tail_size += n
    budget = limit - size(head) - tail_size - note_room
    kept: list[str] = []
    used = 0
    for r in rows:
        n = size(r) + 1
        if used + n > budget:
            break
        kept.append(r)
        used += n
    parts = [head + "\n" + "\n".join(kept)]
    if len(kept) < len(rows):
        parts.append(rest_note(len(rows) - len(kept)))
    return "\n\n".join(parts + kept_tail)


def render_comment(rows: list[RuleKpi], changed_rules: Sequence[ChangedRule], *, days: int | None = None,
                   charts: int = 5, link: Callable[[str], str] | None = None, limit: int = GITHUB_LIMIT,
                   footer: str = "") -> str:
    """The pull request comment: marker first, one row per changed rule (noisiest first), then up to `charts`
    daily charts for the noisiest changed rules. `changed_rules` are (rule_id, title, path); `rows` their KPIs."""
    by_id = {k.rule_id: k for k in rows}
    days = days or (rows[0].days if rows else 30)
    with_history: list[tuple[RuleKpi, str]] = []
    new: list[str] = []
    seen: set[str] = set()
    for rule_id, title, path in changed_rules:
        key = rule_id or f"path:{path}"
        if key in seen:
            continue
        seen.add(key)
        k = by_id.get(rule_id) if rule_id else None
        cell = _rule_cell(rule_id or "", title or (k.title if k else ""), path, link)
        if k is not None and k.has_history:
            with_history.append((k, cell))
        else:
            new.append(_new_row(cell, "no production history" if rule_id else "no Sigma `id`: no history"))
    with_history.sort(key=lambda kc: (-kc[0].total, kc[0].rule_id))
    n_rules = len(with_history) + len(new)
    head = (f"{MARKER}\n### Production alerts of the changed rules (last {days} days)\n\n"
            f"{n_rules} changed rule{'s' if n_rules != 1 else ''}, {len(with_history)} with alerts. "
            "Rejected = closed as false positive; ▲/▼ a significant change over the week before "
            "(p < 0.05 and at least doubled or halved).\n\n" + table_header(days))
    if n_rules == 0:
        return f"{MARKER}\n### Production alerts\n\nNo rule changed in this pull request."
    table_rows = [_row(k, cell) for k, cell in with_history] + new
    hist_total = len(with_history)

    def rest_note(left: int) -> str:
        shown = len(table_rows) - left
        left_hist = max(0, hist_total - shown)
        return (f"…and {left:,} more changed rules not listed ({left_hist:,} with alerts, "
                f"{left - left_hist:,} without production history): the comment would exceed GitHub's size "
                "limit. Comment `/kpi` or run `detbot kpi RULE` for any of them.")

    tail = _charts([k for k, _ in with_history], charts)
    if footer:
        tail.append(footer)
    return _fit(head, table_rows, rest_note, tail, limit)


def render_kpi_view(rows: list[RuleKpi], *, days: int | None = None, charts: int = 1,
                    titles: dict[str, str] | None = None, limit: int = GITHUB_LIMIT,
                    heading: str = "Alert KPIs") -> str:
    """The `/kpi [--days N]` reply (and `detbot kpi --format markdown`): no marker, the same figures."""
    days = days or (rows[0].days if rows else 30)
    ordered = sorted(rows, key=lambda k: (-k.total, k.rule_id))
    titles = titles or {}
    head = f"### {heading} (last {days} days)\n\n" + table_header(days)
    if not rows:
        return f"### {heading} (last {days} days)\n\nNo rules to show."
    table_rows = [_row(k, _rule_cell(k.rule_id, titles.get(k.rule_id) or k.title, "", None)) if k.has_history
                  else _new_row(_rule_cell(k.rule_id, titles.get(k.rule_id) or k.title, "", None))
                  for k in ordered]
    return _fit(head, table_rows, lambda left: f"…and {left:,} more rules not listed (size limit).",
                _charts(ordered, charts), limit)
