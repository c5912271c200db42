"""The one KPI comment per pull request, against the fake GitHub."""
import asyncio

import pytest

from bot import kpi_comment
from bot.kpi_comment import KPI_MARKER, MAX_COMMENT, upsert_marked_comment
from tests.ghflow_support import INSTALLATION, example_files, new_bundle


@pytest.fixture
def pr(fake_github):
    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION, files=example_files())
    return fake_github.open_pull(repo, new_bundle(1))


def ours(fake, pr):
    return [c for c in fake.issue_comments(pr.repo, pr.number) if c.user == fake.bot_login]


async def test_created_once_then_edited_in_place(fake_github, gh, pr):
    first = await upsert_marked_comment(gh, pr.repo.full_name, pr.number, "KPIs v1", bot_login=fake_github.bot_login)
    again = await upsert_marked_comment(gh, pr.repo.full_name, pr.number, "KPIs v1", bot_login=fake_github.bot_login)
    second = await upsert_marked_comment(gh, pr.repo.full_name, pr.number, "KPIs v2", bot_login=fake_github.bot_login)
    assert (first.action, again.action, second.action) == ("created", "unchanged", "updated")
    assert first.id == second.id
    (comment,) = ours(fake_github, pr)
    assert comment.body.startswith(KPI_MARKER) and comment.body.endswith("KPIs v2")


async def test_users_forged_marker_comment_is_left_untouched(fake_github, gh, pr):
    forged = fake_github.add_comment(pr.repo, pr.number, f"{KPI_MARKER}\nfake KPIs", user="mallory")
    also = fake_github.add_comment(pr.repo, pr.number, f"{KPI_MARKER}\nI am a bot", user="evil[bot]",
                                   user_type="Bot")
    result = await upsert_marked_comment(gh, pr.repo.full_name, pr.number, "real", bot_login=fake_github.bot_login)
    assert result.action == "created" and result.id not in (forged.id, also.id)
    assert fake_github.comments[forged.id].body == f"{KPI_MARKER}\nfake KPIs"
    assert fake_github.comments[also.id].body == f"{KPI_MARKER}\nI am a bot"
    assert not fake_github.requests_to(f"/repos/*/issues/comments/{forged.id}", "PATCH")


async def test_concurrent_events_make_one_comment(fake_github, gh, pr):
    fake_github.latency = 0.02
    results = await asyncio.gather(*(upsert_marked_comment(gh, pr.repo.full_name, pr.number, f"v{i}",
                                                           bot_login=fake_github.bot_login) for i in range(5)))
    assert [r.action for r in results].count("created") == 1
    assert len(ours(fake_github, pr)) == 1


async def test_per_pr_locks_are_dropped_once_no_one_holds_or_waits(fake_github, gh, pr):
    fake_github.latency = 0.02
    other = fake_github.open_pull(pr.repo, new_bundle(2))
    seen_while_busy = []

    async def watch():
        await asyncio.sleep(0.01)
        seen_while_busy.append(len(kpi_comment._locks))
    results = await asyncio.gather(watch(), *(upsert_marked_comment(gh, p.repo.full_name, p.number, f"v{i}",
                                                                    bot_login=fake_github.bot_login)
                                              for i in range(4) for p in (pr, other)))
    # Still one comment per pull request under concurrent events, and one lock per PR while they are busy ...
    assert [r.action for r in results[1:]].count("created") == 2 and seen_while_busy == [2]
    assert len(ours(fake_github, pr)) == 1 and len(ours(fake_github, other)) == 1
    # ... and none kept afterwards (a long-lived bot sees every pull request once).
    assert len(kpi_comment._locks) == 0


async def test_duplicate_from_another_process_is_removed(fake_github, gh, pr):
    # Two of our own marker comments (e.g. two workers raced before this fix): keep the oldest, delete the rest.
    a = fake_github.add_comment(pr.repo, pr.number, f"{KPI_MARKER}\nold", user=fake_github.bot_login,
                                user_type="Bot")
    fake_github.add_comment(pr.repo, pr.number, f"{KPI_MARKER}\nolder twin", user=fake_github.bot_login,
                            user_type="Bot")
    result = await upsert_marked_comment(gh, pr.repo.full_name, pr.number, "new", bot_login=fake_github.bot_login)
    assert result.id == a.id and result.action == "updated"
    (comment,) = ours(fake_github, pr)
    assert comment.id == a.id


async def test_long_body_is_truncated_to_github_limit(fake_github, gh, pr):
    await upsert_marked_comment(gh, pr.repo.full_name, pr.number, "x" * 70000, bot_login=fake_github.bot_login)
    (comment,) = ours(fake_github, pr)
    assert len(comment.body) <= MAX_COMMENT and "truncated" in comment.body
