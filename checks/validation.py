"""pySigma's validators (core and SigmaHQ), selected the way sigma-cli's validation config does it.

Config (`validators:` in .github/detbot.yml):

    validators:
      validators: [all, -sigmahq_title_length]     # `all`, `default`, names; `-name` removes
      exclusions: {<rule id>: [names]}             # per rule id
      config: {<name>: {<constructor kwarg>: value}}

ATT&CK-based validators read the bundled data (checks/attack.py); nothing downloads.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sigma.validators.base import SigmaRuleValidator, SigmaValidationIssueSeverity

from . import offline
from .config import Config, ConfigError

# Not part of `all`: D3FEND's technique list is not bundled (every d3fend technique tag would look
# invalid), and rule id uniqueness is checked across the whole repository by the syntax check itself,
# with both files named. Either may still be named explicitly.
NOT_IN_ALL = frozenset({"d3_fendtag", "identifier_uniqueness"})
# Left out of `default` (the selection when the config names none): SigmaHQ's house conventions for file
# names, which a private repository has no reason to follow, and a check whose verdict depends on today's
# date (a rule's status against its age), which would make the same commit pass today and fail next month.
CONVENTIONS = frozenset({"filename_length", "sigmahq_filename_convention", "sigmahq_filename_prefix",
                         "sigmahq_correlation_filename_prefix", "sigmahq_status_to_high"})

SEVERITY_LEVEL = {
    SigmaValidationIssueSeverity.HIGH: "failure",
    SigmaValidationIssueSeverity.MEDIUM: "warning",
    SigmaValidationIssueSeverity.LOW: "notice",
}


@lru_cache(maxsize=1)
def known_validators() -> dict[str, type[SigmaRuleValidator]]:
    offline.use_bundled_data()
    from sigma.validators.core import validators as core

    known = dict(core)
    try:
        from sigma.validators.sigmahq import validators as sigmahq
    except ImportError:  # the SigmaHQ package is optional
        sigmahq = {}
    known.update(sigmahq)
    return known


@dataclass
class ValidatorSet:
    """Instantiated validators plus per-rule exclusions (lower-cased rule id -> names)."""

    validators: dict[str, SigmaRuleValidator]
    exclusions: dict[str, set[str]] = field(default_factory=dict)

    def for_rule(self, rule_id: str | None) -> list[tuple[str, SigmaRuleValidator]]:
        skip = self.exclusions.get(str(rule_id).lower(), set()) if rule_id else set()
        return [(name, v) for name, v in self.validators.items() if name not in skip]


def _names(value: Any, key: tuple[Any, ...], config: Config) -> list[str]:
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(v, str) for v in items):
        raise ConfigError(".".join(map(str, key)), "must be a validator name or a list of names",
                          config.doc.line(key) if config.doc else 1, config.path)
    return items


def _option_problem(cls: type, key: Any, value: Any) -> str | None:
    """What is wrong with a validator option, judged by the type of its default. pySigma's validators are
    dataclasses that store any value as given: `max_length: x` would only fail later, on every rule, as a
    "validator failed" warning that leaves the exit status 0."""
    options = {f.name: f.default for f in dataclasses.fields(cls) if f.init} if dataclasses.is_dataclass(cls) else {}
    if key not in options:
        return f"unknown option (known: {', '.join(options) or 'none'})"
    default = options[key]
    if isinstance(default, bool):
        ok, expected = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        ok, expected = isinstance(value, int) and not isinstance(value, bool), "a whole number"
    elif isinstance(default, tuple):
        ok, expected = isinstance(value, list) and all(isinstance(v, str) for v in value), "a list of strings"
    elif isinstance(default, str):
        ok, expected = isinstance(value, str), "a string"
    else:
        return None  # no default to judge by: the constructor decides
    return None if ok else f"must be {expected} (got {value!r})"


def build_validators(config: Config) -> ValidatorSet:
    """The validator set the config asks for; a ConfigError names the key and line of any bad name."""
    known = known_validators()
    spec = config.validators or {}

    def line(*key: Any) -> int:
        return config.doc.line(("validators", *key)) if config.doc else 1

    def unknown(name: str, *key: Any) -> ConfigError:
        return ConfigError("validators." + ".".join(map(str, key)), f"unknown validator {name!r}",
                           line(*key), config.path)

    selected: set[str] = set()
    for i, name in enumerate(_names(spec.get("validators", ["default"]), ("validators", "validators"), config)):
        if name == "all":
            selected = set(known) - NOT_IN_ALL
        elif name == "default":
            selected = set(known) - NOT_IN_ALL - CONVENTIONS
        elif name.startswith("-"):
            if name[1:] not in known:
                raise unknown(name[1:], "validators", i)
            selected.discard(name[1:])
        elif name in known:
            selected.add(name)
        else:
            raise unknown(name, "validators", i)
    exclusions: dict[str, set[str]] = {}
    excl = spec.get("exclusions") or {}
    if not isinstance(excl, dict):
        raise ConfigError("validators.exclusions", "must map rule ids to validator names", line("exclusions"),
                          config.path)
    for rule_id, names in excl.items():
        names = _names(names, ("validators", "exclusions", rule_id), config)
        for name in names:
            if name not in known:
                raise unknown(name, "exclusions", rule_id)
        exclusions[str(rule_id).lower()] = set(names)
    params = spec.get("config") or {}
    if not isinstance(params, dict):
        raise ConfigError("validators.config", "must map validator names to settings", line("config"), config.path)
    for name, kwargs in params.items():
        # Every configured validator, selected or not: a mistake should not wait until it is switched on.
        if name not in known:
            raise unknown(name, "config", name)
        if not isinstance(kwargs or {}, dict):
            raise ConfigError(f"validators.config.{name}", "must be a mapping", line("config", name), config.path)
        for key, value in (kwargs or {}).items():
            problem = _option_problem(known[name], key, value)
            if problem:
                raise ConfigError(f"validators.config.{name}.{key}", problem, line("config", name, key),
                                  config.path)
    instances: dict[str, SigmaRuleValidator] = {}
    for name in sorted(selected):
        kwargs = params.get(name) or {}
        try:
            # Tuples, as the SigmaHQ validators' frozen dataclass defaults are.
            instances[name] = known[name](**{k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()})
        except TypeError as e:
            raise ConfigError(f"validators.config.{name}", str(e), line("config", name), config.path) from None
    return ValidatorSet(instances, exclusions)
