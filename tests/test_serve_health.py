"""`GET /healthz` and `GET /metrics` when the shared queue's Redis stops answering after start-up: a health probe
must say so (503), not hang for as long as the TCP connection lives."""
from __future__ import annotations

import asyncio

from bot.queue import RedisQueue
from tests.fakegithub import FakeGitHub
from tests.fakegithub.harness import running_bot


class RedisProxy:
    """TCP proxy to the test Redis that can be made to black-hole traffic (a partitioned network: connections
    stay open, nothing comes back), or be shut (connections refused)."""

    def __init__(self) -> None:
        self.blackhole = False
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> "RedisProxy":
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", 6379)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            while data := await src.read(65536):
                if not self.blackhole:
                    dst.write(data)
                    await dst.drain()
            dst.close()
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)


async def test_healthz_answers_503_when_redis_stops_answering(fake_github: FakeGitHub):
    proxy = await RedisProxy().start()
    queue = RedisQueue(f"redis://127.0.0.1:{proxy.port}/0", prefix="healthz-test", workers=1)
    async with running_bot(fake_github, queue=queue) as bot:
        async with bot.session.get(f"{bot.url}/healthz") as r:
            assert r.status == 200
        proxy.blackhole = True
        # The guard is only there so a hang fails the test instead of stalling the suite.
        async with bot.session.get(f"{bot.url}/healthz", timeout=30) as r:
            assert r.status == 503 and (await r.json())["status"] == "queue unreachable"
        async with bot.session.get(f"{bot.url}/metrics", timeout=30) as r:
            assert r.status == 200 and "detbot_jobs_total" in await r.text()
        proxy.blackhole = False
    proxy.server.close()


async def test_healthz_answers_503_when_a_worker_died(fake_github: FakeGitHub):
    async with running_bot(fake_github) as bot:
        from bot.server import QUEUE
        queue = bot.app[QUEUE]
        async with bot.session.get(f"{bot.url}/healthz") as r:
            assert r.status == 200
        queue._worker_tasks[0].cancel()      # as a worker dies of anything its loop does not catch
        await asyncio.gather(queue._worker_tasks[0], return_exceptions=True)
        async with bot.session.get(f"{bot.url}/healthz") as r:
            assert r.status == 503 and "worker" in (await r.json())["status"]


def test_metrics_text_stays_valid_with_hostile_label_values():
    """Label values with quotes, backslashes and newlines are escaped; each family has HELP and TYPE once;
    histogram buckets are cumulative and end in +Inf, then _sum and _count."""
    import re

    from bot.metrics import Metrics
    m = Metrics()
    m.deliveries.inc(event='pull"request\\x\nINJECTED 1', result="accepted")
    for seconds in (0.003, 0.3, 500):
        m.job_seconds.observe(seconds, event="pull_request")
    text = m.render()
    sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*",?)*\})? '
                        r'(-?[0-9.e+-]+|\+Inf|NaN)$')
    families: list[str] = []
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            families.append(line.split()[2])
        elif not line.startswith("# HELP "):
            assert sample.match(line), line
    assert len(families) == len(set(families)) and text.count("# HELP ") == len(families)
    assert not any(line.startswith("INJECTED") for line in text.splitlines())
    buckets = [int(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("detbot_job_duration_seconds_bucket")]
    assert buckets == sorted(buckets) and buckets[-1] == 3
    assert 'detbot_job_duration_seconds_bucket{event="pull_request",le="+Inf"} 3' in text
    assert 'detbot_job_duration_seconds_count{event="pull_request"} 3' in text
    assert 'detbot_job_duration_seconds_sum{event="pull_request"} 500.303' in text
