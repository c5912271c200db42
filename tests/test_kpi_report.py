"""KPIs from a real store (SQLite and PostgreSQL) and the `detbot kpi` command."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from bot.cli import main
from checks.kpi.report import kpis_for_rules
from checks.kpi.store import Alert, open_store
from tests.kpi_fixtures import pg_session, store_url  # noqa: F401

NOW = datetime.now(timezone.utc)


def alerts_for(rule: str, spec: list[tuple[int, str, str | None]], title: str = "") -> list[Alert]:
    return [Alert("t", f"{rule}-{i}", rule, NOW - timedelta(days=ago, minutes=1), stage, verdict, rule_title=title)
            for i, (ago, stage, verdict) in enumerate(spec)]


async def test_kpis_for_rules_from_the_store(store_url):
    spec = ([(1, "closed", "false_positive")] * 20 + [(2, "closed", "true_positive")] * 5 +
            [(3, "closed", "benign_positive")] * 2 + [(9, "open", None)] * 2 + [(40, "closed", "false_positive")] * 9)
    async with await open_store(store_url) as store:
        await store.upsert_many(alerts_for("noisy", spec, "Noisy rule") + alerts_for("calm", [(0, "open", None)]))
        rows = await kpis_for_rules(store, ["noisy", "calm", "never"], 30, NOW)
        assert [k.rule_id for k in rows] == ["noisy", "calm", "never"]
        noisy, calm, never = rows
        assert noisy.title == "Noisy rule"
        assert (noisy.total, noisy.open, noisy.closed, noisy.rejected, noisy.benign) == (29, 2, 5, 20, 2)
        assert (noisy.rejection.rejected, noisy.rejection.triaged) == (20, 27)
        assert (noisy.week.current, noisy.week.previous) == (27, 2) and noisy.week.significant
        assert sum(d.total for d in noisy.daily) == 29 and len(noisy.daily) == 30
        assert not never.has_history and calm.has_history
        harsh = await store.kpis(["noisy"], 30, NOW, benign_as="rejected")
        assert harsh[0].rejection.rejected == 22
        longer = await kpis_for_rules(store, ["noisy"], 60, NOW)
        assert longer[0].rejected == 29


def test_cli_kpi_text_json_markdown_and_rule_files(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = ["alert_id,rule_id,rule_title,created_at,status"]
    for i in range(15):
        day = (NOW - timedelta(days=i % 10)).strftime("%Y-%m-%dT%H:%M:%SZ")
        rows.append(f"a{i},0f06a3a5-6a09-413f-8743-e6cf35561297,Imported title,{day},"
                    f"{'rejected' if i % 3 else 'closed'}")
    (tmp_path / "a.csv").write_text("\n".join(rows) + "\n")
    store = f"sqlite:///{tmp_path}/k.db"
    assert main(["alerts", "import", "a.csv", "--store", store]) == 0
    capsys.readouterr()
    (tmp_path / "rule.yml").write_text("title: From the rule file\nid: 0f06a3a5-6a09-413f-8743-e6cf35561297\n"
                                       "logsource: {product: windows}\ndetection: {sel: {a: 1}, condition: sel}\n")
    assert main(["kpi", "--store", store]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].startswith("RULE") and "Imported title" in text
    assert "15" in text and "67% (42%-85%) of 15" in text
    assert main(["kpi", "rule.yml", "new-rule-id", "--store", store, "--format", "json", "--days", "7"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["days"] == 7
    first, second = data["rules"]
    assert first["title"] == "From the rule file" and first["total"] == sum(1 for i in range(15) if i % 10 < 7)
    assert second["total"] == 0 and len(first["daily"]) == 7
    assert main(["kpi", "--store", store, "--format", "markdown"]) == 0
    md = capsys.readouterr().out
    assert md.startswith("### Alert KPIs (last 30 days)") and "```mermaid" in md
    assert main(["kpi", "--store", store, "--days", "0"]) == 2
    (tmp_path / "broken.yml").write_text("title: no id\n")
    assert main(["kpi", "broken.yml", "--store", store]) == 2
    assert "has no `id`" in capsys.readouterr().err


async def test_comment_and_view_from_an_open_store(tmp_path):
    from checks.kpi.comment import MARKER
    from checks.kpi.settings import AlertSettings
    from checks.kpi.views import kpi_comment, kpi_view
    async with await open_store(f"sqlite:///{tmp_path}/a.db") as store:
        await store.upsert_many(alerts_for("r1", [(1, "closed", "false_positive")] * 12, "Stored title"))
        settings = AlertSettings(days=14, benign_positive="rejected", charts=2)
        body = await kpi_comment(store, [("r1", "Title from the PR", "rules/r1.yml"), ("r2", "New", "rules/r2.yml")],
                                 settings, link=lambda p: f"https://github.com/o/r/blob/abc/{p}")
        assert body.startswith(MARKER) and "(last 14 days)" in body
        assert "[Title from the PR](https://github.com/o/r/blob/abc/rules/r1.yml)" in body
        assert "**100%**" in body and "no production history" in body
        view = await kpi_view(store, ["r1"], settings, days=7)
        assert MARKER not in view and "(last 7 days)" in view and "Stored title" in view
