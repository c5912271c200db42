"""A fake GitHub for tests: REST API server (validated against GitHub's OpenAPI description) and webhook
deliveries built from GitHub's real example payloads. See server.py and webhooks.py."""
from .server import FakeGitHub, GitHubError, RecordedRequest, app_keypair
from .spec import load_spec, shared_github_dir
from .state import CheckRun, Comment, PullRequest, Repo, blob_sha
from .webhooks import (Delivery, check_run_event, check_suite_event, deliver, delivery, example_payload,
                       installation_event, issue_comment_event, ping_event, pull_request_event, sign)

__all__ = [
    "FakeGitHub", "GitHubError", "RecordedRequest", "app_keypair", "load_spec", "shared_github_dir", "CheckRun",
    "Comment", "PullRequest", "Repo", "blob_sha", "Delivery", "check_run_event", "check_suite_event", "deliver",
    "delivery", "example_payload", "installation_event", "issue_comment_event", "ping_event",
    "pull_request_event", "sign",
]
