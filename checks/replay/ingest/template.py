"""`{{field}}` / `{{{field}}}` references in processor values, as Elasticsearch's mustache templates use them.

Only field references: no sections, partials or lambdas (a section tag is a load-time error). A missing
field renders as the empty string. Elasticsearch compiles ingest templates with the `application/json`
media type, whose encoder (Jackson's `quoteAsString`) escapes what `{{field}}` inserts: `"` -> `\\"`,
`\\` -> `\\\\`, control characters -> `\\n`, `\\u0001`...; `{{{field}}}` inserts the value as it is.
"""
from __future__ import annotations

import json
from typing import Any, Callable

import regex

from .document import MISSING, IngestDocument, java_str

_TAG = regex.compile(r"\{\{\{\s*([^{}]*?)\s*\}\}\}|\{\{\s*([^{}]*?)\s*\}\}")


class TemplateError(ValueError):
    pass


def _render_value(v: Any) -> str:
    if v is MISSING or v is None:
        return ""
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"), ensure_ascii=False)
    return java_str(v)


# Jackson's short escapes; every other control character becomes \u00XX (upper-case hex, as Jackson writes it).
_SHORT = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
_NEEDS_ESCAPE = regex.compile(r'["\\\x00-\x1f]')


def json_escape(text: str) -> str:
    """What Elasticsearch's mustache JsonEscapeEncoder writes for `{{field}}`."""
    return _NEEDS_ESCAPE.sub(lambda m: _SHORT.get(m[0]) or f"\\u{ord(m[0]):04X}", text)


Renderer = Callable[[IngestDocument], Any]


def compile_template(value: Any) -> Renderer:
    """A function of the document giving `value` with its templates filled; non-strings recurse."""
    if isinstance(value, str):
        if "{{" not in value:
            return lambda doc: value
        pieces: list[str | tuple[str, bool]] = []  # text, or (field, escaped)
        pos = 0
        for m in _TAG.finditer(value):
            name = m.group(1) if m.group(1) is not None else m.group(2)
            if not name or name[0] in "#^/>!&=":
                raise TemplateError(f"template [{value}]: only {{{{field}}}} references are supported, "
                                    f"not [{m.group(0)}]")
            pieces.append(value[pos:m.start()])
            pieces.append((name, m.group(1) is None))
            pos = m.end()
        pieces.append(value[pos:])

        def piece(p: str | tuple[str, bool], doc: IngestDocument) -> str:
            if isinstance(p, str):
                return p
            text = _render_value(doc.get(p[0]))
            return json_escape(text) if p[1] else text

        def render(doc: IngestDocument) -> str:
            return "".join(piece(p, doc) for p in pieces)
        return render
    if isinstance(value, list):
        items = [compile_template(v) for v in value]
        return lambda doc: [r(doc) for r in items]
    if isinstance(value, dict):
        entries = [(compile_template(k), compile_template(v)) for k, v in value.items()]
        return lambda doc: {k(doc): v(doc) for k, v in entries}
    return lambda doc: value
