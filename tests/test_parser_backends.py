"""Parser backends: the embedded executor over repository files, and the HTTP and Elasticsearch backends
against real aiohttp servers on loopback answering the documented shapes (errors included)."""
from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from checks.replay.backends import ElasticsearchBackend, EmbeddedBackend, HttpBackend
from checks.source import MemorySource

GROK_PIPELINE = b"""
description: test
processors:
  - grok:
      field: message
      patterns: ["^%{IP:source.ip} %{WORD:event.action}$"]
  - remove:
      field: message
"""


def source(files: dict[str, bytes]) -> MemorySource:
    return MemorySource(files)


# --- embedded ------------------------------------------------------------------------------------------

async def test_embedded_parses_reports_unparsed_and_versions_by_definition():
    backend = EmbeddedBackend(source({"parsers/fw.yml": GROK_PIPELINE}))
    results = await backend.parse_batch("fw", ["10.0.0.1 allow", "garbage"])
    assert results[0].status == "ok" and results[0].event == {"source": {"ip": "10.0.0.1"},
                                                              "event": {"action": "allow"}}
    assert results[1].status == "unparsed" and "do not match" in results[1].message
    v1 = await backend.parser_version("fw")
    assert results[0].parser_version == v1 and len(v1) == 16
    changed = EmbeddedBackend(source({"parsers/fw.yml": GROK_PIPELINE.replace(b"event.action", b"event.type")}))
    assert await changed.parser_version("fw") != v1
    same = EmbeddedBackend(source({"parsers/fw.yml": GROK_PIPELINE + b"\n# a comment\n"}))
    assert await same.parser_version("fw") == v1


async def test_embedded_reads_json_definitions():
    definition = {"processors": [{"kv": {"field": "message", "field_split": " ", "value_split": "="}}]}
    backend = EmbeddedBackend(source({"parsers/kv.json": json.dumps(definition).encode()}))
    [r] = await backend.parse_batch("kv", ["a=1 b=2"])
    assert r.status == "ok" and r.event["a"] == "1" and r.event["b"] == "2"


async def test_embedded_invalid_definition_is_an_error_naming_file_and_line():
    bad = b"processors:\n  - set:\n      field: a\n      value: 1\n  - script:\n      source: ctx.a = 1\n"
    backend = EmbeddedBackend(source({"parsers/bad.yml": bad}))
    [r] = await backend.parse_batch("bad", ["x"])
    assert r.status == "error" and r.message.startswith("parsers/bad.yml:5:") and "[script]" in r.message
    [r] = await EmbeddedBackend(source({"parsers/y.yml": b"processors: [\n"})).parse_batch("y", ["x"])
    assert r.status == "error" and "parsers/y.yml:" in r.message


async def test_embedded_missing_parser_and_hostile_name_are_errors():
    backend = EmbeddedBackend(source({}))
    [r] = await backend.parse_batch("nope", ["x"])
    assert r.status == "error" and "no pipeline definition for parser [nope]" in r.message
    [r] = await backend.parse_batch("../../etc/passwd", ["x"])
    assert r.status == "error" and "invalid parser name" in r.message


async def test_embedded_sub_pipeline_change_changes_the_callers_version():
    outer = b"processors:\n  - pipeline:\n      name: inner\n"
    inner = b"processors:\n  - set:\n      field: x\n      value: 1\n"
    a = EmbeddedBackend(source({"parsers/outer.yml": outer, "parsers/inner.yml": inner}))
    b = EmbeddedBackend(source({"parsers/outer.yml": outer, "parsers/inner.yml": inner.replace(b"1", b"2")}))
    assert await a.parser_version("outer") != await b.parser_version("outer")
    [r] = await b.parse_batch("outer", ["m"])
    assert r.event == {"message": "m", "x": 2}
    loop = EmbeddedBackend(source({"parsers/a.yml": b"processors:\n  - pipeline:\n      name: a\n"}))
    [r] = await loop.parse_batch("a", ["m"])
    assert r.status == "unparsed"


# --- generic HTTP --------------------------------------------------------------------------------------

def http_app(calls: list[dict[str, Any]], mode: dict[str, str]) -> web.Application:
    async def parse(request: web.Request) -> web.Response:
        body = await request.json()
        calls.append({"body": body, "auth": request.headers.get("Authorization")})
        if mode.get("fail") == "500":
            return web.Response(status=500, text="parser crashed")
        if mode.get("fail") == "html":
            return web.Response(text="<html>oops</html>")
        if mode.get("fail") == "short":
            return web.json_response({"version": "v1", "results": []})
        results = []
        for log in body["logs"]:
            if log.startswith("user="):
                results.append({"status": "ok", "event": {"user": {"name": log[5:]}}, "warnings": []})
            elif log == "weird":
                results.append({"status": "maybe"})
            else:
                results.append({"status": "unparsed", "warnings": ["no user= prefix"]})
        return web.json_response({"version": f"{body['parser']}-v7", "results": results})

    app = web.Application()
    app.router.add_post("/parse", parse)
    return app


async def test_http_backend_contract_batches_and_versions(aiohttp_server):
    calls: list[dict[str, Any]] = []
    server = await aiohttp_server(http_app(calls, {}))
    backend = HttpBackend(str(server.make_url("/parse")), headers={"Authorization": "Bearer t"}, batch_size=2)
    try:
        assert await backend.parser_version("auth") == "auth-v7"
        results = await backend.parse_batch("auth", ["user=alice", "nope", "weird", "user=bob", "x"])
    finally:
        await backend.close()
    assert [r.status for r in results] == ["ok", "unparsed", "error", "ok", "unparsed"]
    assert results[0].event == {"user": {"name": "alice"}} and results[0].parser_version == "auth-v7"
    assert results[1].message == "no user= prefix" and "malformed" in results[2].message
    assert calls[0]["body"] == {"parser": "auth", "logs": []}
    assert [len(c["body"]["logs"]) for c in calls[1:]] == [2, 2, 1]
    assert all(c["auth"] == "Bearer t" for c in calls)


async def test_http_backend_errors_become_error_results(aiohttp_server):
    mode: dict[str, str] = {}
    server = await aiohttp_server(http_app([], mode))
    backend = HttpBackend(str(server.make_url("/parse")))
    try:
        for fail, fragment in [("500", "HTTP 500"), ("html", "not JSON"), ("short", "expected 2 results")]:
            mode["fail"] = fail
            results = await backend.parse_batch("auth", ["user=a", "user=b"])
            assert [r.status for r in results] == ["error", "error"], fail
            assert fragment in results[0].message
    finally:
        await backend.close()
    unreachable = HttpBackend("http://127.0.0.1:1/parse", timeout=2, attempts=2, retry_delay=0.01)
    try:
        [r] = await unreachable.parse_batch("auth", ["user=a"])
    finally:
        await unreachable.close()
    assert r.status == "error" and "failed" in r.message


# --- Elasticsearch simulate ----------------------------------------------------------------------------

ES_PIPELINE = {"description": "auth", "processors": [{"grok": {"field": "message", "patterns": ["user=%{WORD:user.name}"]}}]}


def es_app(calls: list[dict[str, Any]]) -> web.Application:
    async def get_pipeline(request: web.Request) -> web.Response:
        calls.append({"method": "GET", "path": request.path, "auth": request.headers.get("Authorization")})
        pid = request.match_info["id"]
        if pid != "logs-auth":
            return web.json_response({}, status=404)
        return web.json_response({pid: ES_PIPELINE})

    async def simulate(request: web.Request) -> web.Response:
        body = await request.json()
        calls.append({"method": "POST", "path": request.path, "body": body})
        pid = request.match_info["id"]
        if pid != "logs-auth":
            return web.json_response({"error": {"root_cause": [{"type": "resource_not_found_exception",
                                                                "reason": f"pipeline [{pid}] does not exist"}],
                                                 "type": "resource_not_found_exception",
                                                 "reason": f"pipeline [{pid}] does not exist"}, "status": 404},
                                     status=404)
        docs = []
        for d in body["docs"]:
            msg = d["_source"]["message"]
            if msg.startswith("user="):
                docs.append({"doc": {"_index": "_index", "_id": "_id", "_version": "-3",
                                     "_source": {"message": msg, "user": {"name": msg[5:]}},
                                     "_ingest": {"timestamp": "2024-01-01T00:00:00.000Z"}}})
            elif msg == "drop":
                docs.append(None)
            else:
                docs.append({"error": {"root_cause": [{"type": "illegal_argument_exception",
                                                       "reason": f"Provided Grok expressions do not match field "
                                                                 f"value: [{msg}]"}],
                                       "type": "illegal_argument_exception",
                                       "reason": f"Provided Grok expressions do not match field value: [{msg}]"}})
        return web.json_response({"docs": docs})

    app = web.Application()
    app.router.add_get("/_ingest/pipeline/{id}", get_pipeline)
    app.router.add_post("/_ingest/pipeline/{id}/_simulate", simulate)
    return app


async def test_elasticsearch_simulate_shapes(aiohttp_server):
    calls: list[dict[str, Any]] = []
    server = await aiohttp_server(es_app(calls))
    backend = ElasticsearchBackend(str(server.make_url("")), pipeline_prefix="logs-",
                                   headers={"Authorization": "ApiKey k"})
    try:
        results = await backend.parse_batch("auth", ["user=alice", "garbage", "drop"])
        version = await backend.parser_version("auth")
    finally:
        await backend.close()
    assert [r.status for r in results] == ["ok", "unparsed", "unparsed"]
    assert results[0].event == {"message": "user=alice", "user": {"name": "alice"}}
    assert "illegal_argument_exception: Provided Grok expressions do not match" in results[1].message
    assert "dropped" in results[2].message
    assert results[0].parser_version == version and len(version) == 16
    post = next(c for c in calls if c["method"] == "POST")
    assert post["path"] == "/_ingest/pipeline/logs-auth/_simulate"
    assert post["body"] == {"docs": [{"_source": {"message": m}} for m in ["user=alice", "garbage", "drop"]]}
    assert calls[0]["auth"] == "ApiKey k"


async def test_elasticsearch_missing_pipeline_is_a_backend_error(aiohttp_server):
    server = await aiohttp_server(es_app([]))
    backend = ElasticsearchBackend(str(server.make_url("")))
    try:
        results = await backend.parse_batch("nope", ["user=a", "user=b"])
    finally:
        await backend.close()
    assert [r.status for r in results] == ["error", "error"]
    assert "HTTP 404" in results[0].message


async def test_http_backend_retries_overload_then_succeeds(aiohttp_server):
    hits = []

    async def parse(request: web.Request) -> web.Response:
        body = await request.json()
        hits.append(len(body["logs"]))
        if len(hits) <= 2:
            return web.Response(status=503, text="busy")
        return web.json_response({"version": "v", "results": [{"status": "ok", "event": {"x": 1}}
                                                              for _ in body["logs"]]})

    app = web.Application()
    app.router.add_post("/parse", parse)
    server = await aiohttp_server(app)
    backend = HttpBackend(str(server.make_url("/parse")), retry_delay=0.01)
    try:
        [r] = await backend.parse_batch("p", ["a"])
    finally:
        await backend.close()
    assert r.status == "ok" and hits == [1, 1, 1]
    gives_up = HttpBackend(str(server.make_url("/parse")), attempts=1)
    hits.clear()
    try:
        [r] = await gives_up.parse_batch("p", ["a"])
    finally:
        await gives_up.close()
    assert r.status == "error" and "HTTP 503" in r.message


async def test_http_backend_reads_large_answers_whole(aiohttp_server):
    async def parse(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"version": "v", "results": [{"status": "ok", "event": {"log": log, "pad": "x" * 2000}}
                                                              for log in body["logs"]]})

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post("/parse", parse)
    server = await aiohttp_server(app)
    backend = HttpBackend(str(server.make_url("/parse")), batch_size=1000)
    logs = [f"line {i}" for i in range(1000)]  # ~2 MB per answer: many network chunks
    try:
        results = await backend.parse_batch("p", logs)
    finally:
        await backend.close()
    assert [r.status for r in results] == ["ok"] * 1000 and results[999].event["log"] == "line 999"


async def test_http_backend_refuses_an_oversized_answer(aiohttp_server, monkeypatch):
    import checks.replay.backends as backends
    monkeypatch.setattr(backends, "MAX_ANSWER_BYTES", 1000)

    async def parse(request: web.Request) -> web.Response:
        return web.json_response({"version": "v", "results": [{"status": "ok", "event": {"x": "y" * 5000}}]})

    app = web.Application()
    app.router.add_post("/parse", parse)
    server = await aiohttp_server(app)
    backend = HttpBackend(str(server.make_url("/parse")))
    try:
        [r] = await backend.parse_batch("p", ["a"])
    finally:
        await backend.close()
    assert r.status == "error" and "larger than 1,000 bytes" in r.message


async def test_shared_cache_keeps_same_named_services_apart(aiohttp_server, tmp_path):
    """Two repositories may both call their HTTP backend `corp` with version "1": the bot's one cache must not
    hand one service's parse of a log to the other."""
    from checks.replay.cache import ReplayCache
    from checks.replay.replay import parse_cached

    def answering(user: str) -> web.Application:
        async def parse(request: web.Request) -> web.Response:
            logs = (await request.json())["logs"]
            return web.json_response({"version": "1", "results": [
                {"status": "ok", "event": {"user": user}, "warnings": []} for _ in logs]})
        app = web.Application()
        app.router.add_post("/parse", parse)
        return app

    a, b = await aiohttp_server(answering("alice")), await aiohttp_server(answering("bob"))
    with ReplayCache(tmp_path / "c.sqlite") as cache:
        first = HttpBackend(str(a.make_url("/parse")), name="corp")
        second = HttpBackend(str(b.make_url("/parse")), name="corp")
        try:
            (ra,), _ = await parse_cached(first, "p", ["same log"], cache)
            (rb,), (hit,) = await parse_cached(second, "p", ["same log"], cache)
            (again,), (hit_a,) = await parse_cached(first, "p", ["same log"], cache)
        finally:
            await first.close()
            await second.close()
    assert ra.event == {"user": "alice"} and rb.event == {"user": "bob"} and not hit
    assert again.event == {"user": "alice"} and hit_a
