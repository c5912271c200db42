"""The supported ingest processors, each compiled once from its options and applied to many documents.

Options and failure messages follow Elasticsearch's reference for each processor. An option a processor
does not know is a load-time error (as in Elasticsearch), so a typo never silently changes a parser.
"""
from __future__ import annotations

import copy
import ipaddress
import json
from typing import Any, Callable

import regex

from .dates import DEFAULT_OUTPUT, DateFormatError, DateParser
from .dissect import Dissect, DissectCompileError
from .document import MISSING, IngestDocument, ProcessorError, type_name
from .grok import Grok, GrokCompileError
from .template import TemplateError, compile_template

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


def _compile_regex(pattern: str, key: str) -> regex.Pattern[str]:
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
    if not preserve_trailing:
        while len(parts) > 1 and parts[-1] == "":
            parts.pop()
    return parts


class Processor:
    type = ""

    def execute(self, doc: IngestDocument) -> None:
        raise NotImplementedError


class _FieldProcessor(Processor):
    """Reads one field; with ignore_missing a missing or null field leaves the document as it is."""

    def __init__(self, o: Options, target: bool = True):
        self.field: str = o.str("field")
        self.target_field: str = o.str("target_field", self.field) if target else self.field
        self.ignore_missing = o.bool("ignore_missing", False)

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


class GrokProcessor(_FieldProcessor):
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


class DissectProcessor(_FieldProcessor):
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


_BRACKETS = regex.compile(r"^(\(|<|\"|'|\[)?(.*?)(\)|>|\"|'|\])?$", regex.DOTALL)


class KvProcessor(_FieldProcessor):
    type = "kv"

    def __init__(self, o: Options):
        super().__init__(o, target=False)
        self.field_split = _compile_regex(o.str("field_split"), "field_split")
        self.value_split = _compile_regex(o.str("value_split"), "value_split")
        self.target = o.str("target_field", None)
        inc = o.strings("include_keys", None)
        self.include = set(inc) if inc is not None else None
        self.exclude = set(o.strings("exclude_keys", []))
        self.prefix = o.str("prefix", "")
        self.trim_key = o.str("trim_key", "")
        self.trim_value = o.str("trim_value", "")
        self.strip_brackets = o.bool("strip_brackets", False)

    def _value(self, v: str) -> str:
        if self.trim_value:
            v = v.strip(self.trim_value)
        if self.strip_brackets:
            m = _BRACKETS.match(v)
            if m and m.group(1) and m.group(3) and _pair(m.group(1)) == m.group(3):
                v = m.group(2)
        return v

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
            key = kv[0].strip(self.trim_key) if self.trim_key else kv[0]
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


def _pair(opening: str) -> str:
    return {"(": ")", "<": ">", "[": "]", '"': '"', "'": "'"}[opening]


class JsonProcessor(_FieldProcessor):
    type = "json"

    def __init__(self, o: Options):
        super().__init__(o, target=False)
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
        value = self.read(doc)
        if value is MISSING:
            return
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


class CsvProcessor(_FieldProcessor):
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
                out.append("".join(buf))
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


class DateProcessor(_FieldProcessor):
    type = "date"

    def __init__(self, o: Options):
        super().__init__(o, target=False)
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


class SetProcessor(Processor):
    type = "set"

    def __init__(self, o: Options):
        self.field = compile_template(o.str("field"))
        has_value, has_copy = "value" in o.config, "copy_from" in o.config
        if has_value == has_copy:
            raise ConfigError("either [value] or [copy_from] must be set, not both" if has_value
                              else "[value] required property is missing", "value")
        self.value = compile_template(o.any("value")) if has_value else None
        self.copy_from: str | None = o.str("copy_from") if has_copy else None
        self.override = o.bool("override", True)
        self.ignore_empty = o.bool("ignore_empty_value", False)
        o.str("media_type", "application/json")

    def execute(self, doc: IngestDocument) -> None:
        field = self.field(doc)
        if self.copy_from is not None:
            v = doc.get(self.copy_from)
            if v is MISSING:
                raise ProcessorError(f"field [{self.copy_from}] not present as part of path [{self.copy_from}]")
            value = copy.deepcopy(v)
        else:
            assert self.value is not None
            value = self.value(doc)
        if self.ignore_empty and (value is None or value == ""):
            return
        if not self.override and doc.get(field, None) is not None:
            return
        doc.set(field, value)


class AppendProcessor(Processor):
    type = "append"

    def __init__(self, o: Options):
        self.field = compile_template(o.str("field"))
        value = o.any("value")
        self.values = compile_template(value if isinstance(value, list) else [value])
        self.allow_duplicates = o.bool("allow_duplicates", True)
        o.str("media_type", "application/json")

    def execute(self, doc: IngestDocument) -> None:
        doc.append(self.field(doc), self.values(doc), self.allow_duplicates)


class RenameProcessor(_FieldProcessor):
    type = "rename"

    def __init__(self, o: Options):
        super().__init__(o, target=False)
        self.target = o.str("target_field")
        self.override = o.bool("override", False)

    def execute(self, doc: IngestDocument) -> None:
        value = doc.get(self.field)
        if value is MISSING:
            if self.ignore_missing:
                return
            raise ProcessorError(f"field [{self.field}] doesn't exist")
        if not self.override and doc.has(self.target):
            raise ProcessorError(f"field [{self.target}] already exists")
        doc.remove(self.field)
        try:
            doc.set(self.target, value)
        except ProcessorError:
            doc.set(self.field, value)  # put it back, as Elasticsearch does
            raise


class RemoveProcessor(Processor):
    type = "remove"

    def __init__(self, o: Options):
        fields = o.strings("field", None, single_ok=True)
        keep = o.strings("keep", None, single_ok=True)
        if (fields is None) == (keep is None):
            raise ConfigError("exactly one of [field] and [keep] must be set", "field")
        self.fields = [compile_template(f) for f in fields or []]
        self.keep = keep
        self.ignore_missing = o.bool("ignore_missing", False)

    def execute(self, doc: IngestDocument) -> None:
        if self.keep is not None:
            kept = IngestDocument({})
            for path in self.keep:
                v = doc.get(path)
                if v is not MISSING:
                    kept.set(path, v)
            doc.source.clear()
            doc.source.update(kept.source)
            return
        for f in self.fields:
            path = f(doc)
            if not doc.has(path):
                if self.ignore_missing:
                    continue
                raise ProcessorError(f"field [{path.rsplit('.', 1)[-1]}] not present as part of path [{path}]")
            doc.remove(path)


def _to_int(v: Any, bits: int, name: str) -> int:
    if isinstance(v, bool):
        raise ProcessorError(f"unable to convert [{str(v).lower()}] to {name}")
    if isinstance(v, int):
        n = v
    else:
        s = str(v).strip() if isinstance(v, str) else str(v)
        try:
            n = int(s, 16) if s.lower().startswith(("0x", "-0x", "+0x")) else int(s, 10)
        except ValueError:
            raise ProcessorError(f"unable to convert [{v}] to {name}") from None
    if not -(1 << (bits - 1)) <= n < (1 << (bits - 1)):
        raise ProcessorError(f"unable to convert [{v}] to {name}")
    return n


def _to_float(v: Any, name: str) -> float:
    if isinstance(v, bool):
        raise ProcessorError(f"unable to convert [{str(v).lower()}] to {name}")
    try:
        return float(v)
    except (TypeError, ValueError):
        raise ProcessorError(f"unable to convert [{v}] to {name}") from None


def _to_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    s = str(v)
    if s.lower() in ("true", "false"):
        return s.lower() == "true"
    raise ProcessorError(f"[{v}] is not a boolean value, cannot convert to boolean")


def _to_string(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _to_ip(v: Any) -> str:
    s = str(v)
    try:
        ipaddress.ip_address(s)
    except ValueError:
        raise ProcessorError(f"'{s}' is not an IP string literal.") from None
    return s


def _auto(v: Any) -> Any:
    if not isinstance(v, str):
        return v
    for conv in (lambda s: _to_int(s, 32, "integer"), lambda s: _to_int(s, 64, "long"),
                 lambda s: _to_float(s, "float"), _to_bool):
        try:
            return conv(v)
        except ProcessorError:
            continue
    return v


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "integer": lambda v: _to_int(v, 32, "integer"), "long": lambda v: _to_int(v, 64, "long"),
    "float": lambda v: _to_float(v, "float"), "double": lambda v: _to_float(v, "double"),
    "boolean": _to_bool, "string": _to_string, "ip": _to_ip, "auto": _auto,
}


class ConvertProcessor(_FieldProcessor):
    type = "convert"

    def __init__(self, o: Options):
        super().__init__(o)
        t = o.str("type")
        if t not in _CONVERTERS:
            raise ConfigError(f"type [{t}] not supported, cannot convert field.", "type")
        self.convert = _CONVERTERS[t]

    def execute(self, doc: IngestDocument) -> None:
        v = self.read(doc)
        if v is MISSING:
            return
        doc.set(self.target_field, [self.convert(x) for x in v] if isinstance(v, list) else self.convert(v))


class _StringProcessor(_FieldProcessor):
    """Applies a string function to the field, or to each element when it is a list."""

    def apply(self, value: str) -> Any:
        raise NotImplementedError

    def _one(self, v: Any) -> Any:
        if not isinstance(v, str):
            raise ProcessorError(f"field [{self.field}] of type [{type_name(v)}] cannot be cast to "
                                 f"[java.lang.String]")
        return self.apply(v)

    def execute(self, doc: IngestDocument) -> None:
        v = self.read(doc)
        if v is MISSING:
            return
        doc.set(self.target_field, [self._one(x) for x in v] if isinstance(v, list) else self._one(v))


class LowercaseProcessor(_StringProcessor):
    type = "lowercase"

    def apply(self, value: str) -> str:
        return value.lower()


class UppercaseProcessor(_StringProcessor):
    type = "uppercase"

    def apply(self, value: str) -> str:
        return value.upper()


class TrimProcessor(_StringProcessor):
    type = "trim"

    def apply(self, value: str) -> str:
        return value.strip()


def _java_replacement(replacement: str) -> Callable[[regex.Match[str]], str]:
    """Java's replacement syntax: `$1` / `${name}` are groups, a backslash escapes the next character."""
    parts: list[str | int] = []
    buf: list[str] = []
    i = 0
    while i < len(replacement):
        c = replacement[i]
        if c == "\\" and i + 1 < len(replacement):
            buf.append(replacement[i + 1])
            i += 2
        elif c == "$":
            m = regex.match(r"\$(?:\{([A-Za-z][A-Za-z0-9]*)\}|(\d))", replacement[i:])
            if not m:
                raise ConfigError(f"[replacement] illegal group reference in [{replacement}]", "replacement")
            parts.append("".join(buf))
            buf = []
            parts.append(m.group(1) or int(m.group(2)))  # type: ignore[arg-type]
            i += m.end()
        else:
            buf.append(c)
            i += 1
    parts.append("".join(buf))
    if len(parts) == 1:
        literal = parts[0]
        return lambda m: literal  # type: ignore[return-value]

    def render(m: regex.Match[str]) -> str:
        return "".join(p if isinstance(p, str) else (m.group(p) or "") for p in parts)
    return render


class GsubProcessor(_StringProcessor):
    type = "gsub"

    def __init__(self, o: Options):
        super().__init__(o)
        self.pattern = _compile_regex(o.str("pattern"), "pattern")
        self.replacement = _java_replacement(o.str("replacement"))

    def apply(self, value: str) -> str:
        try:
            return self.pattern.sub(self.replacement, value, timeout=REGEX_TIMEOUT_S)
        except TimeoutError:
            raise ProcessorError(f"[pattern] {self.pattern.pattern} exceeded its time limit") from None
        except IndexError as e:
            raise ProcessorError(f"No group in [replacement]: {e}") from None


class SplitProcessor(_FieldProcessor):
    type = "split"

    def __init__(self, o: Options):
        super().__init__(o)
        self.separator = _compile_regex(o.str("separator"), "separator")
        self.preserve_trailing = o.bool("preserve_trailing", False)

    def execute(self, doc: IngestDocument) -> None:
        v = self.read_str(doc)
        if v is MISSING:
            return
        doc.set(self.target_field, java_split(self.separator, v, self.preserve_trailing))


class DotExpanderProcessor(Processor):
    """Turns a literal dotted key (`{"id.orig_h": x}`, common in JSON logs) into nested objects."""

    type = "dot_expander"

    def __init__(self, o: Options):
        self.field = o.str("field")
        self.path = o.str("path", None)
        self.override = o.bool("override", False)
        if self.field != "*" and "." not in self.field:
            raise ConfigError(f"[field] field does not contain a dot and is not a wildcard", "field")

    def execute(self, doc: IngestDocument) -> None:
        container = doc.source if self.path is None else doc.get(self.path)
        if not isinstance(container, dict):
            if self.path is not None and container is MISSING:
                raise ProcessorError(f"field [{self.path}] not present as part of path [{self.path}]")
            return
        keys = [k for k in container if "." in k] if self.field == "*" else \
            ([self.field] if self.field in container else [])
        prefix = f"{self.path}." if self.path else ""
        for key in keys:
            value = container.pop(key)
            target = prefix + key
            if not self.override and doc.get(target, None) is not None:
                doc.append(target, value if isinstance(value, list) else [value])
            else:
                doc.set(target, value)


class DropProcessor(Processor):
    type = "drop"

    def __init__(self, o: Options):
        pass

    def execute(self, doc: IngestDocument) -> None:
        raise Dropped()


class FailProcessor(Processor):
    type = "fail"

    def __init__(self, o: Options):
        self.message = compile_template(o.str("message"))

    def execute(self, doc: IngestDocument) -> None:
        raise ProcessorError(str(self.message(doc)))


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
