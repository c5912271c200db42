"""Processors that reshape a document: set, append, rename, remove, convert, case and trim, gsub, split,
dot_expander, drop, fail."""
from __future__ import annotations

import copy
import ipaddress
from typing import Any, Callable

import regex

from .document import MISSING, IngestDocument, ProcessorError, java_str, type_name
from .options import (REGEX_TIMEOUT_S, ConfigError, Dropped, Options, Processor, compile_regex, FieldProcessor,
                      java_split)
from .template import compile_template


def _json_media_type(o: Options) -> None:
    """Templates are rendered with Elasticsearch's default `application/json` escaping; the other media types
    (`text/plain`: HTML escaping, `application/x-www-form-urlencoded`: URL encoding) are not implemented."""
    media_type = o.str("media_type", "application/json")
    if media_type.lower().replace(" ", "") not in ("application/json", "application/json;charset=utf-8"):
        raise ConfigError(f"[media_type] {media_type} is not supported by the embedded executor "
                          f"(only application/json)", "media_type")


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
        _json_media_type(o)

    def execute(self, doc: IngestDocument) -> None:
        field = self.field(doc)
        if self.copy_from is not None:
            v = doc.get(self.copy_from)
            if v is MISSING and self.ignore_empty:
                return  # Elasticsearch reads copy_from with ignore_missing = ignore_empty_value
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
        _json_media_type(o)

    def execute(self, doc: IngestDocument) -> None:
        doc.append(self.field(doc), self.values(doc), self.allow_duplicates)


class RenameProcessor(FieldProcessor):
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
            if self.ignore_missing and not doc.has(path):
                continue
            doc.remove(path)  # its error names the first missing element, as Elasticsearch's does


_JAVA_INT = regex.compile(r"(?P<neg>-)?0x(?P<hex>[0-9a-fA-F]+)|[+-]?[0-9]+")


def _to_int(v: Any, bits: int, name: str) -> int:
    if isinstance(v, bool):
        raise ProcessorError(f"unable to convert [{str(v).lower()}] to {name}")
    if isinstance(v, int):
        n = v
    else:
        # Java's parseInt / decode: no spaces, no underscores; hex only as 0x... or -0x...
        s = str(v)
        m = _JAVA_INT.fullmatch(s)
        if m is None:
            raise ProcessorError(f"unable to convert [{v}] to {name}")
        n = int(m["hex"], 16) * (-1 if m["neg"] else 1) if m["hex"] else int(s, 10)
    if not -(1 << (bits - 1)) <= n < (1 << (bits - 1)):
        raise ProcessorError(f"unable to convert [{v}] to {name}")
    return n


# Java's String.trim (what Elasticsearch runs) removes characters <= U+0020 only: control characters yes,
# Unicode spaces such as U+00A0 no (Python's str.strip does the opposite for both).
_JAVA_TRIM = "".join(map(chr, range(33)))


# Java's Double.parseDouble / Float.parseFloat grammar (after trimming characters <= ' '): `NaN`, `Infinity`,
# decimals with an optional f/F/d/D suffix, hex floats. Python's float() differs: it takes `inf`, `nan`, `1_0`
# and rejects `1.5f`.
_JAVA_FLOAT = regex.compile(r"(?P<sign>[+-]?)(?:(?P<nan>NaN)|(?P<inf>Infinity)|(?P<dec>(?:\d+\.?\d*|\.\d+)"
                            r"(?:[eE][+-]?\d+)?)|(?P<hex>0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)"
                            r"[pP][+-]?\d+))[fFdD]?")


def _to_float(v: Any, name: str) -> float:
    text = java_str(v)
    m = _JAVA_FLOAT.fullmatch(text.strip(_JAVA_TRIM))
    if isinstance(v, bool) or m is None:
        raise ProcessorError(f"unable to convert [{text}] to {name}")
    if m["nan"]:
        return float("nan")
    if m["inf"]:
        return float(f"{m['sign']}inf")
    return float(m["sign"] + m["dec"]) if m["dec"] else float.fromhex(m["sign"] + m["hex"])


def _to_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    s = str(v)
    if s.lower() in ("true", "false"):
        return s.lower() == "true"
    raise ProcessorError(f"[{v}] is not a boolean value, cannot convert to boolean")


def _to_string(v: Any) -> str:
    return java_str(v)


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


class ConvertProcessor(FieldProcessor):
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


class _StringProcessor(FieldProcessor):
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
        return value.strip(_JAVA_TRIM)


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
        self.pattern = compile_regex(o.str("pattern"), "pattern")
        self.replacement = _java_replacement(o.str("replacement"))

    def apply(self, value: str) -> str:
        try:
            return self.pattern.sub(self.replacement, value, timeout=REGEX_TIMEOUT_S)
        except TimeoutError:
            raise ProcessorError(f"[pattern] {self.pattern.pattern} exceeded its time limit") from None
        except IndexError as e:
            raise ProcessorError(f"No group in [replacement]: {e}") from None


class SplitProcessor(FieldProcessor):
    type = "split"

    def __init__(self, o: Options):
        super().__init__(o)
        self.separator = compile_regex(o.str("separator"), "separator")
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
            raise ConfigError("[field] field does not contain a dot and is not a wildcard", "field")

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
