"""Date parsing and formatting for the `date` processor: ISO8601, UNIX, UNIX_MS, TAI64N and a subset of java-time
patterns (y u M d H h m s S a E X x Z z, 'literals', [optional sections]).

A date without an offset is read in the processor's `timezone` (default UTC). Results are expressed in that
zone, except that a java-time pattern read with a non-UTC `timezone` keeps an offset found in the text (as
Elasticsearch's DateFormat does). A pattern without a year takes the current year.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone, tzinfo
import re
from functools import lru_cache
from typing import Any, Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import regex

from .document import ProcessorError

MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december"]
DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_ALIASES = {"epoch_millis": "UNIX_MS", "epoch_second": "UNIX", "strict_date_optional_time": "ISO8601",
            "date_optional_time": "ISO8601", "iso8601": "ISO8601"}
_SUPPORTED_LETTERS = set("yuMLdHhkmsSaEXxZz")
DEFAULT_OUTPUT = "yyyy-MM-dd'T'HH:mm:ss.SSSXXX"


class DateFormatError(ValueError):
    pass


def zone(name: str) -> tzinfo:
    if name.upper() in ("UTC", "Z", "GMT"):
        return timezone.utc
    m = regex.fullmatch(r"(?:UTC|GMT)?([+-])(\d{1,2}):?(\d{2})?", name)
    if m:
        delta = timedelta(hours=int(m[2]), minutes=int(m[3] or 0))
        return timezone(delta if m[1] == "+" else -delta) if delta else timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise DateFormatError(f"unknown time zone [{name}]") from None


def _tokens(pattern: str) -> list[tuple[str, str]]:
    """java-time pattern -> [(kind, text)] with kind 'lit', 'opt_start', 'opt_end' or a letter run."""
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "'":
            j = pattern.find("'", i + 1)
            if j < 0:
                raise DateFormatError(f"unterminated quote in date pattern [{pattern}]")
            out.append(("lit", pattern[i + 1:j] or "'"))
            i = j + 1
        elif c == "[":
            out.append(("opt_start", c))
            i += 1
        elif c == "]":
            out.append(("opt_end", c))
            i += 1
        elif c.isalpha():
            j = i
            while j < len(pattern) and pattern[j] == c:
                j += 1
            if c not in _SUPPORTED_LETTERS:
                raise DateFormatError(f"date pattern letter [{c}] in [{pattern}] is not supported "
                                      f"(supported: {''.join(sorted(_SUPPORTED_LETTERS))})")
            out.append((c, pattern[i:j]))
            i = j
        else:
            out.append(("lit", c))
            i += 1
    return out


_OFFSET = r"(?:Z|[+-]\d{2}(?::?\d{2})?)"


def _letter_regex(kind: str, run: str, group: str) -> str:
    n = len(run)
    if kind in "yu":
        body = r"\d{2}" if n == 2 else r"[+-]?\d{4,9}"
    elif kind in "ML":
        body = r"[A-Za-z]+" if n >= 3 else (r"\d{2}" if n == 2 else r"\d{1,2}")
    elif kind in "dHhkms":
        body = r"\d{2}" if n == 2 else r"\d{1,2}"
    elif kind == "S":
        body = rf"\d{{{n}}}" if n > 1 else r"\d{1,9}"
    elif kind == "a":
        body = r"[AaPp][Mm]"
    elif kind == "E":
        body = r"[A-Za-z]+"
    elif kind in "XxZ":
        body = _OFFSET if kind != "Z" or n < 4 else r"(?:Z|(?:GMT|UTC)?[+-]\d{2}:?\d{2})"
    else:  # z: a zone name
        body = r"[A-Za-z][A-Za-z0-9_/+-]*"
    return f"(?P<{group}>{body})"


@lru_cache(maxsize=512)
def _parse_offset(text: str) -> tzinfo:
    text = text.removeprefix("GMT").removeprefix("UTC")
    if text in ("Z", ""):
        return timezone.utc
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0)))


@lru_cache(maxsize=256)
def _month(text: str) -> int:
    low = text.lower()
    for i, name in enumerate(MONTHS):
        if len(low) >= 3 and name.startswith(low):
            return i + 1
    raise ValueError(text)


Parser = Callable[[str, tzinfo], datetime]


def _slot(kind: str, run: str) -> tuple[int, Callable[[str], Any]]:
    """Where a pattern letter's value goes in (year, month, day, hour, minute, second, micro, pm, zone)."""
    n = len(run)
    if kind in "yu":
        return 0, (lambda t: int(t) + 2000) if n == 2 else int
    if kind in "ML":
        return 1, _month if n >= 3 else int
    if kind == "d":
        return 2, int
    if kind in "Hk":
        return 3, lambda t: int(t) % 24
    if kind == "h":
        return 3, lambda t: int(t) % 12
    if kind == "m":
        return 4, int
    if kind == "s":
        return 5, int
    if kind == "S":
        return 6, lambda t: int((t + "000000")[:6])
    if kind == "a":
        return 7, lambda t: t.lower() == "pm"
    if kind in "XxZ":
        return 8, _parse_offset
    if kind == "z":
        return 8, zone
    return 9, str  # E: the day name is read but not used


def _java_parser(pattern: str) -> Parser:
    parts: list[str] = []
    fields: list[tuple[str, str, str]] = []
    depth = 0
    for kind, text in _tokens(pattern):
        if kind == "lit":
            parts.append(regex.escape(text))
        elif kind == "opt_start":
            parts.append("(?:")
            depth += 1
        elif kind == "opt_end":
            if depth == 0:
                raise DateFormatError(f"unbalanced ']' in date pattern [{pattern}]")
            parts.append(")?")
            depth -= 1
        else:
            group = f"f{len(fields)}"
            fields.append((group, kind, text))
            parts.append(_letter_regex(kind, text, group))
    if depth:
        raise DateFormatError(f"unbalanced '[' in date pattern [{pattern}]")
    # Date regexes are linear (no nested repetition), so the faster stdlib engine is safe here.
    compiled = re.compile("".join(parts))
    slots = [_slot(kind, run) for _, kind, run in fields]
    has_year = any(kind in "yu" for _, kind, _ in fields)

    def parse(value: str, tz: tzinfo) -> datetime:
        m = compiled.fullmatch(value)
        if m is None:
            raise ValueError(value)
        # year, month, day, hour, minute, second, micro, pm, zone, day name
        v: list[Any] = [0 if has_year else datetime.now(tz).year, 1, 1, 0, 0, 0, 0, None, None, None]
        for text, (slot, conv) in zip(m.groups(), slots):
            if text is not None:
                v[slot] = conv(text)
        hour = v[3]
        if v[7] and hour < 12:
            hour += 12
        return datetime(v[0], v[1], v[2], hour, v[4], v[5], v[6], tzinfo=v[8] or tz)

    parse.keeps_parsed_zone = True  # type: ignore[attr-defined]
    return parse


def _iso8601(value: str, tz: tzinfo) -> datetime:
    text = value.strip()
    if text.endswith(("z", "Z")):
        text = text[:-1] + "+00:00"
    # Java accepts any number of fraction digits; Python's fromisoformat wants 3 or 6 before 3.11's relaxing.
    dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=tz)


def _unix(value: str, tz: tzinfo) -> datetime:
    return datetime.fromtimestamp(float(value), tz)


def _unix_ms(value: str, tz: tzinfo) -> datetime:
    return datetime.fromtimestamp(int(float(value)) / 1000, tz)


def _tai64n(value: str, tz: tzinfo) -> datetime:
    """Elasticsearch's reading: 16 hex digits of seconds (TAI, 2^62 offset, 10 s leap), 8 of nanoseconds."""
    text = value[1:] if value.startswith("@") else value
    if len(text) != 24:
        raise ValueError(value)
    base, rest = int(text[1:16], 16), int(text[16:24], 16)
    return datetime.fromtimestamp(((base * 1000) - 10000 + rest // 1_000_000) / 1000, tz)


@lru_cache(maxsize=256)
def parser_for(fmt: str) -> Parser:
    fmt = _ALIASES.get(fmt, fmt)
    if fmt == "ISO8601":
        return _iso8601
    if fmt == "UNIX":
        return _unix
    if fmt == "UNIX_MS":
        return _unix_ms
    if fmt == "TAI64N":
        return _tai64n
    return _java_parser(fmt)


def _default_format(dt: datetime) -> str:
    off = dt.utcoffset()
    if not off:
        zone_text = "Z"
    else:
        total = int(off.total_seconds()) // 60
        hh, mm = divmod(abs(total), 60)
        zone_text = f"{'-' if total < 0 else '+'}{hh:02d}:{mm:02d}"
    return (f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}."
            f"{dt.microsecond // 1000:03d}{zone_text}")


@lru_cache(maxsize=64)
def formatter_for(pattern: str) -> Callable[[datetime], str]:
    if pattern == DEFAULT_OUTPUT:
        return _default_format  # the common case, kept fast
    tokens = _tokens(pattern)

    def fmt(dt: datetime) -> str:
        out: list[str] = []
        for kind, run in tokens:
            n = len(run)
            if kind == "lit":
                out.append(run)
            elif kind in ("opt_start", "opt_end"):
                continue
            elif kind in "yu":
                out.append(f"{dt.year % 100:02d}" if n == 2 else f"{dt.year:0{max(n, 4)}d}")
            elif kind in "ML":
                out.append(MONTHS[dt.month - 1].capitalize()[:3] if n == 3 else
                           MONTHS[dt.month - 1].capitalize() if n > 3 else f"{dt.month:0{n}d}")
            elif kind == "d":
                out.append(f"{dt.day:0{n}d}")
            elif kind in "Hk":
                out.append(f"{dt.hour:0{n}d}")
            elif kind == "h":
                out.append(f"{(dt.hour % 12) or 12:0{n}d}")
            elif kind == "m":
                out.append(f"{dt.minute:0{n}d}")
            elif kind == "s":
                out.append(f"{dt.second:0{n}d}")
            elif kind == "S":
                out.append(f"{dt.microsecond:06d}{'0' * 3}"[:n])
            elif kind == "a":
                out.append("PM" if dt.hour >= 12 else "AM")
            elif kind == "E":
                out.append(DAYS[dt.weekday()].capitalize()[: 3 if n <= 3 else None])
            elif kind in "XxZ":
                off = dt.utcoffset() or timedelta(0)
                if kind == "X" and not off:
                    out.append("Z")
                    continue
                total = int(off.total_seconds()) // 60
                sign = "-" if total < 0 else "+"
                hh, mm = divmod(abs(total), 60)
                out.append(f"{sign}{hh:02d}:{mm:02d}" if (n == 3 or (kind == "Z" and n >= 4))
                           else f"{sign}{hh:02d}{mm:02d}" if n == 2 or kind == "Z" else f"{sign}{hh:02d}")
            else:  # z
                out.append(dt.tzname() or "UTC")
        return "".join(out)

    return fmt


class DateParser:
    """Formats tried in order, as the date processor does; the first that parses wins."""

    def __init__(self, formats: list[str], timezone_name: str = "UTC", output_format: str = DEFAULT_OUTPUT):
        if not formats:
            raise DateFormatError("[formats] must not be empty")
        self.parsers = [parser_for(f) for f in formats]
        self.tz = zone(timezone_name)
        self.output = formatter_for(output_format)

    def parse(self, value: str) -> datetime:
        for p in self.parsers:
            try:
                dt = p(value, self.tz)
            except (ValueError, OverflowError, OSError):
                continue
            # As Elasticsearch: a java-time pattern read with a non-UTC `timezone` keeps an offset found in the
            # text; every other case is expressed in `timezone`.
            if getattr(p, "keeps_parsed_zone", False) and self.tz is not timezone.utc:
                return dt
            return dt.astimezone(self.tz)
        raise ProcessorError(f"unable to parse date [{value}]")

    def __call__(self, value: str) -> str:
        return self.output(self.parse(value))
