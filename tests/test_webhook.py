"""The webhook server end to end over loopback: real detbot server, real queue, fake GitHub."""
from __future__ import annotations

import asyncio
import io
import json
import logging
import re

import pytest
import structlog
from gidgethub.routing import Router

from bot.logging import configure_logging
from bot.queue import SHUTDOWN, SUPERSEDED
from bot.routes import installations
from bot.webhook import signature_of, verify_signature
from tests.fakegithub import (FakeGitHub, delivery, installation_event, issue_comment_event, ping_event,
                              pull_request_event)
from tests.fakegithub.harness import SECRET, probe_check_run_router, running_bot


def probe_router(record: list | None = None) -> Router:
    return Router(installations.router, probe_check_run_router(record))


@pytest.fixture
def world(fake_github: FakeGitHub):
    fake_github.add_installation(7, "octo-org")
    repo = fake_github.add_repo("octo-org/rules", installation_id=7, files={"rules/a.yml": "title: a\n"})
    return fake_github, repo


async def test_bad_or_missing_signature_is_401_and_nothing_is_queued(world):
    fake, repo = world
    pr = fake.open_pull(repo, {"rules/a.yml": "title: b\n"})
    async with running_bot(fake, router=probe_router()) as bot:
        d = delivery("pull_request", pull_request_event(fake, pr))
        body = d.body()
        for headers in (d.headers("wrong secret", body), d.headers(None, body),
                        {**d.headers(SECRET, body), "X-Hub-Signature-256": "sha1=" + "0" * 40}):
            async with bot.session.post(f"{bot.url}/webhook", data=body, headers=headers) as r:
                assert r.status == 401
        # a valid signature over a different body is no signature at all
        async with bot.session.post(f"{bot.url}/webhook", data=body + b" ", headers=d.headers(SECRET, body)) as r:
            assert r.status == 401
        await asyncio.sleep(0.05)
        assert bot.queue.depth() == 0 and bot.queue.processed == 0
        assert bot.metrics.deliveries.value(event="unverified", result="bad_signature") == 4
    assert fake.requests == []


async def test_signature_check_matches_githubs_test_vector():
    vector = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert signature_of("It's a Secret to Everybody", b"Hello, World!") == vector
    assert verify_signature("It's a Secret to Everybody", b"Hello, World!", vector)
    assert not verify_signature("It's a Secret to Everybody", b"Hello, World?", vector)
    assert not verify_signature("It's a Secret to Everybody", b"Hello, World!", vector.upper())
    assert not verify_signature("It's a Secret to Everybody", b"Hello, World!", None)


async def test_pull_request_delivery_is_queued_answered_at_once_and_processed(world):
    fake, repo = world
    pr = fake.open_pull(repo, {"rules/a.yml": "title: b\n"})
    done = []
    async with running_bot(fake, router=probe_router(done)) as bot:
        status, answer = await bot.deliver("pull_request", pull_request_event(fake, pr), delivery_id="d-1")
        assert status == 202 and answer["status"] == "accepted"
        await bot.settle()
    assert done == [("d-1", pr.number, pr.head_sha)]
    (run,) = fake.check_runs(repo, pr.head_sha)
    assert run.conclusion == "success" and run.name == "detbot/probe"


async def test_redelivery_is_processed_once(world):
    fake, repo = world
    pr = fake.open_pull(repo, {"rules/a.yml": "title: b\n"})
    done = []
    async with running_bot(fake, router=probe_router(done)) as bot:
        payload = pull_request_event(fake, pr)
        first = await bot.deliver("pull_request", payload, delivery_id="same-id")
        second = await bot.deliver("pull_request", payload, delivery_id="same-id")
        await bot.settle()
        third = await bot.deliver("pull_request", payload, delivery_id="same-id")
        await bot.settle()
    assert first[0] == 202 and second == (200, {"status": "duplicate", "delivery": "same-id"})
    assert third[1]["status"] == "duplicate"
    assert len(done) == 1 and len(fake.check_runs(repo)) == 1


async def test_oversized_body_is_413(world):
    fake, repo = world
    async with running_bot(fake, router=probe_router(), max_body_bytes=4096) as bot:
        payload = {"zen": "x" * 10_000}
        d = delivery("ping", payload)
        body = d.body()
        async with bot.session.post(f"{bot.url}/webhook", data=body, headers=d.headers(SECRET, body)) as r:
            assert r.status == 413

        async def chunks():   # no Content-Length: the limit applies while reading
            for i in range(0, len(body), 1024):
                yield body[i:i + 1024]
        async with bot.session.post(f"{bot.url}/webhook", data=chunks(), headers=d.headers(SECRET, body)) as r:
            assert r.status == 413
        assert bot.metrics.deliveries.value(event="unverified", result="too_large") == 2


async def test_malformed_deliveries_are_400(world):
    fake, repo = world
    async with running_bot(fake, router=probe_router()) as bot:
        body = b"not json"
        headers = {"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "x1",
                   "X-Hub-Signature-256": signature_of(SECRET, body), "Content-Type": "application/json"}
        async with bot.session.post(f"{bot.url}/webhook", data=body, headers=headers) as r:
            assert r.status == 400
        body = b'{"action": "opened"}'
        for missing in ("X-GitHub-Event", "X-GitHub-Delivery"):
            headers = {"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "x2",
                       "X-Hub-Signature-256": signature_of(SECRET, body)}
            del headers[missing]
            async with bot.session.post(f"{bot.url}/webhook", data=body, headers=headers) as r:
                assert r.status == 400
        body = b"[1, 2]"
        headers = {"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "x3",
                   "X-Hub-Signature-256": signature_of(SECRET, body)}
        async with bot.session.post(f"{bot.url}/webhook", data=body, headers=headers) as r:
            assert r.status == 400
        assert bot.queue.processed == 0
        # Signed but broken JSON (GitHub never sends it): parsed by the worker, which drops that job alone.
        body = b'{"action": "opened", '
        headers = {"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "x4",
                   "X-Hub-Signature-256": signature_of(SECRET, body)}
        async with bot.session.post(f"{bot.url}/webhook", data=body, headers=headers) as r:
            assert r.status == 202
        await bot.settle()
        assert bot.metrics.jobs.value(state="malformed") == 1


@pytest.mark.parametrize("queue_of_kind", ["memory", "redis"], indirect=True)
async def test_signed_payloads_of_the_wrong_shape_are_dropped_with_one_error_line(world, queue_of_kind):
    """The webhook does not parse (its answer must stay fast); the worker checks the shape the handlers rely on
    and ends the job "malformed", logging why, before any handler or bookkeeping can trip over it."""
    fake, repo = world
    pr = fake.open_pull(repo, {"rules/a.yml": "title: b\n"})
    good = pull_request_event(fake, pr)
    broken = [{k: v for k, v in good.items() if k != "repository"},
              {**good, "pull_request": {**good["pull_request"], "number": "4"}},
              {**good, "pull_request": {**good["pull_request"], "head": None}},
              {**good, "installation": {"id": [7]}},
              {**good, "action": ["opened"]}]
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    configure_logging("info", "json", stream)
    done: list = []
    try:
        async with running_bot(fake, router=probe_router(done), queue=queue_of_kind) as bot:
            for i, payload in enumerate(broken):
                assert (await bot.deliver("pull_request", payload, delivery_id=f"bad-{i}"))[0] == 202
            await bot.deliver("pull_request", good, delivery_id="good")
            await bot.settle()
            assert bot.metrics.jobs.value(state="malformed") == len(broken)
            assert bot.metrics.jobs.value(state="succeeded") == 1 and bot.metrics.jobs.value(state="failed") == 0
    finally:
        structlog.reset_defaults()
        root.handlers[:], root.level = saved
    assert [d[0] for d in done] == ["good"] and len(fake.check_runs(repo)) == 1
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    dropped = [e for e in lines if e["event"] == "malformed delivery dropped"]
    assert sorted(e["delivery_id"] for e in dropped) == [f"bad-{i}" for i in range(len(broken))]
    assert all(e["level"] == "error" and e["problem"] for e in dropped)
    assert "`repository` is not an object" in {e["problem"] for e in dropped}


@pytest.fixture
async def queue_of_kind(request):
    """None (the server's in-process queue) or a Redis queue on a fresh prefix, removed afterwards."""
    if request.param == "memory":
        yield None
        return
    import uuid

    import redis.asyncio as aioredis

    from bot.queue import RedisQueue

    probe = aioredis.from_url("redis://127.0.0.1:6379/0")
    try:
        await asyncio.wait_for(probe.ping(), 1)
    except Exception:
        await probe.aclose()
        pytest.skip("Redis not reachable on 127.0.0.1:6379")
    prefix = f"detbot-test-{uuid.uuid4().hex[:10]}"
    yield RedisQueue("redis://127.0.0.1:6379/0", prefix=prefix, workers=2)
    keys = [k async for k in probe.scan_iter(match=f"{prefix}:*")]
    if keys:
        await probe.delete(*keys)
    await probe.aclose()


async def test_ping_and_unrouted_events_are_answered_but_not_queued(world):
    fake, repo = world
    pr = fake.open_pull(repo, {"rules/a.yml": "title: b\n"})
    async with running_bot(fake, router=probe_router()) as bot:
        status, answer = await bot.deliver("ping", ping_event(fake))
        assert status == 200 and answer["status"] == "pong"
        status, answer = await bot.deliver("issue_comment", issue_comment_event(fake, pr, "thanks!"))
        assert (status, answer["status"]) == (202, "ignored")        # no router handles issue_comment here
        await bot.settle()
        assert bot.queue.processed == 0
        assert bot.metrics.deliveries.value(event="issue_comment", result="ignored") == 1
        # pull_request is routed, but not its "closed" action: the worker drops it after parsing
        status, answer = await bot.deliver("pull_request", pull_request_event(fake, pr, "closed"))
        assert (status, answer["status"]) == (202, "accepted")
        await bot.settle()
        assert bot.metrics.jobs.value(state="ignored") == 1
    assert fake.requests == []


async def test_github_502_then_success_is_retried(world):
    fake, repo = world
    pr = fake.open_pull(repo, {"rules/a.yml": "title: b\n"})
    fake.fail("/repos/octo-org/rules/check-runs/*", times=1, status=502, method="PATCH")
    async with running_bot(fake, router=probe_router()) as bot:
        await bot.deliver("pull_request", pull_request_event(fake, pr))
        await bot.settle()
        assert bot.metrics.github_calls.value(method="PATCH", status=502) == 1
    assert [r.status for r in fake.requests_to("/repos/octo-org/rules/check-runs/*", "PATCH")] == [502, 200]
    assert fake.check_runs(repo)[0].conclusion == "success"


async def test_secondary_rate_limit_retry_after_is_honoured(world):
    fake, repo = world
    pr = fake.open_pull(repo, {"rules/a.yml": "title: b\n"})
    fake.secondary_rate_limit("/repos/octo-org/rules/check-runs/*", retry_after=0.25, method="PATCH")
    async with running_bot(fake, router=probe_router()) as bot:
        await bot.deliver("pull_request", pull_request_event(fake, pr))
        await bot.settle()
    patches = fake.requests_to("/repos/octo-org/rules/check-runs/*", "PATCH")
    assert [r.status for r in patches] == [403, 200]
    assert patches[1].at - patches[0].at >= 0.25


async def test_expired_token_is_refreshed_between_jobs(world):
    fake, repo = world
    pr = fake.open_pull(repo, {"rules/a.yml": "title: b\n"})
    async with running_bot(fake, router=probe_router()) as bot:
        await bot.deliver("pull_request", pull_request_event(fake, pr))
        await bot.settle()
        fake.expire_tokens()
        fake.push_to_pull(pr, {"rules/a.yml": "title: c\n"})
        await bot.deliver("pull_request", pull_request_event(fake, pr, "synchronize"))
        await bot.settle()
    assert len(fake.token_requests(7)) == 2
    statuses = [r.status for r in fake.requests_to("/repos/octo-org/rules/check-runs", "POST")]
    assert statuses == [201, 401, 201]
    assert all(r.conclusion == "success" for r in fake.check_runs(repo))


async def test_short_lived_tokens_are_renewed_without_a_401(world):
    fake, repo = world
    fake.token_lifetime = 1.0
    pr = fake.open_pull(repo, {"rules/a.yml": "title: b\n"})
    async with running_bot(fake, router=probe_router()) as bot:
        await bot.deliver("pull_request", pull_request_event(fake, pr))
        await bot.settle()
        await asyncio.sleep(1.0)
        fake.push_to_pull(pr, {"rules/a.yml": "title: c\n"})
        await bot.deliver("pull_request", pull_request_event(fake, pr, "synchronize"))
        await bot.settle()
    assert len(fake.token_requests(7)) == 2
    assert 401 not in [r.status for r in fake.requests]


async def test_concurrent_deliveries_need_one_token(world):
    fake, repo = world
    fake.latency = 0.01
    prs = [fake.open_pull(repo, {f"rules/r{i}.yml": "title: x\n"}) for i in range(20)]
    async with running_bot(fake, router=probe_router(), workers=8) as bot:
        answers = await asyncio.gather(*(bot.deliver("pull_request", pull_request_event(fake, pr)) for pr in prs))
        assert {a[0] for a in answers} == {202}
        await bot.settle()
    assert len(fake.token_requests(7)) == 1
    assert len(fake.check_runs(repo)) == 20


async def test_synchronize_cancels_the_older_head_and_the_newest_wins(world):
    fake, repo = world
    pr = fake.open_pull(repo, {"rules/a.yml": "title: b\n"})
    first_started = asyncio.Event()
    seen = {}
    router = Router()

    @router.register("pull_request", action="opened")
    @router.register("pull_request", action="synchronize")
    async def slow(event, gh, ctx):
        sha = event.data["pull_request"]["head"]["sha"]
        if event.data["action"] == "opened":
            first_started.set()
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                seen["old"] = (sha, ctx.run.cancel_reason, await ctx.run.is_current())
                raise
        seen["new"] = (sha, await ctx.run.is_current())

    async with running_bot(fake, router=router) as bot:
        old_sha = pr.head_sha
        await bot.deliver("pull_request", pull_request_event(fake, pr, "opened"))
        await asyncio.wait_for(first_started.wait(), 5)
        fake.push_to_pull(pr, {"rules/a.yml": "title: c\n"})
        await bot.deliver("pull_request", pull_request_event(fake, pr, "synchronize"))
        await bot.settle()
        assert bot.metrics.jobs.value(state="superseded") == 1
    assert seen == {"old": (old_sha, SUPERSEDED, False), "new": (pr.head_sha, True)}


async def test_shutdown_lets_running_jobs_conclude(world):
    fake, repo = world
    pr = fake.open_pull(repo, {"rules/a.yml": "title: b\n"})
    started = asyncio.Event()
    concluded = []
    router = Router()

    @router.register("pull_request", action="opened")
    async def long_job(event, gh, ctx):
        repo_name = event.data["repository"]["full_name"]
        run = await gh.post(f"/repos/{repo_name}/check-runs", data={
            "name": "detbot/long", "head_sha": event.data["pull_request"]["head"]["sha"],
            "status": "in_progress", "output": {"title": "long", "summary": "running"}})
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            await gh.patch(f"/repos/{repo_name}/check-runs/{run['id']}", data={
                "conclusion": "cancelled", "output": {"title": "long", "summary": "detbot restarted"}})
            concluded.append(ctx.run.cancel_reason)
            raise

    async with running_bot(fake, router=router, shutdown_timeout=0.2) as bot:
        await bot.deliver("pull_request", pull_request_event(fake, pr))
        await asyncio.wait_for(started.wait(), 5)
    assert concluded == [SHUTDOWN]
    assert fake.check_runs(repo)[0].conclusion == "cancelled"


async def test_installation_deleted_evicts_the_cached_token(world):
    fake, repo = world
    pr = fake.open_pull(repo, {"rules/a.yml": "title: b\n"})
    async with running_bot(fake, router=probe_router()) as bot:
        await bot.deliver("pull_request", pull_request_event(fake, pr))
        await bot.settle()
        assert bot.github.tokens.cached(7) is not None
        status, answer = await bot.deliver("installation", installation_event(fake, 7, "deleted"))
        assert status == 202
        await bot.settle()
        assert bot.github.tokens.cached(7) is None
        status, _ = await bot.deliver("installation", installation_event(fake, 7, "created", [repo]))
        await bot.settle()
        assert bot.metrics.jobs.value(state="succeeded") == 3


async def test_healthz_and_metrics(world):
    fake, repo = world
    pr = fake.open_pull(repo, {"rules/a.yml": "title: b\n"})
    other = fake.open_pull(repo, {"rules/a.yml": "title: c\n"})
    async with running_bot(fake, router=probe_router()) as bot:
        async with bot.session.get(f"{bot.url}/healthz") as r:
            assert r.status == 200 and (await r.json())["status"] == "ok"
        await bot.deliver("pull_request", pull_request_event(fake, pr))
        await bot.deliver("pull_request", pull_request_event(fake, other), delivery_id="dup")
        await bot.deliver("pull_request", pull_request_event(fake, other), delivery_id="dup")
        await bot.settle()
        async with bot.session.get(f"{bot.url}/metrics") as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            text = await r.text()
    samples = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert samples['detbot_webhook_deliveries_total{event="pull_request",result="accepted"}'] == "2"
    assert samples['detbot_webhook_deliveries_total{event="pull_request",result="duplicate"}'] == "1"
    assert samples['detbot_jobs_total{state="succeeded"}'] == "2"
    assert samples['detbot_job_duration_seconds_count{event="pull_request"}'] == "2"
    assert samples['detbot_github_api_calls_total{method="POST",status="201"}'] == "3"   # token + 2 runs
    assert samples['detbot_github_api_calls_total{method="PATCH",status="200"}'] == "2"
    assert samples["detbot_queue_depth"] == "0"
    assert int(samples['detbot_webhook_response_seconds_count']) == 3
    assert "# TYPE detbot_job_duration_seconds histogram" in text
    assert re.search(r'detbot_job_duration_seconds_bucket\{event="pull_request",le="\+Inf"\} 2', text)


async def test_job_logs_are_json_bound_to_delivery_repo_pr_and_sha(world):
    fake, repo = world
    pr = fake.open_pull(repo, {"rules/a.yml": "title: b\n"})
    stream = io.StringIO()
    router = Router()

    @router.register("pull_request", action="opened")
    async def logs_something(event, gh, ctx):
        structlog.get_logger("test").info("checking")
        logging.getLogger("some.library").warning("from the standard library")

    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    configure_logging("info", "json", stream)
    try:
        async with running_bot(fake, router=router) as bot:
            await bot.deliver("pull_request", pull_request_event(fake, pr), delivery_id="deliv-42")
            await bot.settle()
    finally:
        structlog.reset_defaults()
        root.handlers[:], root.level = saved
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]    # every line is JSON
    (entry,) = [e for e in lines if e["event"] == "checking"]
    assert entry["delivery_id"] == "deliv-42" and entry["github_event"] == "pull_request"
    assert (entry["repo"], entry["pr"], entry["head_sha"]) == ("octo-org/rules", pr.number, pr.head_sha)
    assert entry["level"] == "info" and "timestamp" in entry
    (stdlib,) = [e for e in lines if e["event"] == "from the standard library"]
    assert stdlib["logger"] == "some.library" and stdlib["level"] == "warning"
    assert stdlib["delivery_id"] == "deliv-42" and stdlib["pr"] == pr.number


async def test_queue_full_answers_503_and_accepts_the_redelivery(world):
    fake, repo = world
    pr = fake.open_pull(repo, {"rules/a.yml": "title: b\n"})
    gate = asyncio.Event()
    router = Router()

    @router.register("pull_request", action="opened")
    async def blocked(event, gh, ctx):
        await gate.wait()

    prs = [pr] + [fake.open_pull(repo, {"rules/a.yml": f"title: {i}\n"}) for i in range(2)]
    async with running_bot(fake, router=router, workers=1, max_pending=1) as bot:
        payloads = [pull_request_event(fake, p) for p in prs]   # three PRs: no supersession between them
        assert (await bot.deliver("pull_request", payloads[0], delivery_id="a"))[0] == 202
        await asyncio.sleep(0.05)          # the worker holds "a"
        assert (await bot.deliver("pull_request", payloads[1], delivery_id="b"))[0] == 202   # waits
        status, answer = await bot.deliver("pull_request", payloads[2], delivery_id="c")
        assert status == 503 and answer["status"] == "busy"
        gate.set()
        await bot.settle()
        assert (await bot.deliver("pull_request", payloads[2], delivery_id="c"))[0] == 202   # GitHub's redelivery
        await bot.settle()
        assert bot.metrics.jobs.value(state="succeeded") == 3


async def test_unreachable_github_does_not_break_the_webhook():
    """GitHub down: deliveries are still answered at once; the job fails after its retries."""
    fake = FakeGitHub()
    await fake.start()
    await fake.close()                       # nothing listens on fake.url any more
    fake.add_repo("octo-org/rules", installation_id=7)
    pr = fake.open_pull(fake.repo("octo-org/rules"), {"rules/a.yml": "x"})
    async with running_bot(fake, router=probe_router()) as bot:
        status, _ = await bot.deliver("pull_request", pull_request_event(fake, pr))
        assert status == 202
        await bot.settle()
        assert bot.metrics.jobs.value(state="failed") == 1
        assert bot.metrics.github_calls.value(method="POST", status=0) >= 1



async def test_two_servers_sharing_redis_split_work_and_drop_redeliveries(world):
    import uuid

    import redis.asyncio as aioredis

    from bot.queue import RedisQueue

    probe = aioredis.from_url("redis://127.0.0.1:6379/0")
    try:
        await asyncio.wait_for(probe.ping(), 1)
    except Exception:
        pytest.skip("Redis not reachable on 127.0.0.1:6379")
    fake, repo = world
    prefix = f"detbot-test-{uuid.uuid4().hex[:10]}"
    prs = [fake.open_pull(repo, {f"rules/r{i}.yml": "title: x\n"}) for i in range(10)]
    done: list = []
    try:
        async with running_bot(fake, router=probe_router(done),
                               queue=RedisQueue("redis://127.0.0.1:6379/0", prefix=prefix, workers=2)) as a, \
                running_bot(fake, router=probe_router(done),
                            queue=RedisQueue("redis://127.0.0.1:6379/0", prefix=prefix, workers=2)) as b:
            for i, pr in enumerate(prs):
                payload = pull_request_event(fake, pr)
                first = await (a if i % 2 else b).deliver("pull_request", payload, delivery_id=f"d{i}")
                again = await (b if i % 2 else a).deliver("pull_request", payload, delivery_id=f"d{i}")
                assert first[0] == 202 and again == (200, {"status": "duplicate", "delivery": f"d{i}"})
            for _ in range(500):
                if len(done) == 10:
                    break
                await asyncio.sleep(0.01)
            await a.settle()
            await b.settle()
            assert a.queue.processed and b.queue.processed           # both servers took work
    finally:
        keys = [k async for k in probe.scan_iter(match=f"{prefix}:*")]
        if keys:
            await probe.delete(*keys)
        await probe.aclose()
    assert sorted(d[0] for d in done) == sorted(f"d{i}" for i in range(10))
    assert len(fake.check_runs(repo)) == 10


async def test_queue_workers_hold_back_until_a_burst_of_answers_is_over(world, monkeypatch):
    """Between two answers of a burst no handler runs; the workers must still see the server as busy, or a job
    slips in and delays the rest of the burst (GitHub counts a slow answer as a failed delivery)."""
    monkeypatch.setattr("bot.webhook.BURST_GAP", 0.3)    # wide enough for a loaded CI machine
    fake, repo = world
    pr = fake.open_pull(repo, {"rules/a.yml": "title: b\n"})
    async with running_bot(fake, router=probe_router()) as bot:
        assert not bot.queue.busy()
        d = delivery("pull_request", pull_request_event(fake, pr))
        body = d.body()
        async with bot.session.post(f"{bot.url}/webhook", data=body, headers=d.headers(SECRET, body)) as r:
            assert r.status == 202
            assert bot.queue.busy()       # the answer has just left: more of the burst may follow
        await asyncio.sleep(0.4)
        assert not bot.queue.busy()


async def test_a_body_must_be_utf8_and_a_non_ascii_one_is_processed(world):
    fake, repo = world
    pr = fake.open_pull(repo, {"rules/a.yml": "title: b\n"})
    record: list = []
    async with running_bot(fake, router=probe_router(record)) as bot:
        payload = pull_request_event(fake, pr)
        payload["pull_request"]["title"] = "Règle: détection d'AiTM — Entra ID"
        d = delivery("pull_request", payload)
        body = json.dumps(payload, ensure_ascii=False).encode()     # UTF-8 as GitHub sends it, not \u escapes
        assert not body.isascii()
        async with bot.session.post(f"{bot.url}/webhook", data=body, headers=d.headers(SECRET, body)) as r:
            assert r.status == 202
        await bot.queue.join(10)
        assert [number for _, number, _ in record] == [pr.number]

        bad = delivery("pull_request", payload)
        latin1 = json.dumps(payload, ensure_ascii=False).encode("latin-1", errors="replace")
        async with bot.session.post(f"{bot.url}/webhook", data=latin1, headers=bad.headers(SECRET, latin1)) as r:
            assert r.status == 400 and (await r.json())["status"] == "body is not UTF-8"
        await asyncio.sleep(0.05)
        assert len(record) == 1 and bot.queue.depth() == 0
