"""issue_comment events on pull requests: the `/replay`, `/recheck`, `/kpi`, `/help` commands (ghflow
registers the handler here). A comment on a plain issue has no `issue.pull_request`."""
from __future__ import annotations

from gidgethub.routing import Router

router = Router()
