"""An ingest pipeline definition compiled once, then run over many documents.

Failure handling as Elasticsearch documents it: a failing processor with `ignore_failure` is skipped; with
its own `on_failure` those processors run and the pipeline goes on; otherwise the pipeline's `on_failure`
runs and the remaining processors are skipped; with neither, the document is rejected. While a handler
runs, `_ingest.on_failure_message`, `_ingest.on_failure_processor_type` and `_ingest.on_failure_processor_tag`
describe the failure. A false `if` skips the processor; an `if` that fails is a failure of the processor.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from .condition import Condition, ConditionError
from .document import IngestDocument, ProcessorError
from .processors import PROCESSORS, ConfigError, Dropped, Options, Processor, build

_COMPOUND = ("pipeline", "foreach")
PIPELINE_KEYS = {"description", "processors", "on_failure", "version", "_meta", "deprecated"}
COMMON_KEYS = ("tag", "if", "ignore_failure", "on_failure", "description")
MAX_PIPELINE_DEPTH = 10


class PipelineError(Exception):
    """The definition cannot be loaded. `path` locates the offending entry (e.g. ("processors", 2, "grok"))."""

    def __init__(self, message: str, path: tuple[Any, ...] = ()):
        where = _describe(path)
        super().__init__(f"{where}: {message}" if where else message)
        self.message = message
        self.path = path


def _describe(path: tuple[Any, ...]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


@dataclass
class Step:
    processor: Processor
    type: str
    tag: str | None
    condition: Condition | None
    ignore_failure: bool
    on_failure: list["Step"]


class _Unhandled(Exception):
    def __init__(self, error: ProcessorError, step: Step):
        super().__init__(str(error))
        self.error = error
        self.step = step


@dataclass
class PipelineResult:
    status: str  # "ok" | "failed" | "dropped"
    source: dict[str, Any] | None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


# Resolves the `pipeline` processor's `name` to another compiled pipeline.
Resolver = Callable[[str], "Pipeline"]


class PipelineProcessor(Processor):
    type = "pipeline"

    def __init__(self, name: str, resolver: Resolver | None, ignore_missing: bool):
        self.name = name
        self.resolver = resolver
        self.ignore_missing = ignore_missing
        self._pipeline: Pipeline | None = None

    def execute(self, doc: IngestDocument) -> None:
        if self._pipeline is None:
            if self.resolver is None:
                raise ProcessorError(f"pipeline with id [{self.name}] does not exist")
            try:
                self._pipeline = self.resolver(self.name)
            except LookupError:
                if self.ignore_missing:
                    return
                raise ProcessorError(f"pipeline with id [{self.name}] does not exist") from None
        self._pipeline.run_on(doc)


class ForeachProcessor(Processor):
    """Runs one processor on each element of a list (or value of an object), exposed as `_ingest._value`
    (and `_ingest._key` for objects); what the processor leaves in `_ingest._value` is written back."""

    type = "foreach"

    def __init__(self, field: str, step: "Step", ignore_missing: bool):
        self.field = field
        self.step = step
        self.ignore_missing = ignore_missing

    def execute(self, doc: IngestDocument) -> None:
        value = doc.get(self.field, None)
        if value is None:
            if self.ignore_missing:
                return
            raise ProcessorError(f"field [{self.field}] not present as part of path [{self.field}]")
        if not isinstance(value, (list, dict)):
            raise ProcessorError(f"field [{self.field}] of type [{type(value).__name__}] cannot be cast to a "
                                 f"list or an object")
        saved = {k: doc.ingest[k] for k in ("_value", "_key") if k in doc.ingest}
        try:
            if isinstance(value, list):
                for i, element in enumerate(value):
                    doc.ingest["_value"] = element
                    self._run(doc)
                    value[i] = doc.ingest.get("_value")
            else:
                for key in list(value):
                    doc.ingest["_key"], doc.ingest["_value"] = key, value[key]
                    self._run(doc)
                    value[key] = doc.ingest.get("_value")
        finally:
            doc.ingest.pop("_value", None)
            doc.ingest.pop("_key", None)
            doc.ingest.update(saved)

    def _run(self, doc: IngestDocument) -> None:
        try:
            Pipeline._run_steps([self.step], doc)
        except _Unhandled as e:
            raise ProcessorError(f"{_failure_text(e)}") from None


def _compile_steps(items: Any, path: tuple[Any, ...], resolver: Resolver | None) -> list[Step]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise PipelineError("must be a list of processors", path)
    return [_compile_step(item, path + (i,), resolver) for i, item in enumerate(items)]


def _compile_step(item: Any, path: tuple[Any, ...], resolver: Resolver | None) -> Step:
    if not isinstance(item, dict) or len(item) != 1:
        raise PipelineError("each processor must be a mapping with exactly one key, the processor type", path)
    type_, options = next(iter(item.items()))
    type_ = str(type_)
    here = path + (type_,)
    if type_ not in PROCESSORS and type_ not in _COMPOUND:
        raise PipelineError(f"processor [{type_}] is not supported by the embedded executor "
                            f"(supported: {', '.join(sorted([*PROCESSORS, *_COMPOUND]))}); "
                            f"use the elasticsearch or http backend for this parser", here)
    try:
        opts = Options(type_, options)
        tag = opts.str("tag", None)
        cond_src = opts.str("if", None)
        ignore_failure = opts.bool("ignore_failure", False)
        handlers = opts.any("on_failure", None)
        opts.str("description", None)
    except ConfigError as e:
        raise PipelineError(str(e), here + ((e.key,) if e.key else ())) from None
    try:
        condition = Condition(cond_src) if cond_src is not None else None
    except ConditionError as e:
        raise PipelineError(f"unsupported `if` condition [{cond_src}]: {e}", here + ("if",)) from None
    on_failure = _compile_steps(handlers, here + ("on_failure",), resolver)
    if handlers is not None and not on_failure:
        raise PipelineError("on_failure must not be empty", here + ("on_failure",))
    try:
        if type_ == "pipeline":
            name = opts.str("name")
            ignore_missing = opts.bool("ignore_missing_pipeline", False)
            opts.finish()
            proc: Processor = PipelineProcessor(name, resolver, ignore_missing)
        elif type_ == "foreach":
            field_name = opts.str("field")
            ignore_missing = opts.bool("ignore_missing", False)
            inner = opts.any("processor")
            opts.finish()
            proc = ForeachProcessor(field_name, _compile_step(inner, here + ("processor",), resolver),
                                    ignore_missing)
        else:
            proc = build(type_, opts)
    except ConfigError as e:
        raise PipelineError(str(e), here + ((e.key,) if e.key else ())) from None
    return Step(proc, type_, tag, condition, ignore_failure, on_failure)


class Pipeline:
    def __init__(self, definition: Any, name: str = "", resolver: Resolver | None = None):
        if not isinstance(definition, dict):
            raise PipelineError("a pipeline definition must be a mapping with `processors`")
        unknown = sorted(str(k) for k in definition if k not in PIPELINE_KEYS)
        if unknown:
            raise PipelineError(f"unknown key(s) {unknown} (known: {', '.join(sorted(PIPELINE_KEYS))})",
                                (unknown[0],))
        if "processors" not in definition:
            raise PipelineError("[processors] required property is missing")
        self.name = name
        self.description = definition.get("description")
        self.steps = _compile_steps(definition["processors"], ("processors",), resolver)
        self.on_failure = _compile_steps(definition.get("on_failure"), ("on_failure",), resolver)

    @staticmethod
    def _run_steps(steps: list[Step], doc: IngestDocument) -> None:
        for step in steps:
            try:
                if step.condition is not None and not step.condition(doc.source):
                    continue
                step.processor.execute(doc)
            except ProcessorError as e:
                if step.ignore_failure:
                    continue
                if not step.on_failure:
                    raise _Unhandled(e, step) from None
                Pipeline._handle(step.on_failure, doc, e, step)
            except _Unhandled as inner:  # from a nested `pipeline` processor: this step's handlers apply
                if step.ignore_failure:
                    continue
                if not step.on_failure:
                    raise
                Pipeline._handle(step.on_failure, doc, inner.error, inner.step)

    @staticmethod
    def _handle(handlers: list[Step], doc: IngestDocument, error: ProcessorError, failed: Step) -> None:
        saved = {k: doc.ingest.get(k) for k in _FAILURE_KEYS}
        doc.ingest.update({"on_failure_message": str(error), "on_failure_processor_type": failed.type,
                           "on_failure_processor_tag": failed.tag})
        try:
            Pipeline._run_steps(handlers, doc)
        finally:
            for k, v in saved.items():
                if v is None:
                    doc.ingest.pop(k, None)
                else:
                    doc.ingest[k] = v

    def run_on(self, doc: IngestDocument) -> None:
        """Run inside another pipeline (the `pipeline` processor): failures go to the caller's handlers."""
        try:
            self._run_steps(self.steps, doc)
        except _Unhandled as e:
            if not self.on_failure:
                raise
            self._handle(self.on_failure, doc, e.error, e.step)

    def run(self, source: dict[str, Any], timestamp: str | None = None) -> PipelineResult:
        """`timestamp` is `_ingest.timestamp` (now, unless a batch passes one time for all its documents)."""
        doc = IngestDocument(source, {"timestamp": timestamp or datetime.now(timezone.utc).isoformat()})
        warnings: list[str] = []
        try:
            try:
                self._run_steps(self.steps, doc)
            except _Unhandled as e:
                if not self.on_failure:
                    return PipelineResult("failed", None, _failure_text(e))
                warnings.append(f"pipeline on_failure ran after: {_failure_text(e)}")
                self._handle(self.on_failure, doc, e.error, e.step)
        except _Unhandled as e:
            return PipelineResult("failed", None, f"in on_failure: {_failure_text(e)}")
        except Dropped:
            return PipelineResult("dropped", None, "the document was dropped by a drop processor")
        except RecursionError:
            return PipelineResult("failed", None, "pipelines call each other too deeply")
        return PipelineResult("ok", doc.source, None, warnings)

    def run_message(self, raw: str, timestamp: str | None = None) -> PipelineResult:
        """A raw log enters as `message`, as a shipper would send it."""
        return self.run({"message": raw}, timestamp)


_FAILURE_KEYS = ("on_failure_message", "on_failure_processor_type", "on_failure_processor_tag")


def _failure_text(e: _Unhandled) -> str:
    tag = f" (tag {e.step.tag})" if e.step.tag else ""
    return f"processor [{e.step.type}]{tag}: {e.error}"
