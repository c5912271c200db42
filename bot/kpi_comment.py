"""The one KPI comment per pull request: found by a hidden marker AND the bot's own login, edited in place.

A user's comment that carries the marker (quoted, or forged) is never edited or deleted. Concurrent events for
one pull request are serialised by a per-PR lock; across processes, a racing duplicate of our own is found by
listing again after creating, and the newer one is removed.
"""
from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass
from typing import Any

import structlog

from .github.create import create_once

log = structlog.get_logger(__name__)

KPI_MARKER = "<!-- detbot:kpi -->"
MAX_COMMENT = 65536

# Weak values: a lock lives while a holder or waiter refers to it (their frames do), then its entry goes, so a
# long-lived bot keeps no entry per pull request ever seen. A later event makes a new lock, as no one holds the old.
_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()


def _lock(key: str) -> asyncio.Lock:
    lock = _locks.get(key)
    if lock is None:
        lock = _locks[key] = asyncio.Lock()
    return lock


def is_bot_login(login: str | None, user_type: str | None = None) -> bool:
    return (user_type == "Bot") or bool(login and login.lower().endswith("[bot]"))


@dataclass(frozen=True)
class Upserted:
    id: int
    action: str  # created | updated | unchanged


def with_marker(body: str, marker: str) -> str:
    body = body if marker in body else f"{marker}\n{body}"
    if len(body) > MAX_COMMENT:
        note = "\n\n_… truncated (GitHub limits comments to 65,536 characters)._"
        body = body[: MAX_COMMENT - len(note)] + note
    return body


async def own_marked_comments(gh: Any, repo: str, number: int, bot_login: str, marker: str) -> list[dict]:
    """Our comments carrying the marker, oldest first."""
    out = []
    async for c in gh.getiter(f"/repos/{repo}/issues/{number}/comments?per_page=100"):
        user = c.get("user") or {}
        if marker in (c.get("body") or "") and (user.get("login") or "").lower() == bot_login.lower():
            out.append(c)
    return sorted(out, key=lambda c: (c.get("created_at") or "", int(c["id"])))


async def upsert_marked_comment(gh: Any, repo: str, number: int, body: str, *, bot_login: str,
                                marker: str = KPI_MARKER) -> Upserted:
    body = with_marker(body, marker)
    base = f"/repos/{repo}/issues"
    async with _lock(f"{repo}#{number}:{marker}"):
        own = await own_marked_comments(gh, repo, number, bot_login, marker)
        if not own:
            async def made() -> dict | None:   # after an error answer: the comment may have been posted
                mine = await own_marked_comments(gh, repo, number, bot_login, marker)
                return mine[-1] if mine else None
            created = await create_once(gh, f"{base}/{number}/comments", {"body": body}, find=made)
            own = await own_marked_comments(gh, repo, number, bot_login, marker)
            if len(own) <= 1:
                return Upserted(int(created["id"]), "created")
            log.info("kpi_comment.race", repo=repo, pr=number, comments=[c["id"] for c in own])
        keep, extra = own[0], own[1:]
        for c in extra:
            try:
                await gh.delete(f"{base}/comments/{c['id']}")
            except Exception as e:  # noqa: BLE001 -- another process may have deleted it first
                log.info("kpi_comment.delete_failed", repo=repo, comment=c["id"], error=repr(e))
        if keep.get("body") == body:
            return Upserted(int(keep["id"]), "unchanged")
        await gh.patch(f"{base}/comments/{keep['id']}", data={"body": body})
        return Upserted(int(keep["id"]), "updated")
