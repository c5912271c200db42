"""The document a pipeline works on, with Elasticsearch's dotted field-path semantics.

`a.b.c` walks nested objects (a numeric segment indexes a list); setting a path creates the missing
objects on the way; `_ingest.*` names the ingest metadata and `_source.` is an optional prefix.
"""
from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from typing import Any


class ProcessorError(Exception):
    """A processor failed on a document: the message mirrors Elasticsearch's wording where it has one."""


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def java_equals(a: Any, b: Any) -> bool:
    """Java's `equals` on parsed JSON: unlike Python's `==`, `true != 1` and `1 != 1.0`."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(java_equals(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(java_equals(v, b[k]) for k, v in a.items())
    return bool(a == b)


def java_str(v: Any) -> str:
    """`String.valueOf` of a parsed JSON scalar: booleans in lower case and doubles as Java's Double.toString
    writes them (`1.0E7`, `1.0E-4`, `NaN`), which differs from Python's `str` outside [0.001, 10^7)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if not isinstance(v, float):
        return str(v)
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "Infinity" if v > 0 else "-Infinity"
    if v == 0 or 1e-3 <= abs(v) < 1e7:
        return repr(v)  # Python's repr is plain decimal here, with the same shortest digits
    sign, digits, exp = Decimal(repr(v)).as_tuple()
    text = "".join(map(str, digits)).rstrip("0") or "0"
    exponent = len(digits) - 1 + int(exp)
    return f"{'-' if sign else ''}{text[0]}.{text[1:] or '0'}E{exponent}"


def type_name(value: Any) -> str:
    """Java-ish type names, as Elasticsearch reports them in cast errors."""
    return {str: "java.lang.String", int: "java.lang.Integer", float: "java.lang.Double",
            bool: "java.lang.Boolean", list: "java.util.ArrayList", dict: "java.util.HashMap",
            type(None): "null"}.get(type(value), type(value).__name__)


@lru_cache(maxsize=4096)
def split_path(path: str) -> tuple[bool, tuple[str, ...]]:
    """(whether the path is in the ingest metadata, its segments)."""
    if not path:
        raise ProcessorError("path cannot be null nor empty")
    if path.startswith("_ingest."):
        return True, tuple(path[8:].split("."))
    if path.startswith("_source."):
        path = path[8:]
    return False, tuple(path.split("."))


def _index(items: list[Any], part: str, path: str) -> int:
    try:
        i = int(part)
    except ValueError:
        raise ProcessorError(f"[{part}] is not an integer, cannot be used as an index as part of path [{path}]") \
            from None
    if not 0 <= i < len(items):
        raise ProcessorError(f"[{part}] is out of bounds for array with length [{len(items)}] as part of path "
                             f"[{path}]")
    return i


class IngestDocument:
    __slots__ = ("source", "ingest")

    def __init__(self, source: dict[str, Any], ingest: dict[str, Any] | None = None):
        self.source = source
        self.ingest = ingest if ingest is not None else {}

    def _root(self, path: str) -> tuple[dict[str, Any], tuple[str, ...]]:
        in_ingest, parts = split_path(path)
        return (self.ingest if in_ingest else self.source), parts

    def get(self, path: str, default: Any = MISSING) -> Any:
        """The value at `path`, or `default` when any segment is absent."""
        node: Any
        node, parts = self._root(path)
        if len(parts) == 1:
            return node.get(parts[0], default)
        for part in parts:
            if isinstance(node, dict):
                if part not in node:
                    return default
                node = node[part]
            elif isinstance(node, list):
                try:
                    node = node[int(part)]
                except (ValueError, IndexError):
                    return default
            else:
                return default
        return node

    def require(self, path: str) -> Any:
        value = self.get(path)
        if value is MISSING:
            raise ProcessorError(f"field [{path.rsplit('.', 1)[-1]}] not present as part of path [{path}]")
        return value

    def has(self, path: str) -> bool:
        return self.get(path) is not MISSING

    def set(self, path: str, value: Any) -> None:
        node: Any
        in_ingest, parts = split_path(path)
        node = self.ingest if in_ingest else self.source
        last = parts[-1]
        for part in parts[:-1]:
            # The common case first: walking or creating plain objects.
            if type(node) is dict:
                child = node.get(part)
                if type(child) is dict:
                    node = child
                    continue
                if child is None:
                    node[part] = node = {}
                    continue
            node = self._descend(node, part, path, last)
        if type(node) is dict:
            node[last] = value
        elif isinstance(node, list):
            node[_index(node, last, path)] = value
        else:
            raise ProcessorError(f"cannot set [{last}] with parent object of type [{type_name(node)}] "
                                 f"as part of path [{path}]")

    @staticmethod
    def _descend(node: Any, part: str, path: str, last: str) -> Any:
        """One step of `set` through a list, or a failure through a scalar."""
        if isinstance(node, dict):
            child = node[part]
            if isinstance(child, list):
                return child
            # A scalar: nothing can be set below it.
            raise ProcessorError(f"cannot set [{last}] with parent object of type [{type_name(child)}] as part "
                                 f"of path [{path}]")
        if isinstance(node, list):
            return node[_index(node, part, path)]
        raise ProcessorError(f"cannot set [{last}] with parent object of type [{type_name(node)}] "
                             f"as part of path [{path}]")

    def append(self, path: str, values: list[Any], allow_duplicates: bool = True) -> None:
        """Elasticsearch's IngestDocument.appendFieldValue: a missing field becomes a list of all `values`; an
        existing one (a null too: `[null, ...]`) becomes a list with it first. Without duplicates, a value
        already there (Java `equals`: `true` is not `1`) is skipped, and a scalar that nothing was appended to
        stays a scalar."""
        current = self.get(path)
        if current is MISSING:
            self.set(path, list(values))
            return
        items = current if isinstance(current, list) else [current]
        appended = False
        for v in values:
            if allow_duplicates or not any(java_equals(v, x) for x in items):
                items.append(v)
                appended = True
        if appended or isinstance(current, list):
            self.set(path, items)

    def remove(self, path: str) -> None:
        node: Any
        node, parts = self._root(path)
        for part in parts[:-1]:
            node = node.get(part, MISSING) if isinstance(node, dict) else MISSING
            if node is MISSING:
                raise ProcessorError(f"field [{part}] not present as part of path [{path}]")
        last = parts[-1]
        if isinstance(node, dict) and last in node:
            del node[last]
        elif isinstance(node, list):
            try:
                del node[int(last)]
            except (ValueError, IndexError):
                raise ProcessorError(f"[{last}] is out of bounds for array as part of path [{path}]") from None
        else:
            raise ProcessorError(f"field [{last}] not present as part of path [{path}]")
