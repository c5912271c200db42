"""The detbot web application: `POST /webhook`, `GET /healthz`, `GET /metrics`, and the queue workers that
dispatch queued deliveries to the routers.

    app = create_app(settings)            # everything from settings
    app = create_app(settings, github=..., queue=..., router=...)   # parts supplied (tests, benchmarks)

Other components reach the parts through the app keys below (e.g. a start-up sweep added to `app.on_startup`
reads `app[GITHUB_APP]` and `app[QUEUE]`); `add_background_task` runs a coroutine for the server's lifetime.
"""
from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

import structlog
from aiohttp import web
from gidgethub import sansio
from gidgethub.routing import Router

from .github import GitHubApp, RetryPolicy
from .metrics import Metrics
from .payloads import payload_problem
from .queue import JobQueue, JobRun, make_queue
from .routes import Context, build_router, job_key
from .settings import Settings
from .webhook import WebhookEndpoint

log = structlog.get_logger("bot.server")

SETTINGS = web.AppKey("settings", Settings)
GITHUB_APP = web.AppKey("github_app", GitHubApp)
QUEUE = web.AppKey("queue", JobQueue)
ROUTER = web.AppKey("router", Router)
METRICS = web.AppKey("metrics", Metrics)
BACKGROUND = web.AppKey("background", list)
# How long /healthz and /metrics wait for the queue's Redis: a partitioned Redis otherwise holds each probe for
# redis-py's 5 s, longer than an orchestrator's probe timeout, and scrapes pile up.
QUEUE_PROBE_TIMEOUT = 2.0


def make_job_handler(router: Router, github: GitHubApp, settings: Settings | None) -> Callable[[JobRun],
                                                                                           Awaitable[None]]:
    """What a queue worker does with a webhook job: parse it, drop actions no handler wants, claim the pull
    request's key (newest delivery wins; a delivery older than the key's holder is dropped), and dispatch to the
    routers with an installation client and the Context."""
    async def handle(run: JobRun) -> None:
        job = run.job
        try:
            data = job.data
        except ValueError as e:     # not JSON: the webhook only looked at the first byte
            data, problem = {}, str(e)
        else:
            problem = payload_problem(job.event, data)
        if problem is not None:
            # Correctly signed, yet not what GitHub sends: nothing to retry, nothing a handler could do.
            log.error("malformed delivery dropped", problem=problem)
            run.outcome = "malformed"
            return
        event = sansio.Event(data, event=job.event, delivery_id=job.delivery_id)
        if not router.fetch(event):
            run.outcome = "ignored"
            return
        key, sha = job_key(job.event, data)
        if key and not await run.claim(key, sha):
            log.info("delivery superseded by a later one for the same pull request", key=key)
            run.outcome = "superseded"
            return
        installation_id = job.installation_id or (data.get("installation") or {}).get("id")
        gh = github.installation_client(installation_id) if installation_id else github.app_client()
        await router.dispatch(event, gh, Context(github=github, gh=gh, run=run, settings=settings))
    return handle


def create_app(settings: Settings, *, github: GitHubApp | None = None, queue: JobQueue | None = None,
               router: Router | None = None, metrics: Metrics | None = None) -> web.Application:
    metrics = metrics or Metrics()
    if github is None:
        github = GitHubApp(app_id=settings.app_id, private_key=settings.private_key, base_url=settings.github_url,
                           requester=settings.app_slug, concurrency=settings.github_concurrency,
                           retry=RetryPolicy(max_total_wait=settings.retry_max_wait), metrics=metrics,
                           timeout=settings.github_timeout)
    if queue is None:
        extra = {"max_pending": settings.max_pending} if settings.queue == "memory" else {
            "prefix": settings.queue_prefix}
        queue = make_queue(settings.queue, workers=settings.workers, job_timeout=settings.job_timeout,
                           metrics=metrics, dedup_ttl=settings.delivery_ttl, **extra)
    if router is None:
        router = build_router()

    app = web.Application(client_max_size=settings.max_body_bytes)
    app[SETTINGS], app[GITHUB_APP], app[QUEUE], app[ROUTER], app[METRICS] = settings, github, queue, router, metrics
    app[BACKGROUND] = []
    endpoint = WebhookEndpoint(secret=settings.webhook_secret, queue=queue, router=router, metrics=metrics,
                               max_body=settings.max_body_bytes)
    queue.busy = endpoint.busy
    app.router.add_post("/webhook", endpoint.handle)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_endpoint)
    app.on_startup.append(_start)
    app.on_shutdown.append(_stop)
    app.on_cleanup.append(_cleanup)
    return app


def add_background_task(app: web.Application, factory: Callable[[web.Application], Awaitable[Any]]) -> None:
    """Run `factory(app)` from start-up until shutdown (e.g. a periodic sweep); cancelled at shutdown."""
    async def start(app: web.Application) -> None:
        app[BACKGROUND].append(asyncio.create_task(factory(app)))
    app.on_startup.append(start)


async def _start(app: web.Application) -> None:
    await app[QUEUE].start(make_job_handler(app[ROUTER], app[GITHUB_APP], app[SETTINGS]))
    log.info("detbot serving", listen=app[SETTINGS].listen, github=app[GITHUB_APP].base_url,
             queue=type(app[QUEUE]).__name__, workers=app[QUEUE].workers,
             event_loop=type(asyncio.get_running_loop()).__module__.split(".")[0])


async def _stop(app: web.Application) -> None:
    """Graceful: the listener is closed already (aiohttp stops accepting first); running jobs finish or are
    cancelled with reason "shutdown" so they conclude their check runs."""
    for task in app[BACKGROUND]:
        task.cancel()
    await asyncio.gather(*app[BACKGROUND], return_exceptions=True)
    await app[QUEUE].close(timeout=app[SETTINGS].shutdown_timeout)
    log.info("detbot stopped", processed=app[QUEUE].processed)


async def _cleanup(app: web.Application) -> None:
    await app[GITHUB_APP].close()


async def healthz(request: web.Request) -> web.Response:
    queue = request.app[QUEUE]
    if not queue.closing:
        try:
            await asyncio.wait_for(queue.refresh_depth(), QUEUE_PROBE_TIMEOUT)
        except Exception:  # noqa: BLE001 -- Redis unreachable or not answering: not healthy
            return web.json_response({"status": "queue unreachable"}, status=503)
    if queue.closing:
        return web.json_response({"status": "shutting down"}, status=503)
    if queue.dead_workers():
        return web.json_response({"status": f"{queue.dead_workers()} of {queue.workers} workers stopped"},
                                 status=503)
    return web.json_response({"status": "ok", "queued": queue.depth(), "running": len(queue.running)})


async def metrics_endpoint(request: web.Request) -> web.Response:
    try:
        await asyncio.wait_for(request.app[QUEUE].refresh_depth(), QUEUE_PROBE_TIMEOUT)
    except Exception:  # noqa: BLE001 -- the other figures are still worth scraping
        log.warning("queue depth unavailable")
    return web.Response(body=request.app[METRICS].render().encode(),
                        headers={"Content-Type": Metrics.CONTENT_TYPE})
