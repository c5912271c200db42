"""The job queue between the webhook (which must answer GitHub at once) and the work (which takes seconds).

Two implementations of one interface:

- `MemoryQueue`: an asyncio queue and N worker tasks in this process (the default).
- `RedisQueue`: a Redis list shared by several `detbot serve` processes. Workers move a job atomically from the
  pending list to their own processing list (BLMOVE) and remove it only when done, so a crashed process's jobs are
  found (its heartbeat key expired) and put back: at-least-once delivery.

Newest wins: a job may carry a `key` (e.g. "octo/rules#12", one pull request), given at enqueue time or claimed
by the handler once it knows it (`run.claim(key)`; the server claims a pull request's key for its webhook jobs
before dispatching them). Of two jobs for one key, the one that arrived later (`enqueued_at`) wins: claiming
cancels the running older one -- `asyncio.Task.cancel`, in this process directly, in other processes through a
Redis pub/sub message -- and a "latest job" record per key lets any job ask `await run.is_current()` before it
publishes. A job still waiting when a newer one for its key is claimed is dropped when dequeued.

Handlers get a `JobRun` (also reachable as `current_run()`):

    run.job                   the Job (event, data, delivery id, key, enqueued_at)
    await run.claim(key)      become the newest job for `key`; False if a later arrival holds it (stale)
    await run.is_current()    False once a newer job claimed one of this run's keys: publish nothing
    run.cancel_reason         why the task is being cancelled: "superseded", "shutdown", "timeout" (or None)
"""
from __future__ import annotations

import abc
import asyncio
import contextvars
import json
import os
import socket
import time
import uuid
from dataclasses import dataclass, field, fields
from typing import Any, Awaitable, Callable

import structlog
from cachetools import TTLCache
from redis.exceptions import RedisError

from .metrics import Metrics
from .settings import without_password

log = structlog.get_logger("bot.queue")

SUPERSEDED = "superseded"
SHUTDOWN = "shutdown"
TIMEOUT = "timeout"
LATEST_TTL = 7 * 24 * 3600
# A job taken by workers this many times without being finished (its bookkeeping kept failing, or the processes
# running it kept dying) is dead-lettered rather than handed out again: at-least-once, never forever.
MAX_DELIVERIES = 5
DEAD_LETTERS_KEPT = 1000


@dataclass
class Job:
    """One unit of work. A webhook job carries the delivery's raw `body` (parsed by the worker, off the
    webhook's answer path); jobs made in code carry a parsed `payload`. `data` gives the parsed form either way.
    `enqueued_at` orders jobs of one key: the later arrival wins."""
    event: str
    payload: dict[str, Any] | None = None
    delivery_id: str = ""
    installation_id: int | None = None
    key: str | None = None
    sha: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    enqueued_at: float = field(default_factory=time.time)
    attempt: int = 1
    body: str | bytes | None = None     # bytes as received (UTF-8, checked by the webhook); str once stored

    @property
    def data(self) -> dict[str, Any]:
        if self.payload is None:
            parsed = json.loads(self.body or "{}")
            if not isinstance(parsed, dict):
                raise ValueError("webhook body is not a JSON object")
            self.payload = parsed
        return self.payload

    def dumps(self) -> str:
        """One line of JSON for the job's fields, then the delivery's raw body as it came (if any): escaping
        a 20 KB body into a JSON string would cost more than the rest of a webhook's answer."""
        if self.body is None:
            return json.dumps({f: getattr(self, f) for f in _FIELDS}, separators=(",", ":"))
        head = {f: getattr(self, f) for f in _FIELDS if f not in ("payload", "body")}
        body = self.body.decode() if isinstance(self.body, bytes) else self.body
        return json.dumps(head, separators=(",", ":")) + "\n" + body

    @classmethod
    def loads(cls, raw: str | bytes) -> "Job":
        text = raw.decode() if isinstance(raw, bytes) else raw
        head, newline, body = text.partition("\n")    # JSON from json.dumps holds no raw newline
        data = json.loads(head)
        if newline:
            data["body"] = body
        return cls(**data)


_FIELDS = tuple(f.name for f in fields(Job))


class QueueClosed(Exception):
    """The queue is shutting down and takes no new jobs."""


class QueueUnavailable(Exception):
    """The queue's backend cannot be reached at start."""


class QueueFull(Exception):
    """Too many jobs waiting; the webhook answers 503 rather than growing without bound."""


JobHandler = Callable[["JobRun"], Awaitable[None]]
_current: contextvars.ContextVar["JobRun | None"] = contextvars.ContextVar("detbot_job_run", default=None)


def current_run() -> "JobRun | None":
    return _current.get()


class JobRun:
    """One execution of a job by a worker."""

    def __init__(self, job: Job, queue: "JobQueue") -> None:
        self.job = job
        self.queue = queue
        self.task: asyncio.Task | None = None
        self.cancel_reason: str | None = None
        self.keys: set[str] = {job.key} if job.key else set()
        self.started = time.monotonic()
        self.outcome: str | None = None   # set by the handler for the metrics: e.g. "ignored", "stale"

    async def is_current(self) -> bool:
        """True while no newer job claimed any of this run's keys."""
        for key in self.keys:
            if not await self.queue.is_latest(key, self.job.id):
                return False
        return True

    async def claim(self, key: str, sha: str | None = None) -> bool:
        """Make this run the newest for `key`, cancelling older runs of it (anywhere). False when a job that
        arrived later holds the key already: this run is stale and should publish nothing."""
        self.keys.add(key)
        return await self.queue.claim(key, self.job.id, self.job.enqueued_at)

    def cancel(self, reason: str) -> bool:
        """Cancel the handler's task, once: a second cancel would interrupt the handler while it concludes
        what it started (e.g. marking its check runs `cancelled`)."""
        if self.task is None or self.task.done() or self.cancel_reason is not None:
            return False
        self.cancel_reason = reason
        return self.task.cancel(msg=reason)


class JobQueue(abc.ABC):
    """Common machinery: workers, running-job registry, supersession, timeouts, graceful close."""

    def __init__(self, *, workers: int = 4, job_timeout: float = 600.0, metrics: Metrics | None = None,
                 dedup_ttl: float = 24 * 3600.0) -> None:
        self.workers = workers
        self.dedup_ttl = dedup_ttl
        self.job_timeout = job_timeout
        self.metrics = metrics
        self.handler: JobHandler | None = None
        self.running: dict[str, JobRun] = {}
        self.closing = False
        self._worker_tasks: list[asyncio.Task] = []
        self.processed = 0
        self.in_hand = 0          # jobs taken from the queue and not finished (running or about to)
        self.busy: Callable[[], bool] | None = None   # e.g. "webhook answers in progress" (set by the server)
        self.max_defer = 0.25
        # Whether a job cancelled by shutdown is put back for another process (Redis) or ends with this one.
        self.requeues_on_shutdown = False
        # At shutdown, what to do with waiting jobs this queue cannot keep (e.g. leave their check runs queued
        # for the next start's recovery sweep); set by whoever knows what the jobs are about.
        self.handover: Callable[[list[Job]], Awaitable[None]] | None = None
        self._drain_until = 0.0

    # -- interface ---------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def enqueue(self, job: Job, *, once: str | None = None) -> bool:
        """Queue `job`. With `once` (a delivery id), atomically skip it when a job with the same `once` was
        queued within `dedup_ttl` seconds: returns False for such a duplicate. A job that could not be queued
        (QueueFull, QueueClosed, Redis down) leaves no record, so GitHub's redelivery of it is accepted."""

    @abc.abstractmethod
    async def is_latest(self, key: str, job_id: str) -> bool: ...

    @abc.abstractmethod
    async def claim(self, key: str, job_id: str, stamp: float) -> bool:
        """Record `job_id` (arrived at `stamp`) as the newest job for `key` unless a later one holds it;
        cancel the runs of older jobs for `key`. True when `job_id` now holds the key."""

    @abc.abstractmethod
    def depth(self) -> int:
        """Jobs waiting (as last known; for metrics and /healthz)."""

    @abc.abstractmethod
    async def _next(self) -> Job | None:
        """The next job to run, or None to poll again (used to notice shutdown)."""

    async def _done(self, job: Job, requeue: bool = False) -> None:
        """Bookkeeping once a job left the worker (acknowledge, or put back for another process)."""

    async def _bury(self, job: Job) -> None:
        """Take a job that cannot be run off the queue for good (Redis: onto the dead-letter list)."""

    async def dead_letter(self, job: Job, reason: str) -> None:
        """End a job that cannot be run: one error line saying why, and it is never handed out again."""
        log.error("job dead-lettered", job_id=job.id, delivery_id=job.delivery_id, github_event=job.event,
                  reason=reason)
        self._count("dead")
        try:
            await self._bury(job)
        except Exception:  # noqa: BLE001 -- Redis gone: the delivery cap ends it when it comes back
            log.exception("dead-lettering failed", job_id=job.id)

    # -- workers -------------------------------------------------------------------------------------------
    async def start(self, handler: JobHandler) -> None:
        self.handler = handler
        self.closing = False
        if self.metrics is not None:
            self.metrics.gauge("detbot_queue_depth", "Jobs waiting in the queue.", lambda: self.depth())
        self._worker_tasks = [asyncio.create_task(self._worker(i), name=f"detbot-worker-{i}")
                              for i in range(self.workers)]
        for task in self._worker_tasks:
            task.add_done_callback(self._worker_ended)

    def _worker_ended(self, task: asyncio.Task) -> None:
        if self.closing:
            return
        error = None if task.cancelled() else task.exception()
        # Jobs now wait for fewer workers (or none) while the webhook still answers 202: say so once, loudly.
        log.error("queue worker stopped", worker=task.get_name(), error=repr(error) if error else "cancelled",
                  workers_left=self.workers - self.dead_workers())

    def dead_workers(self) -> int:
        """Workers that ended while the queue is not closing (a bug or an uncaught BaseException): jobs would pile
        up unprocessed while the webhook keeps answering 202, so /healthz reports it."""
        if self.closing:
            return 0
        return sum(1 for t in self._worker_tasks if t.done())

    async def _worker(self, index: int) -> None:
        while not self.closing or self._drainable():
            try:
                job = await self._next()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 -- a broken connection must not kill the worker
                log.exception("queue receive failed")
                await asyncio.sleep(1)
                continue
            if job is None:
                continue
            self.in_hand += 1
            started = False
            # Bound for everything logged about the job, by its handler and by this worker (failed, timed out,
            # superseded, dead-lettered): one query on the delivery id finds it all.
            fields = structlog.contextvars.bind_contextvars(**job_log_fields(job))
            try:
                await self._yield_to_answers()
                if job.key and not await self.is_latest(job.key, job.id):
                    log.info("job superseded before start", job_id=job.id, key=job.key)
                    self._count("superseded")
                    await self._done(job)
                    continue
                started = True
                await self._run(job)
            except asyncio.CancelledError:
                if not started:     # stopped between taking the job and running it: give it back
                    await asyncio.shield(self._done(job, requeue=True))
                raise
            except Exception as e:  # noqa: BLE001 -- bookkeeping failed (e.g. Redis gone); keep the worker
                # The job must still end: left in our processing list it would be recovered and retried for
                # ever once this process stops.
                log.exception("job bookkeeping failed", job_id=job.id)
                await self.dead_letter(job, f"bookkeeping failed: {e!r}")
            finally:
                self.in_hand -= 1
                structlog.contextvars.reset_contextvars(**fields)

    async def _yield_to_answers(self) -> None:
        """Let webhook answers go first: GitHub waits for them (10 s, and a slow answer is a failed delivery),
        nobody waits a few milliseconds more for a job to start. Bounded, so a flood cannot starve the work."""
        waited = 0.0
        while self.busy is not None and self.busy() and waited < self.max_defer:
            await asyncio.sleep(0.002)
            waited += 0.002

    async def _run(self, job: Job) -> None:
        assert self.handler is not None
        run = JobRun(job, self)
        token = _current.set(run)
        try:
            log.debug("job started", job_id=job.id, attempt=job.attempt)
            run.task = asyncio.create_task(self._call(run), name=f"detbot-job-{job.id}")
        finally:
            _current.reset(token)
        self.running[job.id] = run
        self._count("started")
        if self.metrics is not None:
            self.metrics.jobs_running.inc()
        # The job runs in its own task so that it can be cancelled (superseded, timed out) without the
        # worker, and the worker waits on it shielded so that a worker cancellation is turned into a
        # "shutdown" cancellation the handler can react to.
        timer = asyncio.get_running_loop().call_later(self.job_timeout, run.cancel, TIMEOUT)
        try:
            await asyncio.shield(run.task)
        except asyncio.CancelledError:
            if not run.task.done():
                run.cancel(SHUTDOWN)
                await asyncio.gather(run.task, return_exceptions=True)
        except Exception:  # noqa: BLE001 -- the handler's failure is logged; the worker goes on
            log.exception("job failed", job_id=job.id)
        finally:
            timer.cancel()
        if run.task.cancelled():
            state = {SUPERSEDED: "superseded", TIMEOUT: "timeout"}.get(run.cancel_reason or "", "cancelled")
        elif run.task.exception() is not None:
            state = "failed"
        else:
            state = run.outcome or "succeeded"
        if state == "timeout":
            log.error("job timed out", job_id=job.id, seconds=self.job_timeout)
        self.running.pop(job.id, None)
        self.processed += 1
        if self.metrics is not None:
            self.metrics.jobs_running.dec()
            self.metrics.job_seconds.observe(time.monotonic() - run.started, event=job.event)
        self._count(state)
        await self._done(job, requeue=run.task.cancelled() and run.cancel_reason == SHUTDOWN)

    async def _call(self, run: JobRun) -> None:
        assert self.handler is not None
        await self.handler(run)

    def _count(self, state: str) -> None:
        if self.metrics is not None:
            self.metrics.jobs.inc(state=state)

    def cancel_superseded(self, key: str, newest_job_id: str) -> list[JobRun]:
        """Cancel the runs in this process holding `key` that are not `newest_job_id`."""
        cancelled = []
        for run in list(self.running.values()):
            if key in run.keys and run.job.id != newest_job_id and run.cancel(SUPERSEDED):
                log.info("job superseded; cancelling", job_id=run.job.id, key=key, newer=newest_job_id)
                cancelled.append(run)
        return cancelled

    async def close(self, timeout: float = 25.0, grace: float = 5.0) -> None:
        """Stop taking new jobs; let running ones (and, in process, waiting ones) finish for up to `timeout`
        seconds; cancel the rest (reason "shutdown": handlers conclude or hand over what they started) and give
        them `grace` seconds to do so. Waiting jobs this queue cannot keep go to `handover` meanwhile."""
        self.closing = True
        loop = asyncio.get_running_loop()
        self._drain_until = loop.time() + timeout
        if self.running or self._drainable():
            log.info("waiting for jobs", running=len(self.running), waiting=self.depth(), timeout=timeout)
        while (self.running or self.in_hand or self._drainable()) and loop.time() < self._drain_until:
            await asyncio.sleep(0.01)
        self._drain_until = 0.0
        leftover = [r for r in self.running.values() if r.task is not None and not r.task.done()]
        for run in leftover:
            run.cancel(SHUTDOWN)
        waits = [r.task for r in leftover if r.task is not None]
        dropped = self._take_waiting()
        if dropped:
            waits.append(asyncio.ensure_future(self._hand_over(dropped)))
        if waits:
            await asyncio.wait(waits, timeout=grace)
        # Workers idle in _next() are cancelled; workers still inside _run() have seen their job end.
        await stop_tasks(self._worker_tasks, grace)
        self._worker_tasks = []
        await self._close_backend()

    def _drainable(self) -> bool:
        """Jobs are waiting that only this process can run (the in-process queue): keep the workers going."""
        return False

    def _take_waiting(self) -> list[Job]:
        """The waiting jobs that would be lost with this process (none where the queue outlives it)."""
        return []

    async def _hand_over(self, jobs: list[Job]) -> None:
        if self.handover is None:
            log.warning("waiting jobs dropped at shutdown", count=len(jobs))
            return
        try:
            await self.handover(jobs)
        except Exception:  # noqa: BLE001 -- shutting down: say so, recovery covers what it can
            log.exception("handing over waiting jobs failed", count=len(jobs))

    async def _close_backend(self) -> None:
        pass

    async def refresh_depth(self) -> None:
        """Bring depth() up to date where it is a cached figure (Redis)."""

    def taken(self) -> int:
        """Jobs this process took off the queue and has not finished (as last known; Redis counts the ones in
        flight from Redis to a worker too)."""
        return self.in_hand

    async def join(self, timeout: float = 10.0) -> None:
        """Wait until nothing is waiting or running (tests and benchmarks)."""
        deadline = time.monotonic() + timeout
        await self.refresh_depth()
        while self.depth() or self.running or self.taken():
            if time.monotonic() > deadline:
                raise TimeoutError(f"queue not drained: {self.depth()} waiting, {len(self.running)} running")
            await asyncio.sleep(0.005)
            await self.refresh_depth()


class MemoryQueue(JobQueue):
    def __init__(self, *, max_pending: int = 10_000, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._queue: asyncio.Queue[Job] = asyncio.Queue(maxsize=max_pending)
        self._latest: TTLCache = TTLCache(maxsize=200_000, ttl=LATEST_TTL)   # key -> (stamp, job id)
        self._seen: TTLCache = TTLCache(maxsize=200_000, ttl=self.dedup_ttl)  # delivery ids queued

    async def enqueue(self, job: Job, *, once: str | None = None) -> bool:
        if self.closing:
            raise QueueClosed()
        if once is not None and once in self._seen:
            return False
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            raise QueueFull() from None
        if once is not None:
            self._seen[once] = True
        self._count("enqueued")
        if job.key:
            await self.claim(job.key, job.id, job.enqueued_at)
        return True

    async def is_latest(self, key: str, job_id: str) -> bool:
        held = self._latest.get(key)
        return held is None or held[1] == job_id

    async def claim(self, key: str, job_id: str, stamp: float) -> bool:
        held = self._latest.get(key)
        if held is not None and held[1] != job_id and held[0] > stamp:
            return False
        self._latest[key] = (stamp, job_id)
        self.cancel_superseded(key, job_id)
        return True

    def depth(self) -> int:
        return self._queue.qsize()

    async def _next(self) -> Job | None:
        return await self._queue.get()

    def _drainable(self) -> bool:
        # The jobs die with this process: while closing, keep running them until the shutdown deadline.
        return bool(self._queue.qsize()) and asyncio.get_running_loop().time() < self._drain_until

    def _take_waiting(self) -> list[Job]:
        jobs = []
        while not self._queue.empty():
            jobs.append(self._queue.get_nowait())
        return jobs


# One round trip per delivery: record its id (NX, with a TTL) and queue it, or do neither.
_ENQUEUE_ONCE_SCRIPT = """
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then
  redis.call('LPUSH', KEYS[2], ARGV[2])
  return 1
end
return 0
"""

_CLAIM_SCRIPT = """
local held = redis.call('GET', KEYS[1])
if held then
  local stamp, job = string.match(held, '^(%S+) (.+)$')
  if job ~= ARGV[2] and tonumber(stamp) > tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2], 'EX', ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
"""


class RedisQueue(JobQueue):
    """Jobs in Redis, shared by every process using the same `prefix`."""

    def __init__(self, url: str, *, prefix: str = "detbot", heartbeat: float = 5.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        import redis.asyncio as aioredis

        self.url = url
        self.prefix = prefix
        # A blocking pool: under a burst of webhooks, callers wait for a connection instead of failing
        # ("Too many connections"). Each worker's BLMOVE holds one for up to a second.
        pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=self.workers + 32,
                                                          timeout=10)
        self.redis = aioredis.Redis(connection_pool=pool)
        self.consumer = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.heartbeat = heartbeat
        self.pending_key = f"{prefix}:pending"
        self.processing_key = f"{prefix}:processing:{self.consumer}"
        self.channel = f"{prefix}:supersede"
        self.dead_key = f"{prefix}:dead"                # jobs that will never run, newest first (inspect by hand)
        self.deliveries_key = f"{prefix}:deliveries"    # job id -> times taken by a worker, while unfinished
        self.requeues_on_shutdown = True
        self._depth = 0
        self._taken = 0
        self._raw: dict[str, bytes] = {}       # job id -> exact bytes in our processing list (for LREM)
        self._background: list[asyncio.Task] = []
        self._stopped = False   # the background loops' own stop signal, should a library swallow a cancel
        self._batch: list[tuple[str, str, asyncio.Future[bool]]] = []   # deliveries waiting for the next flush
        self._flushes: set[asyncio.Task] = set()

    def _latest_key(self, key: str) -> str:
        return f"{self.prefix}:latest:{key}"

    async def _enqueue_once(self, once: str, raw: str) -> bool:
        """Deliveries arriving together (a burst) go to Redis in one pipeline, flushed on the next turn of
        the event loop: one round trip and one connection for the lot instead of one each, which under 200
        concurrent deliveries divides the answer's wait on Redis several times."""
        future = asyncio.get_running_loop().create_future()
        self._batch.append((once, raw, future))
        if len(self._batch) == 1:
            self._flushes.add(task := asyncio.create_task(self._flush_batch()))
            task.add_done_callback(self._flushes.discard)
        return await future

    async def _flush_batch(self) -> None:
        batch, self._batch = self._batch, []
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for once, raw, _ in batch:
                    pipe.eval(_ENQUEUE_ONCE_SCRIPT, 2, f"{self.prefix}:delivery:{once}", self.pending_key,
                              int(self.dedup_ttl * 1000), raw)
                results = await pipe.execute(raise_on_error=False)
        except BaseException as e:  # noqa: BLE001 -- every waiting answer hears of it (503: GitHub redelivers)
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(e if isinstance(e, Exception) else QueueUnavailable(repr(e)))
            if not isinstance(e, Exception):
                raise
            return
        for (_, _, future), result in zip(batch, results):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(bool(result))

    def _alive_key(self, consumer: str) -> str:
        return f"{self.prefix}:alive:{consumer}"

    async def start(self, handler: JobHandler) -> None:
        try:
            await self.redis.set(self._alive_key(self.consumer), "1", px=int(self.heartbeat * 3000))
        except (OSError, RedisError) as e:
            raise QueueUnavailable(f"cannot reach Redis at {without_password(self.url)}: {e}") from e
        await self.recover()
        self._stopped = False
        self._pubsub = self.redis.pubsub()
        await self._pubsub.subscribe(self.channel)
        self._background = [asyncio.create_task(self._listen(), name="detbot-supersede-listener"),
                            asyncio.create_task(self._beat(), name="detbot-heartbeat")]
        await super().start(handler)

    async def enqueue(self, job: Job, *, once: str | None = None) -> bool:
        if self.closing:
            raise QueueClosed()
        if job.key:   # claimed before it is visible, so no worker sees it as superseded
            await self.claim(job.key, job.id, job.enqueued_at)
        if once is None:
            await self.redis.lpush(self.pending_key, job.dumps())
        elif not await self._enqueue_once(once, job.dumps()):
            return False
        self._count("enqueued")
        return True

    async def is_latest(self, key: str, job_id: str) -> bool:
        held = await self.redis.get(self._latest_key(key))
        return held is None or held.decode().split(" ", 1)[1] == job_id

    async def claim(self, key: str, job_id: str, stamp: float) -> bool:
        # Atomic compare-and-set in Redis: the later arrival wins even when two processes claim at once.
        won = await self.redis.eval(_CLAIM_SCRIPT, 1, self._latest_key(key), repr(stamp), job_id, LATEST_TTL,
                                    self.channel, json.dumps({"key": key, "job": job_id}))
        if won:
            self.cancel_superseded(key, job_id)
        return bool(won)

    def depth(self) -> int:
        return self._depth

    async def refresh_depth(self) -> None:
        self._depth = await self.redis.llen(self.pending_key)
        self._taken = await self.redis.llen(self.processing_key)

    def taken(self) -> int:
        return max(self.in_hand, self._taken)

    async def _next(self) -> Job | None:
        raw = await self.redis.blmove(self.pending_key, self.processing_key, 1.0, "RIGHT", "LEFT")
        if raw is None:
            return None
        try:
            job = Job.loads(raw)
        except (ValueError, TypeError):
            log.error("job dead-lettered", reason="unreadable job", raw=raw[:200])
            await self._move_to_dead(raw)
            return None
        self._raw[job.id] = raw
        taken = await self.redis.hincrby(self.deliveries_key, job.id, 1)
        if taken > MAX_DELIVERIES:
            await self.dead_letter(job, f"taken {taken - 1} times without finishing")
            return None
        return job

    async def _move_to_dead(self, raw: bytes, job_id: str | None = None) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lrem(self.processing_key, 1, raw)
            pipe.lpush(self.dead_key, raw)
            pipe.ltrim(self.dead_key, 0, DEAD_LETTERS_KEPT - 1)
            if job_id is not None:
                pipe.hdel(self.deliveries_key, job_id)
            await pipe.execute()

    async def _bury(self, job: Job) -> None:
        raw = self._raw.pop(job.id, None)
        if raw is not None:
            await self._move_to_dead(raw, job.id)

    async def _done(self, job: Job, requeue: bool = False) -> None:
        raw = self._raw.get(job.id)
        if raw is None:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lrem(self.processing_key, 1, raw)
            if requeue:
                job.attempt += 1
                pipe.rpush(self.pending_key, job.dumps())   # the right end: next to be taken
            else:
                pipe.hdel(self.deliveries_key, job.id)
            await pipe.execute()
        del self._raw[job.id]   # only now: when acknowledging failed, dead-lettering still finds the bytes
        if requeue:
            self._count("requeued")

    async def recover(self) -> int:
        """Put back the jobs of consumers whose heartbeat stopped (crashed processes)."""
        moved = 0
        async for key in self.redis.scan_iter(match=f"{self.prefix}:processing:*"):
            consumer = key.decode().split(":processing:", 1)[1]
            if consumer == self.consumer or await self.redis.exists(self._alive_key(consumer)):
                continue
            while await self.redis.lmove(key, self.pending_key, "RIGHT", "RIGHT") is not None:
                moved += 1
        if moved:
            log.warning("recovered jobs of stopped workers", count=moved)
            self._count("recovered")
        return moved

    async def _listen(self) -> None:
        while not self._stopped:
            try:
                msg = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001
                log.exception("supersede listener failed")
                await asyncio.sleep(1)
                continue
            if msg and msg.get("type") == "message":
                data = json.loads(msg["data"])
                self.cancel_superseded(data["key"], data["job"])

    async def _beat(self) -> None:
        while not self._stopped:
            await asyncio.sleep(self.heartbeat)
            try:
                await self.redis.set(self._alive_key(self.consumer), "1", px=int(self.heartbeat * 3000))
                await self.recover()
                await self.refresh_depth()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001
                log.exception("heartbeat failed")

    async def _close_backend(self) -> None:
        self._stopped = True
        await stop_tasks(self._background, self.heartbeat + 2)
        if hasattr(self, "_pubsub"):
            await self._pubsub.aclose()
        await self.redis.delete(self._alive_key(self.consumer))
        await self.redis.aclose()


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _scalar(value: Any) -> Any:
    """A value fit for a log field (a malformed payload may put lists or objects anywhere)."""
    return value if isinstance(value, (str, int)) and not isinstance(value, bool) else None


def job_log_fields(job: Job) -> dict[str, Any]:
    """delivery id, event, repo, PR and head sha of a job, for log lines (structlog contextvars). Never raises,
    whatever the payload looks like: it runs before the payload's shape is checked."""
    try:
        p = _obj(job.data)
    except ValueError:
        p = {}
    # "github_event", not "event": structlog's message key is `event`.
    fields: dict[str, Any] = {"delivery_id": job.delivery_id, "github_event": job.event, "job_id": job.id}
    pr, check_run, check_suite = _obj(p.get("pull_request")), _obj(p.get("check_run")), _obj(p.get("check_suite"))
    number = _scalar(pr.get("number")) or _scalar(_obj(p.get("issue")).get("number"))
    sha = _scalar(_obj(pr.get("head")).get("sha")) or _scalar(check_run.get("head_sha")) or _scalar(
        check_suite.get("head_sha"))
    if not number:
        for holder in (check_run, check_suite):
            prs = holder.get("pull_requests")
            if isinstance(prs, list) and prs:
                number = _scalar(_obj(prs[0]).get("number"))
                break
    for name, value in (("repo", _scalar(_obj(p.get("repository")).get("full_name"))), ("pr", number),
                        ("head_sha", sha or job.sha), ("installation_id", job.installation_id)):
        if value:
            fields[name] = value
    return fields


async def stop_tasks(tasks: list[asyncio.Task], timeout: float) -> None:
    """Cancel `tasks` and wait for them, for `timeout` seconds at most: shutdown must end even when a library
    swallows a cancellation (seen with redis-py pipelines under load)."""
    for t in tasks:
        t.cancel()
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        if pending:
            log.warning("tasks did not stop", tasks=sorted(t.get_name() for t in pending))


def make_queue(spec: str, **kwargs: Any) -> JobQueue:
    """`memory` or a `redis://` / `rediss://` URL (DETBOT_QUEUE)."""
    if spec == "memory":
        return MemoryQueue(**kwargs)
    if spec.startswith(("redis://", "rediss://", "unix://")):
        prefix = kwargs.pop("prefix", "detbot")
        return RedisQueue(spec, prefix=prefix, **kwargs)
    raise ValueError(f"unknown queue {spec!r}: use 'memory' or a redis:// URL")
