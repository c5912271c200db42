"""The registry of supported ingest processors. Options and failure messages follow Elasticsearch's reference
for each processor; `pipeline` and `foreach`, which hold other processors, live in pipeline.py."""
from __future__ import annotations

from .extract import CsvProcessor, DateProcessor, DissectProcessor, GrokProcessor, JsonProcessor, KvProcessor
from .options import ConfigError, Dropped, Options, Processor
from .template import TemplateError
from .transform import (AppendProcessor, ConvertProcessor, DotExpanderProcessor, DropProcessor, FailProcessor,
                        GsubProcessor, LowercaseProcessor, RemoveProcessor, RenameProcessor, SetProcessor,
                        SplitProcessor, TrimProcessor, UppercaseProcessor)

__all__ = ["PROCESSORS", "ConfigError", "Dropped", "Options", "Processor", "build"]

PROCESSORS: dict[str, type[Processor]] = {p.type: p for p in (
    GrokProcessor, DissectProcessor, KvProcessor, JsonProcessor, CsvProcessor, DateProcessor, SetProcessor,
    AppendProcessor, RenameProcessor, RemoveProcessor, ConvertProcessor, LowercaseProcessor, UppercaseProcessor,
    TrimProcessor, GsubProcessor, SplitProcessor, DotExpanderProcessor, DropProcessor, FailProcessor)}


def build(type_: str, options: Options) -> Processor:
    try:
        proc = PROCESSORS[type_](options)  # type: ignore[call-arg]
    except TemplateError as e:
        raise ConfigError(str(e)) from None
    options.finish()
    return proc
