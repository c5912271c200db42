"""`detbot alerts sync`: the Sekoia.io and Elasticsearch HTTP contracts, against local servers on loopback that
answer with the documented shapes (including paging)."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import aiohttp
import pytest
from aiohttp import web

from bot.cli import main
from checks.kpi.settings import RuleMap
from checks.kpi.siem import SiemError, SyncStats, elastic_alerts, sekoia_alerts
from checks.kpi.store import open_store

NOW = datetime.now(timezone.utc).replace(microsecond=0)
SIGMA_1 = "5f1abf38-3f0c-4f8a-9f6d-3b1c3c0d9e11"


def _sekoia_items() -> list[dict]:
    legacy = ["Pending", "Acknowledged", "Ongoing", "Closed", "Rejected"]
    items = []
    for i in range(23):
        item = {
            "uuid": f"0000{i:04d}-aaaa-4bbb-8ccc-000000000000", "short_id": f"AL{i}",
            "rule": {"uuid": SIGMA_1 if i % 2 else "rule-plat-2", "name": "Suspicious Sign-in", "severity": 40},
            "title": "Suspicious Sign-in", "created_at": int((NOW - timedelta(days=i)).timestamp()),
            "updated_at": int((NOW - timedelta(days=i) + timedelta(hours=1)).timestamp()),
            "urgency": {"value": 40, "display": "Medium"}, "entity": {"uuid": "e", "name": "Main"},
        }
        if i < 10:   # older alerts: the five legacy statuses only
            item["status"] = {"uuid": f"s{i}", "name": legacy[i % 5], "description": "…"}
        else:        # custom statuses: a stage, and a verdict with a category
            item["status"] = {"uuid": f"s{i}", "name": "Triage done", "stage": ["Open", "In progress", "Closed"][i % 3]}
            item["verdict"] = ({"uuid": "v", "name": "Noise", "category": "false_positive"} if i % 2
                               else {"uuid": "v2", "name": "Benign", "category": "benign_positive"})
        items.append(item)
    return items


def sekoia_app(items: list[dict], log: list[dict], fail_first: bool = True) -> web.Application:
    state = {"failed": not fail_first}

    async def alerts(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer key-123":
            return web.json_response({"message": "unauthorized"}, status=401)
        if not state["failed"]:  # the first call is rate-limited, as a busy API answers
            state["failed"] = True
            return web.json_response({"message": "slow down"}, status=429, headers={"Retry-After": "0"})
        q = request.query
        log.append(dict(q))
        limit, offset = min(int(q.get("limit", 20)), 4), int(q.get("offset", 0))  # the API caps pages at 4
        start, end = (datetime.fromisoformat(x) for x in q["date[created_at]"].split(","))
        selected = [it for it in items if start.timestamp() <= it["created_at"] <= end.timestamp()
                    and ("match[rule_uuid]" not in q or it["rule"]["uuid"] == q["match[rule_uuid]"])]
        selected.sort(key=lambda it: it["created_at"])
        return web.json_response({"total": len(selected), "items": selected[offset:offset + limit]})

    app = web.Application()
    app.router.add_get("/api/v1/sic/alerts", alerts)
    return app


async def test_sekoia_paging_statuses_and_rule_filter(aiohttp_server, tmp_path):
    log: list[dict] = []
    server = await aiohttp_server(sekoia_app(_sekoia_items(), log))
    stats = SyncStats()
    rule_map = RuleMap(by="id", table={"rule-plat-2": "sigma-2"})
    async with aiohttp.ClientSession() as session, await open_store(f"sqlite:///{tmp_path}/a.db") as store:
        alerts = sekoia_alerts(session, str(server.make_url("/")), "key-123", NOW - timedelta(days=30),
                               NOW + timedelta(seconds=1), rule_map, stats, page_size=5)
        result = await store.upsert_stream(alerts, batch_size=7)
        assert result.inserted == 23 and stats.fetched == 23 and stats.pages == 6
        assert [q["offset"] for q in log] == ["0", "4", "8", "12", "16", "20"]   # pages shorter than asked
        assert all(q["limit"] == "5" and q["sort"] == "created_at" for q in log)
        got = {i: await store.get("sekoia", f"0000{i:04d}-aaaa-4bbb-8ccc-000000000000") for i in range(23)}
        # legacy statuses
        assert (got[0].stage, got[0].verdict) == ("open", None)                       # Pending
        assert (got[1].stage, got[1].verdict) == ("in_progress", None)                # Acknowledged
        assert (got[2].stage, got[2].verdict) == ("in_progress", "true_positive")     # Ongoing
        assert (got[3].stage, got[3].verdict) == ("closed", "true_positive")          # Closed
        assert (got[4].stage, got[4].verdict) == ("closed", "false_positive")         # Rejected
        assert got[4].closed_at is not None and got[0].closed_at is None
        # custom statuses: stage and verdict category
        assert (got[11].stage, got[11].verdict) == ("closed", "false_positive")
        assert (got[14].stage, got[14].verdict) == ("closed", "benign_positive")
        assert got[10].stage == "in_progress" and got[12].stage == "open"
        # the rule's own uuid is the Sigma id for odd alerts; the table maps the others
        assert got[1].rule_id == SIGMA_1 and got[2].rule_id == "sigma-2" and got[2].platform_rule_id == "rule-plat-2"
        # and re-syncing updates in place
        log.clear()
        stats2 = SyncStats()
        again = sekoia_alerts(session, str(server.make_url("/")), "key-123", NOW - timedelta(days=30),
                              NOW + timedelta(seconds=1), rule_map, stats2, rule_uuids=[SIGMA_1], page_size=100)
        result = await store.upsert_stream(again)
        assert (result.inserted, result.updated) == (0, 11)
        assert [q["match[rule_uuid]"] for q in log] == [SIGMA_1] * 3   # 11 alerts, 4 a page
        assert await store.count() == 23


async def test_sekoia_unmapped_and_refused(aiohttp_server):
    server = await aiohttp_server(sekoia_app(_sekoia_items(), [], fail_first=False))
    stats = SyncStats()
    async with aiohttp.ClientSession() as session:
        only_table = RuleMap(by="table", table={"rule-plat-2": "sigma-2"})
        got = [a async for a in sekoia_alerts(session, str(server.make_url("/")), "key-123",
                                               NOW - timedelta(days=30), NOW, only_table, stats)]
        assert len(got) == 12 and stats.unmapped == 11
        with pytest.raises(SiemError, match="HTTP 401"):
            async for _ in sekoia_alerts(session, str(server.make_url("/")), "wrong", NOW - timedelta(days=1), NOW,
                                         RuleMap(), SyncStats()):
                pass


def _elastic_docs() -> list[dict]:
    docs = []
    for i in range(12):
        status = ["open", "acknowledged", "closed"][i % 3]
        src = {  # Kibana writes alert fields as flattened dotted keys
            "@timestamp": (NOW - timedelta(hours=5 * i)).isoformat().replace("+00:00", "Z"),
            "kibana.alert.uuid": f"uuid-{i:03d}", "kibana.alert.rule.rule_id": SIGMA_1 if i % 2 else "es-rule-2",
            "kibana.alert.rule.name": "Encoded PowerShell", "kibana.alert.workflow_status": status,
            "kibana.alert.rule.tags": ["sigma:" + ("sigma-from-tag" if i % 2 == 0 else SIGMA_1)],
        }
        if status == "closed":
            src["kibana.alert.workflow_reason"] = "false_positive" if i % 2 else "true_positive"
            src["kibana.alert.workflow_status_updated_at"] = src["@timestamp"]
        docs.append({"_index": ".internal.alerts-security.alerts-default-000001", "_id": f"uuid-{i:03d}",
                     "_source": src})
    return docs


def elastic_app(docs: list[dict], bodies: list[dict]) -> web.Application:
    async def search(request: web.Request) -> web.Response:
        assert request.match_info["index"] == ".alerts-security.alerts-*"
        if request.headers.get("Authorization") != "ApiKey es-key":
            return web.json_response({"error": {"type": "security_exception"}, "status": 401}, status=401)
        body = await request.json()
        bodies.append(body)
        filters = body["query"]["bool"]["filter"]
        rng = filters[0]["range"]["@timestamp"]
        gte, lt = datetime.fromisoformat(rng["gte"]), datetime.fromisoformat(rng["lt"])
        rules = next((f["terms"]["kibana.alert.rule.rule_id"] for f in filters if "terms" in f), None)
        hits = []
        for d in docs:
            ts = datetime.fromisoformat(d["_source"]["@timestamp"])
            if gte <= ts < lt and (rules is None or d["_source"]["kibana.alert.rule.rule_id"] in rules):
                hits.append({**d, "sort": [int(ts.timestamp() * 1000), d["_source"]["kibana.alert.uuid"]]})
        hits.sort(key=lambda h: h["sort"])
        if "search_after" in body:
            hits = [h for h in hits if h["sort"] > body["search_after"]]
        return web.json_response({"took": 1, "timed_out": False,
                                  "hits": {"total": {"value": len(hits), "relation": "eq"},
                                           "hits": hits[:body["size"]]}})

    app = web.Application()
    app.router.add_post("/{index}/_search", search)
    return app


async def test_elastic_search_after_paging_and_workflow_statuses(aiohttp_server, tmp_path):
    bodies: list[dict] = []
    server = await aiohttp_server(elastic_app(_elastic_docs(), bodies))
    stats = SyncStats()
    rule_map = RuleMap(by="id", table={"es-rule-2": "sigma-2"})
    async with aiohttp.ClientSession() as session, await open_store(f"sqlite:///{tmp_path}/a.db") as store:
        alerts = elastic_alerts(session, str(server.make_url("")).rstrip("/"), "es-key", ".alerts-security.alerts-*",
                                NOW - timedelta(days=2), NOW + timedelta(seconds=1), rule_map, stats, page_size=5)
        result = await store.upsert_stream(alerts)
        assert result.inserted == 10 and stats.fetched == 10   # 12 docs, 2 older than two days
        assert len(bodies) == 3 and "search_after" not in bodies[0]
        assert bodies[1]["search_after"][1] == "uuid-005"  # oldest first: uuid-009 .. uuid-005 on page one
        assert bodies[0]["sort"] == [{"@timestamp": "asc"}, {"kibana.alert.uuid": "asc"}]
        a = {i: await store.get("elastic", f"uuid-{i:03d}") for i in range(10)}
        assert (a[0].stage, a[1].stage, a[2].stage) == ("open", "in_progress", "closed")
        assert a[2].verdict == "true_positive" and a[5].verdict == "false_positive"
        assert a[5].closed_at is not None and a[5].rule_id == SIGMA_1 and a[2].rule_id == "sigma-2"
        # only some rules, mapped by a tag field
        bodies.clear()
        stats = SyncStats()
        by_tag = RuleMap(by="field", field="kibana.alert.rule.tags",
                         pattern=__import__("re").compile(r"sigma:(.+)"))
        got = [x async for x in elastic_alerts(session, str(server.make_url("")).rstrip("/"), "es-key",
                                               ".alerts-security.alerts-*", NOW - timedelta(days=2),
                                               NOW + timedelta(seconds=1), by_tag, stats, rule_ids=["es-rule-2"])]
        assert bodies[0]["query"]["bool"]["filter"][1] == {"terms": {"kibana.alert.rule.rule_id": ["es-rule-2"]}}
        assert {x.rule_id for x in got} == {"sigma-from-tag"} and len(got) == 5


async def test_cli_sync_sekoia_end_to_end(aiohttp_server, tmp_path, monkeypatch, capsys):
    server = await aiohttp_server(sekoia_app(_sekoia_items(), []))
    monkeypatch.setenv("SEKOIA_API_KEY", "key-123")
    store = f"sqlite:///{tmp_path}/s.db"
    code = await asyncio.to_thread(main, ["alerts", "sync", "--source", "sekoia", "--url",
                                          str(server.make_url("/")), "--store", store, "--days", "40"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "23 alerts fetched" in out and "12 of unmapped rules" not in out
    code = await asyncio.to_thread(main, ["kpi", SIGMA_1, "--store", store, "--format", "json"])
    assert code == 0
    import json
    data = json.loads(capsys.readouterr().out)
    assert data["rules"][0]["total"] >= 10


async def test_cli_sync_needs_a_key(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("SEKOIA_API_KEY", raising=False)
    code = await asyncio.to_thread(main, ["alerts", "sync", "--source", "sekoia", "--store",
                                          f"sqlite:///{tmp_path}/s.db"])
    assert code == 2 and "SEKOIA_API_KEY" in capsys.readouterr().err
