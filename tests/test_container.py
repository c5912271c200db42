"""The container image (Dockerfile, reviewed here: no Docker daemon in CI) and its health probe, run for real
against a serving detbot."""
from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from bot.healthcheck import probe_url
from bot.server import QUEUE
from bot.settings import Settings
from tests.fakegithub import FakeGitHub
from tests.fakegithub.harness import running_bot

ROOT = Path(__file__).resolve().parent.parent


def instructions() -> dict[str, str]:
    """Dockerfile instruction -> its (last) argument text, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return {line.split(None, 1)[0].upper(): line.split(None, 1)[1] for line in lines}


def test_dockerfile_exposes_the_default_port_with_a_curl_free_healthcheck():
    """(User, entrypoint and package install: tests/test_example_project.py.)"""
    d = instructions()
    assert d["EXPOSE"] == str(Settings.port)
    assert '"python", "-m", "bot.healthcheck"' in d["HEALTHCHECK"] and "curl" not in d["HEALTHCHECK"]
    assert "apt-get" not in (ROOT / "Dockerfile").read_text()     # no build tools installed, none left


def test_probe_url_follows_detbot_listen():
    assert probe_url(None) == "http://127.0.0.1:8080/healthz"
    assert probe_url("0.0.0.0:9000") == "http://127.0.0.1:9000/healthz"
    assert probe_url("[::]:9000") == "http://[::1]:9000/healthz"
    assert probe_url("10.1.2.3:81") == "http://10.1.2.3:81/healthz"


async def _probe(url: str) -> int:
    listen = url.removeprefix("http://")
    env = {**os.environ, "DETBOT_LISTEN": listen, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.healthcheck", env=env, cwd=ROOT,
                                                stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.DEVNULL)
    return await asyncio.wait_for(proc.wait(), 30)


async def test_healthcheck_command_passes_then_fails_with_the_server(fake_github: FakeGitHub):
    async with running_bot(fake_github) as bot:
        assert await _probe(bot.url) == 0
        queue = bot.app[QUEUE]
        queue._worker_tasks[0].cancel()
        await asyncio.gather(queue._worker_tasks[0], return_exceptions=True)
        assert await _probe(bot.url) == 1
    assert await _probe(bot.url) == 1       # nothing listening

