"""`POST /webhook`: verify, deduplicate, enqueue, answer -- in well under GitHub's 10-second limit.

Order of checks: size (413) before reading; the signature (401) before looking at anything else in the request,
so an unauthenticated sender learns nothing; then the event headers and body (400); event types no router
handles are answered 202 "ignored"; then the delivery id (a redelivery is answered 200 "duplicate" and not queued
twice). The body is not parsed here: the worker does that (and drops actions nobody handles), which keeps the
answer under a millisecond of work even for large payloads.
"""
from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any, Protocol

import structlog
from aiohttp import web
from cachetools import TTLCache
from gidgethub.routing import Router

from .metrics import Metrics
from .queue import Job, JobQueue, QueueClosed, QueueFull

log = structlog.get_logger("bot.webhook")
# The event label of deliveries that failed before their signature was checked: the header is the sender's
# word, and an unauthenticated sender must not be able to create metric series.
UNVERIFIED = "unverified"


def signature_of(secret: str | bytes, body: bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify_signature(secret: str | bytes, body: bytes, header: str | None) -> bool:
    """X-Hub-Signature-256, compared in constant time (one-shot HMAC: the cheapest form for large bodies)."""
    if not header or not header.startswith("sha256="):
        return False
    try:
        claimed = bytes.fromhex(header[7:].strip())
    except ValueError:
        return False
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.compare_digest(hmac.digest(key, body, "sha256"), claimed)


class DeliveryLog(Protocol):
    async def first_time(self, delivery_id: str) -> bool:
        """Record the delivery; False when it was seen within the TTL."""

    async def forget(self, delivery_id: str) -> None:
        """Un-record it (the job could not be queued: GitHub's redelivery must be accepted)."""


class MemoryDeliveries:
    def __init__(self, ttl: float = 24 * 3600, maxsize: int = 200_000) -> None:
        self._seen: TTLCache = TTLCache(maxsize=maxsize, ttl=ttl)

    async def first_time(self, delivery_id: str) -> bool:
        if delivery_id in self._seen:
            return False
        self._seen[delivery_id] = True
        return True

    async def forget(self, delivery_id: str) -> None:
        self._seen.pop(delivery_id, None)


class RedisDeliveries:
    """Shared by every process behind the same load balancer: SET NX with a TTL."""

    def __init__(self, redis: Any, prefix: str = "detbot", ttl: float = 24 * 3600) -> None:
        self.redis, self.prefix, self.ttl = redis, prefix, ttl

    async def first_time(self, delivery_id: str) -> bool:
        return bool(await self.redis.set(f"{self.prefix}:delivery:{delivery_id}", "1", nx=True,
                                         px=int(self.ttl * 1000)))

    async def forget(self, delivery_id: str) -> None:
        await self.redis.delete(f"{self.prefix}:delivery:{delivery_id}")


def routed_events(router: Router) -> frozenset[str]:
    """Event types any handler is registered for (gidgethub keeps them in these two tables)."""
    return frozenset(router._shallow_routes) | frozenset(router._deep_routes)


def _answer(status: int, state: str, **extra: Any) -> web.Response:
    return web.json_response({"status": state, **extra}, status=status)


def _accepted(job_id: str) -> web.Response:
    # The hot path: no JSON encoder for a constant shape (job ids are hex).
    return web.Response(status=202, body=b'{"status": "accepted", "job": "%s"}' % job_id.encode(),
                        content_type="application/json")


class WebhookEndpoint:
    def __init__(self, *, secret: str, queue: JobQueue, router: Router, deliveries: DeliveryLog,
                 metrics: Metrics, max_body: int) -> None:
        self.secret = secret.encode()
        self.queue = queue
        self.router = router
        self.deliveries = deliveries
        self.metrics = metrics
        self.max_body = max_body
        self.routed_events = routed_events(router)
        self.in_flight = 0      # answers being worked on; queue workers let them go first

    async def handle(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        event = request.headers.get("X-GitHub-Event", "")
        self.in_flight += 1
        try:
            response = await self._handle(request, event)
        finally:
            self.in_flight -= 1
            self.metrics.webhook_seconds.observe(time.perf_counter() - started)
        return response

    def _count(self, event: str, result: str) -> None:
        self.metrics.deliveries.inc(event=event or "unknown", result=result)

    async def _handle(self, request: web.Request, event: str) -> web.Response:
        delivery_id = request.headers.get("X-GitHub-Delivery", "")
        if request.content_length is not None and request.content_length > self.max_body:
            self._count(UNVERIFIED, "too_large")
            return _answer(413, "too large", limit=self.max_body)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            self._count(UNVERIFIED, "too_large")
            return _answer(413, "too large", limit=self.max_body)
        if not verify_signature(self.secret, body, request.headers.get("X-Hub-Signature-256")):
            self._count(UNVERIFIED, "bad_signature")
            log.warning("webhook signature rejected", delivery_id=delivery_id, github_event=event,
                        remote=request.remote)
            return _answer(401, "bad signature")
        if not event or not delivery_id:
            self._count(event, "bad_request")
            return _answer(400, "missing X-GitHub-Event or X-GitHub-Delivery header")
        if not body.lstrip().startswith(b"{"):
            self._count(event, "bad_request")
            return _answer(400, "body is not a JSON object")
        if event == "ping":
            self._count(event, "accepted")
            return _answer(200, "pong")
        if event not in self.routed_events:
            self._count(event, "ignored")
            return _answer(202, "ignored", event=event)
        try:
            first = await self.deliveries.first_time(delivery_id)
        except Exception:  # noqa: BLE001 -- Redis unreachable: say so; GitHub can redeliver
            log.exception("delivery log unavailable", delivery_id=delivery_id)
            self._count(event, "unavailable")
            return _answer(503, "queue unavailable")
        if not first:
            self._count(event, "duplicate")
            log.info("duplicate delivery dropped", delivery_id=delivery_id, github_event=event)
            return _answer(200, "duplicate", delivery=delivery_id)
        # The body is parsed by the worker: answering fast matters more than anything a parse could tell here.
        try:
            text = body.decode()
        except UnicodeDecodeError:
            await self.deliveries.forget(delivery_id)
            self._count(event, "bad_request")
            return _answer(400, "body is not UTF-8")
        job = Job(event, delivery_id=delivery_id, body=text)
        try:
            await self.queue.enqueue(job)
        except Exception as e:  # noqa: BLE001 -- full, closing, or Redis unreachable: GitHub may redeliver
            try:
                await self.deliveries.forget(delivery_id)
            except Exception:  # noqa: BLE001
                log.exception("could not forget delivery", delivery_id=delivery_id)
            self._count(event, "unavailable")
            log.error("delivery not queued", delivery_id=delivery_id, reason=repr(e))
            state = {QueueFull: "busy", QueueClosed: "shutting down"}.get(type(e), "queue unavailable")
            return _answer(503, state)
        self._count(event, "accepted")
        log.debug("delivery queued", delivery_id=delivery_id, github_event=event, job_id=job.id)
        return _accepted(job.id)
