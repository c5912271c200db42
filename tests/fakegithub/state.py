"""In-memory GitHub: installations, repositories with git objects, pull requests, check runs, comments.

Tests arrange this state through `FakeGitHub` methods and inspect it after the bot ran. Git objects are hashed
the way git hashes them (blob ids are real git blob ids), so shas in responses are stable and consistent.
"""
from __future__ import annotations

import hashlib
import itertools
import time
import zlib
from dataclasses import dataclass, field
from typing import Any


def blob_sha(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def stable_id(*parts: object) -> int:
    """A deterministic id for a name (Python's hash() differs between processes)."""
    return zlib.crc32("\0".join(map(str, parts)).encode()) % 10_000_000 + 1


def iso(ts: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if ts is None else ts))


_ids = itertools.count(1000)


def next_id() -> int:
    return next(_ids)


@dataclass
class Installation:
    id: int
    account: str
    account_type: str = "Organization"
    suspended: bool = False
    repository_selection: str = "selected"
    permissions: dict[str, str] = field(default_factory=lambda: {
        "checks": "write", "contents": "read", "issues": "write", "metadata": "read",
        "pull_requests": "write", "statuses": "write"})


@dataclass
class Commit:
    sha: str
    files: dict[str, bytes]
    parent: str | None
    message: str
    created: float = field(default_factory=time.time)


@dataclass
class Repo:
    owner: str
    name: str
    id: int
    installation_id: int | None
    default_branch: str = "main"
    private: bool = False
    fork_of: "Repo | None" = None
    branches: dict[str, str] = field(default_factory=dict)      # branch -> commit sha
    commits: dict[str, Commit] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)       # blob sha -> content
    trees: dict[str, tuple[str, str]] = field(default_factory=dict)  # tree sha -> (commit sha, dir prefix)
    permissions: dict[str, str] = field(default_factory=dict)   # login -> admin|maintain|write|triage|read

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def resolve(self, ref: str) -> Commit | None:
        """A commit sha, a branch name, or `heads/<branch>` / `refs/heads/<branch>`."""
        if ref in self.commits:
            return self.commits[ref]
        for prefix in ("refs/heads/", "heads/"):
            if ref.startswith(prefix):
                ref = ref[len(prefix):]
        sha = self.branches.get(ref)
        return self.commits.get(sha) if sha else None

    def add_commit(self, files: dict[str, bytes | str], parent: str | None = None, message: str = "commit",
                   branch: str | None = None) -> Commit:
        data = {p: (c.encode() if isinstance(c, str) else c) for p, c in files.items()}
        h = hashlib.sha1()
        h.update(f"{self.full_name}\0{parent}\0{message}\0{next_id()}".encode())
        for path in sorted(data):
            h.update(path.encode() + b"\0" + blob_sha(data[path]).encode())
        commit = Commit(h.hexdigest(), data, parent, message)
        self.commits[commit.sha] = commit
        for content in data.values():
            self.blobs[blob_sha(content)] = content
        self._index_trees(commit)
        if branch:
            self.branches[branch] = commit.sha
        return commit

    def _index_trees(self, commit: Commit) -> None:
        dirs = {""}
        for path in commit.files:
            parts = path.split("/")
            for i in range(1, len(parts)):
                dirs.add("/".join(parts[:i]))
        for d in dirs:
            self.trees[self.tree_sha(commit, d)] = (commit.sha, d)

    def tree_sha(self, commit: Commit, prefix: str) -> str:
        h = hashlib.sha1(f"tree\0{commit.sha}\0{prefix}".encode())
        return h.hexdigest()

    def tree_entries(self, commit: Commit, prefix: str, recursive: bool) -> list[dict[str, Any]]:
        """(path relative to prefix, type, sha, size) for the directory `prefix` of `commit`."""
        base = prefix + "/" if prefix else ""
        entries: dict[str, dict[str, Any]] = {}
        for path, content in sorted(commit.files.items()):
            if not path.startswith(base):
                continue
            rel = path[len(base):]
            parts = rel.split("/")
            for i in range(1, len(parts)):
                sub = "/".join(parts[:i])
                if (recursive or i == 1) and sub not in entries:
                    entries[sub] = {"path": sub, "type": "tree", "mode": "040000",
                                    "sha": self.tree_sha(commit, base + sub)}
                if not recursive:
                    break
            if recursive or len(parts) == 1:
                entries[rel] = {"path": rel, "type": "blob", "mode": "100644", "sha": blob_sha(content),
                                "size": len(content)}
        return sorted(entries.values(), key=lambda e: e["path"])


@dataclass
class PullRequest:
    repo: Repo
    number: int
    id: int
    title: str
    user: str
    head_repo: Repo
    head_ref: str
    head_sha: str
    base_ref: str
    base_sha: str
    state: str = "open"
    draft: bool = False
    merged: bool = False
    files_override: list[dict[str, Any]] | None = None   # explicit /files entries (e.g. 3,000+ files)
    renames: dict[str, str] = field(default_factory=dict)  # new path -> old path
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)

    @property
    def is_fork(self) -> bool:
        return self.head_repo is not self.repo

    def changed_files(self) -> list[dict[str, Any]]:
        if self.files_override is not None:
            return self.files_override
        head = self.repo.commits[self.head_sha].files
        base = self.repo.commits[self.base_sha].files
        out = []
        renamed_from = set(self.renames.values())
        for path in sorted(set(head) | set(base)):
            if path in renamed_from and path not in head:
                continue
            if path in self.renames:
                old = self.renames[path]
                status = "renamed"
                changes = _line_delta(base.get(old, b""), head[path])
                out.append({"filename": path, "status": status, "previous_filename": old,
                            "sha": blob_sha(head[path]), **changes})
            elif path not in base:
                out.append({"filename": path, "status": "added", "sha": blob_sha(head[path]),
                            **_line_delta(b"", head[path])})
            elif path not in head:
                out.append({"filename": path, "status": "removed", "sha": blob_sha(base[path]),
                            **_line_delta(base[path], b"")})
            elif head[path] != base[path]:
                out.append({"filename": path, "status": "modified", "sha": blob_sha(head[path]),
                            **_line_delta(base[path], head[path])})
        return out


def _line_delta(old: bytes, new: bytes) -> dict[str, int]:
    old_lines, new_lines = old.splitlines(), new.splitlines()
    additions = sum(1 for line in new_lines if line not in set(old_lines))
    deletions = sum(1 for line in old_lines if line not in set(new_lines))
    return {"additions": additions, "deletions": deletions, "changes": additions + deletions}


@dataclass
class CheckRun:
    id: int
    repo: Repo
    app_id: int
    name: str
    head_sha: str
    status: str = "queued"
    conclusion: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    details_url: str | None = None
    external_id: str | None = None
    output: dict[str, Any] = field(default_factory=lambda: {"title": None, "summary": None, "text": None})
    annotations: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    check_suite_id: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)   # every create/update body, in order


@dataclass
class Comment:
    id: int
    repo: Repo
    issue_number: int
    body: str
    user: str
    user_type: str = "User"
    created_at: str = field(default_factory=iso)
    updated_at: str = field(default_factory=iso)
    reactions: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Status:
    id: int
    repo: Repo
    sha: str
    state: str
    context: str
    description: str | None
    target_url: str | None
    created_at: str = field(default_factory=iso)


@dataclass
class Token:
    token: str
    installation_id: int
    expires_at: float
    revoked: bool = False
