"""`detbot new-rule NAME [--dir rules/...]`: scaffold a rule, its tests and its ADS document from the templates
(checks/templates/). Every TODO left in them is what the checks will ask for."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from checks.config import ConfigError, load_config
from checks.scaffold import ScaffoldError, render
from checks.source import LocalSource


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("new-rule", help="scaffold a rule, its test events and its ADS document")
    p.add_argument("name", help="the rule's file name without .yml, e.g. proc_creation_win_certutil_download")
    p.add_argument("--dir", default="rules", help="directory inside the repository (default: rules)")
    p.add_argument("--repo", default=".", help="repository root (default: .)")
    p.add_argument("--title", default=None, help="the rule's title (default: from NAME)")
    p.add_argument("--author", default="TODO your name")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    root = Path(args.repo)
    if not root.is_dir():
        print(f"detbot: {root}: not a directory", file=sys.stderr)
        return 2
    try:
        config = load_config(LocalSource(root))
        scaffold = render(args.name, args.dir, config, title=args.title, author=args.author)
    except (ConfigError, ScaffoldError) as e:
        print(f"detbot: {e}", file=sys.stderr)
        return 2
    existing = [p for p in scaffold.files if (root / p).exists()]
    if existing:
        print(f"detbot: {', '.join(existing)} already exist(s); nothing written", file=sys.stderr)
        return 2
    for path, text in scaffold.files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        print(f"created {path}")
    print("Fill in every TODO, then run `detbot check` to see what is still missing.", file=sys.stderr)
    return 0
