"""Processors that take text apart: grok, dissect, kv, json, csv, date."""
from __future__ import annotations

import json
from typing import Any, Callable

import regex

from .dates import DEFAULT_OUTPUT, DateFormatError, DateParser
from .dissect import Dissect, DissectCompileError
from .document import MISSING, IngestDocument, ProcessorError, type_name
from .grok import Grok, GrokCompileError
from .options import REGEX_TIMEOUT_S, ConfigError, Options, compile_regex, FieldProcessor, java_split


class GrokProcessor(FieldProcessor):
    type = "grok"

    def __init__(self, o: Options):
        super().__init__(o, target=False)
        patterns = o.strings("patterns")
        definitions = o.any("pattern_definitions", {})
        if not isinstance(definitions, dict) or not all(isinstance(v, str) for v in definitions.values()):
            raise ConfigError("[pattern_definitions] must map pattern names to strings", "pattern_definitions")
        self.trace_match = o.bool("trace_match", False)
        ecs = o.str("ecs_compatibility", "disabled")
        if ecs not in ("disabled", "v1"):
            raise ConfigError("[ecs_compatibility] must be disabled or v1", "ecs_compatibility")
        try:
            self.grok = Grok(patterns, {str(k): v for k, v in definitions.items()})
        except GrokCompileError as e:
            raise ConfigError(str(e), "patterns") from None

    def execute(self, doc: IngestDocument) -> None:
        value = self.read_str(doc)
        if value is MISSING:
            return
        hit = self.grok.match(value)
        if hit is None:
            raise ProcessorError(f"Provided Grok expressions do not match field value: [{value}]")
        index, captures = hit
        for path, v in captures.items():
            doc.set(path, v)
        if self.trace_match:
            doc.ingest["_grok_match_index"] = str(index)


class DissectProcessor(FieldProcessor):
    type = "dissect"

    def __init__(self, o: Options):
        super().__init__(o, target=False)
        try:
            self.dissect = Dissect(o.str("pattern"), o.str("append_separator", ""))
        except DissectCompileError as e:
            raise ConfigError(str(e), "pattern") from None

    def execute(self, doc: IngestDocument) -> None:
        value = self.read_str(doc)
        if value is MISSING:
            return
        for path, v in self.dissect.match(value).items():
            doc.set(path, v)


# Elasticsearch's KeyValueProcessor.STRIP_BRACKETS: ONE opening bracket or quote at the start and ONE closing
# bracket or quote at the end, paired or not (`[(z"` -> `(z`; `<<a>>` -> `<a>`).
_STRIP_BRACKETS = regex.compile(r"^[(\[<\"']|[\])>\"']$")


def _trimmer(chars: str | None, key: str) -> Callable[[str], str]:
    """`trim_key` / `trim_value`: Elasticsearch builds the regex `(^([chars]+))|([chars]+$)`, so the option is
    the body of a character class (`a-z` is a range, `\\s` whitespace), not a list of literal characters."""
    if not chars:
        return lambda v: v
    rx = compile_regex(f"(^([{chars}]+))|([{chars}]+$)", key)
    return lambda v: rx.sub("", v)


class KvProcessor(FieldProcessor):
    type = "kv"

    def __init__(self, o: Options):
        super().__init__(o, target=False)
        self.field_split = compile_regex(o.str("field_split"), "field_split")
        self.value_split = compile_regex(o.str("value_split"), "value_split")
        self.target = o.str("target_field", None)
        if self.target is not None and "{{" in self.target:
            raise ConfigError("a templated [target_field] is not supported by the embedded executor", "target_field")
        inc = o.strings("include_keys", None)
        self.include = set(inc) if inc is not None else None
        self.exclude = set(o.strings("exclude_keys", []))
        self.prefix = o.str("prefix", "")
        self.trim_key = _trimmer(o.str("trim_key", None), "trim_key")
        self.trim_value = _trimmer(o.str("trim_value", None), "trim_value")
        self.strip_brackets = o.bool("strip_brackets", False)

    def _value(self, v: str) -> str:
        # Elasticsearch strips the brackets first, then trims: `trim_value(strip_brackets(v))`.
        if self.strip_brackets:
            v = _STRIP_BRACKETS.sub("", v)
        return self.trim_value(v)

    def execute(self, doc: IngestDocument) -> None:
        value = self.read_str(doc)
        if value is MISSING:
            return
        for pair in java_split(self.field_split, value):
            try:
                kv = self.value_split.split(pair, maxsplit=1, timeout=REGEX_TIMEOUT_S)
            except TimeoutError:
                raise ProcessorError(f"[value_split] exceeded its time limit on [{pair}]") from None
            if len(kv) != 2:
                raise ProcessorError(f"field [{self.field}] does not contain value_split "
                                     f"[{self.value_split.pattern}]")
            key = self.trim_key(kv[0])
            if (self.include is not None and key not in self.include) or key in self.exclude:
                continue
            path = self.prefix + key
            if self.target:
                path = f"{self.target}.{path}"
            # A new key is a scalar; a repeated one becomes a list (Elasticsearch's kv `append`).
            if doc.has(path):
                doc.append(path, [self._value(kv[1])])
            else:
                doc.set(path, self._value(kv[1]))


class JsonProcessor(FieldProcessor):
    type = "json"

    def __init__(self, o: Options):
        super().__init__(o, target=False, ignore_missing=False)
        self.target = o.str("target_field", None)
        self.add_to_root = o.bool("add_to_root", False)
        self.strategy = o.str("add_to_root_conflict_strategy", "replace")
        o.bool("allow_duplicate_keys", False)  # Python keeps the last duplicate, as Elasticsearch does with it
        o.bool("strict_json_parsing", True)
        if self.strategy not in ("replace", "merge"):
            raise ConfigError("[add_to_root_conflict_strategy] must be replace or merge",
                              "add_to_root_conflict_strategy")
        if self.add_to_root and self.target:
            raise ConfigError("Cannot set a target field while also setting `add_to_root` to true", "target_field")

    def execute(self, doc: IngestDocument) -> None:
        value = doc.require(self.field)
        # Elasticsearch parses the value's text: null, numbers and booleans are valid JSON as they are.
        if value is None or isinstance(value, (bool, int, float)):
            value = json.dumps(value)
        if not isinstance(value, str):
            raise ProcessorError(f"field [{self.field}] of type [{type_name(value)}] cannot be parsed as JSON")
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError) as e:
            raise ProcessorError(f"field [{self.field}] is not valid JSON: {e}") from None
        if not self.add_to_root:
            doc.set(self.target or self.field, parsed)
            return
        if not isinstance(parsed, dict):
            raise ProcessorError("cannot add non-map fields to root of document")
        if self.strategy == "merge":
            _merge(doc.source, parsed)
        else:
            doc.source.update(parsed)


def _merge(into: dict[str, Any], new: dict[str, Any]) -> None:
    for k, v in new.items():
        if isinstance(into.get(k), dict) and isinstance(v, dict):
            _merge(into[k], v)
        else:
            into[k] = v


class CsvProcessor(FieldProcessor):
    type = "csv"

    def __init__(self, o: Options):
        super().__init__(o, target=False)
        self.targets = o.strings("target_fields", single_ok=True)
        self.separator = o.str("separator", ",")
        self.quote = o.str("quote", '"')
        if len(self.separator) != 1 or len(self.quote) != 1:
            raise ConfigError("[separator] and [quote] must be single characters", "separator")
        self.trim = o.bool("trim", False)
        self.empty_value = o.any("empty_value", MISSING)

    def _fields(self, line: str) -> list[str | None]:
        out: list[str | None] = []
        i, n, sep, q = 0, len(line), self.separator, self.quote
        while True:
            start = i
            if self.trim:
                while i < n and line[i] in " \t" and line[i] != sep:
                    i += 1
            if i < n and line[i] == q:
                i += 1
                buf: list[str] = []
                while True:
                    j = line.find(q, i)
                    if j < 0:
                        raise ProcessorError(f"Unmatched quote in field [{self.field}]: [{line}]")
                    buf.append(line[i:j])
                    if j + 1 < n and line[j + 1] == q:
                        buf.append(q)
                        i = j + 2
                        continue
                    i = j + 1
                    break
                while self.trim and i < n and line[i] in " \t" and line[i] != sep:
                    i += 1
                if i < n and line[i] != sep:
                    raise ProcessorError(f"Illegal character after quoted field at {i} in [{line}]")
                out.append("".join(buf) or None)  # `""` is an empty field too
            else:
                j = line.find(sep, i)
                end = n if j < 0 else j
                raw = line[start:end]
                if q in raw:
                    raise ProcessorError(f"Illegal character inside unquoted field at {start + raw.index(q)} "
                                         f"in [{line}]")
                val = raw.strip(" \t") if self.trim else raw
                out.append(val if val != "" else None)
                i = end
            if i >= n:
                return out
            i += 1  # the separator
            if i == n:
                out.append(None)
                return out

    def execute(self, doc: IngestDocument) -> None:
        value = self.read_str(doc)
        if value is MISSING:
            return
        for target, v in zip(self.targets, self._fields(value)):
            if v is None:
                if self.empty_value is not MISSING:
                    doc.set(target, self.empty_value)
            else:
                doc.set(target, v)


_LOCALES = {"ENGLISH", "ROOT", "EN", "EN-US", "EN_US", "EN-GB", "EN_GB", "US", "UK"}


class DateProcessor(FieldProcessor):
    type = "date"

    def __init__(self, o: Options):
        super().__init__(o, target=False, ignore_missing=False)
        self.target = o.str("target_field", "@timestamp")
        formats = o.strings("formats")
        tz = o.str("timezone", "UTC")
        locale = o.str("locale", "ENGLISH")
        output = o.str("output_format", DEFAULT_OUTPUT)
        if "{{" in tz or "{{" in locale:
            raise ConfigError("templated [timezone] / [locale] are not supported", "timezone")
        if locale.upper() not in _LOCALES:
            raise ConfigError(f"[locale] {locale} is not supported (English month and day names only)", "locale")
        try:
            self.parser = DateParser(formats, tz, output)
        except DateFormatError as e:
            raise ConfigError(str(e), "formats") from None

    def execute(self, doc: IngestDocument) -> None:
        value = self.read(doc)
        if value is MISSING:
            return
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ProcessorError(f"unable to parse date [{value}]")
        doc.set(self.target, self.parser(str(value)))
