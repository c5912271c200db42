"""The KPI pull request comment and the /kpi view: content, escaping, charts, and the size limit."""
from __future__ import annotations

import re
from datetime import date, timedelta

from checks.kpi.comment import GITHUB_LIMIT, MARKER, chart, render_comment, render_kpi_view, size
from checks.kpi.report import build_kpi
from checks.kpi.store import DayCounts

LAST = date(2026, 3, 15)


def kpi(rule_id: str, per_day: int = 0, rejected_every: int = 3, title: str = "", recent_boost: int = 0, days=30):
    by_day = {}
    for ago in range(days):
        d = LAST - timedelta(days=ago)
        n = per_day + (recent_boost if ago < 7 else 0)
        if n:
            rej = n // rejected_every
            by_day[d] = DayCounts(d, open=1 if n > 1 else 0, rejected=rej, closed=n - rej - (1 if n > 1 else 0))
    return build_kpi(rule_id, title, by_day, days, LAST)


def test_marker_first_rows_figures_and_new_rules():
    rows = [kpi("r-busy", 3, title="Busy rule", recent_boost=6), kpi("r-quiet", 1, title="Quiet"), kpi("r-new")]
    changed = [("r-new", "Brand new rule", "rules/new.yml"), ("r-quiet", "Quiet", "rules/quiet.yml"),
               ("r-busy", "Busy rule", "rules/busy.yml"), ("", "No id", "rules/noid.yml")]
    body = render_comment(rows, changed, days=30)
    assert body.startswith(MARKER + "\n")
    lines = body.splitlines()
    busy = next(line for line in lines if "Busy rule" in line and line.startswith("|"))
    quiet = next(line for line in lines if "Quiet" in line and line.startswith("|"))
    assert lines.index(busy) < lines.index(quiet)          # noisiest first
    k = rows[0]
    assert f"| {k.total:,} | {k.open:,} | {k.closed:,} | {k.rejected:,} | {k.benign:,} |" in busy
    assert f"{k.rejection.rejected} of {k.rejection.triaged} triaged" in busy
    assert "▲" in busy and f"{k.week.current} vs {k.week.previous}" in busy
    new = next(line for line in lines if "Brand new rule" in line)
    assert "no production history" in new
    assert "no Sigma `id`" in next(line for line in lines if "noid.yml" in line)
    assert body.count("```mermaid") == 2                   # only rules with alerts get a chart


def test_at_most_five_charts_for_the_noisiest():
    rows = [kpi(f"r{i}", i + 1, title=f"Rule {i}") for i in range(8)]
    body = render_comment(rows, [(k.rule_id, k.title, f"rules/{k.rule_id}.yml") for k in rows])
    assert body.count("```mermaid") == 5
    summaries = re.findall(r"<summary>Daily alerts: Rule (\d)", body)
    assert summaries == ["7", "6", "5", "4", "3"]
    assert render_comment(rows, [(k.rule_id, k.title, "p") for k in rows], charts=0).count("```mermaid") == 0


def test_chart_is_xychart_beta_with_one_value_per_day():
    k = kpi("r", 4, title='Quote " and `tick`')
    text = chart(k)
    assert text.startswith("```mermaid") and "\nxychart-beta\n" in text
    assert re.search(r'^    title "[^"`]*"$', text, re.M)
    labels = re.search(r"x-axis \[(.*)\]", text).group(1).split(", ")
    assert len(labels) == 30 and labels[-1] == '"03-15"'
    series = re.findall(r"^    line \[(.*)\]$", text, re.M)
    assert len(series) == 4 and all(len(s.split(", ")) == 30 for s in series)
    per_day = [sum(int(s.split(", ")[i]) for s in series) for i in range(30)]
    assert per_day == [d.total for d in k.daily]
    top = int(re.search(r"--> (\d+)", text).group(1))
    assert top == max(max(d.open, d.closed, d.rejected, d.benign) for d in k.daily)


def test_titles_and_paths_cannot_break_the_table_or_inject_html():
    k = kpi("r1", 2, title="x")
    body = render_comment([k], [("r1", "Evil | <img src=x onerror=alert(1)> [link](http://e) **b**",
                                 "rules/we|ird`name.yml")])
    row = next(line for line in body.splitlines() if line.startswith("| **"))
    assert "<img" not in body and "&lt;img" in row
    assert "\\[link\\]" in row
    cells = re.split(r"(?<!\\)\|", row)
    assert len(cells) == 11  # 9 columns: no pipe from the title or path split a cell


def test_stays_under_github_limit_with_2000_rules():
    rows = [kpi(f"{i:08d}-0000-4000-8000-000000000000", 1 + i % 40, title=f"Rule number {i} " + "x" * 60)
            for i in range(2000)]
    changed = [(k.rule_id, k.title, f"rules/windows/process_creation/rule_{i:05d}_with_a_long_name.yml")
               for i, k in enumerate(rows)]
    changed += [(f"new-{i}", f"New {i}", f"rules/new/{i}.yml") for i in range(300)]
    body = render_comment(rows, changed)
    assert size(body) < GITHUB_LIMIT
    assert body.startswith(MARKER)
    listed = sum(1 for line in body.splitlines() if line.startswith("| **"))
    m = re.search(r"…and ([\d,]+) more changed rules not listed \(([\d,]+) with alerts, ([\d,]+) without", body)
    assert m, body[-2000:]
    assert listed + int(m.group(1).replace(",", "")) == 2300
    assert int(m.group(3).replace(",", "")) == 300       # the new rules were the ones left out first
    assert "2300 changed rules, 2000 with alerts" in body
    assert body.count("```mermaid") == 5                  # charts still fit after the summary


def test_tiny_limit_still_holds():
    rows = [kpi(f"r{i}", 5, title=f"R{i}") for i in range(50)]
    body = render_comment(rows, [(k.rule_id, k.title, "p") for k in rows], limit=6000)
    assert size(body) < 6000 and body.startswith(MARKER)


def test_no_changed_rules():
    assert render_comment([], []).startswith(MARKER)


def test_kpi_view_has_no_marker_and_one_chart_by_default():
    rows = [kpi("a", 1, title="A"), kpi("b", 5, title="B"), kpi("c")]
    view = render_kpi_view(rows, days=30)
    assert MARKER not in view and view.startswith("### Alert KPIs (last 30 days)")
    assert view.index("**B**") < view.index("**A**") and "no production history" in view
    assert view.count("```mermaid") == 1
