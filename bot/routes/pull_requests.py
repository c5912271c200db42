"""pull_request events: opened, synchronize, reopened, ready_for_review -> check the head SHA (bot/pr_handlers)."""
from __future__ import annotations

from gidgethub.routing import Router

from ..pr_handlers import on_pull_request
from . import PR_ACTIONS

router = Router()
for _action in PR_ACTIONS:
    router.add(on_pull_request, "pull_request", action=_action)
