"""The real detbot server running on loopback against a FakeGitHub, for end-to-end tests.

    async with running_bot(fake, router=Router(my_routes.router)) as bot:
        status, body = await bot.deliver("pull_request", pull_request_event(fake, pr, "opened"))
        await bot.settle()          # every queued job done
"""
from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable

import aiohttp
from aiohttp import web
from gidgethub.routing import Router

from bot.github import GitHubApp, RetryPolicy
from bot.metrics import Metrics
from bot.queue import JobQueue
from bot.server import GITHUB_APP, METRICS, QUEUE, create_app
from bot.settings import Settings

from .server import FakeGitHub
from .webhooks import delivery

SECRET = "It's a Secret to Everybody"
# Fast retries: the behaviour of production's policy with tiny delays.
TEST_RETRY = RetryPolicy(max_attempts=5, base_delay=0.01, max_delay=0.1, max_total_wait=5.0)


@dataclass
class RunningBot:
    url: str
    app: web.Application
    session: aiohttp.ClientSession
    secret: str

    @property
    def queue(self) -> JobQueue:
        return self.app[QUEUE]

    @property
    def github(self) -> GitHubApp:
        return self.app[GITHUB_APP]

    @property
    def metrics(self) -> Metrics:
        return self.app[METRICS]

    async def deliver(self, event: str, payload: dict[str, Any], delivery_id: str | None = None,
                      secret: str | None = None) -> tuple[int, Any]:
        """POST a signed delivery to /webhook; returns (status, JSON answer)."""
        d = delivery(event, payload, delivery_id or str(uuid.uuid4()))
        body = d.body()
        async with self.session.post(f"{self.url}/webhook", data=body,
                                     headers=d.headers(secret or self.secret, body)) as resp:
            return resp.status, await resp.json(content_type=None)

    async def settle(self, timeout: float = 10.0) -> None:
        await self.queue.join(timeout)


def probe_check_run_router(record: list | None = None, *, enabled: bool = True) -> Router:
    """A stand-in for the PR flow: on pull_request opened / synchronize, create and complete one check run
    (appending (delivery id, PR number, head sha) to `record`). With `enabled=False` the jobs do nothing."""
    router = Router()

    @router.register("pull_request", action="opened")
    @router.register("pull_request", action="synchronize")
    async def probe(event: Any, gh: Any, ctx: Any) -> None:
        if not enabled:
            return
        pr = event.data["pull_request"]
        repo = event.data["repository"]["full_name"]
        run = await gh.post(f"/repos/{repo}/check-runs", data={
            "name": "detbot/probe", "head_sha": pr["head"]["sha"], "status": "in_progress",
            "output": {"title": "probe", "summary": "running"}})
        await gh.patch(f"/repos/{repo}/check-runs/{run['id']}", data={
            "conclusion": "success", "output": {"title": "probe", "summary": "done"}})
        if record is not None:
            record.append((ctx.run.job.delivery_id, pr["number"], pr["head"]["sha"]))
    return router


def settings_for(fake: FakeGitHub, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(app_id=fake.app_id, private_key=fake.private_key_pem.decode(),
                                  webhook_secret=SECRET, github_url=fake.url, host="127.0.0.1", port=0,
                                  app_slug=fake.app_slug, workers=4, shutdown_timeout=2.0,
                                  replay_catch_up=0.0)   # no daily replay at start-up, whatever the time
    values.update(overrides)
    return Settings(**values)


@contextlib.asynccontextmanager
async def running_bot(fake: FakeGitHub, *, router: Router | None = None, queue: JobQueue | None = None,
                      prepare: Callable[[web.Application], None] | None = None,
                      **overrides: Any) -> AsyncIterator[RunningBot]:
    """`prepare(app)` before it starts: e.g. `bot.pr_handlers.install` for serve's background work."""
    settings = settings_for(fake, **overrides)
    metrics = Metrics()
    github = GitHubApp(app_id=settings.app_id, private_key=settings.private_key, base_url=settings.github_url,
                       requester=settings.app_slug, concurrency=settings.github_concurrency, retry=TEST_RETRY,
                       metrics=metrics)
    if queue is not None and queue.metrics is None:
        queue.metrics = metrics     # the server's figures include the queue's, as with a queue it makes
    app = create_app(settings, github=github, queue=queue, router=router, metrics=metrics)
    if prepare is not None:
        prepare(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with aiohttp.ClientSession() as session:
            yield RunningBot(f"http://127.0.0.1:{port}", app, session, settings.webhook_secret)
    finally:
        await runner.cleanup()
