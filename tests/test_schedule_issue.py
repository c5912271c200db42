"""The daily replay of a whole catalog and its one tracking issue, against the fake GitHub.

rest-api-subset.json has no issue create/list/update endpoints. tests/data/rest-api-issues.json is the same
OpenAPI description (npm @octokit/openapi 23.0.2, the source of the subset) trimmed to those paths; here the
fake GitHub validates against both and answers them from a small in-memory issue list.
"""
import copy
import json
import re
from pathlib import Path

import pytest

import tests.fakegithub.server as fake_server
from bot.fetch import BLOBS
from bot.replay_flow import replay_catalog
from bot.schedule import ISSUE_MARKER, issue_room, update_tracking_issue
from checks.replay.report import render_issue
from checks.replay.results import FieldChange, ReplayReport, ReplayResult
from tests.fakegithub.spec import Spec, load_spec
from tests.fakegithub.state import iso
from tests.ghflow_support import INSTALLATION, M365_PARSER, broken_m365_parser, example_files

ISSUES_SPEC = Path(__file__).parent / "data" / "rest-api-issues.json"
PARSER = M365_PARSER


@pytest.fixture
def issues(fake_github, monkeypatch):
    """Issue endpoints on the fake, validated against GitHub's own description of them."""
    subset = load_spec().document
    extra = json.loads(ISSUES_SPEC.read_text())
    merged = copy.deepcopy(subset)
    merged["paths"].update(extra["paths"])
    for kind, items in extra["components"].items():
        merged["components"].setdefault(kind, {}).update(items)
    spec = Spec(merged)
    monkeypatch.setattr(fake_server, "load_spec", lambda: spec)
    store: dict[tuple[str, int], dict] = {}
    template = extra["components"]["examples"]["issue"]["value"]

    def render(repo, issue):
        out = copy.deepcopy(template)
        out.pop("pull_request", None)
        out.update(issue, user=fake_github.render.user(issue["user"], "Bot"),
                   url=f"{fake_github.url}/repos/{repo.full_name}/issues/{issue['number']}")
        return out

    async def create(call):
        repo = fake_github._repo_for(call)
        number = fake_github._next_issue
        fake_github._next_issue += 1
        issue = {"number": number, "id": number * 1000, "title": call.body["title"],
                 "body": call.body.get("body"), "state": "open", "state_reason": None, "user": fake_github.bot_login,
                 "created_at": iso(), "updated_at": iso(), "closed_at": None}
        store[(repo.full_name, number)] = issue
        return 201, render(repo, issue), {}

    async def list_for_repo(call):
        repo = fake_github._repo_for(call)
        state, creator = call.query.get("state", "open"), call.query.get("creator")
        found = [render(repo, i) for (name, _), i in sorted(store.items()) if name == repo.full_name
                 and state in ("all", i["state"]) and creator in (None, i["user"])]
        page, link = fake_github._page(call, found)
        return 200, page, link

    def find(call):
        repo = fake_github._repo_for(call)
        issue = store.get((repo.full_name, int(call.params["issue_number"])))
        if issue is None:
            raise fake_server.not_found()
        return repo, issue

    async def get(call):
        repo, issue = find(call)
        return 200, render(repo, issue), {}

    async def update(call):
        repo, issue = find(call)
        for key in ("title", "body", "state", "state_reason"):
            if key in call.body:
                issue[key] = call.body[key]
        issue["updated_at"] = iso()
        return 200, render(repo, issue), {}

    fake_github._handlers.update({"issues/create": create, "issues/list-for-repo": list_for_repo,
                                  "issues/get": get, "issues/update": update})
    original_exists = fake_github._issue_exists

    def exists(repo, number):
        if (repo.full_name, number) not in store:
            original_exists(repo, number)
    fake_github._issue_exists = exists
    BLOBS.clear()
    return store


async def test_breakage_opens_one_issue_updates_it_and_closes_it(fake_github, gh, issues):
    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION, files=example_files())
    report, change = await replay_catalog(gh, repo.full_name, "main", fake_github.bot_login)
    assert not report.broken and report.rules >= 10 and change.action == "none"

    fake_github.push(repo, "main", {PARSER: broken_m365_parser(1)})
    report, change = await replay_catalog(gh, repo.full_name, "main", fake_github.bot_login)
    assert report.broken and change.action == "opened"
    (issue,) = issues.values()
    partly = issue["body"]

    fake_github.push(repo, "main", {PARSER: broken_m365_parser(3)})
    report, change = await replay_catalog(gh, repo.full_name, "main", fake_github.bot_login)
    assert change.action == "updated" and change.number == issue["number"] and issue["body"] != partly
    assert issue["body"].startswith(ISSUE_MARKER) and issue["state"] == "open"
    assert "m365_aitm_proxy_signin.yml" in issue["body"] and "source.ip" in issue["body"]
    assert "RULE_BROKEN" in issue["body"]

    # The same breakage the next day: the issue is found again and left as is.
    report, change = await replay_catalog(gh, repo.full_name, "main", fake_github.bot_login)
    assert change.action == "unchanged" and change.number == issue["number"] and len(issues) == 1

    fake_github.push(repo, "main", {PARSER: example_files()[PARSER]})
    report, change = await replay_catalog(gh, repo.full_name, "main", fake_github.bot_login)
    assert change.action == "closed" and issue["state"] == "closed" and issue["state_reason"] == "completed"
    closing = [c for c in fake_github.issue_comments(repo, issue["number"])]
    assert closing and "pass" in closing[-1].body
    assert fake_github.validation_errors == []


async def test_users_marker_issue_is_not_ours(fake_github, gh, issues):
    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION,
                                files={**example_files(), PARSER: broken_m365_parser()})
    issues[(repo.full_name, 900)] = {"number": 900, "id": 900, "title": "fake", "body": f"{ISSUE_MARKER}\nmine",
                                     "state": "open", "state_reason": None, "user": "mallory", "created_at": iso(),
                                     "updated_at": iso(), "closed_at": None}
    _, change = await replay_catalog(gh, repo.full_name, "main", fake_github.bot_login)
    assert change.action == "opened" and change.number != 900
    assert issues[(repo.full_name, 900)]["body"] == f"{ISSUE_MARKER}\nmine"


async def test_daily_replay_reuses_parse_results_until_the_parser_changes(fake_github, gh, issues, tmp_path):
    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION, files=example_files())
    first, _ = await replay_catalog(gh, repo.full_name, "main", fake_github.bot_login)
    assert first.parsed > 0 and first.cache_hits == 0
    again, _ = await replay_catalog(gh, repo.full_name, "main", fake_github.bot_login)
    assert again.parsed == 0 and again.cache_hits == first.parsed
    assert [r.verdict for r in again.results] == [r.verdict for r in first.results]
    # A changed parser is a new cache key: its logs are parsed again and the breakage is seen.
    fake_github.push(repo, "main", {PARSER: broken_m365_parser(1)})
    broken, _ = await replay_catalog(gh, repo.full_name, "main", fake_github.bot_login)
    assert broken.broken and broken.parsed > 0


def _huge_breakage(rules: int = 400) -> ReplayReport:
    """Non-ASCII rule titles and field values: the body's size in bytes is well over its size in characters."""
    results = [ReplayResult(f"id-{i}", f"rules/r{i:03d}.yml", f"test {j} ✓", f"rules/r{i:03d}.tests.yml", 3 + j,
                            "RULE_BROKEN", "no longer matches", rule_title=f"Règle n°{i} — détection " * 4,
                            field_diff=[FieldChange(f"champ.{k}", "changed", "é" * 60, "ü" * 60) for k in range(6)])
               for i in range(rules) for j in range(2)]
    return ReplayReport(results=results, rules=rules)


async def test_a_huge_breakage_is_summarised_within_the_body_limit(fake_github, gh, issues):
    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION, files=example_files())
    body = render_issue(_huge_breakage(), max_bytes=issue_room())
    change = await update_tracking_issue(gh, repo.full_name, fake_github.bot_login, body)
    assert change.action == "opened" and fake_github.validation_errors == []
    (issue,) = issues.values()
    assert issue["body"] == f"{ISSUE_MARKER}\n{body}" and len(issue["body"].encode()) <= 65536
    listed = issue["body"].count("\n### ")
    assert 0 < listed < 400
    # Every rule left out is counted, and the reader is told how to see them all.
    more = re.search(r"… and (\d+) more broken test\(s\), (\d+) more rule\(s\), not listed here: "
                     r"run `detbot replay --all` to see them all\.", issue["body"])
    assert more and int(more.group(2)) == 400 - listed and int(more.group(1)) >= 2 * int(more.group(2))
    assert issue["body"].endswith("to see the details.")


def test_a_breakage_that_fits_is_listed_whole():
    body = render_issue(_huge_breakage(rules=5))
    assert body.count("### ") == 5 and "not listed here" not in body
