"""JSON shapes of the fake's responses: GitHub's own examples from the spec, with the fake's state laid over them."""
from __future__ import annotations

import base64
from typing import Any

from .spec import example
from .state import CheckRun, Comment, Installation, PullRequest, Repo, Status, blob_sha, iso, stable_id


class Renderer:
    def __init__(self, api_url: str, app_id: int, app_slug: str) -> None:
        self.api = api_url.rstrip("/")
        self.web = self.api  # html_url values point at the fake too; nothing follows them
        self.app_id = app_id
        self.app_slug = app_slug

    def user(self, login: str, type_: str = "User", id_: int | None = None) -> dict[str, Any]:
        u = example("issue-comment")["user"]
        api = f"{self.api}/users/{login}"
        u.update({
            "login": login, "id": id_ if id_ is not None else stable_id(login),
            "type": type_, "url": api, "html_url": f"{self.web}/{login}",
            "followers_url": f"{api}/followers", "following_url": f"{api}/following{{/other_user}}",
            "gists_url": f"{api}/gists{{/gist_id}}", "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{api}/subscriptions", "organizations_url": f"{api}/orgs",
            "repos_url": f"{api}/repos", "events_url": f"{api}/events{{/privacy}}",
            "received_events_url": f"{api}/received_events",
        })
        return u

    def bot_login(self) -> str:
        return f"{self.app_slug}[bot]"

    def repo(self, repo: Repo, full: bool = True) -> dict[str, Any]:
        r = example("full-repository-default-response")
        api = f"{self.api}/repos/{repo.full_name}"
        for key, value in list(r.items()):
            if isinstance(value, str) and value.startswith("https://api.github.com/repos/octocat/Hello-World"):
                r[key] = value.replace("https://api.github.com/repos/octocat/Hello-World", api)
        r.update({
            "id": repo.id, "node_id": f"R_{repo.id}", "name": repo.name, "full_name": repo.full_name,
            "owner": self.user(repo.owner, "Organization"), "private": repo.private,
            "visibility": "private" if repo.private else "public",
            "html_url": f"{self.web}/{repo.full_name}", "url": api, "default_branch": repo.default_branch,
            "fork": repo.fork_of is not None, "clone_url": f"{self.web}/{repo.full_name}.git",
            "git_url": f"git://{self.web.split('://')[-1]}/{repo.full_name}.git",
            "ssh_url": f"git@example.invalid:{repo.full_name}.git", "svn_url": f"{self.web}/{repo.full_name}",
            "mirror_url": None, "homepage": None, "language": "YAML", "license": None,
        })
        for key in ("parent", "source", "organization", "template_repository"):
            r.pop(key, None)
        r["temp_clone_token"] = "" if full else r.get("temp_clone_token") or ""
        if not full:
            for key in ("network_count", "subscribers_count"):
                r.pop(key, None)
        return r

    def installation(self, inst: Installation) -> dict[str, Any]:
        i = example("base-installation-items")[0]
        i.update({
            "id": inst.id, "app_id": self.app_id, "app_slug": self.app_slug,
            "account": self.user(inst.account, inst.account_type),
            "access_tokens_url": f"{self.api}/app/installations/{inst.id}/access_tokens",
            "repositories_url": f"{self.api}/installation/repositories",
            "html_url": f"{self.web}/organizations/{inst.account}/settings/installations/{inst.id}",
            "permissions": dict(inst.permissions), "repository_selection": inst.repository_selection,
            "target_type": inst.account_type, "target_id": stable_id(inst.account),
            "suspended_at": iso() if inst.suspended else None, "suspended_by": None,
            "events": ["check_run", "check_suite", "issue_comment", "pull_request"],
            "single_file_name": None, "single_file_paths": [], "has_multiple_single_files": False,
        })
        return i

    def _pr_branch(self, pr: PullRequest, side: str) -> dict[str, Any]:
        repo = pr.head_repo if side == "head" else pr.repo
        ref = pr.head_ref if side == "head" else pr.base_ref
        sha = pr.head_sha if side == "head" else pr.base_sha
        return {"label": f"{repo.owner}:{ref}", "ref": ref, "sha": sha, "user": self.user(repo.owner, "Organization"),
                "repo": self.repo(repo, full=False)}

    def pull(self, pr: PullRequest, simple: bool = False) -> dict[str, Any]:
        p = example("pull-request-simple-items")[0] if simple else example("pull-request")
        api = f"{self.api}/repos/{pr.repo.full_name}"
        p.update({
            "id": pr.id, "node_id": f"PR_{pr.id}", "number": pr.number, "title": pr.title, "body": None,
            "state": "closed" if pr.state != "open" else "open", "draft": pr.draft, "locked": False,
            "user": self.user(pr.user), "url": f"{api}/pulls/{pr.number}",
            "html_url": f"{self.web}/{pr.repo.full_name}/pull/{pr.number}",
            "diff_url": f"{self.web}/{pr.repo.full_name}/pull/{pr.number}.diff",
            "patch_url": f"{self.web}/{pr.repo.full_name}/pull/{pr.number}.patch",
            "issue_url": f"{api}/issues/{pr.number}", "commits_url": f"{api}/pulls/{pr.number}/commits",
            "review_comments_url": f"{api}/pulls/{pr.number}/comments",
            "review_comment_url": f"{api}/pulls/comments{{/number}}",
            "comments_url": f"{api}/issues/{pr.number}/comments", "statuses_url": f"{api}/statuses/{pr.head_sha}",
            "head": self._pr_branch(pr, "head"), "base": self._pr_branch(pr, "base"),
            "created_at": iso(pr.created), "updated_at": iso(pr.updated), "closed_at": None, "merged_at": None,
            "merge_commit_sha": None, "assignee": None, "assignees": [], "requested_reviewers": [],
            "requested_teams": [], "labels": [], "milestone": None, "auto_merge": None,
            "active_lock_reason": None, "author_association": "CONTRIBUTOR" if pr.is_fork else "MEMBER",
        })
        p["_links"] = {k: {"href": v} for k, v in {
            "self": p["url"], "html": p["html_url"], "issue": p["issue_url"], "comments": p["comments_url"],
            "review_comments": p["review_comments_url"], "review_comment": p["review_comment_url"],
            "commits": p["commits_url"], "statuses": p["statuses_url"]}.items()}
        if not simple:
            files = pr.changed_files()
            p.update({
                "merged": pr.merged, "mergeable": True, "rebaseable": True, "mergeable_state": "clean",
                "merged_by": None, "comments": 0, "review_comments": 0, "maintainer_can_modify": False,
                "commits": 1, "additions": sum(f["additions"] for f in files),
                "deletions": sum(f["deletions"] for f in files), "changed_files": len(files),
            })
        return p

    def diff_entry(self, pr: PullRequest, entry: dict[str, Any]) -> dict[str, Any]:
        d = example("diff-entry-items")[0]
        web = f"{self.web}/{pr.repo.full_name}"
        d.update({k: v for k, v in entry.items()})
        d.update({
            "blob_url": f"{web}/blob/{pr.head_sha}/{entry['filename']}",
            "raw_url": f"{web}/raw/{pr.head_sha}/{entry['filename']}",
            "contents_url": f"{self.api}/repos/{pr.repo.full_name}/contents/{entry['filename']}?ref={pr.head_sha}",
            "patch": "@@ -1 +1 @@",
        })
        return d

    def pr_ref(self, pr: PullRequest) -> dict[str, Any]:
        """The `pull_requests` entries of check runs and check suites (minimal PR objects)."""
        def side(repo: Repo, ref: str, sha: str) -> dict[str, Any]:
            return {"ref": ref, "sha": sha,
                    "repo": {"id": repo.id, "name": repo.name, "url": f"{self.api}/repos/{repo.full_name}"}}
        return {"id": pr.id, "number": pr.number, "url": f"{self.api}/repos/{pr.repo.full_name}/pulls/{pr.number}",
                "head": side(pr.head_repo, pr.head_ref, pr.head_sha), "base": side(pr.repo, pr.base_ref, pr.base_sha)}

    def check_run(self, run: CheckRun, prs: list[PullRequest]) -> dict[str, Any]:
        c = example("check-run")
        api = f"{self.api}/repos/{run.repo.full_name}"
        c["app"].update({"id": run.app_id, "slug": self.app_slug, "name": self.app_slug,
                         "html_url": f"{self.web}/apps/{self.app_slug}"})
        c.update({
            "id": run.id, "node_id": f"CR_{run.id}", "name": run.name, "head_sha": run.head_sha,
            "status": run.status, "conclusion": run.conclusion, "started_at": run.started_at,
            "completed_at": run.completed_at, "details_url": run.details_url, "external_id": run.external_id,
            "url": f"{api}/check-runs/{run.id}", "html_url": f"{self.web}/{run.repo.full_name}/runs/{run.id}",
            "check_suite": {"id": run.check_suite_id},
            # GitHub leaves `pull_requests` empty for PRs from forks: the head lives in another repository.
            "pull_requests": [self.pr_ref(pr) for pr in prs if not pr.is_fork],
            "output": {"title": run.output.get("title"), "summary": run.output.get("summary"),
                       "text": run.output.get("text"), "annotations_count": len(run.annotations),
                       "annotations_url": f"{api}/check-runs/{run.id}/annotations"},
        })
        return c

    def annotation(self, run: CheckRun, a: dict[str, Any]) -> dict[str, Any]:
        return {
            "path": a["path"], "start_line": a["start_line"], "end_line": a["end_line"],
            "start_column": a.get("start_column"), "end_column": a.get("end_column"),
            "annotation_level": a["annotation_level"], "title": a.get("title"), "message": a["message"],
            "raw_details": a.get("raw_details"),
            "blob_href": f"{self.web}/{run.repo.full_name}/blob/{run.head_sha}/{a['path']}",
        }

    def comment(self, c: Comment) -> dict[str, Any]:
        out = example("issue-comment")
        api = f"{self.api}/repos/{c.repo.full_name}"
        out.update({
            "id": c.id, "node_id": f"IC_{c.id}", "body": c.body, "user": self.user(c.user, c.user_type),
            "url": f"{api}/issues/comments/{c.id}",
            "html_url": f"{self.web}/{c.repo.full_name}/pull/{c.issue_number}#issuecomment-{c.id}",
            "issue_url": f"{api}/issues/{c.issue_number}", "created_at": c.created_at, "updated_at": c.updated_at,
            "author_association": "NONE" if c.user_type == "Bot" else "MEMBER",
        })
        return out

    def reaction(self, r: dict[str, Any]) -> dict[str, Any]:
        out = example("reaction")
        out.update({"id": r["id"], "node_id": f"REA_{r['id']}", "content": r["content"],
                    "user": self.user(r["user"], "Bot" if r["user"].endswith("[bot]") else "User"),
                    "created_at": r["created_at"]})
        return out

    def status(self, s: Status) -> dict[str, Any]:
        out = example("status")
        out.update({"id": s.id, "node_id": f"ST_{s.id}", "state": s.state, "context": s.context,
                    "description": s.description, "target_url": s.target_url, "created_at": s.created_at,
                    "updated_at": s.created_at, "creator": self.user(self.bot_login(), "Bot"),
                    "url": f"{self.api}/repos/{s.repo.full_name}/statuses/{s.sha}"})
        return out

    def content_file(self, repo: Repo, path: str, content: bytes, ref: str) -> dict[str, Any]:
        sha = blob_sha(content)
        api = f"{self.api}/repos/{repo.full_name}"
        big = len(content) > 1_000_000  # GitHub: 1-100 MB files come without content in the JSON media type
        encoded = "" if big else base64.encodebytes(content).decode()
        return {
            "type": "file", "encoding": "none" if big else "base64", "size": len(content),
            "name": path.rsplit("/", 1)[-1], "path": path, "content": encoded, "sha": sha,
            "url": f"{api}/contents/{path}?ref={ref}", "git_url": f"{api}/git/blobs/{sha}",
            "html_url": f"{self.web}/{repo.full_name}/blob/{ref}/{path}",
            "download_url": f"{self.web}/{repo.full_name}/raw/{ref}/{path}",
            "_links": {"self": f"{api}/contents/{path}?ref={ref}", "git": f"{api}/git/blobs/{sha}",
                       "html": f"{self.web}/{repo.full_name}/blob/{ref}/{path}"},
        }

    def content_dir_entry(self, repo: Repo, entry: dict[str, Any], prefix: str, ref: str) -> dict[str, Any]:
        path = f"{prefix}/{entry['path']}" if prefix else entry["path"]
        api = f"{self.api}/repos/{repo.full_name}"
        kind = "file" if entry["type"] == "blob" else "dir"
        git_url = f"{api}/git/{'blobs' if kind == 'file' else 'trees'}/{entry['sha']}"
        return {
            "type": kind, "size": entry.get("size", 0), "name": entry["path"], "path": path, "sha": entry["sha"],
            "url": f"{api}/contents/{path}?ref={ref}", "git_url": git_url,
            "html_url": f"{self.web}/{repo.full_name}/tree/{ref}/{path}",
            "download_url": f"{self.web}/{repo.full_name}/raw/{ref}/{path}" if kind == "file" else None,
            "_links": {"self": f"{api}/contents/{path}?ref={ref}", "git": git_url,
                       "html": f"{self.web}/{repo.full_name}/tree/{ref}/{path}"},
        }

    def tree(self, repo: Repo, sha: str, entries: list[dict[str, Any]], truncated: bool) -> dict[str, Any]:
        api = f"{self.api}/repos/{repo.full_name}"
        tree = []
        for e in entries:
            item = dict(e)
            item["url"] = f"{api}/git/{'blobs' if e['type'] == 'blob' else 'trees'}/{e['sha']}"
            tree.append(item)
        return {"sha": sha, "url": f"{api}/git/trees/{sha}", "tree": tree, "truncated": truncated}

    def blob(self, repo: Repo, sha: str, content: bytes) -> dict[str, Any]:
        return {"sha": sha, "node_id": f"B_{sha[:12]}", "size": len(content),
                "url": f"{self.api}/repos/{repo.full_name}/git/blobs/{sha}",
                "content": base64.encodebytes(content).decode(), "encoding": "base64"}
