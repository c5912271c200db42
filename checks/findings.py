"""The one data type that crosses from `checks/` to its callers (the bot, the CLI)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Level = Literal["failure", "warning", "notice"]
LEVELS: tuple[Level, ...] = ("failure", "warning", "notice")


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    path: str
    start_line: int
    end_line: int
    level: Level
    title: str
    message: str
    rule_id: str | None = None
    start_column: int | None = None
    end_column: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def worst_level(findings: list[Finding]) -> Level | None:
    present = {f.level for f in findings}
    return next((lvl for lvl in LEVELS if lvl in present), None)
