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
from typing import Any

import structlog
from aiohttp import web
from gidgethub.routing import Router

from .metrics import Metrics
from .queue import Job, JobQueue, QueueClosed, QueueFull

log = structlog.get_logger("bot.webhook")
# The event label of deliveries that failed before their signature was checked: the header is the sender's
# word, and an unauthenticated sender must not be able to create metric series.
UNVERIFIED = "unverified"
BURST_GAP = 0.02    # seconds without an answer after which a burst of deliveries is taken to be over


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
    def __init__(self, *, secret: str, queue: JobQueue, router: Router, metrics: Metrics, max_body: int) -> None:
        self.secret = secret.encode()
        self.queue = queue
        self.router = router
        self.metrics = metrics
        self.max_body = max_body
        self.routed_events = routed_events(router)
        self.in_flight = 0      # answers being worked on; queue workers let them go first
        self.last_answer = 0.0  # perf_counter() when the last answer left

    async def handle(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        event = request.headers.get("X-GitHub-Event", "")
        self.in_flight += 1
        try:
            response = await self._handle(request, event)
        finally:
            self.in_flight -= 1
            self.last_answer = time.perf_counter()
            self.metrics.webhook_seconds.observe(self.last_answer - started)
        return response

    def busy(self) -> bool:
        """True while answers are being worked on or came in the last few milliseconds: deliveries arrive in
        bursts (a push to many branches, a redelivery sweep), and between two answers of a burst no handler
        runs, so `in_flight` alone would let a queued job slip in and delay the rest of the burst."""
        return self.in_flight > 0 or time.perf_counter() - self.last_answer < BURST_GAP

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
        # The body is parsed by the worker: answering fast matters more than anything a parse could tell here.
        # Nor is it decoded (the worker's JSON parser takes bytes); only checked, and ASCII needs no check.
        if not body.isascii():
            try:
                body.decode()
            except UnicodeDecodeError:
                self._count(event, "bad_request")
                return _answer(400, "body is not UTF-8")
        job = Job(event, delivery_id=delivery_id, body=body)
        try:
            queued = await self.queue.enqueue(job, once=delivery_id)
        except Exception as e:  # noqa: BLE001 -- full, closing, or Redis unreachable: GitHub may redeliver
            self._count(event, "unavailable")
            log.error("delivery not queued", delivery_id=delivery_id, reason=repr(e))
            state = {QueueFull: "busy", QueueClosed: "shutting down"}.get(type(e), "queue unavailable")
            return _answer(503, state)
        if not queued:
            self._count(event, "duplicate")
            log.info("duplicate delivery dropped", delivery_id=delivery_id, github_event=event)
            return _answer(200, "duplicate", delivery=delivery_id)
        self._count(event, "accepted")     # (logged by the worker when the job starts: not on this hot path)
        return _accepted(job.id)
