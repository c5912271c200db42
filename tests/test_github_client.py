"""The GitHub App client against the fake GitHub: auth, token cache, retries, rate limits, concurrency."""
from __future__ import annotations

import asyncio
import time

import gidgethub
import jwt
import pytest

from bot.github import GitHubApp, RetryPolicy
from bot.github.auth import JWT_BACKDATE
from bot.metrics import Metrics
from tests.fakegithub import FakeGitHub

FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, max_total_wait=5.0)


@pytest.fixture
def repo(fake_github: FakeGitHub):
    fake_github.add_installation(7, "octo-org")
    return fake_github.add_repo("octo-org/rules", installation_id=7, files={"rules/a.yml": "title: a\n"})


@pytest.fixture
async def app(fake_github: FakeGitHub):
    metrics = Metrics()
    async with GitHubApp(app_id=fake_github.app_id, private_key=fake_github.private_key_pem,
                         base_url=fake_github.url, retry=FAST, metrics=metrics, concurrency=4) as app:
        yield app


async def test_requests_carry_api_version_user_agent_and_installation_token(fake_github, repo, app):
    gh = app.installation_client(7)
    data = await gh.getitem("/repos/octo-org/rules")
    assert data["full_name"] == "octo-org/rules"
    token_req, repo_req = fake_github.requests
    assert token_req.path == "/app/installations/7/access_tokens"
    claims = jwt.decode(token_req.headers["authorization"].split()[1], options={"verify_signature": False})
    now = time.time()
    assert claims["iss"] == str(fake_github.app_id)
    assert now - JWT_BACKDATE - 2 <= claims["iat"] <= now - JWT_BACKDATE + 2    # backdated 60 s
    assert claims["exp"] - now <= 600                                           # GitHub's 10-minute ceiling
    for req in (token_req, repo_req):
        assert req.headers["x-github-api-version"] == "2022-11-28"
        assert req.headers["user-agent"] == "detbot"
    assert repo_req.headers["authorization"].startswith("token ghs_")


async def test_server_error_then_success_is_retried(fake_github, repo, app):
    fake_github.fail("/repos/octo-org/rules", times=2, status=502)
    data = await app.installation_client(7).getitem("/repos/octo-org/rules")
    assert data["name"] == "rules"
    assert [r.status for r in fake_github.requests_to("/repos/octo-org/rules")] == [502, 502, 200]
    assert app.metrics.github_calls.value(method="GET", status=502) == 2
    assert app.metrics.github_retries.value(reason="server_error") == 2


async def test_server_errors_beyond_max_attempts_raise(fake_github, repo, app):
    fake_github.fail("/repos/octo-org/rules", times=10, status=503)
    with pytest.raises(gidgethub.GitHubBroken):
        await app.installation_client(7).getitem("/repos/octo-org/rules")
    assert len(fake_github.requests_to("/repos/octo-org/rules")) == FAST.max_attempts


async def test_a_post_github_may_have_done_is_not_repeated(fake_github, repo, app):
    """A 502 to a create may come after the write: repeating it would post twice (create.py looks first)."""
    pr = fake_github.open_pull(repo, {"rules/a.yml": "title: b\n"})
    url = f"/repos/octo-org/rules/issues/{pr.number}/comments"
    fake_github.fail(url, status=502, method="POST", performed=True)
    fake_github.fail("/app/installations/7/access_tokens", status=502)   # a token is safe to ask for twice
    with pytest.raises(gidgethub.GitHubBroken):
        await app.installation_client(7).post(url, data={"body": "once"})
    assert [r.status for r in fake_github.requests_to(url, "POST")] == [502]
    assert [c.body for c in fake_github.issue_comments(repo, pr.number)] == ["once"]
    assert [r.status for r in fake_github.requests_to("/app/installations/7/access_tokens")] == [502, 201]


async def test_secondary_rate_limit_honours_retry_after(fake_github, repo, app):
    fake_github.secondary_rate_limit("/repos/octo-org/rules", retry_after=0.3)
    started = time.monotonic()
    await app.installation_client(7).getitem("/repos/octo-org/rules")
    reqs = fake_github.requests_to("/repos/octo-org/rules")
    assert [r.status for r in reqs] == [403, 200]
    assert reqs[1].at - reqs[0].at >= 0.3
    assert time.monotonic() - started < 2
    assert app.metrics.github_retries.value(reason="secondary_rate_limit") == 1


async def test_primary_rate_limit_waits_for_reset(fake_github, repo, app):
    fake_github.primary_rate_limit("/repos/octo-org/rules", reset_in=0.2, status=429)
    await app.installation_client(7).getitem("/repos/octo-org/rules")
    reqs = fake_github.requests_to("/repos/octo-org/rules")
    assert [r.status for r in reqs] == [429, 200]
    assert reqs[1].at - reqs[0].at >= 0.1        # waited for x-ratelimit-reset (whole seconds) + margin
    assert app.metrics.github_retries.value(reason="primary_rate_limit") == 1


async def test_rate_limit_longer_than_the_cap_raises_at_once(fake_github, repo, app):
    fake_github.primary_rate_limit("/repos/octo-org/rules", reset_in=3600)
    started = time.monotonic()
    with pytest.raises(gidgethub.RateLimitExceeded):
        await app.installation_client(7).getitem("/repos/octo-org/rules")
    assert time.monotonic() - started < 1
    assert len(fake_github.requests_to("/repos/octo-org/rules")) == 1


async def test_plain_403_is_not_retried(fake_github, repo, app):
    fake_github.fail("/repos/octo-org/rules", status=403)
    with pytest.raises(gidgethub.BadRequest):
        await app.installation_client(7).getitem("/repos/octo-org/rules")
    assert len(fake_github.requests_to("/repos/octo-org/rules")) == 1


async def test_revoked_token_is_refreshed_once_on_401(fake_github, repo, app):
    gh = app.installation_client(7)
    await gh.getitem("/repos/octo-org/rules")
    fake_github.expire_tokens()
    await gh.getitem("/repos/octo-org/rules")
    assert [r.status for r in fake_github.requests_to("/repos/octo-org/rules")] == [200, 401, 200]
    assert len(fake_github.token_requests(7)) == 2


async def test_persistent_401_raises_instead_of_looping(fake_github, repo, app):
    gh = app.installation_client(7)
    fake_github.fail("/repos/octo-org/rules", times=5, status=401)
    with pytest.raises(gidgethub.BadRequest) as exc:
        await gh.getitem("/repos/octo-org/rules")
    assert exc.value.status_code == 401
    assert len(fake_github.requests_to("/repos/octo-org/rules")) == 2


async def test_short_lived_token_is_renewed_before_it_expires(fake_github, repo, app):
    fake_github.token_lifetime = 1.2
    gh = app.installation_client(7)
    await gh.getitem("/repos/octo-org/rules")
    await gh.getitem("/repos/octo-org/rules")
    assert len(fake_github.token_requests(7)) == 1          # reused while fresh
    await asyncio.sleep(1.2)
    await gh.getitem("/repos/octo-org/rules")
    assert len(fake_github.token_requests(7)) == 2          # renewed ahead of expiry: no 401 seen
    assert all(r.status == 200 for r in fake_github.requests_to("/repos/octo-org/rules"))


async def test_already_expired_token_is_not_cached(fake_github, repo, app):
    fake_github.token_lifetime = -5     # expires_at in the past
    with pytest.raises(gidgethub.BadRequest):
        await app.installation_client(7).getitem("/repos/octo-org/rules")
    assert app.tokens.cached(7) is None


async def test_concurrent_requests_share_one_token_request(fake_github, repo, app):
    fake_github.latency = 0.02
    gh = app.installation_client(7)
    results = await asyncio.gather(*(gh.getitem("/repos/octo-org/rules") for _ in range(40)))
    assert len(results) == 40
    assert len(fake_github.token_requests(7)) == 1


async def test_concurrency_per_installation_is_bounded(fake_github, repo, app):
    fake_github.add_repo("other/rules", installation_id=8)
    fake_github.latency = 0.02
    await asyncio.gather(*(app.installation_client(7).getitem("/repos/octo-org/rules") for _ in range(20)),
                         *(app.installation_client(8).getitem("/repos/other/rules") for _ in range(20)))
    assert fake_github.max_in_flight[7] == 4
    assert fake_github.max_in_flight[8] == 4


async def test_pagination_follows_link_headers(fake_github, repo, app):
    pr = fake_github.open_pull(repo, {f"rules/r{i}.yml": "x: 1\n" for i in range(250)})
    files = await app.installation_client(7).paginate(f"/repos/octo-org/rules/pulls/{pr.number}/files",
                                                      iterable_key=None)
    assert len(files) == 250 and len({f["filename"] for f in files}) == 250
    assert len(fake_github.requests_to(f"/repos/octo-org/rules/pulls/{pr.number}/files")) == 3


async def test_enterprise_server_base_url():
    async with FakeGitHub(path_prefix="/api/v3") as fake:
        fake.add_repo("corp/rules", installation_id=3)
        async with GitHubApp(app_id=fake.app_id, private_key=fake.private_key_pem, base_url=fake.url,
                             retry=FAST) as app:
            data = await app.installation_client(3).getitem("/repos/corp/rules")
        assert data["full_name"] == "corp/rules"
        assert fake.requests[-1].path == "/repos/corp/rules"
        fake.assert_valid()


def test_retry_policy_delays():
    policy = RetryPolicy(base_delay=1, max_delay=8, secondary_default=60)
    assert 0.5 <= policy.delay(502, {}, 1) <= 1
    assert 4 <= policy.delay(500, {}, 4) <= 8 and 4 <= policy.delay(500, {}, 9) <= 8
    assert policy.delay(403, {"retry-after": "7"}, 1) == 7
    assert policy.delay(429, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1010"}, 1, now=1000) == (
        pytest.approx(10.1))
    assert policy.delay(403, {}, 1, b'{"message": "You have exceeded a secondary rate limit"}') == 60
    assert policy.delay(403, {"x-ratelimit-remaining": "12"}, 1) is None
    assert policy.delay(404, {}, 1) is None and policy.delay(422, {}, 1) is None
    assert 0 < policy.delay(None, {}, 1) <= 1          # connection error
