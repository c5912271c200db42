"""installation / installation_repositories events: logged; an uninstalled or suspended installation's
cached token and semaphore are dropped at once (its token stops working anyway)."""
from __future__ import annotations

from typing import Any

import structlog
from gidgethub import sansio
from gidgethub.routing import Router

router = Router()
log = structlog.get_logger("bot.routes.installations")


def _who(event: sansio.Event) -> dict[str, Any]:
    inst = event.data.get("installation") or {}
    return {"installation_id": inst.get("id"), "account": (inst.get("account") or {}).get("login")}


@router.register("installation", action="created")
async def installation_created(event: sansio.Event, gh: Any, ctx: Any) -> None:
    repos = [r.get("full_name") for r in event.data.get("repositories") or []]
    log.info("app installed", repositories=repos, **_who(event))


@router.register("installation", action="deleted")
@router.register("installation", action="suspend")
async def installation_removed(event: sansio.Event, gh: Any, ctx: Any) -> None:
    who = _who(event)
    log.info("app uninstalled" if event.data.get("action") == "deleted" else "app suspended", **who)
    if who["installation_id"] is not None:
        ctx.github.forget_installation(who["installation_id"])


@router.register("installation", action="unsuspend")
async def installation_unsuspended(event: sansio.Event, gh: Any, ctx: Any) -> None:
    log.info("app unsuspended", **_who(event))


@router.register("installation_repositories")
async def repositories_changed(event: sansio.Event, gh: Any, ctx: Any) -> None:
    added = [r.get("full_name") for r in event.data.get("repositories_added") or []]
    removed = [r.get("full_name") for r in event.data.get("repositories_removed") or []]
    log.info("installation repositories changed", added=added, removed=removed, **_who(event))
