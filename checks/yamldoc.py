"""YAML parsed once with the C loader, keeping node marks so every value can be traced to its line.

pySigma keeps no positions, so the same node tree that yields the data handed to pySigma also yields
the line and column of every key and value (1-based). The node tree itself is dropped once indexed: it
held more objects than everything else a check run keeps (a Mark pair per node).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterator, NamedTuple

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
# libyaml's composer recurses per nesting level and overflows the C stack (a segfault, not an exception)
# somewhere past 20,000 levels; real documents stay under 20.
MAX_DEPTH = 1_000


class Pos(NamedTuple):
    """A span, 1-based. A named tuple: one is built per YAML node, and a tuple builds fastest."""
    line: int
    column: int
    end_line: int
    end_column: int


@dataclass
class Document:
    data: Any
    keys: dict[PathKey, Pos] = field(default_factory=dict)
    values: dict[PathKey, Pos] = field(default_factory=dict)
    # Keys repeated within one mapping (YAML keeps the last value silently): path and the repeat's position.
    duplicates: list[tuple[PathKey, Pos]] = field(default_factory=list)

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


def _index(doc: Document, root: yaml.Node | None) -> None:
    if root is None:
        return
    keys, values = doc.keys, doc.values
    seen: set[int] = set()
    count = 0
    stack: list[tuple[yaml.Node, PathKey]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise YamlError(f"document has more than {MAX_NODES} nodes (alias expansion?)", 1, 1)
        if path not in values:
            values[path] = _mark(node)
        cls = type(node)
        if cls is yaml.ScalarNode:  # most nodes: nothing below them
            continue
        if id(node) in seen:  # an alias: its target is already indexed where it was defined
            continue
        seen.add(id(node))
        if cls is yaml.MappingNode:
            seen_keys: set[Any] = set()
            for k, v in node.value:
                key = k.value if type(k) is yaml.ScalarNode else repr(k)
                kpath = path + (key,)
                if key in seen_keys and k.tag != "tag:yaml.org,2002:merge":
                    doc.duplicates.append((kpath, _mark(k)))
                seen_keys.add(key)
                if kpath not in keys:
                    keys[kpath] = _mark(k)
                stack.append((v, kpath))
        elif cls is yaml.SequenceNode:
            for i, item in enumerate(node.value):
                stack.append((item, path + (i,)))


def _error_from(exc: yaml.YAMLError) -> YamlError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    msg = f"{context}, {problem}" if context else str(problem)
    return YamlError(msg, line, col)


def _alias_bomb(node: yaml.Node) -> yaml.Node | None:
    """The first node whose alias expansion would blow up (or that contains itself), else None.

    Sizes are memoised per node, so a shared anchor is counted once per reference without expanding it.
    """
    memo: dict[int, int] = {}
    culprit: list[yaml.Node] = []
    in_progress = MAX_NODES + 1

    def size(n: yaml.Node, depth: int = 0) -> int:
        if id(n) in memo:
            if memo[id(n)] == in_progress and not culprit:
                culprit.append(n)  # a cycle: the node contains itself
            return memo[id(n)]
        if depth > MAX_DEPTH:
            return in_progress
        memo[id(n)] = in_progress
        if isinstance(n, yaml.MappingNode):
            total = 1 + sum(size(k, depth + 1) + size(v, depth + 1) for k, v in n.value)
        elif isinstance(n, yaml.SequenceNode):
            total = 1 + sum(size(v, depth + 1) for v in n.value)
        else:
            total = 1
        memo[id(n)] = min(total, in_progress)
        if total > MAX_NODES and not culprit:
            culprit.append(n)
        return memo[id(n)]

    size(node)
    return culprit[0] if culprit else None


def decode(raw: bytes) -> str:
    if b"\x00" in raw[:8192]:
        raise YamlError("file is binary, not YAML text", 1, 1)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise YamlError(f"file is not valid UTF-8 (byte {e.start})", line, 1) from None


def _check_depth(text: str) -> None:
    """Refuse documents nested deeper than MAX_DEPTH before libyaml composes them.

    Only text that could nest that deep is scanned (by the event parser, which does not recurse): a level
    needs a `[`, `{`, `- ` or `? `, or one more column of indentation.
    """
    openers = text.count("[") + text.count("{") + text.count("- ") + text.count("? ")
    if openers <= MAX_DEPTH and not _DEEP_INDENT.search(text):
        return
    depth = 0
    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    mark = event.start_mark
                    raise YamlError(f"nesting deeper than {MAX_DEPTH} levels", mark.line + 1, mark.column + 1)
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                depth -= 1
    except yaml.YAMLError as e:
        raise _error_from(e) from None


_DEEP_INDENT = re.compile(r"^[ \t]{%d}" % MAX_DEPTH, re.M)


def load_all(text: str | bytes) -> Iterator[Document]:
    """Yield each document of a YAML stream with its data and positions; raise YamlError at the first error."""
    if isinstance(text, bytes):
        text = decode(text)
    _check_depth(text)
    may_alias = "&" in text
    loader = _Loader(text)
    try:
        while True:
            try:
                if not loader.check_node():
                    break
                node = loader.get_node()
                # Without an anchor there is no alias to expand (the common case: skip the walk).
                bomb = _alias_bomb(node) if node is not None and may_alias else None
                if bomb is not None:
                    raise YamlError("aliases expand beyond a sane size (YAML alias bomb or cycle)",
                                    bomb.start_mark.line + 1, bomb.start_mark.column + 1)
                data = loader.construct_document(node) if node is not None else None
            except yaml.YAMLError as e:
                raise _error_from(e) from None
            except (ValueError, TypeError, RecursionError) as e:  # e.g. unhashable key, bad timestamp
                raise YamlError(f"cannot build YAML value: {e}", 1, 1) from None
            doc = Document(data=data)
            _index(doc, node)
            yield doc
    finally:
        loader.dispose()


def load_one(text: str | bytes) -> Document:
    docs = list(load_all(text))
    return docs[0] if docs else Document(data=None)
