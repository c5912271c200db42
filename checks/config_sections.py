"""The sections of `.github/detbot.yml` that other modules own, validated together.

Each module validates its own section when it runs, which alone would let a mistake there pass unnoticed until
that feature is used (or turn it into a finding, exit 1, instead of a configuration error, exit 2). Whoever
loads the config for a run calls `validate_sections` first, so every mistake is a ConfigError naming the key
and its line.
"""
from __future__ import annotations

from .config import Config


def validate_sections(config: Config) -> None:
    """Raise checks.config.ConfigError for the first invalid owned section."""
    # Imported here: these modules import checks.config themselves.
    from .ads import settings_from as ads_settings
    from .coverage import settings_from as coverage_settings
    from .kpi.settings import alert_settings
    from .replay.settings import parse_settings as replay_settings

    coverage_settings(config.section("coverage"))
    ads_settings(config.section("ads"))
    replay_settings(config)
    alert_settings(config)
