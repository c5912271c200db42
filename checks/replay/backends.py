"""Parser backends: one small interface turning `(parser name, raw logs)` into parsed events.

    await backend.parser_version(parser) -> str       # changes whenever the parser's behaviour may change
    await backend.parse_batch(parser, raw_logs) -> list[ParseResult]   # one result per log, in order

Three backends:
- `EmbeddedBackend`: Elastic ingest-pipeline definitions in the rules repository (`parsers/<name>.yml|yaml|json`),
  run by the embedded executor (checks/replay/ingest). Version: hash of the definition (and of the pipelines
  it calls) plus the executor's own version.
- `HttpBackend`: any service speaking the JSON contract documented in docs/ingest-subset.md ("HTTP backend").
- `ElasticsearchBackend`: `POST _ingest/pipeline/<id>/_simulate`; version: hash of `GET _ingest/pipeline/<id>`.

A result's status is `ok` (event parsed), `unparsed` (the parser rejected or dropped the log: grok did not
match, a processor failed with no handler...) or `error` (the backend itself failed: unreachable, the pipeline
cannot be loaded, a malformed answer). Backends never raise for a bad log or a bad answer.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp

from ..source import FileSource
from ..yamldoc import YamlError, load_one
from .ingest.pipeline import Pipeline, PipelineError

# Bump when the embedded executor changes behaviour: cached results of older executors are then ignored.
EMBEDDED_ENGINE_VERSION = "1"
# Embedded batches above this many logs are parsed in a worker thread.
THREAD_THRESHOLD = 64
PARSER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
STATUSES = ("ok", "unparsed", "error")
MAX_ERROR_BODY = 300
RETRY_STATUSES = {429, 502, 503, 504}
# An answer beyond this is refused rather than held in memory.
MAX_ANSWER_BYTES = 64 * 1024 * 1024


@dataclass
class ParseResult:
    status: str  # ok | unparsed | error
    event: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    parser_version: str = ""
    # Why a log was unparsed or the backend failed; None when ok.
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "event": self.event, "warnings": self.warnings,
                "parser_version": self.parser_version, "message": self.message}


class BackendError(Exception):
    """The backend cannot serve this parser at all (unreachable, pipeline missing or invalid)."""


class _Transient(BackendError):
    """Worth another try: the service was unreachable or said it is overloaded."""


class ParserBackend(Protocol):
    name: str

    async def parser_version(self, parser: str) -> str: ...

    async def parse_batch(self, parser: str, raw_logs: list[str]) -> list[ParseResult]: ...


def errors_for(raw_logs: list[str], message: str, version: str = "") -> list[ParseResult]:
    return [ParseResult("error", None, [], version, message) for _ in raw_logs]


def definition_hash(*parts: Any) -> str:
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


# --- embedded ------------------------------------------------------------------------------------------

class EmbeddedBackend:
    """Pipelines read from the rules repository through a FileSource, compiled once per backend instance."""

    def __init__(self, source: FileSource, directory: str = "parsers", name: str = "embedded"):
        self.source = source
        self.directory = directory.strip("/")
        self.name = name
        self._definitions: dict[str, tuple[str, Any]] = {}
        self._pipelines: dict[str, Pipeline] = {}
        self._versions: dict[str, str] = {}

    def _path_for(self, parser: str) -> str:
        if not PARSER_NAME.match(parser):
            raise BackendError(f"invalid parser name [{parser}]")
        for ext in ("yml", "yaml", "json"):
            path = f"{self.directory}/{parser}.{ext}" if self.directory else f"{parser}.{ext}"
            if self.source.exists(path):
                return path
        raise LookupError(f"no pipeline definition for parser [{parser}] "
                          f"(looked for {self.directory}/{parser}.yml, .yaml, .json)")

    def definition(self, parser: str) -> tuple[str, Any]:
        """(path, data) of a parser's definition, parsed once."""
        if parser not in self._definitions:
            path = self._path_for(parser)
            try:
                doc = load_one(self.source.read(path))
            except YamlError as e:
                raise BackendError(f"{path}:{e.line}: {e.message}") from None
            self._definitions[parser] = (path, doc)
        path, doc = self._definitions[parser]
        return path, doc

    def pipeline(self, parser: str, _stack: tuple[str, ...] = ()) -> Pipeline:
        if parser in self._pipelines:
            return self._pipelines[parser]
        if parser in _stack:
            raise BackendError(f"pipelines call each other in a cycle: {' -> '.join(_stack + (parser,))}")
        try:
            path, doc = self.definition(parser)
        except LookupError as e:
            raise BackendError(str(e)) from None

        def resolve(name: str) -> Pipeline:
            try:
                return self.pipeline(name, _stack + (parser,))
            except BackendError as e:
                raise LookupError(str(e)) from None

        try:
            pipeline = Pipeline(doc.data, parser, resolve)
        except PipelineError as e:
            raise BackendError(f"{path}:{doc.line(e.path)}: {e}") from None
        except Exception as e:  # an executor bug must not take the whole replay down
            raise BackendError(f"{path}: cannot load the pipeline: {type(e).__name__}: {e}") from None
        self._pipelines[parser] = pipeline
        return pipeline

    def version_sync(self, parser: str, _stack: tuple[str, ...] = ()) -> str:
        if parser in self._versions:
            return self._versions[parser]
        try:
            _, doc = self.definition(parser)
        except LookupError as e:
            raise BackendError(str(e)) from None
        # Pipelines this one calls change its behaviour too.
        called = sorted(set(called_pipelines(doc.data)) - set(_stack) - {parser})
        subs = []
        for name in called:
            try:
                subs.append((name, self.version_sync(name, _stack + (parser,))))
            except BackendError:
                subs.append((name, None))
        version = definition_hash(EMBEDDED_ENGINE_VERSION, doc.data, subs)
        self._versions[parser] = version
        return version

    async def parser_version(self, parser: str) -> str:
        return self.version_sync(parser)

    def parse_batch_sync(self, parser: str, raw_logs: list[str]) -> list[ParseResult]:
        try:
            version = self.version_sync(parser)
            pipeline = self.pipeline(parser)
        except BackendError as e:
            return errors_for(raw_logs, str(e))
        stamp = datetime.now(timezone.utc).isoformat()
        out: list[ParseResult] = []
        for raw in raw_logs:
            try:
                r = pipeline.run_message(raw, stamp)
            except Exception as e:  # an executor bug: this log's result, not the batch's
                out.append(ParseResult("error", None, [], version, f"embedded executor failed on this log: "
                                       f"{type(e).__name__}: {e}"))
                continue
            if r.status == "ok":
                out.append(ParseResult("ok", r.source, r.warnings, version))
            else:
                out.append(ParseResult("unparsed", None, r.warnings, version, r.error))
        return out

    async def parse_batch(self, parser: str, raw_logs: list[str]) -> list[ParseResult]:
        if len(raw_logs) <= THREAD_THRESHOLD:
            return self.parse_batch_sync(parser, raw_logs)
        # A large batch is CPU work: off the event loop, so a server keeps answering meanwhile.
        return await asyncio.to_thread(self.parse_batch_sync, parser, raw_logs)


def called_pipelines(data: Any) -> list[str]:
    """Names of the pipelines a definition calls through `pipeline` processors."""
    found: list[str] = []
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            p = node.get("pipeline")
            if isinstance(p, dict) and isinstance(p.get("name"), str):
                found.append(p["name"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


# --- HTTP backends ---------------------------------------------------------------------------------------

class _HttpBase:
    def __init__(self, url: str, name: str, headers: dict[str, str] | None = None, timeout: float = 30.0,
                 batch_size: int = 200, session: aiohttp.ClientSession | None = None, attempts: int = 3,
                 retry_delay: float = 0.5):
        self.url = url.rstrip("/")
        self.attempts = max(1, attempts)
        self.retry_delay = retry_delay
        self.name = name
        self.headers = dict(headers or {})
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.batch_size = max(1, batch_size)
        self._session = session
        self._own_session: aiohttp.ClientSession | None = None
        self._versions: dict[str, str] = {}

    @property
    def cache_key(self) -> str:
        # A backend's name comes from one repository's config: two repositories sharing a cache (the bot) may
        # give the same name and version to different services, so results are filed under the URL as well.
        return f"{self.name} {self.url}"

    def session(self) -> aiohttp.ClientSession:
        if self._session is not None:
            return self._session
        if self._own_session is None or self._own_session.closed:
            self._own_session = aiohttp.ClientSession(timeout=self.timeout)
        return self._own_session

    async def close(self) -> None:
        if self._own_session is not None:
            await self._own_session.close()

    async def _request(self, method: str, url: str, body: Any = None) -> Any:
        """The decoded JSON answer; BackendError for transport errors, non-2xx answers and non-JSON bodies.
        A refused connection or a 502/503/504/429 is retried (parsing is idempotent) before giving up."""
        for attempt in range(self.attempts):
            try:
                return await self._request_once(method, url, body)
            except _Transient as e:
                if attempt + 1 == self.attempts:
                    raise BackendError(str(e)) from None
                await asyncio.sleep(self.retry_delay * (2 ** attempt))
        raise AssertionError("unreachable")

    async def _request_once(self, method: str, url: str, body: Any) -> Any:
        try:
            async with self.session().request(method, url, json=body, timeout=self.timeout,
                                              headers=self.headers) as resp:
                chunks: list[bytes] = []
                size = 0
                async for chunk in resp.content.iter_chunked(1 << 16):
                    size += len(chunk)
                    if size > MAX_ANSWER_BYTES:
                        raise BackendError(f"{self.name}: answer to {method} {url} is larger than "
                                           f"{MAX_ANSWER_BYTES:,} bytes; lower batch_size")
                    chunks.append(chunk)
                text = b"".join(chunks).decode("utf-8", errors="replace")
                if resp.status >= 300:
                    message = f"{self.name}: HTTP {resp.status} from {method} {url}: {_error_reason(text)}"
                    raise (_Transient if resp.status in RETRY_STATUSES else BackendError)(message)
                try:
                    return json.loads(text)
                except ValueError:
                    raise BackendError(f"{self.name}: answer to {method} {url} is not JSON: "
                                       f"{text[:MAX_ERROR_BODY]!r}") from None
        except aiohttp.ClientConnectionError as e:
            raise _Transient(f"{self.name}: {method} {url} failed: {e.__class__.__name__}: {e}") from None
        except aiohttp.ClientError as e:
            raise BackendError(f"{self.name}: {method} {url} failed: {e.__class__.__name__}: {e}") from None
        except asyncio.TimeoutError:
            raise BackendError(f"{self.name}: {method} {url} timed out") from None

    async def parse_batch(self, parser: str, raw_logs: list[str]) -> list[ParseResult]:
        out: list[ParseResult] = []
        for i in range(0, len(raw_logs), self.batch_size):
            chunk = raw_logs[i:i + self.batch_size]
            try:
                out.extend(await self._parse_chunk(parser, chunk))
            except BackendError as e:
                out.extend(errors_for(chunk, str(e), self._versions.get(parser, "")))
        return out

    async def _parse_chunk(self, parser: str, chunk: list[str]) -> list[ParseResult]:
        raise NotImplementedError


def _error_reason(text: str) -> str:
    """Elasticsearch errors carry `error.reason`; anything else is shown truncated."""
    try:
        data = json.loads(text)
        err = data.get("error") if isinstance(data, dict) else None
        if isinstance(err, dict) and err.get("reason"):
            return f"{err.get('type', 'error')}: {err['reason']}"
        if isinstance(err, str):
            return err
    except ValueError:
        pass
    return text[:MAX_ERROR_BODY]


class HttpBackend(_HttpBase):
    """POST {"parser": name, "logs": [raw, ...]} -> {"version": str, "results": [{status, event, warnings}]}."""

    def __init__(self, url: str, name: str = "http", **kw: Any):
        super().__init__(url, name, **kw)

    async def parser_version(self, parser: str) -> str:
        if parser not in self._versions:
            # An empty batch asks only for the parser's version.
            answer = await self._request("POST", self.url, {"parser": parser, "logs": []})
            self._versions[parser] = self._version_of(answer)
        return self._versions[parser]

    def _version_of(self, answer: Any) -> str:
        if not isinstance(answer, dict) or not isinstance(answer.get("version"), (str, int)) \
                or str(answer["version"]) == "":
            raise BackendError(f"{self.name}: answer has no `version` string")
        return str(answer["version"])

    async def _parse_chunk(self, parser: str, chunk: list[str]) -> list[ParseResult]:
        answer = await self._request("POST", self.url, {"parser": parser, "logs": chunk})
        version = self._version_of(answer)
        self._versions[parser] = version
        results = answer.get("results")
        if not isinstance(results, list) or len(results) != len(chunk):
            raise BackendError(f"{self.name}: expected {len(chunk)} results, got "
                               f"{len(results) if isinstance(results, list) else type(results).__name__}")
        out = []
        for i, r in enumerate(results):
            if not isinstance(r, dict) or r.get("status") not in STATUSES:
                out.append(ParseResult("error", None, [], version, f"{self.name}: result {i} is malformed "
                                       f"(needs status ok|unparsed|error)"))
                continue
            event = r.get("event")
            warnings = r.get("warnings") or []
            warnings = [str(w) for w in warnings] if isinstance(warnings, list) else [str(warnings)]
            if r["status"] == "ok" and not isinstance(event, dict):
                out.append(ParseResult("error", None, warnings, version, f"{self.name}: result {i} is ok "
                                       f"but has no event object"))
                continue
            message = r.get("message")
            out.append(ParseResult(r["status"], event if r["status"] == "ok" else None, warnings, version,
                                   str(message) if message is not None else
                                   (None if r["status"] == "ok" else "; ".join(warnings) or r["status"])))
        return out


class ElasticsearchBackend(_HttpBase):
    """A pipeline stored in Elasticsearch, run through the simulate API (nothing is indexed)."""

    def __init__(self, url: str, name: str = "elasticsearch", pipeline_prefix: str = "", **kw: Any):
        super().__init__(url, name, **kw)
        self.prefix = pipeline_prefix

    def _pipeline_url(self, parser: str) -> str:
        if not PARSER_NAME.match(parser):
            raise BackendError(f"invalid parser name [{parser}]")
        return f"{self.url}/_ingest/pipeline/{quote(self.prefix + parser, safe='')}"

    async def parser_version(self, parser: str) -> str:
        if parser not in self._versions:
            answer = await self._request("GET", self._pipeline_url(parser))
            definition = answer.get(self.prefix + parser) if isinstance(answer, dict) else None
            if definition is None:
                raise BackendError(f"{self.name}: pipeline [{self.prefix + parser}] does not exist")
            self._versions[parser] = definition_hash(definition)
        return self._versions[parser]

    async def _parse_chunk(self, parser: str, chunk: list[str]) -> list[ParseResult]:
        version = await self.parser_version(parser)
        body = {"docs": [{"_source": {"message": raw}} for raw in chunk]}
        answer = await self._request("POST", self._pipeline_url(parser) + "/_simulate", body)
        docs = answer.get("docs") if isinstance(answer, dict) else None
        if not isinstance(docs, list) or len(docs) != len(chunk):
            raise BackendError(f"{self.name}: expected {len(chunk)} docs in the simulate answer, got "
                               f"{len(docs) if isinstance(docs, list) else type(docs).__name__}")
        out = []
        for d in docs:
            if d is None or (isinstance(d, dict) and "doc" in d and d["doc"] is None):
                out.append(ParseResult("unparsed", None, [], version, "the document was dropped by the pipeline"))
            elif isinstance(d, dict) and isinstance(d.get("error"), dict):
                err = d["error"]
                out.append(ParseResult("unparsed", None, [], version,
                                       f"{err.get('type', 'error')}: {err.get('reason', '')}".strip()))
            elif isinstance(d, dict) and isinstance(d.get("doc"), dict) and isinstance(d["doc"].get("_source"), dict):
                out.append(ParseResult("ok", d["doc"]["_source"], [], version))
            else:
                out.append(ParseResult("error", None, [], version, f"{self.name}: malformed simulate doc"))
        return out
