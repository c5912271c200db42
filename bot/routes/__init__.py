"""Which webhook events detbot acts on, one gidgethub `Router` per concern (as bedevere does):

    pull_requests.py   pull_request opened / synchronize / reopened / ready_for_review, edited (base changed)
    check_runs.py      check_suite and check_run rerequested, check_run requested_action (rerun button)
    comments.py        issue_comment created / edited on pull requests (commands)
    installations.py   installation and installation_repositories

Handlers are registered on those routers with gidgethub's decorator and are called as
`await handler(event, gh, ctx)`: `event` is the gidgethub `sansio.Event`, `gh` a `GitHubClient` acting as the
event's installation, `ctx` a `Context` (below) with the job run (newest-wins API: `ctx.run.is_current`,
`ctx.run.claim`, `ctx.run.cancel_reason`), the `GitHubApp` and the settings. An event type no router handles is
answered 202 "ignored" and not queued; an action no router handles is dropped by the worker. Before dispatching,
the worker claims the pull request's key when the payload names it (`job_key`): a newer delivery for the same PR
cancels the older one's run, and an older delivery that arrives after a newer one is dropped.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from gidgethub.routing import Router

if TYPE_CHECKING:
    from ..github import GitHubApp, GitHubClient
    from ..queue import JobRun
    from ..settings import Settings

# pull_request actions that start work on a head SHA; a newer one for the same PR supersedes older work.
PR_ACTIONS = ("opened", "synchronize", "reopened", "ready_for_review")


@dataclass
class Context:
    github: "GitHubApp"
    gh: "GitHubClient"
    run: "JobRun"
    settings: "Settings | None" = None

    @property
    def job(self) -> Any:
        return self.run.job

    @property
    def installation_id(self) -> int | None:
        return self.run.job.installation_id

    @property
    def log(self) -> Any:
        return structlog.get_logger("bot.routes")


def build_router(*extra: Router) -> Router:
    """The routers of every concern (plus `extra` ones, e.g. from tests) composed into one."""
    from . import check_runs, comments, installations, pull_requests

    return Router(pull_requests.router, check_runs.router, comments.router, installations.router, *extra)


def pr_key(repo_full_name: str, number: int) -> str:
    """The queue key of a pull request: one live job per PR (`PullRequestTarget.key` has the same form)."""
    return f"{repo_full_name}#{number}"


def own_pull_numbers(payload: dict[str, Any], holder: dict[str, Any]) -> list[int]:
    """The numbers of a check event's `pull_requests` that are based in the event's repository. GitHub lists
    every pull request whose head matches, also those of other repositories (a fork syncing from this one):
    their numbers name unrelated pull requests here."""
    repo_id = (payload.get("repository") or {}).get("id")
    out = []
    for p in holder.get("pull_requests") or []:
        base_id = ((p.get("base") or {}).get("repo") or {}).get("id")
        if repo_id is None or base_id is None or base_id == repo_id:
            out.append(int(p["number"]))
    return out


def job_key(event: str, payload: dict[str, Any]) -> tuple[str | None, str | None]:
    """(supersession key, head sha) of a delivery when it is known from the payload alone.

    Check events of pull requests from forks carry no `pull_requests`: their handler finds the PR by head SHA
    and calls `ctx.run.claim(key)` itself."""
    repo = (payload.get("repository") or {}).get("full_name")
    if not repo:
        return None, None
    if event == "pull_request" and payload.get("action") in PR_ACTIONS:
        pr = payload.get("pull_request") or {}
        if "number" in pr:
            return pr_key(repo, int(pr["number"])), (pr.get("head") or {}).get("sha")
    if event in ("check_suite", "check_run") and payload.get("action") in ("requested", "rerequested",
                                                                            "requested_action"):
        holder = payload.get(event) or {}
        numbers = own_pull_numbers(payload, holder)
        if len(numbers) == 1:
            return pr_key(repo, numbers[0]), holder.get("head_sha")
    return None, None
