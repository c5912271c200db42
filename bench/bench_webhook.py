"""Webhook answer latency under concurrent deliveries, over loopback (target: p99 < 50 ms at 200 concurrent).

The bot (the real `create_app`: size check, signature, dedup, enqueue, JSON logging at info to /dev/null) runs in
one child process, the fake GitHub in another, and this process fires N signed `pull_request` deliveries (GitHub's
example payload, adapted; ~19 KB) at once from a raw asyncio-streams client and times each answer. Peers side by
side, all on the same machine in the same run:

    floor          a bare aiohttp app that reads the body and answers 202: what the machine and aiohttp cost
    memory/parked  detbot, in-process queue without workers: the answer path alone (redis/parked: a
                   webhook-only server, DETBOT_WORKERS=0, with workers in other processes)
    memory / none  detbot, in-process queue, jobs that do nothing (but parse the delivery)
    memory / probe detbot, in-process queue, each job creates and completes a check run on the fake GitHub
    redis  / ...   the same with the Redis queue
    ...@uvloop     the same peer on uvloop's event loop (detbot serve uses it when installed)

    python bench/bench_webhook.py                       # 200 concurrent, 3 rounds, all peers
    python bench/bench_webhook.py -n 50 --rounds 1 --peers floor,memory/none --new-connections
"""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REDIS_URL = "redis://127.0.0.1:6379/0"
PEERS = ("floor", "floor@uvloop", "memory/parked", "memory/parked@uvloop", "memory/none", "memory/none@uvloop",
         "memory/probe", "memory/probe@uvloop",
         "redis/parked@uvloop", "redis/none", "redis/probe", "redis/probe@uvloop")


def _fake_process(conn) -> None:
    """GitHub in its own process, as the real one is another machine."""
    import logging

    import structlog

    from tests.fakegithub import FakeGitHub, pull_request_event
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    async def main() -> None:
        fake = await FakeGitHub().start()
        fake.rate_limit = 10**9        # thousands of calls per run: GitHub's 5,000/hour is not what is measured
        fake.add_installation(7, "octo-org")
        repo = fake.add_repo("octo-org/rules", installation_id=7, files={"rules/a.yml": "title: a\n"})
        prs = [fake.open_pull(repo, {"rules/a.yml": f"title: {i}\n"}) for i in range(400)]
        payloads = [pull_request_event(fake, pr) for pr in prs]
        conn.send((fake.url, fake.app_id, fake.private_key_pem.decode(), payloads))
        loop = asyncio.get_running_loop()
        while (cmd := await loop.run_in_executor(None, conn.recv)) != "stop":
            if cmd == "runs":
                conn.send(sum(r.conclusion == "success" for r in fake.runs.values()))
        await fake.close()
        conn.send("stopped")

    asyncio.run(main())


def _bot_process(peer: str, github_url: str, app_id: int, private_key: str, conn) -> None:
    from aiohttp import web
    from bot.commands.serve import BACKLOG
    from bot.logging import configure_logging
    from bot.metrics import Metrics
    from bot.queue import MemoryQueue, RedisQueue
    from bot.server import METRICS, QUEUE, create_app
    from bot.settings import Settings
    from tests.fakegithub.harness import SECRET, probe_check_run_router

    configure_logging("info", "json", open(os.devnull, "w"))
    peer, _, loop_name = peer.partition("@")
    kind, _, work = peer.partition("/")
    router = probe_check_run_router(enabled=work == "probe")

    async def floor(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"status": "accepted"}, status=202)

    async def main() -> None:
        queue = None
        if kind == "floor":
            app = web.Application(client_max_size=25 * 1024 * 1024)
            app.router.add_post("/webhook", floor)
        else:
            settings = Settings(app_id=app_id, private_key=private_key, webhook_secret=SECRET,
                                github_url=github_url, host="127.0.0.1", port=0, workers=8)
            metrics = Metrics()
            workers = 0 if work == "parked" else 8
            queue = (MemoryQueue(workers=workers, metrics=metrics) if kind == "memory" else
                     RedisQueue(REDIS_URL, prefix=f"detbot-bench-{uuid.uuid4().hex[:8]}", workers=8,
                                metrics=metrics))
            app = create_app(settings, queue=queue, router=router, metrics=metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=BACKLOG)
        await site.start()
        conn.send(site._server.sockets[0].getsockname()[1])
        loop = asyncio.get_running_loop()
        while (cmd := await loop.run_in_executor(None, conn.recv)) != "stop":
            if cmd == "drain":
                started = time.perf_counter()
                if queue is not None and queue.workers:
                    await app[QUEUE].join(120)
                hist = app[METRICS].webhook_seconds if queue is not None else None
                handler_us = (hist._sums[()] / hist.count() * 1e6) if hist is not None and hist.count() else 0.0
                conn.send((time.perf_counter() - started, handler_us))
        if isinstance(queue, RedisQueue):
            keys = [k async for k in queue.redis.scan_iter(match=f"{queue.prefix}:*")]
            if keys:
                await queue.redis.delete(*keys)
        await runner.cleanup()
        conn.send("stopped")

    if loop_name == "uvloop":
        import uvloop
        uvloop.run(main())
    else:
        asyncio.run(main())


async def _fire(port: int, payloads: list[dict], secret: str, connect_each: bool) -> list[float]:
    """Send the deliveries at once and time each answer (request written -> response read to the end).

    A raw asyncio-streams client, because aiohttp's client costs about a millisecond per request on its own loop,
    which would be measured as server latency. With `connect_each` every delivery opens its TCP connection inside
    the timed span (as GitHub does); otherwise the connections are opened beforehand."""
    from tests.fakegithub.webhooks import delivery

    requests = []
    for payload in payloads:
        d = delivery("pull_request", payload)
        body = d.body()
        head = "".join(f"{k}: {v}\r\n" for k, v in d.headers(secret, body).items())
        requests.append((f"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {len(body)}\r\n"
                         f"{head}Connection: close\r\n\r\n").encode() + body)
    start = asyncio.Event()

    async def one(request: bytes) -> float:
        if not connect_each:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await start.wait()
        t0 = time.perf_counter()
        if connect_each:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        status = await reader.readline()
        await reader.read()                      # headers and body, until the server closes
        elapsed = time.perf_counter() - t0
        writer.close()
        assert b" 202 " in status, status
        return elapsed

    tasks = [asyncio.create_task(one(r)) for r in requests]
    await asyncio.sleep(0.2)
    start.set()
    return await asyncio.gather(*tasks)


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def bench(peer: str, n: int, rounds: int, connect_each: bool, fake_info: tuple, fake_conn) -> dict:
    from tests.fakegithub.harness import SECRET

    github_url, app_id, private_key, payloads = fake_info
    ctx = mp.get_context("spawn")
    bot_conn, bot_child = ctx.Pipe()
    bot_proc = ctx.Process(target=_bot_process, args=(peer, github_url, app_id, private_key, bot_child),
                           daemon=True)
    bot_proc.start()
    port = bot_conn.recv()
    latencies: list[float] = []
    drains = []
    fake_conn.send("runs")
    runs_before = fake_conn.recv()
    try:
        for r in range(rounds):
            chunk = [payloads[(r * n + i) % len(payloads)] for i in range(n)]
            latencies += asyncio.run(_fire(port, chunk, SECRET, connect_each))
            bot_conn.send("drain")
            drain_s, handler_us = bot_conn.recv()
            drains.append(drain_s)
        fake_conn.send("runs")
        runs = fake_conn.recv() - runs_before
    finally:
        bot_conn.send("stop")
        bot_conn.recv()
        bot_proc.join(10)
    return {"peer": peer, "deliveries": len(latencies), "p50_ms": _pct(latencies, 50) * 1000,
            "p99_ms": _pct(latencies, 99) * 1000, "max_ms": max(latencies) * 1000,
            "mean_ms": statistics.mean(latencies) * 1000, "drain_s": statistics.mean(drains), "runs": runs,
            "handler_us": handler_us}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--deliveries", type=int, default=200, help="concurrent deliveries per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--peers", default=",".join(PEERS), help=f"comma-separated subset of {', '.join(PEERS)}")
    parser.add_argument("--new-connections", action="store_true",
                        help="open each delivery's TCP connection inside the timed span")
    args = parser.parse_args()
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    ctx = mp.get_context("spawn")
    fake_conn, fake_child = ctx.Pipe()
    fake_proc = ctx.Process(target=_fake_process, args=(fake_child,), daemon=True)
    fake_proc.start()
    fake_info = fake_conn.recv()
    print(f"webhook answer latency: {args.deliveries} concurrent signed pull_request deliveries x {args.rounds} "
          f"rounds over loopback, {'new' if args.new_connections else 'pre-opened'} connections; bot, fake "
          f"GitHub and load generator in 3 processes; {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f} at start")
    print(f"{'peer':20} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'mean ms':>8} {'drain s':>8} "
          f"{'runs':>6} {'handler us':>10}")
    try:
        for peer in peers:
            try:
                r = bench(peer, args.deliveries, args.rounds, args.new_connections, fake_info, fake_conn)
            except Exception as e:  # noqa: BLE001 -- e.g. no Redis here: report it and go on with the others
                print(f"{peer:20} failed: {e!r}")
                continue
            print(f"{r['peer']:20} {r['deliveries']:>5} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} "
                  f"{r['max_ms']:>8.1f} {r['mean_ms']:>8.1f} {r['drain_s']:>8.2f} {r['runs']:>6} "
                  f"{r['handler_us']:>10.0f}")
    finally:
        fake_conn.send("stop")
        fake_conn.recv()
        fake_proc.join(10)
    print("target: p99 < 50 ms. drain s: time after the burst until every job finished; runs: check runs "
          "concluded on the fake GitHub; handler us: mean time inside detbot's webhook handler (server side, "
          "excluding waiting for the event loop)")


if __name__ == "__main__":
    main()
