"""What every processor shares: reading its options strictly, and reading the field it works on.

An option a processor does not know is a load-time error (as in Elasticsearch), so a typo never silently
changes a parser.
"""
from __future__ import annotations

from typing import Any

import regex

from .document import MISSING, IngestDocument, ProcessorError, type_name

REGEX_TIMEOUT_S = 0.25


class ConfigError(ValueError):
    """A processor's options are invalid; `key` names the option when one is at fault."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


class Dropped(Exception):
    """The `drop` processor: the document is not indexed."""


REQUIRED: Any = object()


class Options:
    """A processor's option mapping, read key by key; whatever is left unread is an error."""

    def __init__(self, type_: str, config: Any):
        if config is None:
            config = {}
        if not isinstance(config, dict):
            raise ConfigError(f"[{type_}] options must be a mapping")
        self.type = type_
        self.config = dict(config)

    def _take(self, key: str, default: Any, required: bool) -> Any:
        if key not in self.config:
            if required:
                raise ConfigError(f"[{key}] required property is missing", key)
            return default
        return self.config.pop(key)

    def str(self, key: str, default: Any = REQUIRED) -> Any:
        v = self._take(key, default, default is REQUIRED)
        if v is not default and not isinstance(v, str):
            raise ConfigError(f"[{key}] must be a string", key)
        return v

    def bool(self, key: str, default: bool) -> bool:
        v = self._take(key, default, False)
        if not isinstance(v, bool):
            raise ConfigError(f"[{key}] must be true or false", key)
        return v

    def strings(self, key: str, default: Any = REQUIRED, single_ok: bool = False) -> Any:
        v = self._take(key, default, default is REQUIRED)
        if v is default:
            return v
        if single_ok and isinstance(v, str):
            return [v]
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise ConfigError(f"[{key}] must be a list of strings", key)
        return v

    def any(self, key: str, default: Any = REQUIRED) -> Any:
        return self._take(key, default, default is REQUIRED)

    def finish(self) -> None:
        if self.config:
            names = sorted(str(k) for k in self.config)
            raise ConfigError(f"processor [{self.type}] doesn't support one or more provided configuration "
                              f"parameters {names}", names[0])


def compile_regex(pattern: str, key: str) -> regex.Pattern[str]:
    try:
        return regex.compile(pattern, regex.VERSION0)
    except regex.error as e:
        raise ConfigError(f"[{key}] invalid regular expression [{pattern}]: {e}", key) from None


def java_split(rx: regex.Pattern[str], value: str, preserve_trailing: bool = False) -> list[str]:
    """Java's String.split: trailing empty strings are dropped unless asked to keep them."""
    try:
        parts = rx.split(value, timeout=REGEX_TIMEOUT_S)
    except TimeoutError:
        raise ProcessorError(f"regular expression [{rx.pattern}] exceeded its time limit") from None
    if value == "":
        return [""]
    if parts and parts[0] == "":
        # Java (8+): "a zero-width match at the beginning never produces such empty leading substring".
        first = rx.match(value, timeout=REGEX_TIMEOUT_S)
        if first is not None and first.end() == 0:
            parts.pop(0)
    if not preserve_trailing:
        while len(parts) > 1 and parts[-1] == "":
            parts.pop()
    return parts


class Processor:
    type = ""

    def execute(self, doc: IngestDocument) -> None:
        raise NotImplementedError


class FieldProcessor(Processor):
    """Reads one field; with ignore_missing a missing or null field leaves the document as it is."""

    def __init__(self, o: Options, target: bool = True, ignore_missing: bool = True):
        """`target`: whether `target_field` is an option; `ignore_missing`: whether that option exists (the
        json and date processors have none in Elasticsearch, so there it is an unknown option)."""
        self.field: str = o.str("field")
        self.target_field: str = o.str("target_field", self.field) if target else self.field
        self.ignore_missing = o.bool("ignore_missing", False) if ignore_missing else False

    def read(self, doc: IngestDocument) -> Any:
        """The field's value, or MISSING when the processor should do nothing."""
        v = doc.get(self.field)
        if v is MISSING or v is None:
            if self.ignore_missing:
                return MISSING
            if v is MISSING:
                raise ProcessorError(f"field [{self.field.rsplit('.', 1)[-1]}] not present as part of path "
                                     f"[{self.field}]")
            raise ProcessorError(f"field [{self.field}] is null, cannot process it.")
        return v

    def read_str(self, doc: IngestDocument) -> Any:
        v = self.read(doc)
        if v is not MISSING and not isinstance(v, str):
            raise ProcessorError(f"field [{self.field}] of type [{type_name(v)}] cannot be cast to "
                                 f"[java.lang.String]")
        return v
