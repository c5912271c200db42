"""The `replay:` section of `.github/detbot.yml`, validated, and the parser backends it describes.

    replay:
      parsers_dir: parsers                  # embedded pipeline definitions (default: parsers)
      cache: .detbot-cache/replay.sqlite    # relative to the repository root, or false (CLI only; the bot
                                            # keeps its own cache)
      default_backend: embedded             # backend of a parser no `parsers:` route names
      backends:
        siem:                               # referenced as `backend: siem` in `parsers:` routes
          type: elasticsearch               # or http
          url: https://es.example.com:9200
          pipeline_prefix: logs-            # elasticsearch: pipeline id = prefix + parser name
          api_key_env: DETBOT_REPLAY_ES_KEY # elasticsearch: `Authorization: ApiKey <value of this variable>`
          headers_env: {Authorization: DETBOT_REPLAY_TOKEN}   # any backend: header -> environment variable
          timeout: 30
          batch_size: 200

Secrets never live in the repository: a backend names environment variables, and only variables whose names
start with DETBOT_REPLAY_ can be named, so a rules repository cannot make detbot send its own credentials away.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Iterable, Mapping

from ..config import Config, ConfigError, ConfigSection
from ..source import FileSource
from .backends import ElasticsearchBackend, EmbeddedBackend, HttpBackend, ParserBackend

EMBEDDED = "embedded"
ENV_PREFIX = "DETBOT_REPLAY_"
DEFAULT_CACHE = ".detbot-cache/replay.sqlite"
# `schedule` (the daily replay's time of day) belongs to the bot, which validates it.
_KEYS = {"parsers_dir", "cache", "default_backend", "backends", "schedule"}
_BACKEND_KEYS = {"type", "url", "pipeline_prefix", "api_key_env", "headers_env", "timeout", "batch_size"}


@dataclass
class BackendSpec:
    name: str
    type: str
    url: str
    pipeline_prefix: str = ""
    api_key_env: str | None = None
    headers_env: dict[str, str] = field(default_factory=dict)
    timeout: float = 30.0
    batch_size: int = 200


@dataclass
class ReplaySettings:
    parsers_dir: str = "parsers"
    cache: str | None = DEFAULT_CACHE
    default_backend: str = EMBEDDED
    backends: dict[str, BackendSpec] = field(default_factory=dict)


def _relative_path(section: ConfigSection, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise section.error(key, "must be a non-empty relative path")
    p = PurePosixPath(value)
    if p.is_absolute() or ".." in p.parts:
        raise section.error(key, "must be a path inside the repository (relative, without `..`)")
    return p.as_posix()


def _env_name(section: ConfigSection, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.startswith(ENV_PREFIX) or not value.replace("_", "").isalnum():
        raise section.error(key, f"must name an environment variable starting with {ENV_PREFIX}")
    return value


def parse_settings(config: Config) -> ReplaySettings:
    section = config.section("replay")
    data = section.data
    out = ReplaySettings()
    for key in data:
        if key not in _KEYS:
            raise section.error(str(key), f"unknown key (known: {', '.join(sorted(_KEYS))})")
    if "parsers_dir" in data:
        out.parsers_dir = _relative_path(section, "parsers_dir", data["parsers_dir"])
    if "cache" in data:
        out.cache = None if data["cache"] is False else _relative_path(section, "cache", data["cache"])
    backends = data.get("backends") or {}
    if not isinstance(backends, dict):
        raise section.error("backends", "must map backend names to settings")
    for name, spec in backends.items():
        out.backends[str(name)] = _backend(section, str(name), spec)
    if "default_backend" in data:
        if not isinstance(data["default_backend"], str):
            raise section.error("default_backend", "must be a backend name")
        out.default_backend = data["default_backend"]
    known = {EMBEDDED, *out.backends}
    if out.default_backend not in known:
        raise section.error("default_backend", f"unknown backend [{out.default_backend}] "
                                               f"(known: {', '.join(sorted(known))})")
    for i, route in enumerate(config.parsers):
        if route.backend not in known:
            line = config.doc.line(("parsers", i, "backend")) if config.doc else 1
            raise ConfigError(f"parsers[{i}].backend", f"unknown backend [{route.backend}]; define it under "
                              f"replay.backends (known: {', '.join(sorted(known))})", line, config.path)
    return out


def _backend(section: ConfigSection, name: str, spec: Any) -> BackendSpec:
    key = f"backends.{name}"
    if name == EMBEDDED:
        raise section.error(key, "`embedded` is built in; choose another name")
    if not isinstance(spec, dict):
        raise section.error(key, "must be a mapping with at least `type` and `url`")
    for k in spec:
        if k not in _BACKEND_KEYS:
            raise section.error(f"{key}.{k}", f"unknown key (known: {', '.join(sorted(_BACKEND_KEYS))})")
    if spec.get("type") not in ("http", "elasticsearch"):
        raise section.error(f"{key}.type", "must be http or elasticsearch")
    url = spec.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise section.error(f"{key}.url", "must be an http:// or https:// URL")
    out = BackendSpec(name, spec["type"], url)
    if "pipeline_prefix" in spec:
        if not isinstance(spec["pipeline_prefix"], str):
            raise section.error(f"{key}.pipeline_prefix", "must be a string")
        out.pipeline_prefix = spec["pipeline_prefix"]
    if "api_key_env" in spec:
        out.api_key_env = _env_name(section, f"{key}.api_key_env", spec["api_key_env"])
    if "headers_env" in spec:
        headers = spec["headers_env"]
        if not isinstance(headers, dict):
            raise section.error(f"{key}.headers_env", "must map header names to environment variable names")
        out.headers_env = {str(h): _env_name(section, f"{key}.headers_env.{h}", v) for h, v in headers.items()}
    for k, lo, hi in (("timeout", 1, 600), ("batch_size", 1, 10_000)):
        if k in spec:
            v = spec[k]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
                raise section.error(f"{key}.{k}", f"must be a number from {lo} to {hi}")
            setattr(out, k, float(v) if k == "timeout" else int(v))
    return out


def parser_files(paths: Iterable[str], settings: ReplaySettings) -> list[str]:
    """The embedded pipeline definitions among a repository's paths: what a caller reading files one by one
    (the bot, from GitHub) must fetch for replay besides the rules and their tests."""
    prefix = settings.parsers_dir.rstrip("/") + "/"
    return sorted(p for p in paths if p.startswith(prefix) and "/" not in p[len(prefix):]
                  and p.endswith((".yml", ".yaml", ".json")))


def backend_name_for(parser: str, config: Config, settings: ReplaySettings) -> str:
    """A `parsers:` route naming this parser decides its backend; otherwise the default backend."""
    for route in config.parsers:
        if route.parser == parser:
            return route.backend
    return settings.default_backend


def build_backends(settings: ReplaySettings, source: FileSource,
                   env: Mapping[str, str] | None = None,
                   allow_remote: bool = True) -> dict[str, ParserBackend]:
    """The embedded backend always; the remote ones only when `allow_remote` (a caller may forbid network)."""
    env = os.environ if env is None else env
    out: dict[str, ParserBackend] = {EMBEDDED: EmbeddedBackend(source, settings.parsers_dir)}
    if not allow_remote:
        return out
    for spec in settings.backends.values():
        headers = {h: env.get(var, "") for h, var in spec.headers_env.items()}
        if spec.type == "elasticsearch":
            if spec.api_key_env:
                headers["Authorization"] = f"ApiKey {env.get(spec.api_key_env, '')}"
            out[spec.name] = ElasticsearchBackend(spec.url, spec.name, spec.pipeline_prefix, headers=headers,
                                                  timeout=spec.timeout, batch_size=spec.batch_size)
        else:
            out[spec.name] = HttpBackend(spec.url, spec.name, headers=headers, timeout=spec.timeout,
                                         batch_size=spec.batch_size)
    return out
