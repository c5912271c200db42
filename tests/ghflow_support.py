"""Shared helpers of the ghflow tests: the GitHub reference data."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from tests.conftest import SHARED as _SHARED

# The worktrees sit one level deeper than main; fall back to the workplace copy.
SHARED = _SHARED if (_SHARED / "github").is_dir() else Path("/work/shared")
GITHUB = SHARED / "github"


@lru_cache(maxsize=1)
def _spec() -> dict:
    return json.loads((GITHUB / "rest-api-subset.json").read_text())


SPEC = _spec()


def webhook_example(event: str, name: str) -> dict:
    return json.loads((GITHUB / "webhook-examples" / event / name).read_text())
