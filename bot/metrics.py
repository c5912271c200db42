"""Prometheus metrics, rendered in the text exposition format (version 0.0.4) for `GET /metrics`.

Hand-written rather than prometheus_client: a dozen lines per metric type, no global registry (each server
instance, and each test, has its own), no extra dependency.
"""
from __future__ import annotations

import math
import threading
from typing import Callable, Iterable

LabelKey = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(key: LabelKey, extra: Iterable[tuple[str, str]] = ()) -> str:
    pairs = list(key) + list(extra)
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}"


def _num(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help_: str, labelnames: tuple[str, ...] = ()) -> None:
        self.name, self.help, self.labelnames = name, help_, labelnames
        self._lock = threading.Lock()

    def _key(self, labels: dict[str, object]) -> LabelKey:
        try:
            key = tuple((n, str(labels[n])) for n in self.labelnames)
        except KeyError:
            key = ()
        if len(key) != len(labels) or len(key) != len(self.labelnames):
            raise ValueError(f"{self.name}: labels {sorted(labels)} != {sorted(self.labelnames)}")
        return key

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]


class Counter(_Metric):
    kind = "counter"

    def __init__(self, *a, **k) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*a, **k)
        self._values: dict[LabelKey, float] = {}

    def inc(self, amount: float = 1.0, **labels: object) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: object) -> float:
        return self._values.get(self._key(labels), 0.0)

    def render(self) -> list[str]:
        return self.header() + [f"{self.name}{_labels(k)} {_num(v)}" for k, v in sorted(self._values.items())]


class Gauge(_Metric):
    kind = "gauge"

    def __init__(self, name: str, help_: str, labelnames: tuple[str, ...] = (),
                 func: Callable[[], float] | None = None) -> None:
        super().__init__(name, help_, labelnames)
        self._values: dict[LabelKey, float] = {}
        self._func = func

    def set(self, value: float, **labels: object) -> None:
        self._values[self._key(labels)] = value

    def inc(self, amount: float = 1.0, **labels: object) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def dec(self, amount: float = 1.0, **labels: object) -> None:
        self.inc(-amount, **labels)

    def value(self, **labels: object) -> float:
        if self._func is not None:
            return float(self._func())
        return self._values.get(self._key(labels), 0.0)

    def render(self) -> list[str]:
        if self._func is not None:
            return self.header() + [f"{self.name} {_num(float(self._func()))}"]
        return self.header() + [f"{self.name}{_labels(k)} {_num(v)}" for k, v in sorted(self._values.items())]


DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, help_: str, labelnames: tuple[str, ...] = (),
                 buckets: tuple[float, ...] = DEFAULT_BUCKETS) -> None:
        super().__init__(name, help_, labelnames)
        self.buckets = tuple(sorted(buckets)) + (math.inf,)
        self._counts: dict[LabelKey, list[int]] = {}
        self._sums: dict[LabelKey, float] = {}

    def observe(self, value: float, **labels: object) -> None:
        key = self._key(labels)
        with self._lock:
            counts = self._counts.setdefault(key, [0] * len(self.buckets))
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    counts[i] += 1
            self._sums[key] = self._sums.get(key, 0.0) + value

    def count(self, **labels: object) -> int:
        counts = self._counts.get(self._key(labels))
        return counts[-1] if counts else 0

    def render(self) -> list[str]:
        lines = self.header()
        for key, counts in sorted(self._counts.items()):
            for bound, c in zip(self.buckets, counts):
                lines.append(f"{self.name}_bucket{_labels(key, [('le', _num(bound))])} {c}")
            lines.append(f"{self.name}_sum{_labels(key)} {_num(self._sums[key])}")
            lines.append(f"{self.name}_count{_labels(key)} {counts[-1]}")
        return lines


class Metrics:
    """detbot's metrics. One instance per server; components receive it (or None) and record into it."""

    CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

    def __init__(self) -> None:
        self.deliveries = Counter("detbot_webhook_deliveries_total",
                                  "Webhook deliveries by event and result (accepted, duplicate, ignored, "
                                  "bad_signature, bad_request, too_large).", ("event", "result"))
        self.webhook_seconds = Histogram("detbot_webhook_response_seconds", "Time to answer a webhook delivery.",
                                         buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0))
        self.jobs = Counter("detbot_jobs_total", "Jobs by state: enqueued, started, then succeeded, failed, "
                            "ignored (no handler for the action), superseded (a newer delivery for the same pull "
                            "request), malformed (payload not as GitHub sends it), timeout, cancelled (shutdown), dead "
                            "(could not be run, never retried); requeued and recovered (Redis).", ("state",))
        self.jobs_running = Gauge("detbot_jobs_running", "Jobs running in this process now.")
        self.job_seconds = Histogram("detbot_job_duration_seconds", "Job run time by event.", ("event",))
        self.github_calls = Counter("detbot_github_api_calls_total",
                                    "GitHub API responses by method and status (status 0: no response).",
                                    ("method", "status"))
        self.github_retries = Counter("detbot_github_api_retries_total", "GitHub API retries by reason.",
                                      ("reason",))
        self.github_seconds = Histogram("detbot_github_api_call_seconds", "GitHub API call latency.")
        self._extra: list[_Metric] = []

    def gauge(self, name: str, help_: str, func: Callable[[], float]) -> Gauge:
        """A gauge read at scrape time (e.g. queue depth)."""
        g = Gauge(name, help_, func=func)
        self._extra = [m for m in self._extra if m.name != name] + [g]
        return g

    def render(self) -> str:
        lines: list[str] = []
        for metric in [self.deliveries, self.webhook_seconds, self.jobs, self.jobs_running, self.job_seconds,
                       self.github_calls, self.github_retries, self.github_seconds, *self._extra]:
            lines.extend(metric.render())  # type: ignore[attr-defined]
        return "\n".join(lines) + "\n"
