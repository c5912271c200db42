"""The comment command handler against the fake GitHub (actions recorded; the server tests run real ones)."""
import pytest

from bot.command_handlers import CommandError, forget_handled, handle_issue_comment
from tests.fakegithub import issue_comment_event
from tests.ghflow_support import INSTALLATION, example_files, new_bundle


@pytest.fixture(autouse=True)
def _fresh_memory():
    forget_handled()


class Recorded:
    def __init__(self):
        self.calls = []

    async def recheck(self, gh, target):
        self.calls.append(("recheck", target.head_sha))

    async def replay(self, gh, target, rules):
        self.calls.append(("replay", rules))
        if "broken" in rules:
            raise CommandError("no rule with id `broken` in this pull request")
        return "replayed"

    async def kpi(self, gh, target, days):
        self.calls.append(("kpi", days))
        return f"KPIs over {days} days"


@pytest.fixture
def pr(fake_github):
    repo = fake_github.add_repo("octo/rules", installation_id=INSTALLATION, files=example_files())
    fake_github.set_permission(repo, "maintainer", "maintain")
    fake_github.set_permission(repo, "writer", "write")
    fake_github.set_permission(repo, "triager", "triage")
    return fake_github.open_pull(repo, new_bundle(1))


def reactions(fake, payload):
    return [r["content"] for r in fake.comments[payload["comment"]["id"]].reactions]


def replies(fake, pr):
    return [c.body for c in fake.issue_comments(pr.repo, pr.number) if c.user == fake.bot_login]


async def test_authorised_commands_run_with_reactions(fake_github, gh, pr):
    actions = Recorded()
    payload = issue_comment_event(fake_github, pr, "Please:\n/recheck\n/KPI --days 7\n", user="maintainer")
    out = await handle_issue_comment(payload, gh, actions)
    assert out.ok and out.ran == ["recheck", "kpi"]
    assert actions.calls == [("recheck", pr.head_sha), ("kpi", 7)]
    assert reactions(fake_github, payload) == ["eyes", "+1"]
    (reply,) = replies(fake_github, pr)
    assert "KPIs over 7 days" in reply


async def test_triage_and_strangers_run_nothing_and_get_a_polite_reply(fake_github, gh, pr):
    for user in ("triager", "stranger"):
        actions = Recorded()
        payload = issue_comment_event(fake_github, pr, "/replay", user=user)
        out = await handle_issue_comment(payload, gh, actions)
        assert out.refused and actions.calls == []
        assert "write access" in replies(fake_github, pr)[-1] and f"@{user}" in replies(fake_github, pr)[-1]
        assert reactions(fake_github, payload) == ["eyes", "-1"]   # the eyes are answered, never left alone


async def test_bots_and_app_comments_are_ignored(fake_github, gh, pr):
    actions = Recorded()
    payload = issue_comment_event(fake_github, pr, "/recheck", user="maintainer")
    payload["sender"]["login"] = "maintainer[bot]"
    assert (await handle_issue_comment(payload, gh, actions)).ignored == "bot"
    payload = issue_comment_event(fake_github, pr, "/recheck", user="maintainer")
    payload["sender"]["type"] = "Bot"
    assert (await handle_issue_comment(payload, gh, actions)).ignored == "bot"
    payload = issue_comment_event(fake_github, pr, "/recheck", user="maintainer")
    payload["comment"]["performed_via_github_app"] = {"id": 1, "slug": "other"}
    assert (await handle_issue_comment(payload, gh, actions)).ignored == "bot"
    assert actions.calls == [] and not fake_github.requests_to("/repos/*/collaborators/*/permission")


async def test_edited_comment_runs_only_new_lines(fake_github, gh, pr):
    actions = Recorded()
    payload = issue_comment_event(fake_github, pr, "/recheck", user="writer")
    await handle_issue_comment(payload, gh, actions)
    comment = fake_github.comments[payload["comment"]["id"]]
    comment.body = "/recheck\n/kpi"
    edited = issue_comment_event(fake_github, pr, comment.body, user="writer", action="edited", comment=comment)
    edited["changes"] = {"body": {"from": "/recheck"}}
    await handle_issue_comment(edited, gh, actions)
    assert actions.calls == [("recheck", pr.head_sha), ("kpi", 30)]
    # An edit event without `changes` (or a replayed delivery) is covered by the memory of handled lines.
    edited.pop("changes")
    out = await handle_issue_comment(edited, gh, actions)
    assert out.ignored == "no new command" and len(actions.calls) == 2


async def test_unknown_command_gets_help_and_thumbs_down(fake_github, gh, pr):
    actions = Recorded()
    payload = issue_comment_event(fake_github, pr, "/deploy now", user="writer")
    out = await handle_issue_comment(payload, gh, actions)
    assert not out.ok and actions.calls == []
    reply = replies(fake_github, pr)[-1]
    assert "unknown command `/deploy`" in reply and "/replay [RULE...]" in reply
    assert reactions(fake_github, payload) == ["eyes", "-1"]


async def test_failing_command_reports_and_others_still_run(fake_github, gh, pr):
    actions = Recorded()
    payload = issue_comment_event(fake_github, pr, "/replay broken\n/help", user="writer")
    out = await handle_issue_comment(payload, gh, actions)
    assert not out.ok and out.ran == ["help"]
    reply = replies(fake_github, pr)[-1]
    assert "no rule with id `broken`" in reply and "/recheck" in reply
    assert reactions(fake_github, payload)[-1] == "-1"


async def test_code_and_quotes_do_not_trigger(fake_github, gh, pr):
    actions = Recorded()
    payload = issue_comment_event(fake_github, pr, "> /recheck\n```\n/replay\n```", user="writer")
    assert (await handle_issue_comment(payload, gh, actions)).ignored == "no new command"
    assert reactions(fake_github, payload) == []


async def test_same_line_twice_runs_once(fake_github, gh, pr):
    actions = Recorded()
    payload = issue_comment_event(fake_github, pr, "/recheck\n/kpi\n/RECHECK", user="writer")
    out = await handle_issue_comment(payload, gh, actions)
    assert out.ran == ["recheck", "kpi"] and [c[0] for c in actions.calls] == ["recheck", "kpi"]


async def test_custom_roles_count_by_the_base_role_they_are_built_on(fake_github, gh, pr):
    fake_github.set_permission(pr.repo, "detection-engineer", "detection-engineer:write")
    fake_github.set_permission(pr.repo, "soc-reader", "soc-reader:triage")
    actions = Recorded()
    out = await handle_issue_comment(issue_comment_event(fake_github, pr, "/recheck", user="detection-engineer"),
                                     gh, actions)
    assert out.ok and actions.calls == [("recheck", pr.head_sha)]
    out = await handle_issue_comment(issue_comment_event(fake_github, pr, "/recheck", user="soc-reader"),
                                     gh, actions)
    assert out.refused and len(actions.calls) == 1


async def test_eyes_are_answered_when_the_permission_api_or_the_reply_fails(fake_github, gh, pr):
    fake_github.fail("/repos/*/collaborators/*/permission", times=10, status=500)
    payload = issue_comment_event(fake_github, pr, "/recheck", user="writer")
    with pytest.raises(Exception):
        await handle_issue_comment(payload, gh, Recorded())
    assert reactions(fake_github, payload) == ["eyes", "-1"]
    fake_github.faults.clear()
    fake_github.fail("/repos/*/issues/*/comments", times=10, status=500, method="POST")
    payload = issue_comment_event(fake_github, pr, "/kpi", user="writer")
    with pytest.raises(Exception):
        await handle_issue_comment(payload, gh, Recorded())
    assert reactions(fake_github, payload) == ["eyes", "-1"]


async def test_recheck_and_replay_on_a_closed_pull_request_say_so_and_run_nothing(fake_github, gh, pr):
    pr.state = "closed"
    actions = Recorded()
    payload = issue_comment_event(fake_github, pr, "/recheck\n/replay\n/kpi", user="writer")
    out = await handle_issue_comment(payload, gh, actions)
    assert actions.calls == [("kpi", 30)] and not out.ok
    reply = replies(fake_github, pr)[-1]
    assert reply.count("this pull request is closed: reopen it first") == 2
    assert reactions(fake_github, payload) == ["eyes", "-1"]
