"""check_suite / check_run events: rerequested (the "Re-run" buttons) and requested_action (detbot's own
button). The PR flow (ghflow) registers its handlers here; for fork PRs the payload's `pull_requests` is empty
and the handler finds the PR by head SHA, then `await ctx.run.claim(pr_key(repo, number))`."""
from __future__ import annotations

from gidgethub.routing import Router

router = Router()
