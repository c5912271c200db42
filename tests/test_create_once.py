"""Creates that GitHub carried out but answered 5xx: no second check run, comment or reply (bot/github/create.py).

The fake GitHub is told to perform the write and then answer 502 (`fail(..., performed=True)`): the answer is lost,
the write is not. A 502 without the write must still lead to exactly one object."""
import pytest

from bot.kpi_comment import KPI_MARKER, upsert_marked_comment
from bot.publish import PR_CHECKS
from tests.fakegithub import issue_comment_event, pull_request_event
from tests.fakegithub.harness import running_bot
from tests.ghflow_support import BROKEN_RULE
from tests.test_commands_e2e import _fresh, repo  # noqa: F401 -- the same world: example repo, a maintainer


@pytest.mark.parametrize("performed", [True, False], ids=["done-then-502", "502-not-done"])
async def test_pr_checks_get_one_run_each_when_a_create_answers_502(fake_github, repo, performed):
    pr = fake_github.open_pull(repo, {"rules/windows/bad.yml": BROKEN_RULE})
    fake_github.fail("/repos/octo/rules/check-runs", times=2, method="POST", performed=performed)
    async with running_bot(fake_github) as bot:
        await bot.deliver("pull_request", pull_request_event(fake_github, pr, "opened"))
        await bot.settle()
    runs = fake_github.check_runs(repo, pr.head_sha)
    assert sorted(r.name for r in runs) == sorted(f"detbot/{c}" for c in PR_CHECKS)
    assert all(r.status == "completed" for r in runs)
    assert next(r for r in runs if r.name == "detbot/syntax").conclusion == "failure"
    posts = [r.status for r in fake_github.requests_to("/repos/octo/rules/check-runs", "POST")]
    assert posts.count(502) == 2 and posts.count(201) == (2 if performed else 4)


async def test_a_command_reply_answered_502_is_posted_once(fake_github, repo):
    pr = fake_github.open_pull(repo, {"rules/windows/bad.yml": BROKEN_RULE})
    fake_github.fail(f"/repos/octo/rules/issues/{pr.number}/comments", method="POST", performed=True)
    async with running_bot(fake_github) as bot:
        await bot.deliver("issue_comment", issue_comment_event(fake_github, pr, "/help", user="maint"))
        await bot.settle()
    replies = [c for c in fake_github.issue_comments(repo, pr.number) if c.user == fake_github.bot_login]
    assert len(replies) == 1 and "/recheck" in replies[0].body


async def test_the_kpi_comment_answered_502_is_created_once(fake_github, repo, gh):
    pr = fake_github.open_pull(repo, {"rules/windows/bad.yml": BROKEN_RULE})
    fake_github.fail(f"/repos/octo/rules/issues/{pr.number}/comments", method="POST", performed=True)
    result = await upsert_marked_comment(gh, repo.full_name, pr.number, "KPIs", bot_login=fake_github.bot_login)
    (comment,) = fake_github.issue_comments(repo, pr.number)
    assert (result.id, result.action) == (comment.id, "created") and KPI_MARKER in comment.body
    assert fake_github.requests_to("/repos/octo/rules/issues/comments/*", "DELETE") == []
