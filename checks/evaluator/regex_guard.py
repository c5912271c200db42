"""Regular expressions from rules, bounded so that a hostile `|re` cannot hang the bot.

A pattern RE2 accepts runs on RE2 (linear time, no limit needed). Anything else -- real rules use
look-arounds and back-references -- runs on the `regex` module with a per-search time limit.
Compiling is safe either way: neither engine runs a pattern while compiling it.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import re2
import regex

from sigma.policy.regex_engine import RegexEngine

# Per search; generous for honest patterns on event-sized strings, short enough that a rule set full
# of hostile patterns still finishes.
DEFAULT_TIMEOUT = 0.25

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # otherwise every look-around is logged to stderr by abseil
_FLAG_LETTERS = ((re.IGNORECASE, "i"), (re.MULTILINE, "m"), (re.DOTALL, "s"))


class RegexTimeout(Exception):
    """A search ran out of time: the pattern backtracks catastrophically on this input."""


def _re2_compile(pattern: str, flags: int) -> Any:
    prefix = "".join(letter for flag, letter in _FLAG_LETTERS if flags & flag)
    return re2.compile(f"(?{prefix}){pattern}" if prefix else pattern, _RE2_OPTIONS)


class GuardedRegex:
    """One compiled pattern; `search(text)` is True/False, or raises RegexTimeout."""

    __slots__ = ("pattern", "flags", "engine", "_search", "timeout")

    def __init__(self, pattern: str, flags: int = 0, timeout: float = DEFAULT_TIMEOUT, lazy: bool = False):
        self.pattern, self.flags, self.timeout = pattern, flags, timeout
        self.engine = ""
        if not lazy:
            self._compile()

    def _compile(self) -> None:
        pattern, flags = self.pattern, self.flags
        try:
            if "$" in pattern and not flags & re.MULTILINE:
                # PCRE's `$` also matches before a final newline; RE2's only at the very end.
                raise re2.error("end anchor")
            self._search = _re2_compile(pattern, flags).search
            self.engine = "re2"
        except re2.error:
            self._search = regex.compile(pattern, flags | regex.V0).search
            self.engine = "regex"

    def search(self, text: str) -> bool:
        if not self.engine:
            self._compile()
        if self.engine == "re2":
            return self._search(text) is not None
        try:
            return self._search(text, timeout=self.timeout) is not None
        except TimeoutError as e:
            raise RegexTimeout(f"regular expression '{self.pattern}' timed out after {self.timeout}s") from e


@lru_cache(maxsize=4096)
def _engine_compile(pattern: str, flags: int) -> Any:
    # Cached: pySigma compiles every `1 of selection_*` selector and every |re value through the
    # engine, the same few patterns over and over, and an RE2 compile costs far more than a lookup.
    try:
        return _re2_compile(pattern, flags)
    except re2.error:
        return regex.compile(pattern, flags | regex.V0)


class GuardedRegexEngine(RegexEngine):
    """pySigma regex engine for rule parsing: RE2 where it can, `regex` (look-arounds) otherwise.

    pySigma's default SafePolicy rejects every pattern RE2 cannot compile, so rules with
    look-arounds would not load at all; compiling with `regex` only validates the pattern.
    """

    def compile(self, pattern: str, flags: int = 0) -> Any:
        return _engine_compile(pattern, int(flags))

    @property
    def error(self) -> type[Exception]:
        return regex.error

