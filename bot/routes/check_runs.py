"""check_suite / check_run events: rerequested (the "Re-run" buttons) and requested_action (detbot's own
buttons). For fork PRs the payload's `pull_requests` is empty and the handler finds the PR by head SHA, then
claims the PR's queue key (bot/pr_handlers)."""
from __future__ import annotations

from gidgethub.routing import Router

from ..pr_handlers import on_check_run, on_check_suite_rerequested

router = Router()
router.add(on_check_suite_rerequested, "check_suite", action="rerequested")
router.add(on_check_run, "check_run", action="rerequested")
router.add(on_check_run, "check_run", action="requested_action")
