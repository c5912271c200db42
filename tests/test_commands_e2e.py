"""Comment commands end to end through the server, with the real actions (replay, recheck, KPI view)."""
import time
from datetime import datetime, timedelta, timezone

import pytest

from bot.command_handlers import forget_handled
from bot.fetch import BLOBS
from bot.pr_handlers import close_stores
from bot.queue import MemoryQueue
from bot.routes import pr_key
from tests.fakegithub import issue_comment_event
from tests.fakegithub.harness import running_bot
from tests.ghflow_support import (INSTALLATION, M365_PARSER, broken_m365_parser, example_files, new_bundle,
                                  runs_by_name)

PARSER = M365_PARSER
AITM_TESTS = "rules/cloud/m365/m365_aitm_proxy_signin.tests.yml"


@pytest.fixture(autouse=True)
def _fresh():
    BLOBS.clear()
    forget_handled()


@pytest.fixture
def repo(fake_github):
    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION, files=example_files())
    fake_github.set_permission(repo, "maint", "maintain")
    fake_github.set_permission(repo, "reader", "read")
    return repo


def reactions(fake, payload):
    return [r["content"] for r in fake.comments[payload["comment"]["id"]].reactions]


def bot_replies(fake, pr):
    return [c for c in fake.issue_comments(pr.repo, pr.number) if c.user == fake.bot_login]


async def test_authorised_replay_runs_and_reports_the_broken_m365_parser(fake_github, repo):
    pr = fake_github.open_pull(repo, {PARSER: broken_m365_parser()})
    async with running_bot(fake_github) as bot:
        payload = issue_comment_event(fake_github, pr, "Parser change, please check:\n/replay", user="maint")
        await bot.deliver("issue_comment", payload)
        await bot.settle(30)
    (replay,) = fake_github.check_runs(repo, pr.head_sha, "detbot/replay")
    assert replay.status == "completed" and replay.conclusion == "failure"
    assert any(a["path"] == AITM_TESTS and a["annotation_level"] == "failure" for a in replay.annotations)
    assert "RULE_BROKEN" in replay.output["summary"] and "source.ip" in replay.output["summary"]
    assert [a["identifier"] for a in replay.actions] == ["replay"]
    assert reactions(fake_github, payload) == ["eyes", "+1"]


async def test_replay_of_named_rule_and_unknown_rule(fake_github, repo):
    pr = fake_github.open_pull(repo, new_bundle(1))
    async with running_bot(fake_github) as bot:
        payload = issue_comment_event(fake_github, pr, "/replay no-such-rule", user="maint")
        await bot.deliver("issue_comment", payload)
        await bot.settle(30)
    assert reactions(fake_github, payload) == ["eyes", "-1"]
    assert "no rule matches `no-such-rule`" in bot_replies(fake_github, pr)[-1].body


async def test_unauthorised_user_runs_nothing(fake_github, repo):
    pr = fake_github.open_pull(repo, {PARSER: broken_m365_parser()})
    async with running_bot(fake_github) as bot:
        for user in ("reader", "drive-by"):
            await bot.deliver("issue_comment", issue_comment_event(fake_github, pr, "/replay\n/recheck", user=user))
        await bot.settle(30)
    assert fake_github.check_runs(repo) == []
    replies = bot_replies(fake_github, pr)
    assert len(replies) == 2 and all("write access" in c.body for c in replies)


async def test_forged_bot_looking_comment_is_ignored(fake_github, repo):
    pr = fake_github.open_pull(repo, new_bundle(1))
    payload = issue_comment_event(fake_github, pr, "/recheck", user="maint")
    payload["sender"] = {**payload["sender"], "login": "detbot[bot]", "type": "Bot"}
    payload["comment"]["user"] = dict(payload["sender"])
    async with running_bot(fake_github) as bot:
        await bot.deliver("issue_comment", payload)
        await bot.settle()
    assert fake_github.check_runs(repo) == [] and reactions(fake_github, payload) == []
    assert not fake_github.requests_to("/repos/*/collaborators/*/permission")


async def test_edited_comment_does_not_rerun_a_command_already_run(fake_github, repo):
    pr = fake_github.open_pull(repo, new_bundle(1))
    async with running_bot(fake_github) as bot:
        payload = issue_comment_event(fake_github, pr, "/recheck", user="maint")
        await bot.deliver("issue_comment", payload)
        await bot.settle()
        assert len(fake_github.check_runs(repo, pr.head_sha, "detbot/syntax")) == 1
        comment = fake_github.comments[payload["comment"]["id"]]
        comment.body = "/recheck\n\nthanks!"
        edited = issue_comment_event(fake_github, pr, comment.body, user="maint", action="edited", comment=comment)
        edited["changes"] = {"body": {"from": "/recheck"}}
        await bot.deliver("issue_comment", edited)
        await bot.settle()
    assert len(fake_github.check_runs(repo, pr.head_sha, "detbot/syntax")) == 1
    assert runs_by_name(fake_github, repo, pr.head_sha)["detbot/syntax"].conclusion == "success"


async def test_kpi_command_replies_with_the_view(fake_github, repo, tmp_path):
    from checks.kpi.store import Alert, open_store
    url = f"sqlite:///{tmp_path}/alerts.db"
    store = await open_store(url)
    now = datetime.now(timezone.utc)
    rule_id = "3c1d2f9e-6a0b-4b8e-9e7a-000000000001"
    await store.upsert_many([Alert("soc", f"a{i}", rule_id, now - timedelta(days=i % 10), stage="closed",
                                   verdict="false_positive" if i % 3 else "true_positive") for i in range(30)])
    await store.close()
    pr = fake_github.open_pull(repo, new_bundle(1))
    try:
        async with running_bot(fake_github, alert_store=url) as bot:
            payload = issue_comment_event(fake_github, pr, "/kpi --days 14", user="maint")
            await bot.deliver("issue_comment", payload)
            await bot.settle()
    finally:
        await close_stores()
    reply = bot_replies(fake_github, pr)[-1].body
    assert "14" in reply and "Certutil Download From Internet 1" in reply
    assert reactions(fake_github, payload) == ["eyes", "+1"]


async def test_replay_disabled_in_config_is_skipped(fake_github):
    config = example_files()[".github/detbot.yml"].replace("checks:\n", "checks:\n  replay: false\n", 1)
    assert "replay: false" in config
    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION, files=example_files(config))
    fake_github.set_permission(repo, "maint", "maintain")
    pr = fake_github.open_pull(repo, {PARSER: broken_m365_parser()})
    async with running_bot(fake_github) as bot:
        await bot.deliver("issue_comment", issue_comment_event(fake_github, pr, "/replay", user="maint"))
        await bot.settle(30)
    (replay,) = fake_github.check_runs(repo, pr.head_sha, "detbot/replay")
    assert replay.conclusion == "skipped" and "disabled" in replay.output["summary"]


async def test_replay_button_on_the_tests_run(fake_github, repo):
    from tests.fakegithub import check_run_event, pull_request_event
    pr = fake_github.open_pull(repo, {PARSER: broken_m365_parser()})
    async with running_bot(fake_github) as bot:
        await bot.deliver("pull_request", pull_request_event(fake_github, pr, "opened"))
        await bot.settle()
        tests_run = runs_by_name(fake_github, repo, pr.head_sha)["detbot/tests"]
        assert [a["identifier"] for a in tests_run.actions] == ["rerun", "replay"]
        await bot.deliver("check_run", check_run_event(fake_github, tests_run, "requested_action", pr,
                                                       requested_action="replay"))
        await bot.settle(30)
    (replay,) = fake_github.check_runs(repo, pr.head_sha, "detbot/replay")
    assert replay.conclusion == "failure" and "RULE_BROKEN" in replay.output["summary"]


async def test_replay_beyond_githubs_3000_file_listing_is_incomplete_not_a_pass(fake_github, repo):
    pr = fake_github.open_pull(repo, new_bundle(1))
    unseen = [{"filename": f"docs/p{i:04d}.md", "status": "added", "sha": "0" * 40, "additions": 1,
               "deletions": 0, "changes": 1} for i in range(3000)]
    pr.files_override = pr.changed_files() + unseen
    docs_only = fake_github.open_pull(repo, {"docs/a.md": "x"})
    docs_only.files_override = docs_only.changed_files() + unseen
    async with running_bot(fake_github) as bot:
        payload = issue_comment_event(fake_github, pr, "/replay", user="maint")
        await bot.deliver("issue_comment", payload)
        await bot.deliver("issue_comment", issue_comment_event(fake_github, docs_only, "/replay", user="maint"))
        await bot.settle(30)
    (replay,) = fake_github.check_runs(repo, pr.head_sha, "detbot/replay")
    assert replay.conclusion == "failure" and replay.output["title"].startswith("Incomplete: 1 rule(s)")
    assert "3,000 files" in replay.output["summary"] and "PASS" in replay.output["summary"]
    assert "concluded **failure**" in bot_replies(fake_github, pr)[-1].body
    (replay,) = fake_github.check_runs(repo, docs_only.head_sha, "detbot/replay")
    assert replay.conclusion == "failure" and "3,000 files" in replay.output["summary"]


async def test_replay_by_title_quoted_or_not_and_by_path_in_code_marks(fake_github, repo):
    from tests.ghflow_support import new_rule_path
    pr = fake_github.open_pull(repo, new_bundle(1))
    title = "Certutil Download From Internet 1"
    async with running_bot(fake_github) as bot:
        for body in (f"/replay {title}", f'/replay "{title.lower()}"', f"/replay `{new_rule_path(1)}`,"):
            payload = issue_comment_event(fake_github, pr, body, user="maint")
            await bot.deliver("issue_comment", payload)
            await bot.settle(30)
            assert reactions(fake_github, payload) == ["eyes", "+1"], body
            reply = bot_replies(fake_github, pr)[-1].body
            assert "1 rule(s)" in reply and "concluded **success**" in reply, body


async def test_recheck_while_a_newer_push_holds_the_pull_request_says_so(fake_github, repo):
    pr = fake_github.open_pull(repo, new_bundle(1))
    queue = MemoryQueue(workers=2)
    # A push's job that arrived after this comment holds the PR's key (claimed, still running elsewhere).
    await queue.claim(pr_key(repo.full_name, pr.number), "newer-push-job", time.time() + 3600)
    async with running_bot(fake_github, queue=queue) as bot:
        payload = issue_comment_event(fake_github, pr, "/recheck.", user="maint")
        await bot.deliver("issue_comment", payload)
        await bot.settle()
    assert fake_github.check_runs(repo) == []
    assert "A newer commit of this pull request is being checked" in bot_replies(fake_github, pr)[-1].body
    assert reactions(fake_github, payload) == ["eyes", "+1"]
