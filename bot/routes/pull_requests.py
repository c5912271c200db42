"""pull_request events: opened, synchronize, reopened, ready_for_review -> check the head SHA.

The PR flow (ghflow) registers its handler here:

    @router.register("pull_request", action="opened")   # and the other PR_ACTIONS
    async def check_head(event, gh, ctx): ...
"""
from __future__ import annotations

from gidgethub.routing import Router

router = Router()
