"""The `detbot` command: each subcommand lives in its own module under bot/commands."""
from __future__ import annotations

import argparse
import importlib
import sys

# Each module exposes `register(subparsers)`, which sets `func(args) -> int` on its parser.
COMMANDS = [
    "bot.commands.check",
    "bot.commands.explain",
    "bot.commands.new_rule",
    "bot.commands.replay",
    "bot.commands.alerts",
    "bot.commands.kpi",
    "bot.commands.serve",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="detbot", description="Review Sigma detection rules: "
                                     "syntax, tests, coverage, ADS, KPIs and replay.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
