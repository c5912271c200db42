"""Turning what SIEMs and exports say into the normalised record: statuses, verdicts, timestamps, field paths."""
from __future__ import annotations

import functools
import re
from datetime import datetime, timezone
from typing import Any

# (stage, verdict) for status words found in exports. Sekoia's legacy statuses are here: Ongoing means "a true
# positive whose countermeasures are not applied yet", Closed "a true positive handled", Rejected "a false positive".
STATUS_WORDS: dict[str, tuple[str, str | None]] = {
    "open": ("open", None), "new": ("open", None), "pending": ("open", None), "unassigned": ("open", None),
    "acknowledged": ("in_progress", None), "in_progress": ("in_progress", None),
    "investigating": ("in_progress", None), "ongoing": ("in_progress", "true_positive"),
    "closed": ("closed", None), "resolved": ("closed", None), "done": ("closed", None),
    "rejected": ("closed", "false_positive"), "false_positive": ("closed", "false_positive"),
    "true_positive": ("closed", "true_positive"), "benign_positive": ("closed", "benign_positive"),
    "benign": ("closed", "benign_positive"), "benign_true_positive": ("closed", "benign_positive"),
}
SEKOIA_LEGACY: dict[str, tuple[str, str | None]] = {
    "pending": ("open", None), "acknowledged": ("in_progress", None), "ongoing": ("in_progress", "true_positive"),
    "closed": ("closed", "true_positive"), "rejected": ("closed", "false_positive"),
}
STAGE_WORDS = {"open": "open", "new": "open", "in_progress": "in_progress", "acknowledged": "in_progress",
               "ongoing": "in_progress", "closed": "closed", "resolved": "closed"}
VERDICT_WORDS = {"true_positive": "true_positive", "tp": "true_positive", "malicious": "true_positive",
                 "false_positive": "false_positive", "fp": "false_positive",
                 "benign_positive": "benign_positive", "benign": "benign_positive",
                 "benign_true_positive": "benign_positive", "btp": "benign_positive",
                 "undetermined": "undetermined", "unknown": "undetermined", "inconclusive": "undetermined",
                 "other": "undetermined", "duplicate": "undetermined"}


_SEPARATORS = re.compile(r"[\s\-]+")
_NUMBER = re.compile(r"\d+(\.\d+)?")


@functools.lru_cache(maxsize=4096)
def _word(text: str) -> str:
    return _SEPARATORS.sub("_", text.strip().lower())


def word(value: Any) -> str:
    """`In progress`, `in-progress` and `IN_PROGRESS` are one word."""
    return _word(value if isinstance(value, str) else str(value))


def status_of(value: Any, table: dict[str, tuple[str, str | None]] | None = None) -> tuple[str, str | None]:
    w = word(value)
    found = (table or {}).get(w) or STATUS_WORDS.get(w)
    if found is None:
        raise ValueError(f"unknown status {value!r}")
    return found


def stage_of(value: Any) -> str:
    w = word(value)
    if w not in STAGE_WORDS:
        raise ValueError(f"unknown stage {value!r} (open, in_progress or closed)")
    return STAGE_WORDS[w]


def verdict_of(value: Any) -> str | None:
    if value is None or value == "":
        return None
    w = word(value)
    if w in ("none", "null"):
        return None
    if w not in VERDICT_WORDS:
        raise ValueError(f"unknown verdict {value!r}")
    return VERDICT_WORDS[w]


def timestamp(value: Any) -> datetime:
    """ISO 8601 (naive means UTC), or seconds / milliseconds since the epoch."""
    if value.__class__ is str and value[4:5] == "-":  # the usual export: ISO 8601, straight to the parser
        try:
            ts = datetime.fromisoformat(value)
        except ValueError:
            pass  # perhaps blanks around it: the general path below says what is wrong
        else:
            return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, bool) or value is None or value == "":
        raise ValueError("missing timestamp")
    if isinstance(value, str):
        text = value.strip()
        if text[:1].isdigit() and _NUMBER.fullmatch(text):
            value = float(text)
        else:
            try:
                ts = datetime.fromisoformat(text)
            except ValueError:
                raise ValueError(f"not a timestamp: {value!r}") from None
            return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)
    if isinstance(value, (int, float)):
        seconds = value / 1000 if value > 1e11 else value  # beyond year 5138 in seconds: milliseconds
        try:
            return datetime.fromtimestamp(seconds, timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"timestamp out of range: {value!r}") from None
    raise ValueError(f"not a timestamp: {value!r}")


_MISSING = object()


def get_path(obj: Any, path: str, default: Any = None) -> Any:
    """`a.b.c` in nested mappings, also when some levels are flattened into dotted keys (as Kibana writes them)."""
    if not isinstance(obj, dict):
        return default
    if path in obj:
        return obj[path]
    parts = path.split(".")
    for i in range(len(parts) - 1, 0, -1):
        head = ".".join(parts[:i])
        if head in obj:
            found = get_path(obj[head], ".".join(parts[i:]), _MISSING)
            if found is not _MISSING:
                return found
    return default
