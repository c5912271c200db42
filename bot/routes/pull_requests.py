"""pull_request events: opened, synchronize, reopened, ready_for_review -> check the head SHA; edited -> check it
again when the base branch changed (bot/pr_handlers)."""
from __future__ import annotations

from gidgethub.routing import Router

from ..pr_handlers import on_pull_request, on_pull_request_edited
from . import PR_ACTIONS

router = Router()
for _action in PR_ACTIONS:
    router.add(on_pull_request, "pull_request", action=_action)
router.add(on_pull_request_edited, "pull_request", action="edited")
