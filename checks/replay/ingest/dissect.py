"""Dissect: split a string on the literal delimiters between `%{key}` placeholders (no regular expressions).

Key modifiers as Elasticsearch documents them: `%{}` / `%{?name}` skip, `%{+name}` append (with
`%{+name/N}` ordering and `append_separator`), `%{*name}` / `%{&name}` reference (key from one field,
value from another), and `%{name->}` right padding (repeated delimiters after it are skipped).
"""
from __future__ import annotations

from dataclasses import dataclass

import regex

from .document import ProcessorError

_KEY = regex.compile(r"%\{([^}]*)\}")


class DissectCompileError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class _Key:
    name: str
    modifier: str  # "", "skip", "append", "ref_key", "ref_value"
    order: int
    right_pad: bool


def _parse_key(body: str, pattern: str) -> _Key:
    right_pad = body.endswith("->")
    if right_pad:
        body = body[:-2]
    modifier, name = "", body
    if body.startswith("+"):
        modifier, name = "append", body[1:]
    elif body.startswith("?"):
        modifier, name = "skip", body[1:]
    elif body.startswith("*"):
        modifier, name = "ref_key", body[1:]
    elif body.startswith("&"):
        modifier, name = "ref_value", body[1:]
    order = 0
    if modifier == "append" and "/" in name:
        name, _, num = name.rpartition("/")
        if not num.isdigit():
            raise DissectCompileError(f"invalid append order [{num}] in dissect pattern [{pattern}]")
        order = int(num)
    if not name and modifier not in ("", "skip"):
        raise DissectCompileError(f"a dissect key with a modifier needs a name, in [{pattern}]")
    if not name:
        modifier = "skip"
    return _Key(name, modifier, order, right_pad)


class Dissect:
    def __init__(self, pattern: str, append_separator: str = ""):
        self.pattern = pattern
        self.append_separator = append_separator
        parts = _KEY.split(pattern)
        # parts = [leading, key0, delim0, key1, delim1, ...]; a delimiter after the last key is a suffix.
        self.leading = parts[0]
        self.keys = [_parse_key(body, pattern) for body in parts[1::2]]
        self.delimiters = parts[2::2]
        if not self.keys:
            raise DissectCompileError(f"Unable to parse pattern [{pattern}]: no keys")
        for i, d in enumerate(self.delimiters[:-1]):
            if d == "":
                raise DissectCompileError(f"Unable to parse pattern [{pattern}]: keys {i + 1} and {i + 2} have "
                                          f"no delimiter between them")
        refs = {k.name for k in self.keys if k.modifier == "ref_key"}
        vals = {k.name for k in self.keys if k.modifier == "ref_value"}
        if refs != vals:
            raise DissectCompileError(f"Unable to parse pattern [{pattern}]: every %{{*name}} needs a "
                                      f"matching %{{&name}}")

    def _fail(self, value: str) -> ProcessorError:
        return ProcessorError(f"Unable to find match for dissect pattern: {self.pattern} against source: {value}")

    def match(self, value: str) -> dict[str, str]:
        if not value.startswith(self.leading):
            raise self._fail(value)
        pos = len(self.leading)
        values: list[str] = []
        last = len(self.keys) - 1
        for i, key in enumerate(self.keys):
            delim = self.delimiters[i]
            if i == last and delim == "":
                values.append(value[pos:])
                pos = len(value)
                break
            end = value.find(delim, pos)
            if end < 0:
                raise self._fail(value)
            values.append(value[pos:end])
            pos = end + len(delim)
            if key.right_pad:
                while delim and value.startswith(delim, pos):
                    pos += len(delim)
        return self._assemble(values)

    def _assemble(self, values: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        appends: dict[str, list[tuple[int, int, str]]] = {}
        ref_keys: dict[str, str] = {}
        ref_values: dict[str, str] = {}
        for idx, (key, v) in enumerate(zip(self.keys, values)):
            if key.modifier == "skip":
                continue
            if key.modifier == "append":
                appends.setdefault(key.name, []).append((key.order, idx, v))
            elif key.modifier == "ref_key":
                ref_keys[key.name] = v
            elif key.modifier == "ref_value":
                ref_values[key.name] = v
            elif key.name in appends or any(k.name == key.name and k.modifier == "append" for k in self.keys):
                # A plain key that is also appended to is the first part of the appended value.
                appends.setdefault(key.name, []).append((0, idx, v))
            else:
                out[key.name] = v
        for name, pieces in appends.items():
            out[name] = self.append_separator.join(v for _, _, v in sorted(pieces))
        for name, k in ref_keys.items():
            out[k] = ref_values[name]
        return out
