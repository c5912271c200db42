"""`.github/detbot.yml` validated whole before a run: the checks' sections and the bot's own (`github`, the
replay schedule). A mistake anywhere is a ConfigError naming the key and its line."""
from __future__ import annotations

from checks.config import Config
from checks.config_sections import validate_sections

from .publish import PublishSettings
from .schedule import schedule_time


def validate_config(config: Config) -> Config:
    validate_sections(config)
    PublishSettings.from_config(config)
    schedule_time(config)
    return config
