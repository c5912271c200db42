"""A fake GitHub REST API on loopback, for end-to-end tests of the bot.

    async with FakeGitHub() as gh:
        gh.add_installation(7, "octo-org")
        repo = gh.add_repo("octo-org/rules", installation_id=7, files={"rules/a.yml": "..."})
        pr = gh.open_pull(repo, {"rules/a.yml": "changed"})
        ... run the bot against gh.url with gh.app_id / gh.private_key_pem ...
        assert gh.check_runs(repo)[0].conclusion == "success"

It answers like GitHub: app JWT and installation-token auth (401 with GitHub's body), 404/422 bodies
({"message", "documentation_url", "errors"}), pagination (per_page, page, Link), x-ratelimit-* headers. Every
request is recorded (`gh.requests`) and validated against ../shared/github/rest-api-subset.json; a request GitHub
would refuse is answered like GitHub would and recorded in `gh.validation_errors` (the `fake_github` fixture fails
the test at teardown unless the test called `gh.expect_invalid()`). Failure hooks: `fail`, `secondary_rate_limit`,
`primary_rate_limit`; tokens: `token_lifetime`, `expire_tokens()`.
"""
from __future__ import annotations

import asyncio
import base64
import fnmatch
import functools
import json
import math
import secrets
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .render import Renderer
from .spec import Operation, load_spec
from .state import (CheckRun, Comment, Commit, Installation, PullRequest, Repo, Status, Token, blob_sha, iso,
                    next_id, stable_id)

DOCS = "https://docs.github.com/rest"
API_VERSIONS = {"2022-11-28", "2026-03-10"}
RATE_LIMIT = 5000


@functools.cache
def app_keypair() -> tuple[bytes, Any]:
    """One RSA key per test process (generating one costs ~0.1 s)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    return pem, key.public_key()


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    operation_id: str | None
    status: int = 0
    installation_id: int | None = None
    at: float = field(default_factory=time.monotonic)

    def __repr__(self) -> str:
        return f"<{self.method} {self.path} -> {self.status}>"


@dataclass
class Fault:
    pattern: str
    method: str | None
    remaining: int
    status: int
    headers: Callable[[], dict[str, str]]
    body: dict[str, Any]
    delay: float = 0.0
    performed: bool = False   # carry the request out, then answer `status` (the answer was lost, not the write)

    def matches(self, method: str, path: str) -> bool:
        return self.remaining > 0 and (self.method in (None, method)) and fnmatch.fnmatchcase(path, self.pattern)


class GitHubError(Exception):
    def __init__(self, status: int, message: str, errors: list[Any] | None = None, doc: str = DOCS,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.errors, self.doc = status, message, errors, doc
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message, "documentation_url": self.doc, "status": str(self.status)}
        if self.errors is not None:
            out["errors"] = self.errors
        return out


def not_found() -> GitHubError:
    return GitHubError(404, "Not Found")


Handler = Callable[["Call"], Awaitable[Any]]


@dataclass
class Call:
    """One request as the route handlers see it."""
    request: web.Request
    op: Operation
    params: dict[str, str]
    query: dict[str, str]
    body: Any
    installation_id: int | None
    record: RecordedRequest


class FakeGitHub:
    def __init__(self, *, app_id: int = 4242, app_slug: str = "detbot", token_lifetime: float = 3600.0,
                 host: str = "127.0.0.1", path_prefix: str = "") -> None:
        self.app_id = app_id
        self.app_slug = app_slug
        self.token_lifetime = token_lifetime
        self.host = host
        self.path_prefix = path_prefix.rstrip("/")   # "/api/v3" serves like GitHub Enterprise Server
        self.in_flight = 0
        self.max_in_flight: dict[int | None, int] = {}   # installation id -> most concurrent requests seen
        self._in_flight_by: dict[int | None, int] = {}
        self.private_key_pem, self._public_key = app_keypair()
        self.installations: dict[int, Installation] = {}
        self.repos: dict[str, Repo] = {}
        self.pulls: dict[tuple[str, int], PullRequest] = {}
        self.runs: dict[int, CheckRun] = {}
        self.comments: dict[int, Comment] = {}
        self.statuses: list[Status] = []
        self.tokens: dict[str, Token] = {}
        self.requests: list[RecordedRequest] = []
        self.validation_errors: list[str] = []
        self.faults: list[Fault] = []
        self.latency = 0.0               # seconds added to every answer (benchmarks, races)
        self.tree_truncate_at = 100_000  # GitHub truncates recursive trees beyond 100,000 entries
        self.max_pr_files = 3000         # GitHub lists at most 3,000 files of a pull request
        self.rate_limit = RATE_LIMIT     # primary limit per installation per hour (lower it to test exhaustion)
        self._rate: dict[str, list[float]] = {}  # budget key -> [remaining, reset epoch, limit]
        self._expect_invalid = False
        self._next_issue = 1
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.render = Renderer("http://placeholder", app_id, app_slug)
        self._routes: list[tuple[str, str, Handler]] = []
        self._register_routes()

    # ---------------------------------------------------------------- life cycle
    async def start(self) -> "FakeGitHub":
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.render = Renderer(self.url, self.app_id, self.app_slug)
        return self

    async def close(self) -> None:
        if self._runner:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "FakeGitHub":
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.path_prefix}"

    @property
    def bot_login(self) -> str:
        return f"{self.app_slug}[bot]"

    # ---------------------------------------------------------------- arranging state
    def add_installation(self, installation_id: int, account: str, account_type: str = "Organization"
                         ) -> Installation:
        inst = Installation(installation_id, account, account_type)
        self.installations[installation_id] = inst
        return inst

    def add_repo(self, full_name: str, *, installation_id: int | None = None,
                 files: dict[str, bytes | str] | None = None, default_branch: str = "main",
                 private: bool = False) -> Repo:
        owner, name = full_name.split("/")
        if installation_id is not None and installation_id not in self.installations:
            self.add_installation(installation_id, owner)
        repo = Repo(owner, name, next_id(), installation_id, default_branch, private)
        repo.add_commit(files or {}, message="initial", branch=default_branch)
        self.repos[full_name.lower()] = repo
        return repo

    def repo(self, full_name: str) -> Repo:
        return self.repos[full_name.lower()]

    def push(self, repo: Repo, branch: str, files: dict[str, bytes | str], *, replace: bool = False,
             delete: tuple[str, ...] = ()) -> Commit:
        """A new commit on `branch` (created from the default branch when new): `files` overlay the parent's
        files unless `replace`; `delete` removes paths."""
        parent_sha = repo.branches.get(branch) or repo.branches[repo.default_branch]
        base = {} if replace else dict(repo.commits[parent_sha].files)
        base.update({p: (c.encode() if isinstance(c, str) else c) for p, c in files.items()})
        for path in delete:
            base.pop(path, None)
        commit = repo.add_commit(base, parent=parent_sha, message=f"push to {branch}", branch=branch)
        for pr in self.pulls.values():
            if pr.head_repo is repo and pr.head_ref == branch and pr.state == "open":
                pr.head_sha = commit.sha
                pr.updated = time.time()
            if pr.is_fork and pr.head_repo is repo and pr.head_ref == branch:
                pr.repo.commits[commit.sha] = commit
                pr.repo.blobs.update(repo.blobs)
                pr.repo._index_trees(commit)
        return commit

    def open_pull(self, repo: Repo, files: dict[str, bytes | str] | None = None, *, branch: str | None = None,
                  title: str = "Update rules", user: str = "octocat", fork_owner: str | None = None,
                  draft: bool = False, delete: tuple[str, ...] = (), renames: dict[str, str] | None = None,
                  files_override: list[dict[str, Any]] | None = None) -> PullRequest:
        """A pull request against the default branch whose head adds/changes `files` (and deletes `delete`).
        With `fork_owner` the head lives in a fork, as in a contribution from outside."""
        number = self._next_issue
        self._next_issue += 1
        branch = branch or f"pr-{number}"
        base_sha = repo.branches[repo.default_branch]
        head_repo = repo
        if fork_owner:
            head_repo = self.repos.get(f"{fork_owner}/{repo.name}".lower()) or Repo(
                fork_owner, repo.name, next_id(), None, repo.default_branch, repo.private, fork_of=repo)
            self.repos.setdefault(head_repo.full_name.lower(), head_repo)
            head_repo.commits.update(repo.commits)
            head_repo.blobs.update(repo.blobs)
            head_repo.trees.update(repo.trees)
            head_repo.branches.setdefault(repo.default_branch, base_sha)
        head_repo.branches[branch] = base_sha
        renames = renames or {}
        old_paths = tuple(renames.values())
        commit = self.push(head_repo, branch, files or {}, delete=delete + old_paths) if (
            files or delete or renames) else head_repo.commits[base_sha]
        if renames:
            moved = {new: repo.commits[base_sha].files[old] for new, old in renames.items() if new not in (files or {})}
            if moved:
                commit = self.push(head_repo, branch, moved)
        # GitHub makes a PR's head commits readable in the base repository (refs/pull/N/head).
        repo.commits[commit.sha] = commit
        repo.blobs.update(head_repo.blobs)
        repo._index_trees(commit)
        pr = PullRequest(repo, number, next_id(), title, user, head_repo, branch, commit.sha,
                         repo.default_branch, base_sha, draft=draft, renames=renames, files_override=files_override)
        self.pulls[(repo.full_name.lower(), number)] = pr
        return pr

    def push_to_pull(self, pr: PullRequest, files: dict[str, bytes | str], delete: tuple[str, ...] = ()) -> Commit:
        """A new head commit on the pull request (the `synchronize` case)."""
        commit = self.push(pr.head_repo, pr.head_ref, files, delete=delete)
        pr.repo.commits[commit.sha] = commit
        pr.repo.blobs.update(pr.head_repo.blobs)
        pr.repo._index_trees(commit)
        pr.head_sha = commit.sha
        return commit

    def pull(self, repo: Repo, number: int) -> PullRequest:
        return self.pulls[(repo.full_name.lower(), number)]

    def set_permission(self, repo: Repo, login: str, permission: str) -> None:
        """Collaborator permission: admin | maintain | write | triage | read | none, or a custom role
        `name:base` (e.g. `detection-engineer:write`) built on one of those."""
        repo.permissions[login] = permission

    def add_comment(self, repo: Repo, number: int, body: str, user: str = "octocat",
                    user_type: str = "User") -> Comment:
        c = Comment(next_id(), repo, number, body, user, user_type)
        self.comments[c.id] = c
        return c

    # ---------------------------------------------------------------- inspecting
    def check_runs(self, repo: Repo, head_sha: str | None = None, name: str | None = None) -> list[CheckRun]:
        return [r for r in self.runs.values() if r.repo is repo and head_sha in (None, r.head_sha)
                and name in (None, r.name)]

    def issue_comments(self, repo: Repo, number: int) -> list[Comment]:
        return [c for c in self.comments.values() if c.repo is repo and c.issue_number == number]

    def requests_to(self, pattern: str, method: str | None = None) -> list[RecordedRequest]:
        return [r for r in self.requests if fnmatch.fnmatchcase(r.path, pattern) and method in (None, r.method)]

    def token_requests(self, installation_id: int | None = None) -> list[RecordedRequest]:
        return [r for r in self.requests_to("/app/installations/*/access_tokens", "POST")
                if r.status == 201 and (installation_id is None or r.path.split("/")[3] == str(installation_id))]

    def expect_invalid(self) -> None:
        """This test sends requests GitHub would refuse on purpose: do not fail it for them."""
        self._expect_invalid = True

    def assert_valid(self) -> None:
        if self.validation_errors and not self._expect_invalid:
            raise AssertionError("requests GitHub would refuse:\n  " + "\n  ".join(self.validation_errors))

    # ---------------------------------------------------------------- failure hooks
    def fail(self, pattern: str, times: int = 1, status: int = 502, method: str | None = None,
             delay: float = 0.0, performed: bool = False) -> None:
        """The next `times` requests whose path matches the glob `pattern` get `status` (default 502). With
        `performed`, each is carried out first (a comment or check run is created) and only its answer is the
        error: GitHub did the write, the client cannot know."""
        body = {"message": "Server Error"} if status >= 500 else {"message": "Failure", "documentation_url": DOCS}
        self.faults.append(Fault(pattern, method, times, status, lambda: {}, body, delay, performed))

    def secondary_rate_limit(self, pattern: str, times: int = 1, retry_after: float = 1,
                             method: str | None = None) -> None:
        body = {"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try "
                           "again. If you reach out to GitHub Support for help, please include the request ID.",
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
                                     "#about-secondary-rate-limits", "status": "403"}
        self.faults.append(Fault(pattern, method, times, 403, lambda: {"retry-after": f"{retry_after:g}"}, body))

    def primary_rate_limit(self, pattern: str, times: int = 1, reset_in: float = 1, status: int = 403,
                           method: str | None = None) -> None:
        body = {"message": "API rate limit exceeded for installation.",
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
                "status": str(status)}

        def headers() -> dict[str, str]:
            return {"x-ratelimit-limit": str(RATE_LIMIT), "x-ratelimit-remaining": "0", "x-ratelimit-used":
                    str(RATE_LIMIT), "x-ratelimit-reset": str(math.ceil(time.time() + reset_in)),
                    "x-ratelimit-resource": "core"}
        self.faults.append(Fault(pattern, method, times, status, headers, body))

    def expire_tokens(self) -> None:
        """Every installation token issued so far stops working (as if expired early or revoked)."""
        for t in self.tokens.values():
            t.revoked = True

    # ---------------------------------------------------------------- HTTP plumbing
    def _register_routes(self) -> None:
        r = self._routes
        r.append(("GET", "apps/list-installations", self._list_installations))
        r.append(("POST", "apps/create-installation-access-token", self._create_token))
        r.append(("GET", "apps/list-repos-accessible-to-installation", self._installation_repos))
        r.append(("GET", "repos/get", self._get_repo))
        r.append(("GET", "pulls/list", self._list_pulls))
        r.append(("GET", "pulls/get", self._get_pull))
        r.append(("GET", "pulls/list-files", self._list_pull_files))
        r.append(("GET", "repos/get-content", self._get_content))
        r.append(("GET", "git/get-tree", self._get_tree))
        r.append(("GET", "git/get-blob", self._get_blob))
        r.append(("POST", "checks/create", self._create_run))
        r.append(("GET", "checks/get", self._get_run))
        r.append(("PATCH", "checks/update", self._update_run))
        r.append(("GET", "checks/list-annotations", self._list_annotations))
        r.append(("GET", "checks/list-for-ref", self._list_runs_for_ref))
        r.append(("GET", "issues/list-comments", self._list_comments))
        r.append(("POST", "issues/create-comment", self._create_comment))
        r.append(("GET", "issues/get-comment", self._get_comment))
        r.append(("PATCH", "issues/update-comment", self._update_comment))
        r.append(("DELETE", "issues/delete-comment", self._delete_comment))
        r.append(("POST", "reactions/create-for-issue-comment", self._create_reaction))
        r.append(("GET", "repos/get-collaborator-permission-level", self._permission))
        r.append(("POST", "repos/create-commit-status", self._create_status))
        self._handlers = {op_id: h for _, op_id, h in r}

    def _invalid(self, record: RecordedRequest, problem: str) -> None:
        self.validation_errors.append(f"{record.method} {record.path}: {problem}")

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if self.path_prefix:
            if not path.startswith(self.path_prefix + "/"):
                return web.json_response({"message": "Not Found", "documentation_url": DOCS}, status=404)
            path = path[len(self.path_prefix):]
        installation = self._installation_of(request.headers.get("Authorization", ""))
        self.in_flight += 1
        self._in_flight_by[installation] = self._in_flight_by.get(installation, 0) + 1
        self.max_in_flight[installation] = max(self.max_in_flight.get(installation, 0),
                                               self._in_flight_by[installation])
        try:
            return await self._answer(request, path)
        finally:
            self.in_flight -= 1
            self._in_flight_by[installation] -= 1

    def _installation_of(self, credential: str) -> int | None:
        token = self.tokens.get(credential.partition(" ")[2])
        return token.installation_id if token else None

    async def _answer(self, request: web.Request, path: str) -> web.StreamResponse:
        spec = load_spec()
        raw = await request.read()
        record = RecordedRequest(request.method, path, {k: request.query.getall(k) for k in request.query},
                                 {k.lower(): v for k, v in request.headers.items()}, None, None)
        self.requests.append(record)
        credential = request.headers.get("Authorization", "")
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            version = request.headers.get("X-GitHub-Api-Version")
            if version is not None and version not in API_VERSIONS:
                raise GitHubError(400, f"Unsupported 'X-GitHub-Api-Version' header: {version}")
            found = spec.match(request.method, path)
            if found is None:
                if spec.path_exists(path):
                    self._invalid(record, "method not in rest-api-subset.json")
                    raise GitHubError(404, "Not Found")
                self._invalid(record, "path not in rest-api-subset.json")
                raise not_found()
            op, params = found
            record.operation_id = op.operation_id
            params = {k: urllib.parse.unquote(v) for k, v in params.items()}
            problems = spec.validate_params(op, params, record.query)
            if problems:
                for p in problems:
                    self._invalid(record, p)
                raise GitHubError(422, "Invalid request.\n\n" + "\n".join(problems),
                                  [{"code": "invalid", "message": p} for p in problems], op.doc_url)
            body: Any = None
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    self._invalid(record, "body is not JSON")
                    raise GitHubError(400, "Problems parsing JSON", doc=op.doc_url)
            record.body = body
            if op.body_pointer is not None and (raw or op.body_required):
                problems = spec.validate_body(op, {} if body is None else body)
                if problems:
                    for p in problems:
                        self._invalid(record, _short(p))
                    raise GitHubError(422, "Invalid request.\n\n" + "\n".join(_short(p) for p in problems),
                                      [{"code": "invalid", "message": _short(p)} for p in problems], op.doc_url)
            elif raw and op.body_pointer is None:
                self._invalid(record, "this operation takes no request body")
            installation_id = self._authenticate(op, credential)
            record.installation_id = installation_id
            self._check_budget(credential)
            call = Call(request, op, params, {k: v[-1] for k, v in record.query.items()}, body, installation_id,
                        record)
            for fault in self.faults:
                if fault.matches(request.method, path):
                    fault.remaining -= 1
                    if fault.delay:
                        await asyncio.sleep(fault.delay)
                    if fault.performed:
                        await self._handlers[op.operation_id](call)
                    record.status = fault.status
                    headers = self._rate_headers(credential, spend=fault.performed)
                    headers.update(fault.headers())
                    return web.json_response(fault.body, status=fault.status, headers=headers)
            result = await self._handlers[op.operation_id](call)
            status, payload, extra = result if isinstance(result, tuple) else (200, result, {})
            record.status = status
            headers = self._rate_headers(credential, spend=True)
            headers.update(extra)
            if status == 204:
                return web.Response(status=204, headers=headers)
            return web.json_response(payload, status=status, headers=headers)
        except GitHubError as e:
            record.status = e.status
            headers = self._rate_headers(credential)
            headers.update(e.headers)
            return web.json_response(e.body(), status=e.status, headers=headers)

    def _budget_key(self, credential: str) -> str:
        """GitHub counts the primary rate limit per installation (and per App for JWT calls)."""
        installation = self._installation_of(credential)
        if installation is not None:
            return f"installation:{installation}"
        return "app" if credential.lower().startswith("bearer ") else "anonymous"

    def _budget(self, credential: str) -> list[float]:
        key = self._budget_key(credential)
        state = self._rate.get(key)
        now = time.time()
        if state is None or state[1] <= now:
            limit = self.rate_limit if key != "anonymous" else 60
            state = self._rate[key] = [float(limit), float(math.ceil(now + 3600)), float(limit)]
        return state

    def _rate_headers(self, credential: str, spend: bool = False) -> dict[str, str]:
        state = self._budget(credential)
        if spend and state[0] > 0:
            state[0] -= 1
        limit = int(state[2])
        return {"x-ratelimit-limit": str(limit), "x-ratelimit-remaining": str(int(state[0])),
                "x-ratelimit-reset": str(int(state[1])), "x-ratelimit-used": str(limit - int(state[0])),
                "x-ratelimit-resource": "core", "x-github-api-version-selected": "2022-11-28",
                "x-github-request-id": secrets.token_hex(8).upper()}

    def _check_budget(self, credential: str) -> None:
        if self._budget(credential)[0] <= 0:
            raise GitHubError(403, "API rate limit exceeded for installation.",
                              doc="https://docs.github.com/rest/overview/rate-limits-for-the-rest-api")

    def _authenticate(self, op: Operation, credential: str) -> int | None:
        """App endpoints take the app JWT (`Bearer`); the rest an installation token (`token` or `Bearer`).
        Returns the installation id the credential acts for (None for the app itself)."""
        scheme, _, value = credential.partition(" ")
        if not value:
            raise GitHubError(401, "Requires authentication")
        if op.template.startswith("/app/") or op.template == "/app":
            if scheme.lower() != "bearer":
                raise GitHubError(401, "A JSON web token could not be decoded")
            self._verify_jwt(value)
            return None
        token = self.tokens.get(value)
        if token is None:
            if value.count(".") == 2:
                raise GitHubError(401, "A JSON web token cannot be used to access this endpoint")
            raise GitHubError(401, "Bad credentials")
        if token.revoked or token.expires_at <= time.time():
            raise GitHubError(401, "Bad credentials")
        return token.installation_id

    def _verify_jwt(self, value: str) -> None:
        try:
            claims = jwt.decode(value, self._public_key, algorithms=["RS256"],
                                options={"require": ["iat", "exp", "iss"], "verify_iat": False}, leeway=0)
        except jwt.ExpiredSignatureError:
            raise GitHubError(401, "'Expiration time' claim ('exp') must be a numeric value representing the "
                                   "future time at which the assertion expires")
        except jwt.PyJWTError:
            raise GitHubError(401, "A JSON web token could not be decoded")
        now = time.time()
        if str(claims["iss"]) != str(self.app_id):
            raise GitHubError(401, "'Issuer' claim ('iss') must be an Integer")
        if claims["exp"] > now + 600 + 1:
            raise GitHubError(401, "'Expiration time' claim ('exp') is too far in the future")
        if claims["iat"] > now + 1:
            raise GitHubError(401, "'Issued at' claim ('iat') must be an Integer representing a time in the past")

    # ---------------------------------------------------------------- helpers for handlers
    def _repo_for(self, call: Call) -> Repo:
        repo = self.repos.get(f"{call.params['owner']}/{call.params['repo']}".lower())
        if repo is None or repo.installation_id != call.installation_id:
            raise not_found()   # GitHub hides what the credential may not see
        return repo

    def _pull_for(self, call: Call, repo: Repo, number: int) -> PullRequest:
        pr = self.pulls.get((repo.full_name.lower(), number))
        if pr is None:
            raise not_found()
        return pr

    def _page(self, call: Call, items: list[Any], cap: int | None = None) -> tuple[list[Any], dict[str, str]]:
        """One page of `items` and its Link header, as GitHub paginates (per_page <= 100, default 30)."""
        per_page = max(1, min(100, int(call.query.get("per_page", 30))))
        page = max(1, int(call.query.get("page", 1)))
        if cap is not None:
            items = items[:cap]
        last = max(1, math.ceil(len(items) / per_page))
        chunk = items[(page - 1) * per_page: page * per_page]
        links = []

        def url(n: int) -> str:
            query = {k: v for k, v in call.query.items()}
            query["per_page"] = str(per_page)
            query["page"] = str(n)
            return f"http://{self.host}:{self.port}{call.request.path}?{urllib.parse.urlencode(query)}"
        if page > 1:
            links.append(f'<{url(page - 1)}>; rel="prev"')
        if page < last:
            links.append(f'<{url(page + 1)}>; rel="next"')
            links.append(f'<{url(last)}>; rel="last"')
        if page > 1:
            links.append(f'<{url(1)}>; rel="first"')
        return chunk, ({"Link": ", ".join(links)} if links else {})

    def _prs_for_sha(self, repo: Repo, sha: str) -> list[PullRequest]:
        return [pr for pr in self.pulls.values() if pr.repo is repo and pr.head_sha == sha and pr.state == "open"]

    # ---------------------------------------------------------------- apps
    async def _list_installations(self, call: Call) -> Any:
        items = [self.render.installation(i) for i in sorted(self.installations.values(), key=lambda i: i.id)]
        page, link = self._page(call, items)
        return 200, page, link

    async def _create_token(self, call: Call) -> Any:
        inst = self.installations.get(int(call.params["installation_id"]))
        if inst is None:
            raise not_found()
        if inst.suspended:
            raise GitHubError(403, "This installation has been suspended")
        token = Token("ghs_" + secrets.token_urlsafe(27)[:36], inst.id, time.time() + self.token_lifetime)
        self.tokens[token.token] = token
        return 201, {"token": token.token, "expires_at": _expires_at(token.expires_at, self.token_lifetime),
                     "permissions": dict(inst.permissions), "repository_selection": inst.repository_selection}, {}

    async def _installation_repos(self, call: Call) -> Any:
        repos = [self.render.repo(r, full=False) for r in self.repos.values()
                 if r.installation_id == call.installation_id]
        page, link = self._page(call, repos)
        inst = self.installations[call.installation_id]  # type: ignore[index]
        return 200, {"total_count": len(repos), "repositories": page,
                     "repository_selection": inst.repository_selection}, link

    # ---------------------------------------------------------------- repos, pulls, contents
    async def _get_repo(self, call: Call) -> Any:
        return self.render.repo(self._repo_for(call))

    async def _list_pulls(self, call: Call) -> Any:
        repo = self._repo_for(call)
        state = call.query.get("state", "open")
        prs = [pr for pr in self.pulls.values() if pr.repo is repo and state in ("all", pr.state)]
        if "head" in call.query:
            owner, _, ref = call.query["head"].partition(":")
            prs = [pr for pr in prs if pr.head_repo.owner.lower() == owner.lower() and pr.head_ref == ref]
        if "base" in call.query:
            prs = [pr for pr in prs if pr.base_ref == call.query["base"]]
        prs.sort(key=lambda p: p.created, reverse=call.query.get("direction", "desc") == "desc")
        page, link = self._page(call, [self.render.pull(p, simple=True) for p in prs])
        return 200, page, link

    async def _get_pull(self, call: Call) -> Any:
        repo = self._repo_for(call)
        return self.render.pull(self._pull_for(call, repo, int(call.params["pull_number"])))

    async def _list_pull_files(self, call: Call) -> Any:
        repo = self._repo_for(call)
        pr = self._pull_for(call, repo, int(call.params["pull_number"]))
        entries = pr.changed_files()[: self.max_pr_files]
        page, link = self._page(call, entries)
        return 200, [self.render.diff_entry(pr, e) for e in page], link

    async def _get_content(self, call: Call) -> Any:
        repo = self._repo_for(call)
        ref = call.query.get("ref", repo.default_branch)
        commit = repo.resolve(ref)
        if commit is None:
            raise GitHubError(404, f"No commit found for the ref {ref}",
                              doc="https://docs.github.com/rest/repos/contents#get-repository-content")
        path = call.params["path"].strip("/")
        if path in commit.files:
            return self.render.content_file(repo, path, commit.files[path], ref)
        prefix = path + "/"
        if any(p.startswith(prefix) for p in commit.files):
            entries = repo.tree_entries(commit, path, recursive=False)
            return [self.render.content_dir_entry(repo, e, path, ref) for e in entries][:1000]
        raise GitHubError(404, "Not Found", doc="https://docs.github.com/rest/repos/contents#get-repository-content")

    async def _get_tree(self, call: Call) -> Any:
        repo = self._repo_for(call)
        sha = call.params["tree_sha"]
        recursive = "recursive" in call.query   # GitHub: any value, even "0" or "false", means recursive
        if sha in repo.trees:
            commit_sha, prefix = repo.trees[sha]
            commit = repo.commits[commit_sha]
        else:
            commit = repo.resolve(sha)
            if commit is None:
                raise GitHubError(404, "Not Found", doc="https://docs.github.com/rest/git/trees#get-a-tree")
            prefix = ""
        entries = repo.tree_entries(commit, prefix, recursive)
        truncated = len(entries) > self.tree_truncate_at
        return self.render.tree(repo, repo.tree_sha(commit, prefix), entries[: self.tree_truncate_at], truncated)

    async def _get_blob(self, call: Call) -> Any:
        repo = self._repo_for(call)
        sha = call.params["file_sha"]
        if sha not in repo.blobs:
            if len(sha) != 40 or any(ch not in "0123456789abcdef" for ch in sha):
                raise GitHubError(422, "The sha parameter must be exactly 40 characters and contain only "
                                       "[0-9a-f].", doc="https://docs.github.com/rest/git/blobs#get-a-blob")
            raise GitHubError(404, "Not Found", doc="https://docs.github.com/rest/git/blobs#get-a-blob")
        return self.render.blob(repo, sha, repo.blobs[sha])

    # ---------------------------------------------------------------- check runs
    def _apply_run_body(self, run: CheckRun, body: dict[str, Any], call: Call) -> None:
        """Semantic checks GitHub makes beyond the schema, then the update (annotations are appended)."""
        errors = []
        output = body.get("output") or {}
        for i, a in enumerate(output.get("annotations") or []):
            if a["start_line"] > a["end_line"]:
                errors.append({"resource": "CheckRun", "code": "invalid", "field": f"annotations[{i}].end_line",
                               "message": "end_line must be greater than or equal to start_line"})
            if ("start_column" in a or "end_column" in a) and a["start_line"] != a["end_line"]:
                errors.append({"resource": "CheckRun", "code": "invalid", "field": f"annotations[{i}]",
                               "message": "start_column and end_column may only be used when start_line "
                                          "equals end_line"})
            if len(a.get("title") or "") > 255:
                errors.append({"resource": "CheckRun", "code": "invalid", "field": f"annotations[{i}].title",
                               "message": "title is too long (maximum is 255 characters)"})
            for field_ in ("message", "raw_details"):
                if len((a.get(field_) or "").encode()) > 65535:
                    errors.append({"resource": "CheckRun", "code": "invalid",
                                   "field": f"annotations[{i}].{field_}",
                                   "message": f"{field_} is too long (maximum is 64 kilobytes)"})
            if a["start_line"] < 1:
                errors.append({"resource": "CheckRun", "code": "invalid", "field": f"annotations[{i}].start_line",
                               "message": "start_line must be at least 1"})
        for field_ in ("summary", "text"):
            # GitHub's documentation says characters; its validation counts UTF-8 bytes.
            if len((output.get(field_) or "").encode()) > 65535:
                errors.append({"resource": "CheckRun", "code": "custom", "field": field_,
                               "message": f"{field_} exceeds a maximum bytesize of 65535"})
        conclusion = body.get("conclusion")
        if conclusion == "stale":
            errors.append({"resource": "CheckRun", "code": "invalid", "field": "conclusion",
                           "message": "stale can only be set by GitHub"})
        if conclusion == "action_required" and not (body.get("details_url") or run.details_url):
            errors.append({"resource": "CheckRun", "code": "missing_field", "field": "details_url"})
        status = body.get("status")
        if status == "completed" and not conclusion:
            errors.append({"resource": "CheckRun", "code": "missing_field", "field": "conclusion"})
        if body.get("completed_at") and not conclusion and run.conclusion is None:
            errors.append({"resource": "CheckRun", "code": "missing_field", "field": "conclusion"})
        if run.status == "completed" and status in ("queued", "in_progress"):
            errors.append({"resource": "CheckRun", "code": "invalid", "field": "status",
                           "message": "a completed check run cannot go back to " + status})
        if errors:
            for e in errors:
                self._invalid(call.record, f"{e['field']}: {e.get('message', e['code'])}")
            raise GitHubError(422, "Validation Failed", errors,
                              doc="https://docs.github.com/rest/checks/runs#update-a-check-run")
        run.history.append(body)
        for key in ("name", "details_url", "external_id", "started_at"):
            if key in body:
                setattr(run, key, body[key])
        if "actions" in body:
            run.actions = body["actions"]
        if status:
            run.status = status
        if status == "in_progress" and not run.started_at:
            run.started_at = iso()
        if conclusion:
            run.status = "completed"
            run.conclusion = conclusion
            run.completed_at = body.get("completed_at") or iso()
        if output:
            for key in ("title", "summary", "text"):
                if key in output:
                    run.output[key] = output[key]
            run.annotations.extend(output.get("annotations") or [])

    async def _create_run(self, call: Call) -> Any:
        repo = self._repo_for(call)
        body = call.body
        if body["head_sha"] not in repo.commits:
            raise GitHubError(422, "No commit found for SHA: " + body["head_sha"],
                              [{"resource": "CheckRun", "code": "invalid", "field": "head_sha"}],
                              doc="https://docs.github.com/rest/checks/runs#create-a-check-run")
        run = CheckRun(next_id(), repo, self.app_id, body["name"], body["head_sha"], started_at=iso(),
                       check_suite_id=stable_id(repo.id, body["head_sha"]))
        self._apply_run_body(run, {"status": "queued", **body}, call)
        self.runs[run.id] = run
        return 201, self.render.check_run(run, self._prs_for_sha(repo, run.head_sha)), {}

    def _run_for(self, call: Call) -> CheckRun:
        repo = self._repo_for(call)
        run = self.runs.get(int(call.params["check_run_id"]))
        if run is None or run.repo is not repo:
            raise not_found()
        return run

    async def _get_run(self, call: Call) -> Any:
        run = self._run_for(call)
        return self.render.check_run(run, self._prs_for_sha(run.repo, run.head_sha))

    async def _update_run(self, call: Call) -> Any:
        run = self._run_for(call)
        self._apply_run_body(run, call.body, call)
        return self.render.check_run(run, self._prs_for_sha(run.repo, run.head_sha))

    async def _list_annotations(self, call: Call) -> Any:
        run = self._run_for(call)
        page, link = self._page(call, [self.render.annotation(run, a) for a in run.annotations])
        return 200, page, link

    async def _list_runs_for_ref(self, call: Call) -> Any:
        repo = self._repo_for(call)
        commit = repo.resolve(call.params["ref"])
        if commit is None:
            raise GitHubError(422, "No commit found for SHA: " + call.params["ref"],
                              doc="https://docs.github.com/rest/checks/runs#list-check-runs-for-a-git-reference")
        runs = [r for r in self.runs.values() if r.repo is repo and r.head_sha == commit.sha]
        if "check_name" in call.query:
            runs = [r for r in runs if r.name == call.query["check_name"]]
        if "status" in call.query:
            runs = [r for r in runs if r.status == call.query["status"]]
        if "app_id" in call.query:
            runs = [r for r in runs if r.app_id == int(call.query["app_id"])]
        runs.sort(key=lambda r: r.id, reverse=True)
        if call.query.get("filter", "latest") == "latest":
            seen: set[str] = set()
            latest = []
            for r in runs:
                if r.name not in seen:
                    seen.add(r.name)
                    latest.append(r)
            runs = latest
        prs = self._prs_for_sha(repo, commit.sha)
        page, link = self._page(call, runs)
        return 200, {"total_count": len(runs), "check_runs": [self.render.check_run(r, prs) for r in page]}, link

    # ---------------------------------------------------------------- comments, reactions, permissions
    def _issue_exists(self, repo: Repo, number: int) -> None:
        if (repo.full_name.lower(), number) not in self.pulls:
            raise not_found()

    async def _list_comments(self, call: Call) -> Any:
        repo = self._repo_for(call)
        number = int(call.params["issue_number"])
        self._issue_exists(repo, number)
        comments = sorted(self.issue_comments(repo, number), key=lambda c: c.id)
        if "since" in call.query:
            comments = [c for c in comments if c.updated_at >= call.query["since"]]
        page, link = self._page(call, [self.render.comment(c) for c in comments])
        return 200, page, link

    async def _create_comment(self, call: Call) -> Any:
        repo = self._repo_for(call)
        number = int(call.params["issue_number"])
        self._issue_exists(repo, number)
        _check_comment_length(call.body["body"])
        c = self.add_comment(repo, number, call.body["body"], self.bot_login, "Bot")
        return 201, self.render.comment(c), {"Location": f"{self.url}/repos/{repo.full_name}/issues/comments/{c.id}"}

    def _comment_for(self, call: Call) -> Comment:
        repo = self._repo_for(call)
        c = self.comments.get(int(call.params["comment_id"]))
        if c is None or c.repo is not repo:
            raise not_found()
        return c

    async def _get_comment(self, call: Call) -> Any:
        return self.render.comment(self._comment_for(call))

    async def _update_comment(self, call: Call) -> Any:
        c = self._comment_for(call)
        if c.user != self.bot_login:
            raise GitHubError(403, "Resource not accessible by integration")
        _check_comment_length(call.body["body"])
        c.body = call.body["body"]
        c.updated_at = iso()
        return self.render.comment(c)

    async def _delete_comment(self, call: Call) -> Any:
        c = self._comment_for(call)
        if c.user != self.bot_login:
            raise GitHubError(403, "Resource not accessible by integration")
        del self.comments[c.id]
        return 204, None, {}

    async def _create_reaction(self, call: Call) -> Any:
        c = self._comment_for(call)
        for r in c.reactions:
            if r["content"] == call.body["content"] and r["user"] == self.bot_login:
                return 200, self.render.reaction(r), {}
        r = {"id": next_id(), "content": call.body["content"], "user": self.bot_login, "created_at": iso()}
        c.reactions.append(r)
        return 201, self.render.reaction(r), {}

    async def _permission(self, call: Call) -> Any:
        repo = self._repo_for(call)
        login = call.params["username"]
        perm = repo.permissions.get(login)
        if perm is None:
            perm = "none" if repo.private else "read"
        role, _, base = perm.partition(":")   # a custom role "name:base" reports its name and its base role
        perm = base or role
        legacy = {"maintain": "write", "triage": "read"}.get(perm, perm)   # `permission` keeps the old names
        user = self.render.user(login)
        levels = ["read", "triage", "write", "maintain", "admin"]
        rank = levels.index(perm) if perm in levels else -1
        user["role_name"] = role
        user["permissions"] = {"pull": rank >= 0, "triage": rank >= 1, "push": rank >= 2, "maintain": rank >= 3,
                               "admin": rank >= 4}
        return {"permission": legacy, "role_name": role, "user": user}

    async def _create_status(self, call: Call) -> Any:
        repo = self._repo_for(call)
        sha = call.params["sha"]
        if sha not in repo.commits:
            raise GitHubError(422, "No commit found for SHA: " + sha,
                              [{"resource": "Status", "code": "custom", "field": "sha"}])
        s = Status(next_id(), repo, sha, call.body["state"], call.body.get("context", "default"),
                   call.body.get("description"), call.body.get("target_url"))
        self.statuses.append(s)
        return 201, self.render.status(s), {}


def _check_comment_length(body: str) -> None:
    if len(body) > 65536:
        raise GitHubError(422, "Validation Failed", [{"resource": "IssueComment", "code": "custom", "field": "body",
                                                      "message": "body is too long (maximum is 65536 characters)"}])


def _short(problem: str, limit: int = 300) -> str:
    return problem if len(problem) <= limit else problem[:limit] + "..."


def _expires_at(ts: float, lifetime: float) -> str:
    """GitHub gives whole seconds; test-only lifetimes under a minute get milliseconds, or rounding would eat
    most of a one-second token's life."""
    if lifetime >= 60:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"


__all__ = ["FakeGitHub", "RecordedRequest", "GitHubError", "app_keypair", "blob_sha", "base64"]
