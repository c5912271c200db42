"""YAML parsed once with the C loader, keeping node marks so every value can be traced to its line.

pySigma keeps no positions, so the same node tree that yields the data handed to pySigma also yields
the line and column of every key and value (1-based).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import yaml

try:
    _Base = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Base = yaml.SafeLoader  # type: ignore[misc]


class _Loader(_Base):  # type: ignore[misc,valid-type]
    """Safe loading, except that timestamps stay strings: Sigma compares strings, pySigma parses `date:`
    itself (so `date: 2026-13-01` is a Sigma date error at its line, not a YAML construction failure)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _Base.yaml_implicit_resolvers.items()
}

PathKey = tuple[Any, ...]
# Beyond this many nodes a document is hostile (alias bombs) or absurd for a rule.
MAX_NODES = 200_000


@dataclass(frozen=True, slots=True)
class Pos:
    line: int
    column: int
    end_line: int
    end_column: int


@dataclass
class Document:
    data: Any
    node: yaml.Node | None
    keys: dict[PathKey, Pos] = field(default_factory=dict)
    values: dict[PathKey, Pos] = field(default_factory=dict)

    def pos(self, path: PathKey) -> Pos:
        """Position of the key at `path` (or the value, for list items), else of the nearest ancestor."""
        path = tuple(path)
        while path:
            hit = self.keys.get(path) or self.values.get(path)
            if hit:
                return hit
            path = path[:-1]
        return self.values.get((), Pos(1, 1, 1, 1))

    def value_pos(self, path: PathKey) -> Pos:
        path = tuple(path)
        return self.values.get(path) or self.pos(path)

    def line(self, path: PathKey) -> int:
        return self.pos(path).line


class YamlError(Exception):
    def __init__(self, message: str, line: int, column: int):
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


def _mark(node: yaml.Node) -> Pos:
    s, e = node.start_mark, node.end_mark
    return Pos(s.line + 1, s.column + 1, e.line + 1, e.column + 1)


def _index(doc: Document) -> None:
    seen: set[int] = set()
    count = 0
    stack: list[tuple[yaml.Node, PathKey]] = [(doc.node, ())] if doc.node is not None else []
    while stack:
        node, path = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise YamlError(f"document has more than {MAX_NODES} nodes (alias expansion?)", 1, 1)
        doc.values.setdefault(path, _mark(node))
        if id(node) in seen:  # an alias: its target is already indexed where it was defined
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = k.value if isinstance(k, yaml.ScalarNode) else repr(k)
                doc.keys.setdefault(path + (key,), _mark(k))
                stack.append((v, path + (key,)))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                stack.append((item, path + (i,)))


def _error_from(exc: yaml.YAMLError) -> YamlError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    msg = f"{context}, {problem}" if context else str(problem)
    return YamlError(msg, line, col)


def _has_alias_cycle_or_bomb(node: yaml.Node) -> bool:
    """True when expanding aliases would blow up: count expanded size with memoisation."""
    memo: dict[int, int] = {}

    def size(n: yaml.Node, depth: int = 0) -> int:
        if id(n) in memo:
            return memo[id(n)]
        if depth > 200:
            return MAX_NODES + 1
        memo[id(n)] = MAX_NODES + 1  # a cycle counts as infinite
        if isinstance(n, yaml.MappingNode):
            total = 1 + sum(size(k, depth + 1) + size(v, depth + 1) for k, v in n.value)
        elif isinstance(n, yaml.SequenceNode):
            total = 1 + sum(size(v, depth + 1) for v in n.value)
        else:
            total = 1
        memo[id(n)] = min(total, MAX_NODES + 1)
        return memo[id(n)]

    return size(node) > MAX_NODES


def decode(raw: bytes) -> str:
    if b"\x00" in raw[:8192]:
        raise YamlError("file is binary, not YAML text", 1, 1)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise YamlError(f"file is not valid UTF-8 (byte {e.start})", line, 1) from None


def load_all(text: str | bytes) -> Iterator[Document]:
    """Yield each document of a YAML stream with its data and positions; raise YamlError at the first error."""
    if isinstance(text, bytes):
        text = decode(text)
    loader = _Loader(text)
    try:
        while True:
            try:
                if not loader.check_node():
                    break
                node = loader.get_node()
                if node is not None and _has_alias_cycle_or_bomb(node):
                    raise YamlError("aliases expand beyond a sane size (YAML alias bomb?)",
                                    node.start_mark.line + 1, node.start_mark.column + 1)
                data = loader.construct_document(node) if node is not None else None
            except yaml.YAMLError as e:
                raise _error_from(e) from None
            except (ValueError, TypeError, RecursionError) as e:  # e.g. unhashable key, bad timestamp
                raise YamlError(f"cannot build YAML value: {e}", 1, 1) from None
            doc = Document(data=data, node=node)
            _index(doc)
            yield doc
    finally:
        loader.dispose()


def load_one(text: str | bytes) -> Document:
    docs = list(load_all(text))
    return docs[0] if docs else Document(data=None, node=None)
