"""Reviewer commands in pull request comments: `/replay [RULE...]`, `/recheck`, `/kpi [--days N]`, `/help`.

One command per line, anywhere in the comment, case-insensitive. Lines inside fenced or indented code blocks,
block quotes and HTML comments are not commands: quoting someone's `/replay` must not run it again.
Pure: text in, commands out.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

KNOWN = ("replay", "recheck", "kpi", "help")
MAX_COMMANDS = 10
MAX_DAYS = 365
DEFAULT_DAYS = 30

HELP_TEXT = """\
detbot understands these commands, one per line in a pull request comment (write access needed):

| command | what it does |
|---|---|
| `/replay [RULE...]` | re-parse the test events' raw logs with the current parsers and re-run the rules (all changed rules, or the rule ids, paths or "quoted titles" given) |
| `/recheck` | run the syntax, tests, coverage and ADS checks again |
| `/kpi [--days N]` | post the alert KPIs of the changed rules over the last N days (default 30) |
| `/help` | show this text |
"""

# Punctuation right after the command word ends a sentence ("/recheck."), it is not part of the name.
_COMMAND_LINE = re.compile(r"^ {0,3}/([A-Za-z][A-Za-z0-9_-]*)[.,;:!?]*(?:[ \t]+(.*))?$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_DIGITS = re.compile(r"[0-9]+")
_SMART_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'"})


@dataclass(frozen=True)
class Command:
    name: str  # one of KNOWN, or "unknown"
    line: str  # the command line as written (stripped); with the comment id it identifies a command once run
    rules: tuple[str, ...] = ()
    days: int = DEFAULT_DAYS
    error: str | None = None

    @property
    def key(self) -> str:
        """Whitespace- and case-insensitive identity of the line, so an edit that only reflows it is not new."""
        return " ".join(self.line.split()).lower()


def _rule_args(rest: str) -> list[str]:
    """Rule ids, paths or titles: a title with spaces in quotes (typographic ones too); `code` marks and the
    commas of a list are not part of a name. An unquoted title arrives word by word (replay matches those)."""
    rest = rest.translate(_SMART_QUOTES)
    lexer = shlex.shlex(rest, posix=True)
    lexer.whitespace_split, lexer.escape, lexer.commenters = True, "", ""   # a backslash is a path's, not an escape
    try:
        words = list(lexer)
    except ValueError:  # an unbalanced quote, e.g. the apostrophe of an unquoted title
        words = rest.split()
    names = (n.strip().strip("`").strip() for w in words for n in w.split(","))
    return [n for n in names if n]


def _parse_line(name: str, rest: str, line: str) -> Command:
    name = name.lower()
    args = rest.split()
    if name not in KNOWN:
        return Command("unknown", line, error=f"unknown command `/{name}`")
    if name == "replay":
        return Command(name, line, rules=tuple(dict.fromkeys(_rule_args(rest))))
    if name == "kpi":
        days, error = DEFAULT_DAYS, None
        i = 0
        while i < len(args):
            arg = args[i].lower()
            value: str | None = None
            if arg == "--days" and i + 1 < len(args):
                value, i = args[i + 1], i + 2
            elif arg.startswith("--days="):
                value, i = arg.split("=", 1)[1], i + 1
            else:
                error = f"`/kpi` takes only `--days N` (got `{args[i]}`)"
                break
            if not _DIGITS.fullmatch(value) or not 1 <= int(value) <= MAX_DAYS:   # isdigit() takes "²"
                error = f"`--days` must be a whole number from 1 to {MAX_DAYS} (got `{value}`)"
                break
            days = int(value)
        return Command(name, line, days=days, error=error)
    if args:
        return Command(name, line, error=f"`/{name}` takes no arguments (got `{rest.strip()}`)")
    return Command(name, line)


def parse_commands(body: str | None) -> list[Command]:
    """The commands of a comment, in order, at most MAX_COMMANDS (a pasted log must not fan out work)."""
    commands: list[Command] = []
    fence: str | None = None
    in_html_comment = False
    for raw in (body or "").replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if fence is not None:
            stripped = raw.strip()
            if stripped.startswith(fence[0] * len(fence)) and not stripped.strip(fence[0]):
                fence = None
            continue
        if in_html_comment:
            if "-->" in raw:
                in_html_comment = False
            continue
        m = _FENCE.match(raw)
        if m:
            fence = m.group(1)
            continue
        if raw.lstrip().startswith("<!--"):
            in_html_comment = "-->" not in raw
            continue
        # Indented code (4 spaces or a tab) and quotes (`>`) are excluded by the pattern's anchoring.
        m = _COMMAND_LINE.match(raw.rstrip())
        if m is None:
            continue
        commands.append(_parse_line(m.group(1), m.group(2) or "", raw.strip()))
        if len(commands) >= MAX_COMMANDS:
            break
    return commands
