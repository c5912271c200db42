"""`detbot serve`: run the GitHub App (webhook server and workers). Configured from the environment; see
bot/settings.py and the README."""
from __future__ import annotations

import argparse
import asyncio
import sys


# GitHub may open hundreds of connections at once (a push to many PRs, a redelivery burst); the default listen
# backlog (128) drops the excess SYNs and each dropped one costs the sender a one-second retransmit.
BACKLOG = 1024


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop when installed (it halves webhook answer latency under bursts: bench/bench_webhook.py),
    asyncio's otherwise."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the GitHub App: webhook server and job workers (settings from "
                                     "DETBOT_* environment variables)")
    p.add_argument("--check-config", action="store_true",
                   help="validate the settings and exit (0 when complete)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from aiohttp import web

    from ..logging import configure_logging
    from ..queue import QueueUnavailable
    from ..server import create_app
    from ..settings import Settings, SettingsError, without_password

    try:
        settings = Settings.from_env()
    except SettingsError as e:
        print(f"detbot: {e}", file=sys.stderr)
        return 2
    if args.check_config:
        print(f"detbot: configuration complete (app {settings.app_id}, listening on {settings.listen}, "
              f"GitHub {settings.github_url}, queue {without_password(settings.queue)})")
        return 0
    configure_logging(settings.log_level, settings.log_format)
    app = create_app(settings)
    # Crash recovery sweeps and the daily replay (the pull request flow's background work).
    from ..pr_handlers import install
    install(app)
    try:
        web.run_app(app, host=settings.host, port=settings.port,
                    shutdown_timeout=settings.shutdown_timeout + 5, access_log=None, print=None,
                    backlog=BACKLOG, loop=new_event_loop())
    except (QueueUnavailable, OSError) as e:   # Redis unreachable, address in use, ...
        print(f"detbot: cannot start: {e}", file=sys.stderr)
        return 1
    return 0
