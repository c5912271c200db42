"""`detbot serve` settings, from the environment (twelve-factor: the same image runs everywhere).

Every problem is reported at once, each naming its variable, so a misconfigured deployment fails at start with
one message instead of one restart per missing variable.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

from checks.kpi.store import without_password

DEFAULT_GITHUB_URL = "https://api.github.com"


class SettingsError(Exception):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"missing or invalid settings for detbot serve:\n{lines}")


@dataclass(frozen=True)
class Settings:
    app_id: int
    private_key: str = field(repr=False)
    webhook_secret: str = field(repr=False)
    host: str = "0.0.0.0"
    port: int = 8080
    github_url: str = DEFAULT_GITHUB_URL
    app_slug: str = "detbot"                 # the bot's login is "<slug>[bot]" (finding its own comments)
    queue: str = "memory"                    # memory | redis://host:port/db
    queue_prefix: str = "detbot"
    workers: int = 4
    max_pending: int = 10_000
    job_timeout: float = 600.0
    shutdown_timeout: float = 25.0
    max_body_bytes: int = 25 * 1024 * 1024   # GitHub caps webhook payloads at 25 MB
    delivery_ttl: float = 24 * 3600.0        # how long a delivery id is remembered (redeliveries dropped)
    github_concurrency: int = 8              # concurrent GitHub calls per installation
    github_timeout: float = 30.0
    retry_max_wait: float = 120.0            # give up on GitHub after waiting this long in total
    replay_catch_up: float = 6 * 3600.0      # a daily replay missed less than this long ago runs at start-up
    alert_store: str | None = None           # sqlite path or postgresql:// DSN (KPIs)
    log_level: str = "info"
    log_format: str = "json"                 # json | console

    @property
    def bot_login(self) -> str:
        return f"{self.app_slug}[bot]"

    @property
    def listen(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        problems: list[str] = []
        values: dict[str, object] = {}

        def get(name: str) -> str | None:
            value = env.get(name)
            return value.strip() if value is not None and value.strip() else None

        app_id = get("DETBOT_APP_ID")
        if app_id is None:
            problems.append("DETBOT_APP_ID is missing (the GitHub App's numeric id, from its settings page)")
        elif not (app_id.isascii() and app_id.isdigit()) or int(app_id) == 0:
            problems.append(f"DETBOT_APP_ID must be a positive number, not {app_id!r}")
        else:
            values["app_id"] = int(app_id)

        key_file, key = get("DETBOT_PRIVATE_KEY_FILE"), get("DETBOT_PRIVATE_KEY")
        key_source = "DETBOT_PRIVATE_KEY_FILE" if key_file is not None else "DETBOT_PRIVATE_KEY"
        if key_file is None and key is None:
            problems.append("DETBOT_PRIVATE_KEY_FILE is missing (path to the App's .pem private key; or put the "
                            "key itself in DETBOT_PRIVATE_KEY)")
        elif key_file is not None:
            try:
                key = Path(key_file).read_bytes().decode("ascii")
            except OSError as e:
                problems.append(f"DETBOT_PRIVATE_KEY_FILE: cannot read {key_file}: {e.strerror or e}")
                key = None
            except UnicodeDecodeError:   # a .der or .p12 file, not the .pem GitHub hands out
                problems.append(f"DETBOT_PRIVATE_KEY_FILE: {key_file} is not a PEM file (binary content)")
                key = None
        if key is not None:
            key = key.replace("\\n", "\n")   # keys passed through env files often have literal \n
            problem = rsa_key_problem(key)
            if problem is not None:
                problems.append(f"{key_source} does not hold the App's PEM RSA private key "
                                f"(-----BEGIN RSA PRIVATE KEY-----): {problem}")
            else:
                values["private_key"] = key

        secret = env.get("DETBOT_WEBHOOK_SECRET")
        if not secret:
            problems.append("DETBOT_WEBHOOK_SECRET is missing (the App's webhook secret; deliveries are "
                            "verified with it)")
        else:
            values["webhook_secret"] = secret

        listen = get("DETBOT_LISTEN")
        if listen is not None:
            address = parse_listen(listen)
            if address is None:
                problems.append(f"DETBOT_LISTEN must be host:port with a port from 1 to 65535 (e.g. 0.0.0.0:8080, "
                                f"[::]:8080), not {listen!r}")
            else:
                values["host"], values["port"] = address

        url = get("DETBOT_GITHUB_URL")
        if url is not None:
            api, problem = github_api_url(url)
            if problem is not None:
                problems.append(f"DETBOT_GITHUB_URL {problem} (GitHub Enterprise Server: https://HOST/api/v3), "
                                f"not {without_password(url)!r}")
            else:
                values["github_url"] = api

        queue = get("DETBOT_QUEUE")
        if queue is not None:
            problem = queue_problem(queue)
            if problem is not None:
                problems.append(f"DETBOT_QUEUE must be 'memory' or a redis://[:PASSWORD@]HOST[:PORT][/DB] URL "
                                f"({problem}), not {without_password(queue)!r}")
            else:
                values["queue"] = queue

        for name, attr in (("DETBOT_QUEUE_PREFIX", "queue_prefix"), ("DETBOT_APP_SLUG", "app_slug"),
                           ("DETBOT_ALERT_STORE", "alert_store")):
            if get(name) is not None:
                values[attr] = get(name)

        level = get("DETBOT_LOG_LEVEL")
        if level is not None:
            if level.lower() not in ("debug", "info", "warning", "error"):
                problems.append(f"DETBOT_LOG_LEVEL must be debug, info, warning or error, not {level!r}")
            else:
                values["log_level"] = level.lower()
        fmt = get("DETBOT_LOG_FORMAT")
        if fmt is not None:
            if fmt not in ("json", "console"):
                problems.append(f"DETBOT_LOG_FORMAT must be json or console, not {fmt!r}")
            else:
                values["log_format"] = fmt

        numbers = (("DETBOT_WORKERS", "workers", int, 0), ("DETBOT_MAX_PENDING", "max_pending", int, 1),
                   ("DETBOT_JOB_TIMEOUT", "job_timeout", float, 1), ("DETBOT_SHUTDOWN_TIMEOUT",
                   "shutdown_timeout", float, 0), ("DETBOT_MAX_BODY_BYTES", "max_body_bytes", int, 1024),
                   ("DETBOT_DELIVERY_TTL", "delivery_ttl", float, 1), ("DETBOT_GITHUB_CONCURRENCY",
                   "github_concurrency", int, 1), ("DETBOT_GITHUB_TIMEOUT", "github_timeout", float, 1),
                   ("DETBOT_RETRY_MAX_WAIT", "retry_max_wait", float, 0), ("DETBOT_REPLAY_CATCH_UP",
                   "replay_catch_up", float, 0))
        for name, attr, kind, minimum in numbers:
            raw = get(name)
            if raw is None:
                continue
            try:
                number = kind(raw)
            except ValueError:
                number = math.nan
            if not math.isfinite(number):
                problems.append(f"{name} must be a number, not {raw!r}")
                continue
            if number < minimum:
                problems.append(f"{name} must be at least {minimum}, not {raw}")
                continue
            values[attr] = number

        if values.get("workers") == 0 and values.get("queue", "memory") == "memory":
            problems.append("DETBOT_WORKERS=0 (answer webhooks only) needs DETBOT_QUEUE=redis://...: with the "
                            "in-process queue nothing would ever run the jobs")
        if problems:
            raise SettingsError(problems)
        return cls(**values)  # type: ignore[arg-type]


def rsa_key_problem(pem: str) -> str | None:
    """Why `pem` is not an RSA private key GitHub could have issued, or None. Checked at start: otherwise the
    first webhook would fail minutes later, at the first JWT."""
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    if "PRIVATE KEY-----" not in pem:
        return "no PEM private key block"
    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except TypeError:
        return "the key is encrypted with a passphrase"
    except (ValueError, Exception):  # noqa: BLE001 -- cryptography raises several kinds for bad input
        return "the PEM block cannot be decoded"
    return None if isinstance(key, RSAPrivateKey) else f"it is not an RSA key ({type(key).__name__})"


def parse_listen(value: str) -> tuple[str, int] | None:
    """host:port -> (host, port); an IPv6 host is bracketed ([::]:8080); an empty host means every address."""
    host, sep, port = value.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        return None
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if not host or any(c not in "0123456789abcdefABCDEF:." for c in host):
            return None
    elif ":" in host or any(c.isspace() or c in "[]/@" for c in host):
        return None
    return host or "0.0.0.0", int(port)


def github_api_url(url: str) -> tuple[str, str | None]:
    """The REST API root for DETBOT_GITHUB_URL, or a problem. github.com means api.github.com; a GitHub
    Enterprise Server given by its web address (https://HOST or https://HOST/) gets /api/v3, where its REST API
    lives: every call would otherwise land on the web UI and fail with 404s at run time."""
    try:
        parts = urlsplit(url)
        parts.port     # noqa: B018 -- raises on a non-numeric port
    except ValueError:
        return url, "is not a valid URL"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return url, "must be an http(s) URL with a host"
    if parts.username or parts.password:
        return url, "must not hold credentials (the App authenticates with its key)"
    if parts.query or parts.fragment:
        return url, "must not have a query or fragment"
    path = parts.path.rstrip("/")
    if parts.hostname in ("github.com", "www.github.com", "api.github.com") and path == "":
        return DEFAULT_GITHUB_URL, None
    return f"{parts.scheme}://{parts.netloc}{path or '/api/v3'}", None


def queue_problem(queue: str) -> str | None:
    if queue == "memory":
        return None
    try:
        parts = urlsplit(queue)
        parts.port     # noqa: B018 -- raises on a non-numeric port
    except ValueError:
        return "the port is not a number"
    if parts.scheme == "unix":
        return None if parts.path else "no socket path"
    if parts.scheme not in ("redis", "rediss"):
        return f"unknown scheme {parts.scheme!r}" if parts.scheme else "not a URL"
    if not parts.hostname:
        return "no host"
    db = parts.path.strip("/")
    if db and not (db.isascii() and db.isdigit()):
        return f"database {db!r} is not a number"
    return None
