"""The shape of the webhook payloads detbot's handlers read, checked before any handler runs.

GitHub's deliveries always have this shape; a payload that does not (correctly signed, so from someone holding the
webhook secret, or a change on GitHub's side) is dropped with one error line naming what is wrong, instead of
failing somewhere inside a handler. The webhook does not parse bodies (its answer must stay fast, see webhook.py),
so this runs in the worker.

Only what the handlers and the queue key rely on is checked: other fields are read with `.get` and defaults.
"""
from __future__ import annotations

from typing import Any


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _need_obj(data: dict[str, Any], key: str) -> tuple[dict[str, Any] | None, str | None]:
    value = data.get(key)
    if not isinstance(value, dict):
        return None, f"`{key}` is not an object"
    return value, None


def _pr_refs_problem(holder: dict[str, Any], where: str) -> str | None:
    prs = holder.get("pull_requests", [])
    if not isinstance(prs, list):
        return f"`{where}.pull_requests` is not a list"
    for i, pr in enumerate(prs):
        if not isinstance(pr, dict) or not _is_int(pr.get("number")):
            return f"`{where}.pull_requests[{i}].number` is not a number"
    return None


def payload_problem(event: str, data: Any) -> str | None:
    """What is wrong with a delivery's payload for detbot's handlers, or None when it can be handled."""
    if not isinstance(data, dict):
        return "the payload is not a JSON object"
    if not isinstance(data.get("action", ""), str):
        return "`action` is not a string"
    installation = data.get("installation")
    if installation is not None and not (isinstance(installation, dict) and _is_int(installation.get("id"))):
        return "`installation.id` is not a number"
    if event.startswith("installation"):
        return None
    repo, problem = _need_obj(data, "repository")
    if repo is None:
        return problem
    if not isinstance(repo.get("full_name"), str) or repo["full_name"].count("/") != 1:
        return "`repository.full_name` is not an owner/name string"
    if event == "pull_request":
        pr, problem = _need_obj(data, "pull_request")
        if pr is None:
            return problem
        if not _is_int(pr.get("number")):
            return "`pull_request.number` is not a number"
        for side in ("head", "base"):
            ref = pr.get(side)
            if not isinstance(ref, dict) or not isinstance(ref.get("sha"), str):
                return f"`pull_request.{side}.sha` is not a string"
        base_repo = pr["base"].get("repo")
        if not isinstance(base_repo, dict) or not isinstance(base_repo.get("full_name"), str):
            return "`pull_request.base.repo.full_name` is not a string"
    elif event in ("check_run", "check_suite"):
        holder, problem = _need_obj(data, event)
        if holder is None:
            return problem
        if not isinstance(holder.get("head_sha"), str):
            return f"`{event}.head_sha` is not a string"
        return _pr_refs_problem(holder, event)
    elif event == "issue_comment":
        for key in ("issue", "comment"):
            obj, problem = _need_obj(data, key)
            if obj is None:
                return problem
            if not _is_int(obj.get("number" if key == "issue" else "id")):
                return f"`{key}.{'number' if key == 'issue' else 'id'}` is not a number"
        if not isinstance(data["comment"].get("body") or "", str):
            return "`comment.body` is not a string"
    return None
