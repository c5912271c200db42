"""Opening a local rules repository and its config for a command, with the usual error messages."""
from __future__ import annotations

import sys
from pathlib import Path

from checks.config import Config, ConfigError, load_config, parse_config
from checks.source import LocalSource


class CommandError(Exception):
    """Already reported on stderr; the command exits with `code`."""

    def __init__(self, code: int = 2):
        super().__init__(code)
        self.code = code


def open_repository(path: str, config_path: str | None = None) -> tuple[Path, LocalSource, Config]:
    """The repository root, a source over it and its config (PATH/.github/detbot.yml unless `config_path`)."""
    root = Path(path)
    if not root.is_dir():
        print(f"detbot: {root}: not a directory", file=sys.stderr)
        raise CommandError(2)
    source = LocalSource(root)
    try:
        config = parse_config(Path(config_path).read_bytes(), config_path) if config_path else load_config(source)
    except ConfigError as e:
        print(f"detbot: config error: {e}", file=sys.stderr)
        raise CommandError(2) from None
    except OSError as e:
        print(f"detbot: {e}", file=sys.stderr)
        raise CommandError(2) from None
    return root, source, config
