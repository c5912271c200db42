"""The fake GitHub answers like GitHub: auth, validation against the REST description, pagination, errors."""
from __future__ import annotations

import base64
import json
import time

import aiohttp
import jsonschema
import jwt
import pytest

from tests.fakegithub import FakeGitHub, load_spec, shared_github_dir
from tests.fakegithub import webhooks as wh
from tests.fakegithub.spec import response_schema_validator


@pytest.fixture
async def world(fake_github: FakeGitHub):
    fake = fake_github
    fake.add_installation(7, "octo-org")
    repo = fake.add_repo("octo-org/rules", installation_id=7, files={
        "rules/a.yml": "title: a\n", "rules/b.yml": "title: b\n", "README.md": "hello\n",
        ".github/detbot.yml": "rules: ['rules/**/*.yml']\n"})
    async with aiohttp.ClientSession() as session:
        token = await _token(session, fake, 7)
        yield fake, repo, session, token


def _jwt(fake: FakeGitHub, *, iat_offset: int = -60, exp_offset: int = 540, iss: int | None = None) -> str:
    now = int(time.time())
    return jwt.encode({"iat": now + iat_offset, "exp": now + exp_offset, "iss": str(iss or fake.app_id)},
                      fake.private_key_pem, algorithm="RS256")


async def _token(session: aiohttp.ClientSession, fake: FakeGitHub, installation_id: int) -> str:
    async with session.post(f"{fake.url}/app/installations/{installation_id}/access_tokens",
                            headers={"Authorization": f"Bearer {_jwt(fake)}"}) as r:
        assert r.status == 201, await r.text()
        return (await r.json())["token"]


async def _call(session, fake, method, path, token, body=None, query=None):
    headers = {"Authorization": f"token {token}", "X-GitHub-Api-Version": "2022-11-28"}
    async with session.request(method, fake.url + path, headers=headers, params=query,
                               data=None if body is None else json.dumps(body)) as r:
        text = await r.text()
        return r.status, dict(r.headers), (json.loads(text) if text else None)


def _run_body(repo_sha: str, **extra):
    body = {"name": "detbot/syntax", "head_sha": repo_sha, "status": "in_progress",
            "output": {"title": "syntax", "summary": "running"}}
    body.update(extra)
    return body


def _annotation(i: int, level: str = "failure") -> dict:
    return {"path": "rules/a.yml", "start_line": i + 1, "end_line": i + 1, "annotation_level": level,
            "message": f"problem {i}"}


async def test_51_annotations_are_refused_with_422(world):
    fake, repo, session, token = world
    fake.expect_invalid()
    sha = repo.branches["main"]
    status, _, run = await _call(session, fake, "POST", "/repos/octo-org/rules/check-runs", token, _run_body(sha))
    assert status == 201
    patch = {"output": {"title": "t", "summary": "s", "annotations": [_annotation(i) for i in range(51)]}}
    status, headers, body = await _call(session, fake, "PATCH", f"/repos/octo-org/rules/check-runs/{run['id']}",
                                        token, patch)
    assert status == 422
    assert set(body) >= {"message", "documentation_url", "errors"}
    assert "is too long" in body["message"]
    assert any("annotations" in e for e in fake.validation_errors)
    assert fake.runs[run["id"]].annotations == []        # nothing applied
    patch["output"]["annotations"] = patch["output"]["annotations"][:50]
    status, _, updated = await _call(session, fake, "PATCH", f"/repos/octo-org/rules/check-runs/{run['id']}",
                                     token, patch)
    assert status == 200 and updated["output"]["annotations_count"] == 50


async def test_bad_conclusion_and_completed_without_conclusion_are_refused(world):
    fake, repo, session, token = world
    fake.expect_invalid()
    sha = repo.branches["main"]
    status, _, body = await _call(session, fake, "POST", "/repos/octo-org/rules/check-runs", token,
                                  _run_body(sha, status="completed", conclusion="passed"))
    assert status == 422 and "passed" in body["message"]
    status, _, run = await _call(session, fake, "POST", "/repos/octo-org/rules/check-runs", token, _run_body(sha))
    status, _, body = await _call(session, fake, "PATCH", f"/repos/octo-org/rules/check-runs/{run['id']}", token,
                                  {"status": "completed"})
    assert status == 422
    status, _, body = await _call(session, fake, "POST", "/repos/octo-org/rules/check-runs", token,
                                  _run_body(sha, output={"title": "t", "summary": "s", "annotations": [
                                      _annotation(1, level="error")]}))
    assert status == 422 and "annotation_level" in body["message"]
    assert len(fake.validation_errors) == 3


async def test_annotation_limits_beyond_the_schema_are_enforced(world):
    fake, repo, session, token = world
    fake.expect_invalid()
    sha = repo.branches["main"]
    _, _, run = await _call(session, fake, "POST", "/repos/octo-org/rules/check-runs", token, _run_body(sha))
    path = f"/repos/octo-org/rules/check-runs/{run['id']}"
    bad = [
        {**_annotation(1), "title": "t" * 256},
        {**_annotation(1), "message": "m" * 65536},
        {**_annotation(1), "end_line": 3, "start_column": 1, "end_column": 4},   # columns on several lines
        {**_annotation(5), "end_line": 2},                                       # ends before it starts
    ]
    for a in bad:
        status, _, body = await _call(session, fake, "PATCH", path, token,
                                      {"output": {"title": "t", "summary": "s", "annotations": [a]}})
        assert status == 422 and body["message"] == "Validation Failed" and body["errors"], a
    status, _, _ = await _call(session, fake, "PATCH", path, token, {"output": {"title": "t", "summary": "s",
                               "annotations": [{**_annotation(1), "start_column": 1, "end_column": 4}]}})
    assert status == 200
    assert len(fake.validation_errors) == 4


async def test_annotations_append_across_updates_and_list_paginates(world):
    fake, repo, session, token = world
    sha = repo.branches["main"]
    _, _, run = await _call(session, fake, "POST", "/repos/octo-org/rules/check-runs", token, _run_body(sha))
    for start in (0, 50, 100):
        status, _, _ = await _call(session, fake, "PATCH", f"/repos/octo-org/rules/check-runs/{run['id']}", token,
                                   {"output": {"title": "t", "summary": "s", "annotations": [
                                       _annotation(i) for i in range(start, min(start + 50, 120))]}})
        assert status == 200
    status, _, done = await _call(session, fake, "PATCH", f"/repos/octo-org/rules/check-runs/{run['id']}", token,
                                  {"conclusion": "failure", "output": {"title": "t", "summary": "120 findings"}})
    assert done["status"] == "completed" and done["conclusion"] == "failure"
    assert done["output"]["annotations_count"] == 120
    status, headers, page = await _call(session, fake, "GET",
                                        f"/repos/octo-org/rules/check-runs/{run['id']}/annotations", token,
                                        query={"per_page": "100"})
    assert len(page) == 100 and 'rel="next"' in headers["Link"] and 'rel="last"' in headers["Link"]
    status, headers, page2 = await _call(session, fake, "GET",
                                         f"/repos/octo-org/rules/check-runs/{run['id']}/annotations", token,
                                         query={"per_page": "100", "page": "2"})
    assert len(page2) == 20 and 'rel="next"' not in headers["Link"] and 'rel="prev"' in headers["Link"]
    assert page2[-1]["start_line"] == 120


async def test_pull_request_files_paginate_with_link_headers_and_cap_at_3000(world):
    fake, repo, session, token = world
    pr = fake.open_pull(repo, {f"rules/gen/r{i:03}.yml": f"title: {i}\n" for i in range(75)})
    path = f"/repos/octo-org/rules/pulls/{pr.number}/files"
    status, headers, first = await _call(session, fake, "GET", path, token)
    assert status == 200 and len(first) == 30        # GitHub's default per_page
    names = [f["filename"] for f in first]
    link = headers["Link"]
    while 'rel="next"' in link:
        next_url = [p.split(";")[0].strip("<> ") for p in link.split(",") if 'rel="next"' in p][0]
        async with session.get(next_url, headers={"Authorization": f"token {token}"}) as r:
            names += [f["filename"] for f in await r.json()]
            link = r.headers.get("Link", "")
    assert len(names) == 75 and len(set(names)) == 75
    wide = fake.open_pull(repo, {f"rules/w/r{i:03}.yml": f"title: {i}\n" for i in range(150)})
    status, _, big = await _call(session, fake, "GET", f"/repos/octo-org/rules/pulls/{wide.number}/files", token,
                                 query={"per_page": "500"})
    assert len(big) == 100                           # per_page is capped at 100
    many = fake.open_pull(repo, files_override=[{"filename": f"rules/x{i}.yml", "status": "added", "sha": "0" * 40,
                                                 "additions": 1, "deletions": 0, "changes": 1}
                                                for i in range(3100)])
    status, headers, last = await _call(session, fake, "GET", f"/repos/octo-org/rules/pulls/{many.number}/files",
                                        token, query={"per_page": "100", "page": "30"})
    assert len(last) == 100 and 'rel="next"' not in headers.get("Link", "")


async def test_auth_failures_answer_like_github(world):
    fake, repo, session, token = world
    status, headers, body = await _call(session, fake, "GET", "/repos/octo-org/rules", "ghs_not_a_token")
    assert status == 401 and body["message"] == "Bad credentials" and "documentation_url" in body
    assert "x-ratelimit-remaining" in {k.lower() for k in headers}
    async with session.get(f"{fake.url}/repos/octo-org/rules") as r:
        assert r.status == 401
    # A JWT valid for more than 10 minutes is refused, as is one for another app.
    for bad in (_jwt(fake, exp_offset=900), _jwt(fake, iss=99), _jwt(fake, iat_offset=-700, exp_offset=-60)):
        async with session.get(f"{fake.url}/app/installations", headers={"Authorization": f"Bearer {bad}"}) as r:
            assert r.status == 401, await r.text()
    fake.expire_tokens()
    status, _, body = await _call(session, fake, "GET", "/repos/octo-org/rules", token)
    assert status == 401 and body["message"] == "Bad credentials"


async def test_short_lived_tokens_expire(fake_github: FakeGitHub):
    fake = fake_github
    fake.token_lifetime = 0.3
    fake.add_repo("octo-org/rules", installation_id=7)
    async with aiohttp.ClientSession() as session:
        token = await _token(session, fake, 7)
        assert (await _call(session, fake, "GET", "/repos/octo-org/rules", token))[0] == 200
        time.sleep(0.35)
        assert (await _call(session, fake, "GET", "/repos/octo-org/rules", token))[0] == 401


async def test_repositories_of_other_installations_are_not_found(world):
    fake, repo, session, token = world
    fake.add_repo("someone/else", installation_id=8)
    status, _, body = await _call(session, fake, "GET", "/repos/someone/else", token)
    assert status == 404 and body["message"] == "Not Found"


async def test_unknown_endpoints_and_parameters_are_recorded_as_invalid(world):
    fake, repo, session, token = world
    fake.expect_invalid()
    status, _, body = await _call(session, fake, "GET", "/repos/octo-org/rules/check-suites/1", token)
    assert status == 404 and body["message"] == "Not Found"
    status, _, body = await _call(session, fake, "GET", "/repos/octo-org/rules/pulls", token,
                                  query={"state": "merged"})
    assert status == 422
    status, _, body = await _call(session, fake, "DELETE", "/repos/octo-org/rules/pulls/1", token)
    assert status == 404
    assert len(fake.validation_errors) == 3
    with pytest.raises(AssertionError, match="check-suites"):
        fake._expect_invalid = False
        fake.assert_valid()
    fake.expect_invalid()


async def test_rate_limit_headers_and_failure_hooks(world):
    fake, repo, session, token = world
    fake.fail("/repos/*/rules", times=1, status=502)
    fake.secondary_rate_limit("/repos/*/rules", times=1, retry_after=2)
    fake.primary_rate_limit("/repos/*/rules", times=1, reset_in=5, status=429)
    seen = []
    for _ in range(4):
        status, headers, body = await _call(session, fake, "GET", "/repos/octo-org/rules", token)
        headers = {k.lower(): v for k, v in headers.items()}
        assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= set(headers)
        seen.append((status, headers.get("retry-after"), headers["x-ratelimit-remaining"]))
    assert seen[0][0] == 502
    assert seen[1][:2] == (403, "2")
    assert seen[2][0] == 429 and seen[2][2] == "0"
    assert seen[3][0] == 200 and int(seen[3][2]) < 5000


async def test_contents_trees_and_blobs_serve_the_commit(world):
    fake, repo, session, token = world
    pr = fake.open_pull(repo, {"rules/a.yml": "title: changed\n"}, delete=("rules/b.yml",))
    status, _, f = await _call(session, fake, "GET", "/repos/octo-org/rules/contents/rules/a.yml", token,
                               query={"ref": pr.head_sha})
    assert status == 200 and base64.b64decode(f["content"]) == b"title: changed\n"
    status, _, f = await _call(session, fake, "GET", "/repos/octo-org/rules/contents/.github/detbot.yml", token)
    assert status == 200 and b"rules" in base64.b64decode(f["content"])   # default branch without ref
    status, _, listing = await _call(session, fake, "GET", "/repos/octo-org/rules/contents/rules", token)
    assert sorted(e["name"] for e in listing) == ["a.yml", "b.yml"]
    status, _, _ = await _call(session, fake, "GET", "/repos/octo-org/rules/contents/rules/b.yml", token,
                               query={"ref": pr.head_sha})
    assert status == 404
    status, _, tree = await _call(session, fake, "GET", f"/repos/octo-org/rules/git/trees/{pr.head_sha}", token,
                                  query={"recursive": "1"})
    paths = {e["path"]: e for e in tree["tree"]}
    assert "rules/a.yml" in paths and "rules/b.yml" not in paths and paths["rules"]["type"] == "tree"
    assert tree["truncated"] is False
    status, _, top = await _call(session, fake, "GET", f"/repos/octo-org/rules/git/trees/{pr.head_sha}", token)
    assert {e["path"] for e in top["tree"]} == {".github", "README.md", "rules"}
    status, _, sub = await _call(session, fake, "GET", f"/repos/octo-org/rules/git/trees/{paths['rules']['sha']}",
                                 token)
    assert [e["path"] for e in sub["tree"]] == ["a.yml"]
    status, _, blob = await _call(session, fake, "GET",
                                  f"/repos/octo-org/rules/git/blobs/{paths['rules/a.yml']['sha']}", token)
    assert base64.b64decode(blob["content"]) == b"title: changed\n"
    status, _, files = await _call(session, fake, "GET", f"/repos/octo-org/rules/pulls/{pr.number}/files", token)
    assert {(f["filename"], f["status"]) for f in files} == {("rules/a.yml", "modified"), ("rules/b.yml", "removed")}


async def test_fork_pull_requests_are_missing_from_check_runs(world):
    fake, repo, session, token = world
    own = fake.open_pull(repo, {"rules/a.yml": "title: own\n"})
    fork = fake.open_pull(repo, {"rules/a.yml": "title: fork\n"}, fork_owner="outsider")
    for pr, expected in ((own, [own.number]), (fork, [])):
        _, _, run = await _call(session, fake, "POST", "/repos/octo-org/rules/check-runs", token,
                                _run_body(pr.head_sha))
        assert [p["number"] for p in run["pull_requests"]] == expected
    status, _, pulls = await _call(session, fake, "GET", "/repos/octo-org/rules/pulls", token)
    by_sha = {p["head"]["sha"]: p for p in pulls}
    assert by_sha[fork.head_sha]["head"]["repo"]["full_name"] == "outsider/rules"
    # the fork's head commit is readable through the base repository, as on GitHub
    status, _, f = await _call(session, fake, "GET", "/repos/octo-org/rules/contents/rules/a.yml", token,
                               query={"ref": fork.head_sha})
    assert base64.b64decode(f["content"]) == b"title: fork\n"


async def test_comments_reactions_permissions_statuses(world):
    fake, repo, session, token = world
    pr = fake.open_pull(repo, {"rules/a.yml": "title: x\n"})
    fake.set_permission(repo, "maintainer", "write")
    human = fake.add_comment(repo, pr.number, "/recheck", "maintainer")
    status, _, c = await _call(session, fake, "POST", f"/repos/octo-org/rules/issues/{pr.number}/comments", token,
                               {"body": "<!-- detbot:kpi -->\nKPIs"})
    assert status == 201 and c["user"]["login"] == "detbot[bot]" and c["user"]["type"] == "Bot"
    status, _, c2 = await _call(session, fake, "PATCH", f"/repos/octo-org/rules/issues/comments/{c['id']}", token,
                                {"body": "<!-- detbot:kpi -->\nKPIs v2"})
    assert status == 200 and fake.comments[c["id"]].body.endswith("v2")
    status, _, _ = await _call(session, fake, "PATCH", f"/repos/octo-org/rules/issues/comments/{human.id}", token,
                               {"body": "hijack"})
    assert status == 403
    status, _, listed = await _call(session, fake, "GET", f"/repos/octo-org/rules/issues/{pr.number}/comments",
                                    token)
    assert [x["id"] for x in listed] == [human.id, c["id"]]
    status, _, r = await _call(session, fake, "POST", f"/repos/octo-org/rules/issues/comments/{human.id}/reactions",
                               token, {"content": "eyes"})
    assert status == 201
    status, _, r = await _call(session, fake, "POST", f"/repos/octo-org/rules/issues/comments/{human.id}/reactions",
                               token, {"content": "eyes"})
    assert status == 200 and len(fake.comments[human.id].reactions) == 1
    status, _, perm = await _call(session, fake, "GET", "/repos/octo-org/rules/collaborators/maintainer/permission",
                                  token)
    assert perm["permission"] == "write"
    status, _, perm = await _call(session, fake, "GET", "/repos/octo-org/rules/collaborators/drive-by/permission",
                                  token)
    assert perm["permission"] == "read"
    status, _, _ = await _call(session, fake, "DELETE", f"/repos/octo-org/rules/issues/comments/{c['id']}", token)
    assert status == 204 and c["id"] not in fake.comments
    status, _, st = await _call(session, fake, "POST", f"/repos/octo-org/rules/statuses/{pr.head_sha}", token,
                                {"state": "success", "context": "detbot"})
    assert status == 201 and fake.statuses[0].state == "success"


async def test_responses_match_githubs_documented_shapes(world):
    """The fake's bodies validate against the response schemas of rest-api-subset.json."""
    fake, repo, session, token = world
    pr = fake.open_pull(repo, {"rules/a.yml": "title: y\n"})
    _, _, run = await _call(session, fake, "POST", "/repos/octo-org/rules/check-runs", token,
                            _run_body(pr.head_sha, output={"title": "t", "summary": "s",
                                                           "annotations": [_annotation(1)]}))
    comment = fake.add_comment(repo, pr.number, "hi")
    calls = [
        ("GET", "/repos/octo-org/rules", None), ("GET", "/repos/octo-org/rules/pulls", None),
        ("GET", f"/repos/octo-org/rules/pulls/{pr.number}", None),
        ("GET", f"/repos/octo-org/rules/pulls/{pr.number}/files", None),
        ("GET", "/repos/octo-org/rules/contents/rules/a.yml", None),
        ("GET", f"/repos/octo-org/rules/git/trees/{pr.head_sha}", None),
        ("GET", f"/repos/octo-org/rules/check-runs/{run['id']}", None),
        ("GET", f"/repos/octo-org/rules/check-runs/{run['id']}/annotations", None),
        ("GET", f"/repos/octo-org/rules/commits/{pr.head_sha}/check-runs", None),
        ("GET", f"/repos/octo-org/rules/issues/{pr.number}/comments", None),
        ("POST", f"/repos/octo-org/rules/issues/{pr.number}/comments", {"body": "x"}),
        ("POST", f"/repos/octo-org/rules/issues/comments/{comment.id}/reactions", {"content": "+1"}),
        ("GET", "/repos/octo-org/rules/collaborators/octocat/permission", None),
        ("POST", f"/repos/octo-org/rules/statuses/{pr.head_sha}", {"state": "pending"}),
        ("GET", "/installation/repositories", None),
    ]
    spec = load_spec()
    for method, path, body in calls:
        status, _, data = await _call(session, fake, method, path, token, body)
        op, _ = spec.match(method, path)
        validator = response_schema_validator(op, status)
        assert validator is not None, (method, path, status)
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in validator.iter_errors(data)]
        assert not errors, (method, path, errors[:5])
    # (GET /app/installations is left out: its schema demands `account` be a user AND an enterprise at once
    # (allOf), which GitHub's own example does not satisfy.)


@pytest.mark.parametrize("event,action,build", [
    ("pull_request", "opened", lambda f, pr: wh.pull_request_event(f, pr, "opened")),
    ("pull_request", "synchronize", lambda f, pr: wh.pull_request_event(f, pr, "synchronize")),
    ("pull_request", "reopened", lambda f, pr: wh.pull_request_event(f, pr, "reopened")),
    ("pull_request", "ready_for_review", lambda f, pr: wh.pull_request_event(f, pr, "ready_for_review")),
    ("check_suite", "rerequested", lambda f, pr: wh.check_suite_event(f, pr)),
    ("issue_comment", "created", lambda f, pr: wh.issue_comment_event(f, pr, "/recheck")),
])
async def test_adapted_webhook_payloads_still_satisfy_githubs_schemas(world, event, action, build):
    fake, repo, session, token = world
    pr = fake.open_pull(repo, {"rules/a.yml": "title: z\n"})
    payload = build(fake, pr)
    schemas = _webhook_schemas()
    validator = jsonschema.Draft7Validator({**schemas, "$ref": f"#/definitions/{event}${action}"})
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:160]}" for e in validator.iter_errors(payload)]
    assert not errors, errors[:5]
    assert payload["installation"]["id"] == 7
    assert payload["repository"]["full_name"] == "octo-org/rules"
    if event == "pull_request":
        assert payload["pull_request"]["head"]["sha"] == pr.head_sha and payload["number"] == pr.number
    if event == "issue_comment":
        assert payload["issue"]["pull_request"]["url"].endswith(f"/pulls/{pr.number}")


async def test_check_run_event_of_a_fork_pr_has_no_pull_requests(world):
    fake, repo, session, token = world
    fork = fake.open_pull(repo, {"rules/a.yml": "title: f\n"}, fork_owner="outsider")
    _, _, run = await _call(session, fake, "POST", "/repos/octo-org/rules/check-runs", token,
                            _run_body(fork.head_sha))
    payload = wh.check_run_event(fake, fake.runs[run["id"]], "rerequested")
    assert payload["check_run"]["pull_requests"] == []
    assert payload["check_run"]["check_suite"]["pull_requests"] == []
    assert payload["check_run"]["head_sha"] == fork.head_sha


def test_signature_matches_githubs_test_vector():
    assert wh.sign(b"Hello, World!", "It's a Secret to Everybody") == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")


_SCHEMAS: dict = {}


def _webhook_schemas() -> dict:
    if not _SCHEMAS:
        _SCHEMAS.update(json.loads((shared_github_dir() / "webhook-schemas.json").read_text()))
        _SCHEMAS.pop("oneOf", None)
    return _SCHEMAS


async def test_primary_rate_limit_runs_out_per_installation(world):
    fake, repo, session, token = world
    fake.rate_limit = 3
    fake._rate.clear()
    statuses = []
    for _ in range(4):
        status, headers, body = await _call(session, fake, "GET", "/repos/octo-org/rules", token)
        headers = {k.lower(): v for k, v in headers.items()}
        statuses.append((status, headers["x-ratelimit-remaining"]))
    assert statuses == [(200, "2"), (200, "1"), (200, "0"), (403, "0")]
    assert "rate limit" in body["message"]
    # another installation has its own budget
    fake.add_repo("other/rules", installation_id=8)
    other = await _token(session, fake, 8)
    assert (await _call(session, fake, "GET", "/repos/other/rules", other))[0] == 200
