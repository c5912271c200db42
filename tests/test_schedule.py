from datetime import datetime, time, timedelta, timezone

import pytest

from bot.schedule import DailyScheduler, due, next_slot, schedule_time
from checks.config import ConfigError, parse_config


def utc(h, m=0, day=10):
    return datetime(2026, 11, day, h, m, tzinfo=timezone.utc)


def test_schedule_time_forms():
    assert schedule_time(parse_config(b"")) == time(3, 0)
    assert schedule_time(parse_config(b'replay:\n  schedule: "21:30"\n')) == time(21, 30)
    # Unquoted, YAML 1.1 turns 04:15 into 255 (sexagesimal); read it back as the time meant.
    assert schedule_time(parse_config(b"replay:\n  schedule: 04:15\n")) == time(4, 15)
    assert schedule_time(parse_config(b"replay:\n  schedule: off\n")) is None
    assert schedule_time(parse_config(b'replay:\n  schedule: "off"\n')) is None


def test_schedule_time_error_names_key_and_line():
    with pytest.raises(ConfigError) as e:
        schedule_time(parse_config(b'rules: ["r/*.yml"]\nreplay:\n  schedule: "25:00"\n'))
    assert e.value.key == "replay.schedule" and e.value.line == 3


def test_due_after_slot_once_per_day():
    at = time(3, 0)
    assert not due(at, utc(2, 59), utc(3, 0, day=9))
    assert due(at, utc(3, 0), utc(3, 0, day=9))
    assert not due(at, utc(3, 5), utc(3, 1))
    assert due(at, utc(2, 0, day=11), utc(3, 1, day=9))
    assert next_slot(at, utc(4)) == utc(3, day=11)
    assert next_slot(at, utc(2)) == utc(3)


async def test_scheduler_runs_each_repo_once_per_slot_and_survives_failures():
    now = [utc(2, 0)]
    ran: list[str] = []

    async def repos():
        return [(None, "o/a", "main"), (None, "o/b", "main"), (None, "o/off", "main")]

    async def slot_for(gh, repo, branch):
        return None if repo == "o/off" else time(3, 0)

    async def replay(gh, repo, branch):
        ran.append(repo)
        if repo == "o/a":
            raise RuntimeError("boom")

    s = DailyScheduler(repos, slot_for, replay, clock=lambda: now[0])
    assert await s.run_due() == []  # first sight counts as just run: no replay storm at start-up
    now[0] = utc(3, 1)
    assert await s.run_due() == ["o/b"]
    assert ran == ["o/a", "o/b"]
    now[0] = utc(9, 0)
    assert await s.run_due() == []
    now[0] = utc(3, 0, day=11)
    assert await s.run_due() == ["o/b"]
    assert ran.count("o/off") == 0


def _scheduler(now, ran, **kwargs):
    async def repos():
        return [(None, "o/a", "main")]

    async def slot_for(gh, repo, branch):
        return time(3, 0)

    async def replay(gh, repo, branch):
        ran.append((repo, now[0]))

    return DailyScheduler(repos, slot_for, replay, clock=lambda: now[0], **kwargs)


async def test_a_restart_just_after_the_slot_catches_up_without_a_record():
    """The in-process record is lost with the process: a slot passed less than `catch_up` ago is run at start."""
    now, ran = [utc(2, 0)], []
    before = _scheduler(now, ran, catch_up=timedelta(hours=6))
    assert await before.run_due() == []           # seen before the slot: counted as run, as ever
    now[0] = utc(3, 1)                            # the process restarts a minute after the slot
    after = _scheduler(now, ran, catch_up=timedelta(hours=6))
    assert await after.run_due() == ["o/a"]
    now[0] = utc(3, 20)
    assert await after.run_due() == []            # once
    now[0] = utc(12, 0)                           # a restart long after the slot: no replay storm at deploys
    assert await _scheduler(now, ran, catch_up=timedelta(hours=6)).run_due() == []
    assert ran == [("o/a", utc(3, 1))]


async def test_a_persisted_record_makes_the_catch_up_exact(redis_store):
    """With the last runs in Redis a restart knows: a missed day runs whenever it restarts, a done one never twice
    -- even with no catch-up window at all."""
    now, ran = [utc(3, 1, day=9)], []
    await redis_store.put("o/a", utc(3, 0, day=8))
    assert await _scheduler(now, ran, last_runs=redis_store).run_due() == ["o/a"]    # ran on the 9th
    now[0] = utc(3, 30)                                          # down over the 10th's slot, back at 03:30
    assert await _scheduler(now, ran, last_runs=redis_store).run_due() == ["o/a"]
    now[0] = utc(4, 0)                                           # and restarted again: already done today
    assert await _scheduler(now, ran, last_runs=redis_store).run_due() == []
    assert ran == [("o/a", utc(3, 1, day=9)), ("o/a", utc(3, 30))]


@pytest.fixture
async def redis_store():
    import uuid

    import redis.asyncio as aioredis

    from bot.schedule import RedisLastRuns

    r = aioredis.from_url("redis://127.0.0.1:6379/0")
    try:
        await r.ping()
    except Exception:
        await r.aclose()
        pytest.skip("Redis not reachable on 127.0.0.1:6379")
    key = f"detbot-test-{uuid.uuid4().hex[:10]}:replay:last-run"
    yield RedisLastRuns(r, key)
    await r.delete(key)
    await r.aclose()


async def test_two_servers_sharing_redis_replay_a_slot_once(redis_store):
    """Two `detbot serve` processes tick at the same moment: both read the last run before either records
    theirs; one replays (one issue), the other finds the slot taken."""
    import asyncio

    class BothRead:     # the real Redis record; `get` returns once both processes have read it
        def __init__(self, inner, readers=2):
            self.inner, self.left, self.all_read = inner, readers, asyncio.Event()

        async def get(self, repo):
            value = await self.inner.get(repo)
            self.left -= 1
            if self.left == 0:
                self.all_read.set()
            await self.all_read.wait()
            return value

        def __getattr__(self, name):
            return getattr(self.inner, name)

    now, ran = [utc(3, 1, day=9)], []
    await redis_store.put("o/a", utc(3, 0, day=8))
    shared = BothRead(redis_store)
    a, b = _scheduler(now, ran, last_runs=shared), _scheduler(now, ran, last_runs=shared)
    results = await asyncio.gather(a.run_due(), b.run_due())
    assert sorted(results) == [[], ["o/a"]] and len(ran) == 1
