"""`detbot serve` logs as a log collector sees them: one JSON object per line, and every line a job causes --
including the worker's own lines about it (failed, timed out) -- carries the delivery id, repository, pull
request and head sha, so one query finds everything about a delivery."""
from __future__ import annotations

import io
import json
import logging

import structlog
from gidgethub.routing import Router

from bot.logging import configure_logging
from tests.fakegithub import FakeGitHub, pull_request_event
from tests.fakegithub.harness import running_bot

LIFECYCLE = {"detbot serving", "detbot stopped"}


async def _logged(fake: FakeGitHub, pr, **bot_args) -> list[dict]:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    configure_logging("debug", "json", stream)
    try:
        async with running_bot(fake, **bot_args) as bot:
            await bot.deliver("pull_request", pull_request_event(fake, pr), delivery_id="deliv-7")
            await bot.settle()
    finally:
        structlog.reset_defaults()
        root.handlers[:], root.level = saved
    return [json.loads(line) for line in stream.getvalue().splitlines()]    # every line is one JSON object


def _assert_bound(lines: list[dict], pr) -> None:
    job_lines = [e for e in lines if e["event"] not in LIFECYCLE]
    assert job_lines
    for e in job_lines:
        assert (e.get("delivery_id"), e.get("repo"), e.get("pr"), e.get("head_sha")) == (
            "deliv-7", "octo-org/rules", pr.number, pr.head_sha), e


async def test_every_line_of_a_real_pull_request_job_is_bound(fake_github: FakeGitHub):
    repo = fake_github.add_repo("octo-org/rules", installation_id=7, files={"rules/a.yml": "title: a\n"})
    pr = fake_github.open_pull(repo, {"rules/a.yml": "title: b\n"})
    lines = await _logged(fake_github, pr)
    assert any(e["event"] == "installation token issued" for e in lines)
    _assert_bound(lines, pr)


async def test_the_failure_and_timeout_lines_of_a_job_are_bound(fake_github: FakeGitHub):
    repo = fake_github.add_repo("octo-org/rules", installation_id=7, files={"rules/a.yml": "title: a\n"})
    pr = fake_github.open_pull(repo, {"rules/a.yml": "title: b\n"})
    router = Router()

    @router.register("pull_request", action="opened")
    async def breaks(event, gh, ctx):
        raise RuntimeError("handler bug")

    lines = await _logged(fake_github, pr, router=router)
    (failed,) = [e for e in lines if e["event"] == "job failed"]
    assert "handler bug" in failed["exception"]
    _assert_bound(lines, pr)
