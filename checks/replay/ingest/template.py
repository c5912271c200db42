"""`{{field}}` / `{{{field}}}` references in processor values, as Elasticsearch's mustache templates use them.

Only field references: no sections, partials or lambdas (a section tag is a load-time error). A missing
field renders as the empty string; values are not HTML- or JSON-escaped.
"""
from __future__ import annotations

import json
from typing import Any, Callable

import regex

from .document import MISSING, IngestDocument

_TAG = regex.compile(r"\{\{\{\s*([^{}]*?)\s*\}\}\}|\{\{\s*([^{}]*?)\s*\}\}")


class TemplateError(ValueError):
    pass


def _render_value(v: Any) -> str:
    if v is MISSING or v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"), ensure_ascii=False)
    return str(v)


Renderer = Callable[[IngestDocument], Any]


def compile_template(value: Any) -> Renderer:
    """A function of the document giving `value` with its templates filled; non-strings recurse."""
    if isinstance(value, str):
        if "{{" not in value:
            return lambda doc: value
        pieces: list[str | tuple[str]] = []
        pos = 0
        for m in _TAG.finditer(value):
            name = m.group(1) if m.group(1) is not None else m.group(2)
            if not name or name[0] in "#^/>!&=":
                raise TemplateError(f"template [{value}]: only {{{{field}}}} references are supported, "
                                    f"not [{m.group(0)}]")
            pieces.append(value[pos:m.start()])
            pieces.append((name,))
            pos = m.end()
        pieces.append(value[pos:])

        def render(doc: IngestDocument) -> str:
            return "".join(p if isinstance(p, str) else _render_value(doc.get(p[0])) for p in pieces)
        return render
    if isinstance(value, list):
        items = [compile_template(v) for v in value]
        return lambda doc: [r(doc) for r in items]
    if isinstance(value, dict):
        entries = [(compile_template(k), compile_template(v)) for k, v in value.items()]
        return lambda doc: {k(doc): v(doc) for k, v in entries}
    return lambda doc: value
