"""issue_comment events on pull requests: the `/replay`, `/recheck`, `/kpi`, `/help` commands
(bot/command_handlers). A comment on a plain issue has no `issue.pull_request` and is ignored there."""
from __future__ import annotations

from gidgethub.routing import Router

from ..pr_handlers import on_issue_comment

router = Router()
router.add(on_issue_comment, "issue_comment", action="created")
router.add(on_issue_comment, "issue_comment", action="edited")
