"""Webhook deliveries for tests: GitHub's real example payloads (../shared/github/webhook-examples), adapted to
the fake GitHub's state (repository, PR number, head sha, installation id) and signed like GitHub signs them.

    payload = pull_request_event(fake, pr, "opened")
    status, text = await deliver(session, bot_url, "pull_request", payload, secret)
"""
from __future__ import annotations

import copy
import functools
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp

from .server import FakeGitHub
from .spec import shared_github_dir
from .state import CheckRun, Comment, PullRequest, Repo


@functools.cache
def _load(relpath: str) -> str:
    return (shared_github_dir() / "webhook-examples" / relpath).read_text()


def example_payload(event: str, name: str) -> dict[str, Any]:
    """A fresh copy of webhook-examples/<event>/<name> (e.g. "pull_request", "opened.payload.json")."""
    return json.loads(_load(f"{event}/{name}"))


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class Delivery:
    event: str
    payload: dict[str, Any]
    delivery_id: str

    def body(self) -> bytes:
        return json.dumps(self.payload).encode()

    def headers(self, secret: str | None, body: bytes | None = None) -> dict[str, str]:
        body = self.body() if body is None else body
        h = {"Content-Type": "application/json", "X-GitHub-Event": self.event,
             "X-GitHub-Delivery": self.delivery_id, "User-Agent": "GitHub-Hookshot/fake",
             "X-GitHub-Hook-ID": "1", "X-GitHub-Hook-Installation-Target-Type": "integration"}
        if secret is not None:
            h["X-Hub-Signature-256"] = sign(body, secret)
        return h


def delivery(event: str, payload: dict[str, Any], delivery_id: str | None = None) -> Delivery:
    return Delivery(event, payload, delivery_id or str(uuid.uuid4()))


async def deliver(session: aiohttp.ClientSession, url: str, event: str, payload: dict[str, Any], secret: str | None,
                  delivery_id: str | None = None) -> tuple[int, str]:
    """POST one signed delivery to the bot's webhook URL; returns (status, response text)."""
    d = delivery(event, payload, delivery_id)
    body = d.body()
    async with session.post(url, data=body, headers=d.headers(secret, body)) as resp:
        return resp.status, await resp.text()


# ---------------------------------------------------------------- adapting payloads to the fake's state
def _overlay(template: Any, ours: Any) -> Any:
    """`template` (GitHub's webhook shape) with the values of `ours` (the fake's REST rendering) for the keys
    the template has: webhook objects are close to, but not exactly, their REST twins."""
    if isinstance(template, dict) and isinstance(ours, dict):
        out = copy.deepcopy(template)
        for key in template:
            if key in ours:
                out[key] = _overlay(template[key], ours[key])
        return out
    return copy.deepcopy(ours)


def _repository(fake: FakeGitHub, repo: Repo, template: dict[str, Any]) -> dict[str, Any]:
    return _overlay(template, fake.render.repo(repo, full=False))


def _installation(repo: Repo) -> dict[str, Any]:
    return {"id": repo.installation_id, "node_id": f"MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9u{repo.installation_id}"}


def _pull_request(fake: FakeGitHub, pr: PullRequest, template: dict[str, Any]) -> dict[str, Any]:
    return _overlay(template, fake.render.pull(pr))


def pull_request_event(fake: FakeGitHub, pr: PullRequest, action: str = "opened",
                       before: str | None = None) -> dict[str, Any]:
    """pull_request.<action> for `pr` (opened, synchronize, reopened, ready_for_review, closed, ...)."""
    name = {"synchronize": "synchronize.payload.json", "converted_to_draft": "converted_to_draft.payload.json"}.get(
        action, f"{action}.payload.json")
    try:
        p = example_payload("pull_request", name)
    except FileNotFoundError:
        p = example_payload("pull_request", "opened.payload.json")
    p["action"] = action
    p["number"] = pr.number
    p["pull_request"] = _pull_request(fake, pr, p["pull_request"])
    p["repository"] = _repository(fake, pr.repo, p["repository"])
    p["installation"] = _installation(pr.repo)
    p["sender"] = _overlay(p["sender"], fake.render.user(pr.user))
    if action == "synchronize":
        p["before"] = before or pr.base_sha
        p["after"] = pr.head_sha
    return p


def _suite(fake: FakeGitHub, repo: Repo, head_sha: str, head_branch: str | None, prs: list[PullRequest],
           template: dict[str, Any]) -> dict[str, Any]:
    suite = copy.deepcopy(template)
    suite.update({
        "head_sha": head_sha, "head_branch": head_branch, "after": head_sha,
        # Check events of fork PRs carry no pull_requests: the head is in another repository.
        "pull_requests": [fake.render.pr_ref(pr) for pr in prs if not pr.is_fork],
        "url": f"{fake.url}/repos/{repo.full_name}/check-suites/{suite.get('id', 1)}",
    })
    if isinstance(suite.get("app"), dict):
        suite["app"]["id"] = fake.app_id
        suite["app"]["slug"] = fake.app_slug
    return suite


def check_suite_event(fake: FakeGitHub, pr: PullRequest, action: str = "rerequested") -> dict[str, Any]:
    p = example_payload("check_suite", f"{action}.payload.json")
    p["action"] = action
    p["check_suite"] = _suite(fake, pr.repo, pr.head_sha, pr.head_ref if not pr.is_fork else None, [pr],
                              p["check_suite"])
    p["repository"] = _repository(fake, pr.repo, p["repository"])
    p["installation"] = _installation(pr.repo)
    p["sender"] = _overlay(p["sender"], fake.render.user(pr.user))
    return p


def check_run_event(fake: FakeGitHub, run: CheckRun, action: str = "rerequested", pr: PullRequest | None = None,
                    requested_action: str | None = None) -> dict[str, Any]:
    """check_run.<action> for a run the bot created (rerequested, requested_action, created, completed)."""
    name = {"requested_action": "requested_action.payload.json"}.get(action, f"{action}.payload.json")
    p = example_payload("check_run", name)
    p["action"] = action
    prs = [pr] if pr is not None else fake._prs_for_sha(run.repo, run.head_sha)
    cr = p["check_run"]
    rendered = fake.render.check_run(run, prs)
    cr.update({k: rendered[k] for k in ("id", "node_id", "name", "head_sha", "status", "conclusion", "url",
                                        "html_url", "started_at", "completed_at", "external_id", "details_url",
                                        "pull_requests")})
    cr["output"] = {**cr.get("output", {}), **rendered["output"]}
    cr["app"] = {**cr.get("app", {}), "id": fake.app_id, "slug": fake.app_slug}
    head_branch = prs[0].head_ref if prs and not prs[0].is_fork else None
    cr["check_suite"] = _suite(fake, run.repo, run.head_sha, head_branch, prs, cr.get("check_suite", {}))
    p["repository"] = _repository(fake, run.repo, p["repository"])
    p["installation"] = _installation(run.repo)
    if requested_action is not None:
        p["requested_action"] = {"identifier": requested_action}
    p.pop("organization", None)
    return p


def issue_comment_event(fake: FakeGitHub, pr: PullRequest, body: str, user: str = "octocat",
                        action: str = "created", comment: Comment | None = None) -> dict[str, Any]:
    """issue_comment.<action> on pull request `pr`; the comment is also created in the fake (so reactions to
    it work). GitHub's examples are on plain issues: `issue.pull_request` is what makes this one a PR comment."""
    if comment is None:
        comment = fake.add_comment(pr.repo, pr.number, body, user)
    p = example_payload("issue_comment", f"{action}.payload.json")
    p["action"] = action
    repo_api = f"{fake.url}/repos/{pr.repo.full_name}"
    issue = p["issue"]
    issue.update({
        "number": pr.number, "title": pr.title, "state": pr.state, "user": _overlay(issue["user"],
                                                                                    fake.render.user(pr.user)),
        "url": f"{repo_api}/issues/{pr.number}", "repository_url": repo_api,
        "comments_url": f"{repo_api}/issues/{pr.number}/comments",
        "html_url": f"{fake.url}/{pr.repo.full_name}/pull/{pr.number}",
        "pull_request": {"url": f"{repo_api}/pulls/{pr.number}",
                         "html_url": f"{fake.url}/{pr.repo.full_name}/pull/{pr.number}",
                         "diff_url": f"{fake.url}/{pr.repo.full_name}/pull/{pr.number}.diff",
                         "patch_url": f"{fake.url}/{pr.repo.full_name}/pull/{pr.number}.patch",
                         "merged_at": None},
    })
    p["comment"] = _overlay(p["comment"], fake.render.comment(comment))
    p["repository"] = _repository(fake, pr.repo, p["repository"])
    p["installation"] = _installation(pr.repo)
    p["sender"] = _overlay(p["sender"], fake.render.user(comment.user))
    return p


def installation_event(fake: FakeGitHub, installation_id: int, action: str = "created",
                       repos: list[Repo] | None = None) -> dict[str, Any]:
    p = example_payload("installation", f"{action}.payload.json")
    p["action"] = action
    inst = fake.installations.get(installation_id)
    p["installation"]["id"] = installation_id
    p["installation"]["app_id"] = fake.app_id
    if inst is not None:
        p["installation"]["account"] = fake.render.user(inst.account, inst.account_type)
    if "repositories" in p:
        p["repositories"] = [{"id": r.id, "node_id": f"R_{r.id}", "name": r.name, "full_name": r.full_name,
                              "private": r.private} for r in (repos or [])]
    return p


def ping_event(fake: FakeGitHub) -> dict[str, Any]:
    p = example_payload("ping", "with-app_id.payload.json")
    if isinstance(p.get("hook"), dict):
        p["hook"]["app_id"] = fake.app_id
    return p
