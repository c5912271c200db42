"""Replay throughput: raw logs through an embedded ingest pipeline (grok + date), then the cache's effect.

Figures printed side by side in one run:
  - hand-written parser: one `re` regex + datetime.strptime per log (what a bespoke Python parser costs; a floor);
  - embedded executor: Pipeline.run_message per log (grok with the standard library, date, convert, remove);
  - embedded backend: EmbeddedBackend.parse_batch (what replay calls), on one core;
  - replay parse path with a fresh SQLite cache (parse + store), then a second run (all from the cache).

    python bench/bench_replay.py [--logs 10000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from checks.replay.backends import EmbeddedBackend
from checks.replay.cache import ReplayCache
from checks.replay.ingest.pipeline import Pipeline
from checks.replay.replay import parse_cached
from checks.source import MemorySource

PIPELINE = """description: Apache access log
processors:
  - grok:
      field: message
      patterns:
        - '^%{IPORHOST:source.address} %{USER:user.id} %{USER:user.name} \\[%{HTTPDATE:ts}\\] "%{WORD:http.request.method} %{NOTSPACE:url.original} HTTP/%{NUMBER:http.version}" %{INT:http.response.status_code:int} (?:%{INT:http.response.body.bytes:int}|-)'
  - date:
      field: ts
      formats: ["dd/MMM/yyyy:HH:mm:ss Z"]
  - remove:
      field: [ts, message]
"""

USERS = ["-", "alice", "bob", "carol", "svc_backup", "root"]
METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def make_logs(n: int, seed: int = 7) -> list[str]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        ip = f"10.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}"
        ts = (f"{rnd.randrange(1, 29):02d}/{MONTHS[rnd.randrange(12)]}/2024:"
              f"{rnd.randrange(24):02d}:{rnd.randrange(60):02d}:{rnd.randrange(60):02d} +0000")
        path = f"/app/{rnd.randrange(1000)}/item?id={i}"
        out.append(f'{ip} - {rnd.choice(USERS)} [{ts}] "{rnd.choice(METHODS)} {path} HTTP/1.1" '
                   f'{rnd.choice([200, 200, 200, 302, 404, 500])} {rnd.randrange(100, 90000)}')
    return out


_HAND = re.compile(r'^(\S+) (\S+) (\S+) \[([^\]]+)\] "(\w+) (\S+) HTTP/([\d.]+)" (\d+) (\d+|-)')


def hand_written(line: str) -> dict | None:
    m = _HAND.match(line)
    if m is None:
        return None
    ts = datetime.strptime(m[4], "%d/%b/%Y:%H:%M:%S %z").astimezone(timezone.utc)
    return {"source": {"address": m[1]}, "user": {"id": m[2], "name": m[3]},
            "http": {"request": {"method": m[5]}, "version": m[7],
                     "response": {"status_code": int(m[8]), "body": {"bytes": None if m[9] == "-" else int(m[9])}}},
            "url": {"original": m[6]}, "@timestamp": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")}


# CPU time of this process: on a shared machine, wall time mostly measures the neighbours.
clock = time.process_time


def timed(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = clock()
        fn()
        best = min(best, clock() - start)
    return best


def row(label: str, n: int, seconds: float) -> None:
    print(f"  {label:<44} {n / seconds:>12,.0f} logs/s   {seconds * 1000:>9.1f} ms CPU")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--logs", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--rules", type=int, default=200, help="catalog size for the end-to-end rows")
    ap.add_argument("--tests-per-rule", type=int, default=10)
    args = ap.parse_args()
    logs = make_logs(args.logs)
    source = MemorySource({"parsers/apache.yml": PIPELINE.encode()})
    pipeline = Pipeline(yaml.safe_load(PIPELINE))

    # The embedded executor must agree with the hand-written parser before its speed means anything.
    sample = pipeline.run_message(logs[0]).source
    assert sample == hand_written(logs[0]), (sample, hand_written(logs[0]))
    assert all(pipeline.run_message(line).status == "ok" for line in logs[:500])

    print(f"replay bench: {len(logs):,} distinct Apache access-log lines, best of {args.repeat}, one core "
          f"(CPU time; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    row("hand-written re + strptime (floor)", len(logs), timed(lambda: [hand_written(x) for x in logs], args.repeat))
    row("embedded executor (grok + date + remove)", len(logs),
        timed(lambda: [pipeline.run_message(x, "t") for x in logs], args.repeat))
    backend = EmbeddedBackend(source)
    row("embedded backend parse_batch", len(logs),
        timed(lambda: asyncio.run(backend.parse_batch("apache", logs)), args.repeat))

    with tempfile.TemporaryDirectory() as tmp:
        cache = ReplayCache(Path(tmp) / "replay.sqlite")
        start = clock()
        first, hits1 = asyncio.run(parse_cached(backend, "apache", logs, cache))
        cold = clock() - start
        start = clock()
        second, hits2 = asyncio.run(parse_cached(backend, "apache", logs, cache))
        warm = clock() - start
        assert sum(hits1) == 0 and sum(hits2) == len(logs)
        assert [r.event for r in first] == [r.event for r in second]
        size = (Path(tmp) / "replay.sqlite").stat().st_size
        cache.close()
    row("replay path, cold cache (parse + store)", len(logs), cold)
    row("replay path, warm cache (all hits)", len(logs), warm)
    print(f"  cache, embedded backend: second run {cold / warm:.1f}x less CPU than the first; cache file "
          f"~{size / 1024:,.0f} KiB (WAL not counted) for {len(logs):,} results")
    asyncio.run(http_rows(logs, source))
    catalog_rows(args.rules, args.tests_per_rule, pipeline)


def catalog_rows(rules: int, per_rule: int, pipeline: Pipeline) -> None:
    """End to end: `run_replay` over a catalog (rule loading, compiling, parsing, evaluating), cold then warm."""
    from checks.config import parse_config
    from checks.replay.replay import run_replay

    logs = make_logs(rules * per_rule, seed=11)
    files: dict[str, bytes] = {"parsers/apache.yml": PIPELINE.encode(),
                               ".github/detbot.yml": b"parsers:\n  - logsource: {category: webserver}\n    parser: apache\n"}
    for i in range(rules):
        method = METHODS[i % len(METHODS)]
        files[f"rules/web/r{i}.yml"] = (
            f"title: Web rule {i}\nid: 00000000-0000-4000-8000-{i:012d}\nstatus: test\n"
            f"logsource: {{category: webserver}}\ndetection:\n  selection:\n"
            f"    http.request.method: {method}\n    url.original|contains: '/app/{i % 1000}/'\n"
            f"  condition: selection\nlevel: low\n").encode()
        tests = []
        for j in range(per_rule):
            raw = logs[i * per_rule + j]
            event = pipeline.run_message(raw).source
            matched = event["http"]["request"]["method"] == method and f"/app/{i % 1000}/" in event["url"]["original"]
            tests.append({"name": f"t{j}", "expect": "match" if matched else "no_match", "event": event, "raw": raw})
        files[f"rules/web/r{i}.tests.yml"] = yaml.safe_dump(tests).encode()
    source = MemorySource(files)
    config = parse_config(files[".github/detbot.yml"])
    with tempfile.TemporaryDirectory() as tmp:
        cache = ReplayCache(Path(tmp) / "replay.sqlite")
        for label in ("cold cache", "warm cache"):
            start, cpu = time.perf_counter(), clock()
            report = asyncio.run(run_replay(source, config, cache=cache))
            wall, used = time.perf_counter() - start, clock() - cpu
            assert report.counts["PASS"] == rules * per_rule, report.counts
            print(f"  {f'run_replay, {rules} rules x {per_rule} tests, {label}':<44} "
                  f"{rules * per_rule / used:>12,.0f} tests/s   {used * 1000:>9.1f} ms CPU ({wall * 1000:.0f} ms wall)")
        cache.close()


async def http_rows(logs: list[str], source: MemorySource) -> None:
    """The same pipeline behind the generic HTTP backend on loopback: where the cache pays off."""
    from aiohttp import web

    from checks.replay.backends import HttpBackend

    served = EmbeddedBackend(source)

    async def parse(request: web.Request) -> web.Response:
        body = await request.json()
        results = await served.parse_batch(body["parser"], body["logs"])
        return web.json_response({"version": await served.parser_version(body["parser"]),
                                  "results": [{"status": r.status, "event": r.event, "warnings": r.warnings}
                                              for r in results]})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/parse", parse)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    backend = HttpBackend(f"http://127.0.0.1:{port}/parse", batch_size=500)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cache = ReplayCache(Path(tmp) / "replay.sqlite")
            start = time.perf_counter()
            first, hits1 = await parse_cached(backend, "apache", logs, cache)
            errors = [r.message for r in first if r.status != "ok"]
            assert not errors, errors[:3]
            cold = time.perf_counter() - start
            start = time.perf_counter()
            _, hits2 = await parse_cached(backend, "apache", logs, cache)
            warm = time.perf_counter() - start
            cache.close()
        assert sum(hits1) == 0 and sum(hits2) == len(logs)
    finally:
        await backend.close()
        await runner.cleanup()
    print(f"  {'HTTP backend on loopback, cold cache':<44} {len(logs) / cold:>12,.0f} logs/s   {cold * 1000:>9.1f} ms wall")
    print(f"  {'HTTP backend on loopback, warm cache':<44} {len(logs) / warm:>12,.0f} logs/s   {warm * 1000:>9.1f} ms wall")
    print(f"  cache, HTTP backend: second run {cold / warm:.1f}x faster (wall time, server in this process)")


if __name__ == "__main__":
    main()
