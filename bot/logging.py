"""structlog configuration for `detbot serve`: one JSON object per line, with the delivery id, event, repository,
pull request and head sha of the job at hand merged in from contextvars (bound by the queue worker, so every line
a job logs, in any module, carries them). Standard-library records (aiohttp, asyncio) go through the same
renderer, so a log collector sees one format."""
from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog


def configure_logging(level: str = "info", fmt: str = "json", stream: TextIO | None = None) -> None:
    numeric = logging.getLevelName(level.upper())
    stream = stream or sys.stdout
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (structlog.processors.JSONRenderer(sort_keys=False) if fmt == "json"
                     else structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=shared + [structlog.processors.StackInfoRenderer(), structlog.processors.format_exc_info,
                             renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared + [structlog.stdlib.add_logger_name],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, renderer]))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(numeric)
