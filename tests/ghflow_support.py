"""Shared helpers of the ghflow tests: the GitHub reference data."""
from __future__ import annotations

import json

import pytest
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



def good_rule(n: int = 0, title: str = "Certutil Download") -> str:
    """A valid Sigma rule with a distinct id (and title) per `n`."""
    return f"""title: {title} {n}
id: 3c1d2f9e-6a0b-4b8e-9e7a-{n:012d}
status: test
description: Detects certutil used to download a file.
author: detbot tests
date: 2026-11-01
tags:
    - attack.command-and-control
    - attack.t1105
logsource:
    category: process_creation
    product: windows
detection:
    selection:
        Image|endswith: '\\certutil.exe'
        CommandLine|contains: 'urlcache'
    condition: selection
level: high
"""


# A YAML error on line 5 (the unclosed flow sequence): one syntax failure per file.
BROKEN_RULE = "title: Broken\nid: 1\ndetection:\n  sel: [\n"


def base_files(config: str | None = None) -> dict[str, str]:
    files = {"README.md": "rules\n", "rules/windows/base.yml": good_rule(999)}
    if config is not None:
        files[".github/detbot.yml"] = config
    return files


def annotation_requests(fake, repo, name: str | None = None) -> list:
    """PATCH/POST check-run requests that carried annotations (for one run name, when given)."""
    ids = {r.id for r in fake.check_runs(repo, name=name)} if name else None
    out = []
    for r in fake.requests:
        if r.method in ("POST", "PATCH") and "/check-runs" in r.path and isinstance(r.body, dict) \
                and (r.body.get("output") or {}).get("annotations"):
            if ids is None or int(r.path.rsplit("/", 1)[-1]) in ids:
                out.append(r)
    return out


def runs_by_name(fake, repo, head_sha=None) -> dict:
    """name -> the latest check run of that name (GitHub shows the latest)."""
    out = {}
    for r in sorted(fake.check_runs(repo, head_sha), key=lambda r: r.id):
        out[r.name] = r
    return out


INSTALLATION = 7


@pytest.fixture
async def gh_app(fake_github):
    """The bot's GitHub App client pointed at the fake GitHub (quick retries)."""
    from bot.github.app import GitHubApp
    from bot.github.retry import RetryPolicy
    app = GitHubApp(app_id=fake_github.app_id, private_key=fake_github.private_key_pem, base_url=fake_github.url,
                    retry=RetryPolicy(base_delay=0.01, max_attempts=3))
    yield app
    await app.close()


@pytest.fixture
async def gh(gh_app):
    """The installation client for INSTALLATION."""
    return gh_app.installation_client(INSTALLATION)
