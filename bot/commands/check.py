"""`detbot check [PATH]`: run the checks over a local rules repository."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from checks.config import CONFIG_PATH, Config, ConfigError, load_config
from checks.formats import to_json, to_sarif, to_text
from checks.repository import outside_globs
from checks.runner import CHECK_MODULES, run_checks
from checks.source import LocalSource

from ..config_check import validate_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="run the checks over a rules repository")
    p.add_argument("path", nargs="?", default=".", help="repository root (default: .)")
    p.add_argument("--format", choices=("text", "json", "sarif"), default="text")
    p.add_argument("--changed-only", nargs="+", metavar="FILE", default=None,
                   help="check only the rules these files belong to (pull request mode)")
    p.add_argument("--check", action="append", choices=sorted(CHECK_MODULES), dest="only",
                   help="run only this check (repeatable)")
    p.add_argument("--config", default=None, help="config file (default: PATH/.github/detbot.yml)")
    p.add_argument("--coverage-table", action="store_true",
                   help="print each rule's coverage table (identifier x seen true / false / decisive)")
    p.add_argument("-v", "--verbose", action="store_true", help="more output (includes the coverage tables)")
    p.set_defaults(func=main)


class Progress:
    """One self-overwriting line on stderr, only when it is a terminal."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.shown = False

    def __call__(self, label: str, done: int, total: int) -> None:
        if self.enabled and total >= 50 and (done % 25 == 0 or done == total):
            sys.stderr.write(f"\r{label}: {done}/{total} rules")
            sys.stderr.flush()
            self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\r\033[K")


def _repo_relative(path: str, root: Path) -> str:
    """Changed files may be given relative to the repository (as git prints them) or to the shell."""
    candidate = Path(path)
    if candidate.is_absolute() or (candidate.exists() and not (root / path).exists()):
        try:
            return candidate.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    return candidate.as_posix()


def nothing_checked(source: LocalSource, config: Config, root: Path) -> int:
    """A whole-repository run that matched no rule: say why on stderr, and return the exit status. Exit 2 when
    Sigma rules lie outside the globs (a wrong PATH or `rules:` glob would otherwise pass CI having checked
    nothing); 0 for a repository with no rules yet."""
    print(f"detbot: no rule under {root} matches the rules globs ({', '.join(config.rules)}, relative to the "
          f"repository root; set `rules:` in {CONFIG_PATH})", file=sys.stderr)
    stray, sigma = outside_globs(source, config)
    if stray:
        print(f"detbot: {len(stray)} .yml file(s) under {root} lie outside those globs (e.g. {stray[0]}): "
              f"is {root} the repository root?", file=sys.stderr)
    if sigma:
        print(f"detbot: {len(sigma)} of them look like Sigma rules (e.g. {sigma[0]}): exit 2, as nothing was "
              "checked", file=sys.stderr)
        return 2
    return 0


def main(args: argparse.Namespace) -> int:
    root = Path(args.path)
    if not root.is_dir():
        print(f"detbot: {root}: not a directory", file=sys.stderr)
        return 2
    source = LocalSource(root)
    try:
        if args.config:
            from checks.config import parse_config
            config = parse_config(Path(args.config).read_bytes(), args.config)
        else:
            config = load_config(source)
        validate_config(config)
    except ConfigError as e:
        print(f"detbot: config error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"detbot: {e}", file=sys.stderr)
        return 2
    changed = None
    if args.changed_only is not None:
        changed = [_repo_relative(p, root) for p in args.changed_only]
        config_file = _repo_relative(args.config, root) if args.config else CONFIG_PATH
        if config_file in changed:
            # Globs, placeholders, validator settings and check levels bear on every rule's verdict.
            # (The App reads the config from the default branch, so a pull request's edit cannot change it there.)
            print(f"detbot: {config_file} changed: checking every rule", file=sys.stderr)
            changed = None
    progress = Progress()
    result = run_checks(source, config, changed=changed, only=args.only, progress=progress)
    progress.close()
    coverage = None
    if "coverage" in result.checks_run and result.context is not None:
        from checks.coverage import format_report, repository_coverage
        coverage = repository_coverage(result.context)
    if args.format == "json":
        extra = {"coverage": coverage.summary()} if coverage is not None else {}
        print(to_json(result.findings, rules=len(result.bundles), checks=result.checks_run, **extra))
    elif args.format == "sarif":
        print(to_sarif(result.findings))
    else:
        text = to_text(result.findings)
        if text:
            print(text)
        if coverage is not None and (args.coverage_table or args.verbose):
            print(("\n" if text else "") + format_report(coverage))
        counts = {lvl: sum(f.level == lvl for f in result.findings) for lvl in ("failure", "warning", "notice")}
        print(f"{len(result.bundles)} rules checked ({', '.join(result.checks_run)}): "
              f"{counts['failure']} failures, {counts['warning']} warnings, {counts['notice']} notices",
              file=sys.stderr)
        if coverage is not None:
            s = coverage.summary()
            print(f"coverage: {s['identifier_percent']}% of identifiers shown decisive, {s['value_percent']}% of "
                  f"values matched", file=sys.stderr)
    if changed is None and not result.bundles:
        return nothing_checked(source, config, root)
    return 1 if any(f.level == "failure" for f in result.findings) else 0
