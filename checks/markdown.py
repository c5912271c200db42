"""Just enough Markdown for documents such as ADS: headings (ATX and setext) and the lines under each.

Lines are numbered from 1, as in annotations. Fenced code blocks are opaque (a `# comment` inside one is not
a heading) and HTML comments are blanked out but keep their lines, so positions survive.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Heading:
    level: int
    text: str
    line: int


@dataclass
class Block:
    """A heading and the lines below it up to the next heading of the same or a higher level."""

    heading: Heading
    # (line number, text) pairs, HTML comments already blanked.
    lines: list[tuple[int, str]] = field(default_factory=list)

    @property
    def end_line(self) -> int:
        return self.lines[-1][0] if self.lines else self.heading.line

    def text(self) -> str:
        return "\n".join(t for _, t in self.lines)


@dataclass
class MarkdownDoc:
    lines: list[str]
    headings: list[Heading]
    # Line numbers inside fenced code blocks (fences included).
    code_lines: set[int]


def strip_comments(text: str) -> str:
    """Blank out HTML comments, keeping their newlines so line numbers do not move."""
    return _COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), text)


def parse(text: str) -> MarkdownDoc:
    lines = strip_comments(text.replace("\r\n", "\n").replace("\r", "\n")).split("\n")
    headings: list[Heading] = []
    heading_lines: set[int] = set()
    code: set[int] = set()
    fence: str | None = None
    for i, line in enumerate(lines):
        n = i + 1
        m = _FENCE.match(line)
        if fence is not None:
            code.add(n)
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
                fence = None
            continue
        if m:
            fence = m.group(1)
            code.add(n)
            continue
        m = _ATX.match(line)
        if m:
            headings.append(Heading(len(m.group(1)), (m.group(2) or "").strip(), n))
            heading_lines.add(n)
            continue
        # Setext: a text line underlined with === (level 1) or --- (level 2); a lone --- after a blank is a rule.
        m = _SETEXT.match(line)
        if m and i > 0 and lines[i - 1].strip() and (n - 1) not in code \
                and (n - 1) not in heading_lines and not _is_list_or_quote(lines[i - 1]):
            headings.append(Heading(1 if m.group(1)[0] == "=" else 2, lines[i - 1].strip(), n - 1))
            heading_lines.add(n - 1)
    headings.sort(key=lambda h: h.line)
    return MarkdownDoc(lines, headings, code)


def _is_list_or_quote(line: str) -> bool:
    return bool(re.match(r"^\s*(?:[-*+>]|\d+[.)])\s", line))


def blocks(doc: MarkdownDoc, starts: list[Heading]) -> list[Block]:
    """The block under each heading in `starts`, ending at the next heading in `starts` or at the next
    heading (of any kind) of the same or a higher level."""
    start_lines = {h.line for h in starts}
    index = {x.line: i for i, x in enumerate(doc.headings)}
    out = []
    for h in starts:
        block = Block(h)
        first = h.line + 1
        # A setext heading's underline is part of the heading.
        if first <= len(doc.lines) and _SETEXT.match(doc.lines[first - 1]) and (first - 1) not in doc.code_lines:
            first += 1
        last = len(doc.lines)
        for x in doc.headings[index[h.line] + 1:]:
            if x.line in start_lines or x.level <= h.level:
                last = x.line - 1
                break
        block.lines = [(n, doc.lines[n - 1]) for n in range(first, last + 1)]
        out.append(block)
    return out
