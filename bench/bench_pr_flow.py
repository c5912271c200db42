"""Time from `pull_request.opened` delivery to all detbot check runs concluded, over loopback with the fake GitHub.

Targets: a PR touching 1 rule concluded in under 1 s; one touching 200 rules in under 10 s.

The fake GitHub runs in a child process (GitHub is another machine); the real detbot app (`create_app`: webhook,
queue, routers, PR flow) runs in this one. Each round opens a new pull request on a repository holding the example
rules and delivers its signed `opened` event; the clock stops when the four runs of its head SHA are completed.
Peers side by side in one run:

    checks only     `run_checks` on the same files in memory: the CPU floor of the checks themselves
    detbot          the whole flow: fetch through the API, check in a worker thread, publish runs and annotations
    detbot +20ms    the same with 20 ms added to every GitHub answer (a realistic round trip to api.github.com)

While each PR is being checked, another delivery (GitHub's `ping`) is posted every 20 ms and its answer timed:
the checks run in a worker thread, and this shows how responsive the webhook stays meanwhile.

    python bench/bench_pr_flow.py                  # 1 and 200 rules, 3 rounds each
    python bench/bench_pr_flow.py --rules 1,50 --rounds 2 --latency 0
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _quiet() -> None:
    import structlog
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def _fake_process(conn, latency: float, sizes: list[int], rounds: int) -> None:
    _quiet()
    from tests.fakegithub import FakeGitHub, pull_request_event
    from tests.ghflow_support import example_files, new_bundle

    async def main() -> None:
        fake = await FakeGitHub().start()
        fake.latency = latency
        repo = fake.add_repo("octo/rules", installation_id=7, files=example_files())
        prs: dict[int, list] = {}
        n = 0
        for size in sizes:
            for _ in range(rounds):
                files: dict[str, str] = {}
                for _ in range(size):
                    n += 1
                    files.update(new_bundle(n, f"rules/bench{n // 100}"))
                prs.setdefault(size, []).append(fake.open_pull(repo, files))
        payloads = {size: [(pr.head_sha, pull_request_event(fake, pr, "opened")) for pr in ps]
                    for size, ps in prs.items()}
        conn.send((fake.url, fake.app_id, fake.private_key_pem.decode(), payloads))
        loop = asyncio.get_running_loop()
        while (cmd := await loop.run_in_executor(None, conn.recv)) != "stop":
            _, sha = cmd
            runs = fake.check_runs(repo, sha)
            conn.send((sum(r.status == "completed" for r in runs),
                       sorted({r.conclusion for r in runs if r.conclusion}), len(fake.requests)))
        await fake.close()

    asyncio.run(main())


async def _pings(session, port: int, secret: str, stop: asyncio.Event, out: list[float]) -> None:
    """Answer latency of the webhook while a job runs (an event no router handles: answered at once)."""
    from tests.fakegithub.webhooks import delivery, example_payload
    while not stop.is_set():
        d = delivery("ping", example_payload("ping", "with-app_id.payload.json"))
        body = d.body()
        started = time.perf_counter()
        async with session.post(f"http://127.0.0.1:{port}/webhook", data=body, headers=d.headers(secret, body)):
            out.append(time.perf_counter() - started)
        await asyncio.sleep(0.02)


async def _flow(conn, url: str, app_id: int, key: str, payloads: dict, sizes: list[int],
                pings: dict[int, list[float]]) -> dict[int, list[float]]:
    from bot.fetch import BLOBS
    from bot.github import GitHubApp
    from bot.settings import Settings
    from tests.fakegithub.harness import SECRET, TEST_RETRY
    from bot.server import create_app
    import aiohttp
    from aiohttp import web
    from tests.fakegithub.webhooks import delivery

    settings = Settings(app_id=app_id, private_key=key, webhook_secret=SECRET, github_url=url, host="127.0.0.1",
                        port=0, workers=4, log_level="warning")
    github = GitHubApp(app_id=app_id, private_key=key, base_url=url, retry=TEST_RETRY)
    app = create_app(settings, github=github)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    loop = asyncio.get_running_loop()
    out: dict[int, list[float]] = {}
    try:
        async with aiohttp.ClientSession() as session:
            for size in sizes:
                for sha, payload in payloads[size]:
                    BLOBS.clear()  # every round pays for its downloads, as a first pull request would
                    d = delivery("pull_request", payload)
                    body = d.body()
                    started = time.perf_counter()
                    async with session.post(f"http://127.0.0.1:{port}/webhook", data=body,
                                            headers=d.headers(SECRET, body)) as resp:
                        assert resp.status in (200, 202), resp.status
                    stop = asyncio.Event()
                    pinger = asyncio.create_task(_pings(session, port, SECRET, stop, pings.setdefault(size, [])))
                    while True:
                        conn.send(("runs", sha))
                        done, conclusions, _ = await loop.run_in_executor(None, conn.recv)
                        if done == 4:
                            break
                        await asyncio.sleep(0.005)
                    out.setdefault(size, []).append(time.perf_counter() - started)
                    stop.set()
                    await pinger
                    print(f"    {size:>4} rules: {out[size][-1] * 1000:8.0f} ms  conclusions {conclusions}",
                          flush=True)
    finally:
        await runner.cleanup()
    return out


def _checks_only(size: int, rounds: int) -> list[float]:
    from checks.config import parse_config
    from checks.runner import run_checks
    from checks.source import MemorySource
    from tests.ghflow_support import example_files, new_bundle
    files = example_files()
    config = parse_config(files[".github/detbot.yml"])
    times = []
    for r in range(rounds):
        bundle: dict[str, str] = {}
        for i in range(size):
            bundle.update(new_bundle(100_000 + r * 1000 + i, f"rules/bench{i // 100}"))
        source = MemorySource({p: c.encode() for p, c in {**files, **bundle}.items()})
        started = time.perf_counter()
        run_checks(source, config, changed=list(bundle))
        times.append(time.perf_counter() - started)
    return times


def _fmt(times: list[float]) -> str:
    return (f"median {statistics.median(times) * 1000:7.0f} ms   min {min(times) * 1000:7.0f} ms   "
            f"max {max(times) * 1000:7.0f} ms   (n={len(times)})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rules", default="1,200", help="comma-separated PR sizes in rules (default 1,200)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--latency", default="0,20", help="comma-separated added GitHub latencies in ms (default 0,20)")
    args = ap.parse_args()
    _quiet()
    sizes = [int(x) for x in args.rules.split(",")]
    results: dict[str, dict[int, list[float]]] = {}
    pings: dict[str, dict[int, list[float]]] = {}
    print("checks only (run_checks in memory, no GitHub):", flush=True)
    results["checks only"] = {size: _checks_only(size, args.rounds) for size in sizes}
    for latency_ms in [float(x) for x in args.latency.split(",")]:
        label = "detbot" if latency_ms == 0 else f"detbot +{latency_ms:g}ms"
        print(f"{label} (delivery -> 4 runs concluded):", flush=True)
        parent, child = mp.Pipe()
        proc = mp.get_context("spawn").Process(target=_fake_process,
                                               args=(child, latency_ms / 1000, sizes, args.rounds), daemon=True)
        proc.start()
        url, app_id, key, payloads = parent.recv()
        pings[label] = {}
        results[label] = asyncio.run(_flow(parent, url, app_id, key, payloads, sizes, pings[label]))
        parent.send("stop")
        proc.join(10)
    print("\nsummary (targets: 1 rule < 1 s, 200 rules < 10 s)")
    for label, by_size in results.items():
        for size, times in by_size.items():
            print(f"  {label:<16} {size:>4} rules   {_fmt(times)}")
    print("\nwebhook answer latency while the PR is checked (a delivery every 20 ms)")
    for label, by_size in pings.items():
        for size, times in by_size.items():
            ordered = sorted(times)
            p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
            print(f"  {label:<16} {size:>4} rules   p50 {statistics.median(times) * 1000:6.1f} ms   "
                  f"p99 {p99 * 1000:6.1f} ms   max {max(times) * 1000:6.1f} ms   (n={len(times)})")


if __name__ == "__main__":
    main()
