"""`detbot serve` settings from the environment, and the command itself as a real process."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from bot.settings import Settings, SettingsError
from tests.fakegithub import app_keypair, pull_request_event
from tests.fakegithub.harness import SECRET
from tests.fakegithub.webhooks import delivery

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "app.pem"
    path.write_bytes(app_keypair()[0])
    return path


def test_every_missing_variable_is_named_at_once():
    with pytest.raises(SettingsError) as exc:
        Settings.from_env({})
    text = str(exc.value)
    for name in ("DETBOT_APP_ID", "DETBOT_PRIVATE_KEY_FILE", "DETBOT_WEBHOOK_SECRET"):
        assert name in text
    assert len(exc.value.problems) == 3


def test_invalid_values_are_named(key_file):
    env = {"DETBOT_APP_ID": "abc", "DETBOT_PRIVATE_KEY_FILE": str(key_file), "DETBOT_WEBHOOK_SECRET": "s",
           "DETBOT_LISTEN": "localhost", "DETBOT_QUEUE": "kafka://x", "DETBOT_WORKERS": "0",
           "DETBOT_GITHUB_URL": "ghe.example.com", "DETBOT_JOB_TIMEOUT": "soon"}
    with pytest.raises(SettingsError) as exc:
        Settings.from_env(env)
    problems = "\n".join(exc.value.problems)
    for name in ("DETBOT_APP_ID", "DETBOT_LISTEN", "DETBOT_QUEUE", "DETBOT_WORKERS", "DETBOT_GITHUB_URL",
                 "DETBOT_JOB_TIMEOUT"):
        assert name in problems
    assert "DETBOT_PRIVATE_KEY" not in problems and "DETBOT_WEBHOOK_SECRET" not in problems


def test_complete_settings(key_file):
    s = Settings.from_env({"DETBOT_APP_ID": "123", "DETBOT_PRIVATE_KEY_FILE": str(key_file),
                           "DETBOT_WEBHOOK_SECRET": "s3", "DETBOT_LISTEN": "127.0.0.1:9000",
                           "DETBOT_GITHUB_URL": "https://ghe.example.com/api/v3/", "DETBOT_QUEUE": "redis://r:6379/1",
                           "DETBOT_WORKERS": "8", "DETBOT_ALERT_STORE": "postgresql://db/alerts"})
    assert (s.app_id, s.host, s.port, s.github_url, s.queue, s.workers) == (
        123, "127.0.0.1", 9000, "https://ghe.example.com/api/v3", "redis://r:6379/1", 8)
    assert s.alert_store == "postgresql://db/alerts" and s.bot_login == "detbot[bot]"
    assert "PRIVATE KEY" in s.private_key and "s3" not in repr(s) and "PRIVATE" not in repr(s)
    defaults = Settings.from_env({"DETBOT_APP_ID": "1", "DETBOT_PRIVATE_KEY_FILE": str(key_file),
                                  "DETBOT_WEBHOOK_SECRET": "s"})
    assert (defaults.listen, defaults.github_url, defaults.queue) == ("0.0.0.0:8080", "https://api.github.com",
                                                                     "memory")


def test_webhook_only_servers_need_a_shared_queue(key_file):
    base = {"DETBOT_APP_ID": "1", "DETBOT_PRIVATE_KEY_FILE": str(key_file), "DETBOT_WEBHOOK_SECRET": "s",
            "DETBOT_WORKERS": "0"}
    with pytest.raises(SettingsError, match="DETBOT_WORKERS=0"):
        Settings.from_env(base)
    assert Settings.from_env({**base, "DETBOT_QUEUE": "redis://r:6379/0"}).workers == 0


def test_private_key_inline_with_escaped_newlines():
    pem = app_keypair()[0].decode().replace("\n", "\\n")
    s = Settings.from_env({"DETBOT_APP_ID": "1", "DETBOT_PRIVATE_KEY": pem, "DETBOT_WEBHOOK_SECRET": "s"})
    assert s.private_key.startswith("-----BEGIN") and "\n" in s.private_key
    with pytest.raises(SettingsError, match="PEM"):
        Settings.from_env({"DETBOT_APP_ID": "1", "DETBOT_PRIVATE_KEY": "not a key", "DETBOT_WEBHOOK_SECRET": "s"})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.fake_github_prefix("/api/v3")
async def test_serve_command_runs_answers_and_stops_on_sigterm(fake_github, key_file):
    """Against a GitHub Enterprise Server given by its web address: the REST API is found under /api/v3."""
    fake_github.add_installation(7, "octo-org")
    repo = fake_github.add_repo("octo-org/rules", installation_id=7, files={"rules/a.yml": "title: a\n"})
    pr = fake_github.open_pull(repo, {"rules/a.yml": "title: b\n"})
    port = _free_port()
    env = {**os.environ, "DETBOT_APP_ID": str(fake_github.app_id), "DETBOT_PRIVATE_KEY_FILE": str(key_file),
           "DETBOT_WEBHOOK_SECRET": SECRET, "DETBOT_LISTEN": f"127.0.0.1:{port}",
           "DETBOT_GITHUB_URL": fake_github.url.removesuffix("/api/v3") + "/", "DETBOT_REPLAY_CATCH_UP": "0", "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli", "serve", env=env, cwd=ROOT,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(200):
                try:
                    async with session.get(f"http://127.0.0.1:{port}/healthz") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError("detbot serve did not come up")
            d = delivery("pull_request", pull_request_event(fake_github, pr))
            body = d.body()
            async with session.post(f"http://127.0.0.1:{port}/webhook", data=body,
                                    headers=d.headers(SECRET, body)) as r:
                assert r.status == 202
            # The real server process runs the pull request flow against the fake GitHub.
            for _ in range(400):
                runs = fake_github.check_runs(repo, pr.head_sha)
                if len(runs) >= 4 and all(run.status == "completed" for run in runs):
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"check runs not concluded: {[(r.name, r.status) for r in runs]}")
            assert {r.name for r in runs} >= {"detbot/syntax", "detbot/tests", "detbot/coverage", "detbot/ads"}
            async with session.post(f"http://127.0.0.1:{port}/webhook", data=body,
                                    headers=d.headers("wrong", body)) as r:
                assert r.status == 401
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()[-2000:]
    lines = out.decode().splitlines()
    assert any('"event": "detbot serving"' in line for line in lines)
    assert any('"event": "detbot stopped"' in line for line in lines)


async def test_serve_command_reports_missing_settings():
    env = {k: v for k, v in os.environ.items() if not k.startswith("DETBOT_")}
    env["PYTHONPATH"] = str(ROOT)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli", "serve", "--check-config",
                                                env=env, cwd=ROOT, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 2
    assert b"DETBOT_APP_ID" in err and b"DETBOT_WEBHOOK_SECRET" in err


async def test_serve_command_names_an_unreachable_redis(key_file):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DETBOT_")}, "PYTHONPATH": str(ROOT),
           "DETBOT_APP_ID": "1", "DETBOT_PRIVATE_KEY_FILE": str(key_file), "DETBOT_WEBHOOK_SECRET": "s",
           "DETBOT_LISTEN": f"127.0.0.1:{_free_port()}", "DETBOT_QUEUE": "redis://user:secret@127.0.0.1:1/0"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli", "serve", env=env, cwd=ROOT,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 1
    assert b"cannot reach Redis at redis://127.0.0.1:1/0" in err and b"secret" not in err
