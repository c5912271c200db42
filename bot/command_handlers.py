"""Running reviewer commands from `issue_comment` events on pull requests.

Only users with write, maintain or admin permission (the collaborator permission API, not author_association) may
run commands; others get a polite reply and nothing runs. Bots are ignored, including comments posted through an
app. An edited comment runs only the command lines it did not have before (the edit's `changes.body.from`, plus a
TTL memory of (comment id, command line) pairs for edits that race each other).
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Awaitable, Protocol

import structlog
from cachetools import TTLCache
from gidgethub import HTTPException

from .commands_parser import HELP_TEXT, Command, parse_commands
from .github.create import post_comment_once
from .kpi_comment import is_bot_login
from .pr_flow import PullRequestTarget

log = structlog.get_logger(__name__)

WRITE_ROLES = {"admin", "maintain", "write"}
REPLY_MARKER = "<!-- detbot:reply -->"


class CommandActions(Protocol):
    """What the commands do; the server wires these to the job queue, replay and the KPI store."""

    def recheck(self, gh: Any, target: PullRequestTarget) -> Awaitable[str | None]: ...

    def replay(self, gh: Any, target: PullRequestTarget, rules: tuple[str, ...]) -> Awaitable[str | None]: ...

    def kpi(self, gh: Any, target: PullRequestTarget, days: int) -> Awaitable[str | None]: ...


class CommandError(Exception):
    """A command that could not do what it was asked; its message is shown to the commenter."""


@dataclass
class CommandOutcome:
    ran: list[str] = field(default_factory=list)
    refused: bool = False
    ignored: str | None = None  # why nothing happened at all
    replies: list[str] = field(default_factory=list)
    ok: bool = True


# (repo, comment id, command key) already handled by this process.
_handled: TTLCache = TTLCache(maxsize=50_000, ttl=7 * 24 * 3600)


def forget_handled() -> None:
    _handled.clear()


async def has_write_permission(gh: Any, repo: str, login: str) -> bool:
    try:
        perm = await gh.getitem(f"/repos/{repo}/collaborators/{login}/permission")
    except HTTPException as e:
        if e.status_code in (403, 404):
            return False
        raise
    # `permission` is the base role: maintain folds into write, triage into read, and a custom role reports
    # the base it is built on (its `role_name` is its own name, so role_name alone refuses custom write roles).
    role = (perm.get("role_name") or "").lower()
    return role in WRITE_ROLES or (perm.get("permission") or "").lower() in WRITE_ROLES


async def react(gh: Any, repo: str, comment_id: int, content: str) -> None:
    try:
        await gh.post(f"/repos/{repo}/issues/comments/{comment_id}/reactions", data={"content": content})
    except HTTPException as e:
        log.warning("commands.reaction_failed", repo=repo, comment=comment_id, content=content, error=repr(e))


def new_commands(payload: dict[str, Any]) -> list[Command]:
    """The command lines of this event that were not already in the comment (for edits)."""
    comment = payload["comment"]
    commands = parse_commands(comment.get("body"))
    if payload.get("action") == "edited":
        before = ((payload.get("changes") or {}).get("body") or {}).get("from")
        if before is not None:
            old = {c.key for c in parse_commands(before)}
            commands = [c for c in commands if c.key not in old]
    return commands


async def pull_request_target(gh: Any, repo: str, number: int, installation_id: int | None,
                              command: Command) -> PullRequestTarget:
    pr = await gh.getitem(f"/repos/{repo}/pulls/{number}")
    if command.name in ("recheck", "replay") and pr.get("state", "open") != "open":
        # Checks of a closed pull request gate nothing; replay would publish a run nobody looks at.
        raise CommandError(f"this pull request is {'merged' if pr.get('merged') else 'closed'}: reopen it first")
    return PullRequestTarget.from_pull_request(pr, installation_id)


async def handle_issue_comment(payload: dict[str, Any], gh: Any, actions: CommandActions) -> CommandOutcome:
    out = CommandOutcome()
    action = payload.get("action")
    issue, comment, sender = payload.get("issue") or {}, payload.get("comment") or {}, payload.get("sender") or {}
    if action not in ("created", "edited"):
        out.ignored = f"action {action}"
        return out
    if not issue.get("pull_request"):
        out.ignored = "not a pull request"
        return out
    author = comment.get("user") or {}
    if (is_bot_login(sender.get("login"), sender.get("type")) or is_bot_login(author.get("login"), author.get("type"))
            or comment.get("performed_via_github_app")):
        out.ignored = "bot"
        return out
    repo = payload["repository"]["full_name"]
    comment_id, number = int(comment["id"]), int(issue["number"])
    # The same line twice in one comment runs once.
    unique: dict[str, Command] = {}
    for c in new_commands(payload):
        unique.setdefault(c.key, c)
    commands = [c for c in unique.values() if (repo, comment_id, c.key) not in _handled]
    if not commands:
        out.ignored = "no new command"
        return out
    # Remember before running: a second edit event arriving meanwhile must not run them again.
    for c in commands:
        _handled[(repo, comment_id, c.key)] = True
    await react(gh, repo, comment_id, "eyes")
    try:
        await _run(payload, gh, actions, out, commands, repo, number, comment_id)
    except BaseException:
        out.ok = False
        raise
    finally:
        # The `eyes` always gets its answer, even when the permission API or the reply failed.
        await asyncio.shield(react(gh, repo, comment_id, "+1" if out.ok else "-1"))
    return out


async def _run(payload: dict[str, Any], gh: Any, actions: CommandActions, out: CommandOutcome,
               commands: list[Command], repo: str, number: int, comment_id: int) -> None:
    login = (payload.get("sender") or {}).get("login") or ""
    bound = log.bind(repo=repo, pr=number, comment=comment_id, user=login)
    if not await has_write_permission(gh, repo, login):
        out.refused = True
        out.ok = False
        bound.info("commands.refused", commands=[c.line for c in commands])
        await reply(gh, repo, number, f"@{login} thanks, but detbot commands can only be run by people with "
                    f"write access to this repository, so nothing was run. A maintainer can run "
                    f"{', '.join(f'`{c.line}`' for c in commands[:3])} for you.")
        return
    installation_id = (payload.get("installation") or {}).get("id")
    help_wanted = False
    for c in commands:
        if c.name == "help":
            help_wanted = True
            out.ran.append(c.name)
            continue
        if c.error:  # an unknown command or bad arguments: say what was wrong, and how to ask
            help_wanted, out.ok = True, False
            out.replies.append(f":grey_question: {c.error}")
            continue
        try:
            target = await pull_request_target(gh, repo, number, installation_id, c)
            if c.name == "recheck":
                text = await actions.recheck(gh, target)
            elif c.name == "replay":
                text = await actions.replay(gh, target, c.rules)
            else:
                text = await actions.kpi(gh, target, c.days)
            out.ran.append(c.name)
            if text:
                out.replies.append(text)
        except CommandError as e:
            out.ok = False
            out.replies.append(f":x: `{c.line}`: {e}")
        except Exception as e:  # noqa: BLE001 -- the commenter gets an answer whatever happens
            bound.exception("commands.failed", command=c.line)
            out.ok = False
            out.replies.append(f":x: `{c.line}` failed: {type(e).__name__}: {e}")
    if help_wanted:
        out.replies.append(HELP_TEXT)
    if out.replies:
        await reply(gh, repo, number, "\n\n".join(out.replies))
    bound.info("commands.done", ran=out.ran, ok=out.ok)


async def reply(gh: Any, repo: str, number: int, text: str) -> None:
    body = f"{REPLY_MARKER}\n{text}"
    await post_comment_once(gh, repo, number, body[:65536])
