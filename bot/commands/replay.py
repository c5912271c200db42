"""`detbot replay [PATH]`: re-parse the test events' raw logs with the current parsers and re-run the rules."""
from __future__ import annotations

import argparse
import sqlite3
import sys

from checks.config import ConfigError
from checks.replay.cache import ReplayCache
from checks.replay.replay import run_replay_sync
from checks.replay.report import render_json, render_markdown, render_text
from checks.replay.settings import parse_settings

from .check import Progress, _repo_relative
from .repo import CommandError, open_repository


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replay", help="replay test events' raw logs through the current parsers")
    p.add_argument("path", nargs="?", default=".", help="repository root (default: .)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--rule", action="append", metavar="ID", dest="rules",
                       help="replay only this rule (id, path or file name; repeatable)")
    which.add_argument("--all", action="store_true", help="replay the whole catalog (the default)")
    which.add_argument("--changed-only", nargs="+", metavar="FILE", default=None,
                       help="replay the rules these files belong to; a changed parser replays every rule it parses")
    p.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    p.add_argument("--verbose", "-v", action="store_true", help="text: list passing and skipped tests too")
    p.add_argument("--config", default=None, help="config file (default: PATH/.github/detbot.yml)")
    cache = p.add_mutually_exclusive_group()
    cache.add_argument("--cache", default=None, metavar="FILE",
                       help="parse-result cache (default: replay.cache in the config, .detbot-cache/replay.sqlite)")
    cache.add_argument("--no-cache", action="store_true", help="parse every raw log again")
    p.add_argument("--offline", action="store_true", help="use only the embedded backend (no network)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    try:
        root, source, config = open_repository(args.path, args.config)
    except CommandError as e:
        return e.code
    try:
        settings = parse_settings(config)
    except ConfigError as e:
        print(f"detbot: config error: {e}", file=sys.stderr)
        return 2
    cache_path = None if args.no_cache else (args.cache or (str(root / settings.cache) if settings.cache else None))
    cache = None
    if cache_path:
        try:
            cache = ReplayCache(cache_path)
        except (OSError, sqlite3.Error) as e:
            print(f"detbot: replay cache {cache_path} unavailable ({e}); parsing every log", file=sys.stderr)
    progress = Progress()
    try:
        changed = [_repo_relative(p, root) for p in args.changed_only] if args.changed_only is not None else None
        report = run_replay_sync(source, config, args.rules, cache, changed=changed,
                                 allow_remote=not args.offline, progress=progress)
    finally:
        progress.close()
        if cache:
            cache.close()
    if args.format == "json":
        print(render_json(report))
    elif args.format == "markdown":
        print(render_markdown(report))
    else:
        print(render_text(report, args.verbose))
    if report.unknown_rules and report.rules == 0:
        return 2
    return 1 if report.broken else 0
