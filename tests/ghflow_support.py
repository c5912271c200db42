"""Shared helpers of the ghflow tests: the GitHub reference data."""
from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

import pytest

from tests.fakegithub.spec import shared_github_dir

GITHUB = shared_github_dir()


@lru_cache(maxsize=1)
def _spec() -> dict:
    return json.loads((GITHUB / "rest-api-subset.json").read_text())


SPEC = _spec()


def webhook_example(event: str, name: str) -> dict:
    return json.loads((GITHUB / "webhook-examples" / event / name).read_text())



EXAMPLE_REPO = Path(__file__).resolve().parent.parent / "examples" / "rules-repo"
CERTUTIL = "rules/windows/proc_creation_win_certutil_download"


@lru_cache(maxsize=1)
def _example() -> dict[str, str]:
    # Not the replay cache a local `detbot replay examples/rules-repo` leaves there (git ignores it too).
    return {p.relative_to(EXAMPLE_REPO).as_posix(): p.read_text() for p in sorted(EXAMPLE_REPO.rglob("*"))
            if p.is_file() and ".detbot-cache" not in p.relative_to(EXAMPLE_REPO).parts}


def example_files(config: str | None = None) -> dict[str, str]:
    """The example rules repository; `config` replaces its .github/detbot.yml."""
    files = dict(_example())
    if config is not None:
        files[".github/detbot.yml"] = config
    return files


def new_bundle(n: int, directory: str = "rules/windows") -> dict[str, str]:
    """A rule with its tests and ADS that passes every check: the example certutil bundle under a new name/id."""
    ex = _example()
    rule = re.sub(r"^id: .*$", f"id: 3c1d2f9e-6a0b-4b8e-9e7a-{n:012d}", ex[CERTUTIL + ".yml"], flags=re.M)
    rule = rule.replace("title: Certutil Download From Internet", f"title: Certutil Download From Internet {n}")
    stem = f"{directory}/proc_creation_win_certutil_dl_{n}"
    # Distinct contents (so distinct blobs) per bundle.
    return {stem + ".yml": rule, stem + ".tests.yml": ex[CERTUTIL + ".tests.yml"] + f"# copy {n}\n",
            stem + ".ads.md": ex[CERTUTIL + ".ads.md"] + f"\n<!-- copy {n} -->\n"}


def new_rule_path(n: int, directory: str = "rules/windows") -> str:
    return f"{directory}/proc_creation_win_certutil_dl_{n}.yml"


M365_PARSER = "parsers/microsoft365.yml"


def broken_m365_parser(lines: int = 3) -> str:
    """The example's Microsoft 365 ingest pipeline with `lines` of its grok patterns capturing the client address
    under another name: the parser regression replay exists to catch."""
    out, left = [], lines
    for line in _example()[M365_PARSER].splitlines():
        if "%{IPV" in line and left:
            line, left = line.replace(":source.ip}", ":client.ip}"), left - 1
        out.append(line)
    return "\n".join(out) + "\n"


# A YAML error on line 5 (the unclosed flow sequence): one syntax failure per file.
BROKEN_RULE = "title: Broken\nid: 1\ndetection:\n  sel: [\n"


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
    from bot.fetch import BLOBS
    from bot.github.app import GitHubApp
    from bot.github.retry import RetryPolicy
    BLOBS.clear()  # each test counts its own downloads
    app = GitHubApp(app_id=fake_github.app_id, private_key=fake_github.private_key_pem, base_url=fake_github.url,
                    retry=RetryPolicy(base_delay=0.01, max_attempts=3))
    yield app
    await app.close()


@pytest.fixture
async def gh(gh_app):
    """The installation client for INSTALLATION."""
    return gh_app.installation_client(INSTALLATION)


def fetched_paths(fake, repo, sha: str) -> list[str]:
    """The files of commit `sha` whose blobs the bot downloaded."""
    from tests.fakegithub import blob_sha
    by_sha: dict[str, list[str]] = {}
    for path, content in repo.commits[sha].files.items():
        by_sha.setdefault(blob_sha(content), []).append(path)
    return sorted(p for r in fake.requests_to("/repos/*/git/blobs/*") for p in by_sha.get(r.path.rsplit("/", 1)[1], []))
