"""`POST /webhook`: verify, deduplicate, enqueue, answer -- in well under GitHub's 10-second limit.

Order of checks: size (413) before reading; the signature (401) before looking at anything else in the request,
so an unauthenticated sender learns nothing; then the event headers and JSON (400); then the delivery id (a
redelivery is answered 200 "duplicate" and not queued twice). The work itself happens in the queue.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any, Protocol

import structlog
from aiohttp import web
from cachetools import TTLCache
from gidgethub import sansio
from gidgethub.routing import Router

from .metrics import Metrics
from .queue import Job, JobQueue, QueueClosed, QueueFull
from .routes import job_key

log = structlog.get_logger("bot.webhook")
# The event label of deliveries that failed before their signature was checked: the header is the sender's
# word, and an unauthenticated sender must not be able to create metric series.
UNVERIFIED = "unverified"


def signature_of(secret: str | bytes, body: bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify_signature(secret: str | bytes, body: bytes, header: str | None) -> bool:
    """X-Hub-Signature-256, compared in constant time."""
    if not header or not header.startswith("sha256="):
        return False
    return hmac.compare_digest(signature_of(secret, body).encode(), header.strip().encode())


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


def _answer(status: int, state: str, **extra: Any) -> web.Response:
    return web.json_response({"status": state, **extra}, status=status)


class WebhookEndpoint:
    def __init__(self, *, secret: str, queue: JobQueue, router: Router, deliveries: DeliveryLog,
                 metrics: Metrics, max_body: int) -> None:
        self.secret = secret.encode()
        self.queue = queue
        self.router = router
        self.deliveries = deliveries
        self.metrics = metrics
        self.max_body = max_body

    async def handle(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        event = request.headers.get("X-GitHub-Event", "")
        try:
            response = await self._handle(request, event)
        finally:
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
        try:
            payload = json.loads(body)
        except ValueError:
            self._count(event, "bad_request")
            return _answer(400, "body is not JSON")
        if not isinstance(payload, dict):
            self._count(event, "bad_request")
            return _answer(400, "body is not a JSON object")
        if event == "ping":
            self._count(event, "accepted")
            return _answer(200, "pong", zen=payload.get("zen"))
        gh_event = sansio.Event(payload, event=event, delivery_id=delivery_id)
        if not self.router.fetch(gh_event):
            self._count(event, "ignored")
            return _answer(202, "ignored", event=event, action=payload.get("action"))
        if not await self.deliveries.first_time(delivery_id):
            self._count(event, "duplicate")
            log.info("duplicate delivery dropped", delivery_id=delivery_id, github_event=event)
            return _answer(200, "duplicate", delivery=delivery_id)
        key, sha = job_key(event, payload)
        installation_id = (payload.get("installation") or {}).get("id")
        job = Job(event, payload, delivery_id=delivery_id, installation_id=installation_id, key=key, sha=sha)
        try:
            await self.queue.enqueue(job)
        except (QueueFull, QueueClosed) as e:
            await self.deliveries.forget(delivery_id)
            self._count(event, "unavailable")
            log.error("delivery not queued", delivery_id=delivery_id, reason=type(e).__name__)
            return _answer(503, "busy" if isinstance(e, QueueFull) else "shutting down")
        self._count(event, "accepted")
        log.info("delivery queued", delivery_id=delivery_id, github_event=event, action=payload.get("action"),
                 job_id=job.id, key=key)
        return _answer(202, "accepted", job=job.id)
