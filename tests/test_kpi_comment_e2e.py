"""The KPI comment end to end: pull request events through the server, alerts in a real SQLite store."""
import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from bot.fetch import BLOBS
from bot.kpi_comment import KPI_MARKER
from bot.pr_handlers import close_stores
from tests.fakegithub import pull_request_event
from tests.fakegithub.harness import running_bot
from tests.ghflow_support import INSTALLATION, example_files, new_bundle, new_rule_path

RULE_ID = "3c1d2f9e-6a0b-4b8e-9e7a-000000000001"


@pytest.fixture
async def store_url(tmp_path):
    from checks.kpi.store import Alert, open_store
    BLOBS.clear()
    url = f"sqlite:///{tmp_path}/alerts.db"
    store = await open_store(url)
    now = datetime.now(timezone.utc)
    await store.upsert_many([Alert("soc", f"a{i}", RULE_ID, now - timedelta(days=i % 20), stage="closed",
                                   verdict="false_positive" if i % 4 else "true_positive") for i in range(40)])
    await store.close()
    yield url
    await close_stores()


def ours(fake, pr):
    return [c for c in fake.issue_comments(pr.repo, pr.number) if c.user == fake.bot_login]


async def test_kpi_comment_created_once_then_edited_on_push(fake_github, store_url):
    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION, files=example_files())
    pr = fake_github.open_pull(repo, new_bundle(1))
    forged = fake_github.add_comment(repo, pr.number, f"{KPI_MARKER}\nall rules are perfect", user="mallory")
    async with running_bot(fake_github, alert_store=store_url) as bot:
        await bot.deliver("pull_request", pull_request_event(fake_github, pr, "opened"))
        await bot.settle()
        (comment,) = ours(fake_github, pr)
        assert comment.body.startswith(KPI_MARKER)
        assert "Certutil Download From Internet 1" in comment.body and "40" in comment.body
        first_body = comment.body
        fake_github.push_to_pull(pr, new_bundle(2))
        await bot.deliver("pull_request", pull_request_event(fake_github, pr, "synchronize"))
        await bot.settle()
    (comment2,) = ours(fake_github, pr)
    assert comment2.id == comment.id and comment2.body != first_body
    assert new_rule_path(2) in comment2.body or "Certutil Download From Internet 2" in comment2.body
    assert fake_github.requests_to(f"/repos/*/issues/comments/{comment.id}", "PATCH")
    assert fake_github.comments[forged.id].body == f"{KPI_MARKER}\nall rules are perfect"
    assert not fake_github.requests_to(f"/repos/*/issues/comments/{forged.id}", "PATCH")
    assert not fake_github.requests_to(f"/repos/*/issues/comments/{forged.id}", "DELETE")


async def test_concurrent_events_leave_one_comment(fake_github, store_url):
    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION, files=example_files())
    pr = fake_github.open_pull(repo, new_bundle(1))
    fake_github.latency = 0.01
    # Two servers (as two processes would) receive events for the same pull request at the same time.
    async with running_bot(fake_github, alert_store=store_url) as a, running_bot(fake_github,
                                                                                  alert_store=store_url) as b:
        await asyncio.gather(*(bot.deliver("pull_request", pull_request_event(fake_github, pr, action))
                               for bot in (a, b) for action in ("opened", "ready_for_review")))
        await asyncio.gather(a.settle(30), b.settle(30))
    assert len(ours(fake_github, pr)) == 1


async def test_no_alert_store_no_comment(fake_github):
    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION, files=example_files())
    pr = fake_github.open_pull(repo, new_bundle(1))
    async with running_bot(fake_github) as bot:
        await bot.deliver("pull_request", pull_request_event(fake_github, pr, "opened"))
        await bot.settle()
    assert ours(fake_github, pr) == []


async def test_unreachable_alert_store_gives_a_clear_line_not_a_crash_nor_its_password(fake_github):
    from tests.fakegithub import issue_comment_event
    url = "postgresql://kpi:s3cret-pw@127.0.0.1:1/alerts"     # nothing listens on port 1
    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION, files=example_files())
    fake_github.set_permission(repo, "maint", "maintain")
    pr = fake_github.open_pull(repo, new_bundle(1))
    async with running_bot(fake_github, alert_store=url) as bot:
        await bot.deliver("pull_request", pull_request_event(fake_github, pr, "opened"))
        await bot.settle()
        (comment,) = ours(fake_github, pr)
        payload = issue_comment_event(fake_github, pr, "/kpi", user="maint")
        await bot.deliver("issue_comment", payload)
        await bot.settle()
    assert {r.conclusion for r in fake_github.check_runs(repo, pr.head_sha)} == {"success"}
    assert comment.body.startswith(KPI_MARKER) and "alert store could not be read" in comment.body
    reply = ours(fake_github, pr)[-1].body
    assert "`/kpi`: the alert store could not be read" in reply
    assert all("s3cret" not in c.body for c in fake_github.issue_comments(repo, pr.number))
    assert [r["content"] for r in fake_github.comments[payload["comment"]["id"]].reactions] == ["eyes", "-1"]


async def test_empty_alert_store_lists_the_rules_without_history(fake_github, tmp_path):
    url = f"sqlite:///{tmp_path}/empty.db"
    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION, files=example_files())
    pr = fake_github.open_pull(repo, new_bundle(1))
    try:
        async with running_bot(fake_github, alert_store=url) as bot:
            await bot.deliver("pull_request", pull_request_event(fake_github, pr, "opened"))
            await bot.settle()
    finally:
        await close_stores()
    (comment,) = ours(fake_github, pr)
    assert "1 changed rule, 0 with alerts" in comment.body and "no production history" in comment.body
