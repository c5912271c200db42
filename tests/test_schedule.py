from datetime import datetime, time, timezone

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
