"""The job queue, in process and on the real Redis: workers, newest-wins cancellation, shutdown, recovery."""
from __future__ import annotations

import asyncio
import socket
import json
import uuid

import pytest
import redis.asyncio as aioredis

from bot.metrics import Metrics
from bot.queue import (SHUTDOWN, SUPERSEDED, Job, JobRun, MemoryQueue, QueueClosed, QueueFull, RedisQueue,
                       current_run, job_log_fields, make_queue)

REDIS_URL = "redis://127.0.0.1:6379/0"


async def _redis_available() -> bool:
    r = aioredis.from_url(REDIS_URL)
    try:
        return bool(await asyncio.wait_for(r.ping(), 1))
    except Exception:
        return False
    finally:
        await r.aclose()


@pytest.fixture
async def prefix():
    p = f"detbot-test-{uuid.uuid4().hex[:10]}"
    yield p
    r = aioredis.from_url(REDIS_URL)
    keys = [k async for k in r.scan_iter(match=f"{p}:*")]
    if keys:
        await r.delete(*keys)
    await r.aclose()


@pytest.fixture(params=["memory", "redis"])
async def make(request, prefix):
    """Factory of started queues of the parametrised kind; all closed at teardown."""
    if request.param == "redis" and not await _redis_available():
        pytest.skip("Redis not reachable on 127.0.0.1:6379")
    made = []

    async def factory(handler, **kwargs):
        kwargs.setdefault("workers", 2)
        kwargs.setdefault("metrics", Metrics())
        if request.param == "memory":
            q = MemoryQueue(**kwargs)
        else:
            q = RedisQueue(REDIS_URL, prefix=prefix, heartbeat=0.2, **kwargs)
        await q.start(handler)
        made.append(q)
        return q
    factory.kind = request.param
    yield factory
    for q in made:
        if q._worker_tasks:
            await q.close(timeout=1, grace=1)


def job(key: str | None = None, n: int = 0, **payload) -> Job:
    return Job("pull_request", {"n": n, **payload}, delivery_id=f"d{n}", installation_id=7, key=key)


async def wait_for(predicate, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.005)


async def test_jobs_are_processed_by_several_workers(make):
    seen, concurrent, peak = [], [0], [0]

    async def handler(run: JobRun) -> None:
        concurrent[0] += 1
        peak[0] = max(peak[0], concurrent[0])
        assert current_run() is run
        await asyncio.sleep(0.01)
        seen.append(run.job.payload["n"])
        concurrent[0] -= 1

    q = await make(handler, workers=3)
    for i in range(12):
        await q.enqueue(job(n=i))
    await wait_for(lambda: len(seen) == 12)
    assert sorted(seen) == list(range(12))
    assert peak[0] == 3
    await wait_for(lambda: q.metrics.jobs.value(state="succeeded") == 12)
    assert q.metrics.jobs.value(state="enqueued") == 12


async def test_newer_job_for_the_same_key_cancels_the_running_one(make):
    started = asyncio.Event()
    outcome = {}

    async def handler(run: JobRun) -> None:
        n = run.job.payload["n"]
        if n == 1:
            started.set()
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                outcome[1] = (run.cancel_reason, await run.is_current())
                raise
        outcome[n] = ("done", await run.is_current())

    q = await make(handler)
    await q.enqueue(job("octo/rules#1", n=1))
    await asyncio.wait_for(started.wait(), 5)
    await q.enqueue(job("octo/rules#1", n=2))
    await wait_for(lambda: 1 in outcome and 2 in outcome)
    assert outcome[1] == (SUPERSEDED, False)
    assert outcome[2] == ("done", True)
    await wait_for(lambda: q.metrics.jobs.value(state="superseded") == 1)


async def test_other_keys_are_not_cancelled(make):
    release = asyncio.Event()
    done = []

    async def handler(run: JobRun) -> None:
        await release.wait()
        done.append(run.job.key)

    q = await make(handler)
    await q.enqueue(job("octo/rules#1", n=1))
    await q.enqueue(job("octo/rules#2", n=2))
    await wait_for(lambda: len(q.running) == 2)
    release.set()
    await wait_for(lambda: len(done) == 2)
    assert sorted(done) == ["octo/rules#1", "octo/rules#2"]


async def test_waiting_job_superseded_before_it_starts_is_dropped(make):
    gate = asyncio.Event()
    ran = []

    async def handler(run: JobRun) -> None:
        if run.job.key == "blocker":
            await gate.wait()
        ran.append(run.job.payload["n"])

    q = await make(handler, workers=1)
    await q.enqueue(job("blocker", n=0))
    await wait_for(lambda: len(q.running) == 1)
    await q.enqueue(job("octo/rules#5", n=1))
    await q.enqueue(job("octo/rules#5", n=2))
    gate.set()
    await wait_for(lambda: 2 in ran)
    await asyncio.sleep(0.05)
    assert ran == [0, 2]


async def test_claim_at_run_time_supersedes_the_holder_of_the_key(make):
    started = asyncio.Event()
    reasons = {}

    async def handler(run: JobRun) -> None:
        if run.job.payload["n"] == 1:
            started.set()
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                reasons[1] = run.cancel_reason
                raise
        else:
            # e.g. a check_suite rerequest that learns its pull request only after a lookup
            await run.claim("octo/rules#9")
            reasons[2] = await run.is_current()

    q = await make(handler)
    await q.enqueue(job("octo/rules#9", n=1))
    await asyncio.wait_for(started.wait(), 5)
    await q.enqueue(job(None, n=2))
    await wait_for(lambda: len(reasons) == 2)
    assert reasons == {1: SUPERSEDED, 2: True}


async def test_close_finishes_short_jobs_and_cancels_long_ones_with_reason_shutdown(make):
    concluded = []

    async def handler(run: JobRun) -> None:
        try:
            await asyncio.sleep(run.job.payload["seconds"])
            concluded.append((run.job.payload["n"], "finished"))
        except asyncio.CancelledError:
            await asyncio.sleep(0.01)          # concluding takes a GitHub call or two
            concluded.append((run.job.payload["n"], run.cancel_reason))
            raise

    q = await make(handler)
    await q.enqueue(job(n=1, seconds=0.05))
    await q.enqueue(job(n=2, seconds=30))
    await wait_for(lambda: len(q.running) == 2)
    await q.close(timeout=0.3, grace=2)
    assert sorted(concluded) == [(1, "finished"), (2, SHUTDOWN)]
    with pytest.raises(QueueClosed):
        await q.enqueue(job(n=3))


async def test_job_timeout_cancels_with_reason_timeout(make):
    reasons = []

    async def handler(run: JobRun) -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            reasons.append(run.cancel_reason)
            raise

    q = await make(handler, job_timeout=0.1)
    await q.enqueue(job(n=1))
    await wait_for(lambda: reasons == ["timeout"])
    await wait_for(lambda: q.metrics.jobs.value(state="timeout") == 1)


async def test_failing_handler_does_not_kill_the_worker(make):
    done = []

    async def handler(run: JobRun) -> None:
        if run.job.payload["n"] == 1:
            raise RuntimeError("boom")
        done.append(run.job.payload["n"])

    q = await make(handler, workers=1)
    await q.enqueue(job(n=1))
    await q.enqueue(job(n=2))
    await wait_for(lambda: done == [2])
    assert q.metrics.jobs.value(state="failed") == 1


# ---------------------------------------------------------------- Redis only: several processes
@pytest.fixture
async def redis_ok():
    if not await _redis_available():
        pytest.skip("Redis not reachable on 127.0.0.1:6379")


async def test_two_redis_consumers_share_the_work(redis_ok, prefix):
    seen: dict[str, list[int]] = {"a": [], "b": []}

    def handler_for(name):
        async def handler(run: JobRun) -> None:
            await asyncio.sleep(0.02)
            seen[name].append(run.job.payload["n"])
        return handler

    a = RedisQueue(REDIS_URL, prefix=prefix, workers=2)
    b = RedisQueue(REDIS_URL, prefix=prefix, workers=2)
    await a.start(handler_for("a"))
    await b.start(handler_for("b"))
    try:
        for i in range(20):
            await (a if i % 2 else b).enqueue(job(n=i))
        await wait_for(lambda: len(seen["a"]) + len(seen["b"]) == 20)
        assert sorted(seen["a"] + seen["b"]) == list(range(20))
        assert seen["a"] and seen["b"]                      # both processes took work
    finally:
        await a.close(1)
        await b.close(1)


async def test_redis_supersession_crosses_processes(redis_ok, prefix):
    started = asyncio.Event()
    reasons = {}

    async def slow(run: JobRun) -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            reasons["old"] = (run.cancel_reason, await run.is_current())
            raise

    async def fast(run: JobRun) -> None:
        reasons["new"] = await run.is_current()

    a = RedisQueue(REDIS_URL, prefix=prefix, workers=1)
    await a.start(slow)
    await a.enqueue(job("octo/rules#3", n=1))
    await asyncio.wait_for(started.wait(), 5)
    b = RedisQueue(REDIS_URL, prefix=prefix, workers=1)
    a.closing = True        # a takes no more jobs, so b runs the new one
    await b.start(fast)
    try:
        await b.enqueue(job("octo/rules#3", n=2))
        await wait_for(lambda: len(reasons) == 2)
        assert reasons == {"old": (SUPERSEDED, False), "new": True}
    finally:
        await a.close(1)
        await b.close(1)


async def test_jobs_of_a_crashed_consumer_are_recovered(redis_ok, prefix):
    r = aioredis.from_url(REDIS_URL)
    orphan = job(n=42)
    # A consumer that died mid-job: its processing list holds the job, its heartbeat key is gone.
    await r.lpush(f"{prefix}:processing:dead-host:1:abc", orphan.dumps())
    await r.aclose()
    seen = []

    async def handler(run: JobRun) -> None:
        seen.append((run.job.id, run.job.payload["n"]))

    q = RedisQueue(REDIS_URL, prefix=prefix, workers=1)
    await q.start(handler)
    try:
        await wait_for(lambda: seen == [(orphan.id, 42)])
    finally:
        await q.close(1)
    r = aioredis.from_url(REDIS_URL)
    assert await r.llen(f"{prefix}:processing:dead-host:1:abc") == 0
    assert await r.llen(q.processing_key) == 0                      # acknowledged
    await r.aclose()


async def test_redis_shutdown_puts_unfinished_jobs_back(redis_ok, prefix):
    started = asyncio.Event()

    async def handler(run: JobRun) -> None:
        started.set()
        await asyncio.sleep(30)

    q = RedisQueue(REDIS_URL, prefix=prefix, workers=1)
    await q.start(handler)
    await q.enqueue(job(n=7))
    await asyncio.wait_for(started.wait(), 5)
    await q.close(timeout=0.05, grace=1)
    r = aioredis.from_url(REDIS_URL)
    pending = await r.lrange(f"{prefix}:pending", 0, -1)
    await r.aclose()
    assert [Job.loads(x).payload["n"] for x in pending] == [7]
    assert Job.loads(pending[0]).attempt == 2


def test_log_fields_name_delivery_repo_pr_and_sha():
    j = Job("pull_request", {"repository": {"full_name": "octo/rules"},
                             "pull_request": {"number": 4, "head": {"sha": "abc"}}}, delivery_id="d-1",
            installation_id=7)
    fields = job_log_fields(j)
    assert fields["delivery_id"] == "d-1" and fields["github_event"] == "pull_request"
    assert (fields["repo"], fields["pr"], fields["head_sha"], fields["installation_id"]) == ("octo/rules", 4,
                                                                                             "abc", 7)
    fork_check = Job("check_suite", {"repository": {"full_name": "octo/rules"},
                                     "check_suite": {"head_sha": "def", "pull_requests": []}})
    assert "pr" not in job_log_fields(fork_check) and job_log_fields(fork_check)["head_sha"] == "def"


def test_make_queue_parses_the_setting():
    assert isinstance(make_queue("memory"), MemoryQueue)
    with pytest.raises(ValueError, match="unknown queue"):
        make_queue("rabbitmq://x")


async def test_a_later_arrival_keeps_the_key_against_an_older_claim(make):
    """Two workers (or processes) may parse two deliveries of one PR out of order: the later arrival wins."""
    results = {}
    both_started = asyncio.Event()
    started = []

    async def handler(run: JobRun) -> None:
        started.append(run.job.id)
        if len(started) == 2:
            both_started.set()
        await both_started.wait()
        n = run.job.payload["n"]
        if n == 2:
            results[2] = await run.claim("octo/rules#4")      # newer arrival claims first
        else:
            await asyncio.sleep(0.02)
            results[1] = await run.claim("octo/rules#4")      # older arrival, claiming later: stale
        results[f"current{n}"] = await run.is_current()

    q = await make(handler)
    older = job(None, n=1)
    newer = job(None, n=2)
    older.enqueued_at, newer.enqueued_at = 1000.0, 1001.0
    await q.enqueue(older)
    await q.enqueue(newer)
    await wait_for(lambda: len(results) == 4)
    assert results == {2: True, 1: False, "current2": True, "current1": False}


async def test_webhook_jobs_carry_the_raw_body_and_parse_it_once(make):
    seen = []

    async def handler(run: JobRun) -> None:
        seen.append(run.job.data["action"])

    q = await make(handler)
    await q.enqueue(Job("pull_request", body='{"action": "opened", "repository": {"full_name": "o/r"}}'))
    await wait_for(lambda: seen == ["opened"])
    body = '{"action": "x",\n "title": "a \\"quoted\\" line\\nbreak"}'
    j = Job("pull_request", body=body, delivery_id="d1")
    raw = j.dumps()
    assert raw.count(body) == 1                     # stored once, verbatim (not escaped into a JSON string)
    back = Job.loads(raw.encode())
    assert (back.body, back.delivery_id, back.id, back.payload) == (body, "d1", j.id, None)
    assert back.data == {"action": "x", "title": 'a "quoted" line\nbreak'}
    coded = Job("check_suite", {"n": 1}, key="o/r#1")  # a job made in code: its payload, no body
    assert Job.loads(coded.dumps()) == coded


async def test_enqueue_once_drops_a_repeated_delivery_id(make):
    seen = []

    async def handler(run: JobRun) -> None:
        seen.append(run.job.delivery_id)

    q = await make(handler)
    assert await q.enqueue(Job("ping", {}, delivery_id="d-1"), once="d-1") is True
    assert await q.enqueue(Job("ping", {}, delivery_id="d-1"), once="d-1") is False
    assert await q.enqueue(Job("ping", {}, delivery_id="d-2"), once="d-2") is True
    await wait_for(lambda: sorted(seen) == ["d-1", "d-2"])
    await asyncio.sleep(0.05)
    assert sorted(seen) == ["d-1", "d-2"]


async def test_a_delivery_that_could_not_be_queued_leaves_no_record():
    gate = asyncio.Event()

    async def handler(run: JobRun) -> None:
        await gate.wait()

    q = MemoryQueue(workers=1, max_pending=1)
    await q.start(handler)
    try:
        await q.enqueue(Job("ping", {}), once="a")
        await wait_for(lambda: len(q.running) == 1)
        await q.enqueue(Job("ping", {}), once="b")               # waits: the queue is now full
        with pytest.raises(QueueFull):
            await q.enqueue(Job("ping", {}), once="c")
        gate.set()
        await q.join()
        assert await q.enqueue(Job("ping", {}), once="c") is True  # the redelivery is accepted
    finally:
        await q.close(1)


# ---------------------------------------------------------------- malformed payloads and dead letters
MALFORMED = ['{"action": "opened", "repository": "octo/rules", "pull_request": [4]}',
             '{"action": "opened", "repository": {"full_name": ["x"]}, "pull_request": {"head": "abc"}}',
             '{"action": "opened", "check_run": {"pull_requests": [7]}, "issue": 3}']


def test_log_fields_never_raise_whatever_the_payload():
    for body in MALFORMED + ["[1]", "{", '{"pull_request": {"number": {"x": 1}, "head": {"sha": 5}}}']:
        fields = job_log_fields(Job("pull_request", body=body, delivery_id="d"))
        assert fields["delivery_id"] == "d" and "repo" not in fields and "pr" not in fields


async def test_malformed_payloads_end_their_job_and_never_come_back(make, prefix):
    """Signed-but-malformed bodies used to break the job's log bookkeeping before it ran: the job was never
    acknowledged, and with Redis a later recovery handed it out again, for ever."""
    seen = []

    async def handler(run: JobRun) -> None:
        seen.append(run.job.delivery_id)

    q = await make(handler)
    for i, body in enumerate(MALFORMED):
        await q.enqueue(Job("pull_request", body=body, delivery_id=f"bad-{i}"))
    await q.enqueue(Job("pull_request", {"n": 1}, delivery_id="good"))
    await wait_for(lambda: len(seen) == 4)
    await q.join()
    assert sorted(seen) == ["bad-0", "bad-1", "bad-2", "good"]
    assert q.processed == 4 and q.metrics.jobs.value(state="succeeded") == 4
    if make.kind == "redis":
        await q.close(1)    # as if this process stopped: another one recovers what it left
        r = aioredis.from_url(REDIS_URL)
        try:
            assert [k async for k in r.scan_iter(match=f"{prefix}:processing:*")] == []
            assert await r.hlen(f"{prefix}:deliveries") == 0
        finally:
            await r.aclose()


async def test_a_job_taken_too_often_is_dead_lettered_not_run(redis_ok, prefix):
    """Processes that keep dying on a job (or failing to acknowledge it) must not pass it round for ever."""
    from bot.queue import MAX_DELIVERIES

    r = aioredis.from_url(REDIS_URL)
    poison = job(n=13)
    await r.lpush(f"{prefix}:processing:dead-host:1:abc", poison.dumps())
    await r.hset(f"{prefix}:deliveries", poison.id, MAX_DELIVERIES)
    fine = job(n=14)
    await r.lpush(f"{prefix}:pending", fine.dumps())
    seen = []

    async def handler(run: JobRun) -> None:
        seen.append(run.job.payload["n"])

    q = RedisQueue(REDIS_URL, prefix=prefix, workers=1, metrics=Metrics())
    await q.start(handler)
    try:
        await wait_for(lambda: seen == [14])
        await wait_for(lambda: q.metrics.jobs.value(state="dead") == 1)
        await q.join()
        dead = [Job.loads(x) for x in await r.lrange(f"{prefix}:dead", 0, -1)]
        assert [d.id for d in dead] == [poison.id]
        assert await r.llen(q.processing_key) == 0 and await r.llen(f"{prefix}:pending") == 0
        assert await r.hlen(f"{prefix}:deliveries") == 0
    finally:
        await q.close(1)
        await r.aclose()
    assert seen == [14]


async def test_in_process_close_runs_waiting_jobs_until_the_deadline_and_hands_over_the_rest():
    """Stopping takes no new jobs, runs the waiting ones while time is left, cancels what still runs with reason
    "shutdown", and gives the jobs never started to `handover` (they would die with the process)."""
    gate = asyncio.Event()
    ran, reasons, handed = [], {}, []

    async def handler(run: JobRun) -> None:
        n = run.job.payload["n"]
        ran.append(n)
        try:
            if n == 0:
                await gate.wait()
            elif n == 3:
                await asyncio.sleep(30)
        except asyncio.CancelledError:
            reasons[n] = run.cancel_reason
            raise

    async def handover(jobs):
        handed.extend(j.payload["n"] for j in jobs)

    q = MemoryQueue(workers=1, metrics=Metrics())
    q.handover = handover
    await q.start(handler)
    for n in range(5):
        await q.enqueue(job(n=n))
    await wait_for(lambda: ran == [0])
    closing = asyncio.create_task(q.close(timeout=0.5, grace=1))
    await wait_for(lambda: q.closing)
    with pytest.raises(QueueClosed):
        await q.enqueue(job(n=9))
    gate.set()
    await closing
    assert ran == [0, 1, 2, 3] and reasons == {3: SHUTDOWN} and handed == [4]
    assert q.metrics.jobs.value(state="succeeded") == 3 and q.metrics.jobs.value(state="cancelled") == 1


async def test_a_burst_of_deliveries_is_queued_once_each(make):
    """Deliveries arriving together share a Redis round trip: duplicates inside one burst still count once."""
    seen: list[str] = []

    async def handler(run: JobRun) -> None:
        seen.append(run.job.delivery_id)

    q = await make(handler)
    ids = [f"d-{i % 50}" for i in range(100)]
    answers = await asyncio.gather(*(q.enqueue(Job("ping", {}, delivery_id=d), once=d) for d in ids))
    assert sum(answers) == 50
    assert sorted(d for d, queued in zip(ids, answers) if queued) == sorted(set(ids))
    await wait_for(lambda: len(seen) == 50)
    await asyncio.sleep(0.05)
    assert sorted(seen) == sorted(set(ids))


async def test_every_delivery_of_a_burst_hears_that_redis_is_down():
    """No answer waits forever on a batch that failed: each caller gets the error (the webhook answers 503)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]            # closed once the block ends: nothing listens there
    q = RedisQueue(f"redis://127.0.0.1:{port}/0", prefix="unreachable", workers=0)
    try:
        results = await asyncio.wait_for(asyncio.gather(
            *(q.enqueue(Job("ping", {}, delivery_id=f"d{i}"), once=f"d{i}") for i in range(20)),
            return_exceptions=True), 10)
        assert len(results) == 20 and all(isinstance(r, Exception) for r in results), results
    finally:
        await q.redis.aclose()


async def test_a_worker_that_dies_is_logged_once(make):
    from structlog.testing import capture_logs

    async def handler(run: JobRun) -> None:
        pass

    q = await make(handler, workers=2)
    with capture_logs() as logs:
        q._worker_tasks[0].cancel()      # as a worker dies of anything its loop does not catch
        await asyncio.gather(q._worker_tasks[0], return_exceptions=True)
        await asyncio.sleep(0)
    stopped = [e for e in logs if e["event"] == "queue worker stopped"]
    assert len(stopped) == 1 and stopped[0]["log_level"] == "error" and stopped[0]["workers_left"] == 1
    assert q.dead_workers() == 1
