"""`.github/detbot.yml`: which files are rules, which checks run at what level, validators, parsers.

Every key is checked; an unknown key or a wrong type is a ConfigError naming the key and its line.
Sections owned by other modules (alerts, replay, kpi) are kept as raw mappings with their positions,
and validated by those modules with `ConfigSection.error`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .source import FileSource
from .yamldoc import Document, YamlError, load_one

CONFIG_PATH = ".github/detbot.yml"
CHECK_NAMES = ("syntax", "tests", "coverage", "ads", "replay")


class ConfigError(Exception):
    def __init__(self, key: str, message: str, line: int = 1, path: str = CONFIG_PATH):
        super().__init__(f"{path}:{line}: {key}: {message}")
        self.key, self.line, self.path, self.message = key, line, path, message


@dataclass
class ConfigSection:
    """A mapping from the config file that another module validates itself."""

    name: str
    data: dict[str, Any]
    doc: Document | None = None
    path: str = CONFIG_PATH

    def line(self, *keys: Any) -> int:
        return self.doc.line((self.name, *keys)) if self.doc else 1

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.name}.{key}" if key else self.name, message,
                           self.line(*key.split(".")) if key else self.line(), self.path)


@dataclass
class CheckSettings:
    enabled: bool = True
    # The level at which this check's failures are reported: lowering it to warning makes a check advisory.
    level: str = "failure"


@dataclass
class ParserRoute:
    logsource: dict[str, str]
    parser: str
    backend: str = "embedded"


@dataclass
class Config:
    rules: list[str] = field(default_factory=lambda: ["rules/**/*.yml", "rules/**/*.yaml"])
    exclude: list[str] = field(default_factory=list)
    ads_path: str = "{dir}/{name}.ads.md"
    checks: dict[str, CheckSettings] = field(
        default_factory=lambda: {name: CheckSettings() for name in CHECK_NAMES})
    # pySigma validator selection (checks/validation.py): `default` is all of them but file-name conventions.
    validators: dict[str, Any] = field(default_factory=lambda: {"validators": ["default"]})
    placeholders: dict[str, list[str]] = field(default_factory=dict)
    parsers: list[ParserRoute] = field(default_factory=list)
    sections: dict[str, ConfigSection] = field(default_factory=dict)
    doc: Document | None = None
    path: str = CONFIG_PATH

    def check(self, name: str) -> CheckSettings:
        return self.checks.get(name) or CheckSettings()

    def section(self, name: str) -> ConfigSection:
        return self.sections.get(name) or ConfigSection(name, {}, self.doc, self.path)

    def parser_for(self, logsource: dict[str, Any]) -> ParserRoute | None:
        """The first route whose logsource keys all equal the rule's (case-insensitive)."""
        for route in self.parsers:
            if all(str(logsource.get(k, "")).lower() == str(v).lower() for k, v in route.logsource.items()):
                return route
        return None


# Sections whose content other modules validate.
FREE_SECTIONS = ("alerts", "kpi", "replay", "coverage", "ads", "github")
_TOP_KEYS = {"rules", "exclude", "ads_path", "checks", "validators", "placeholders", "parsers", *FREE_SECTIONS}


def _strings(value: Any, key: str, doc: Document, path: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(key, "must be a string or a list of strings", doc.line(tuple(key.split("."))), path)
    return list(value)


def _globs(value: Any, key: str, doc: Document, path: str) -> list[str]:
    """Glob lists (`rules`, `exclude`): syntax repository.glob_regex does not support would match no file at all,
    so a rules repository would pass with 0 rules checked."""
    patterns = _strings(value, key, doc, path)
    for i, p in enumerate(patterns):
        bad = next((c for c in "[]{}\\" if c in p), None)
        problem = (f"{p!r}: `{bad}` is not supported (only `*`, `?` and `**`)" if bad else
                   f"{p!r}: paths are relative to the repository root, without a leading `/` or `./`"
                   if p.startswith(("/", "./")) else "")
        if problem:
            line = doc.line((key, i)) if isinstance(value, list) else doc.line((key,))
            raise ConfigError(key, problem, line, path)
    return patterns


def parse_config(raw: bytes | str, path: str = CONFIG_PATH) -> Config:
    try:
        doc = load_one(raw)
    except YamlError as e:
        raise ConfigError("(yaml)", e.message, e.line, path) from None
    cfg = Config(doc=doc, path=path)
    data = doc.data
    if data is None:
        return cfg
    if not isinstance(data, dict):
        raise ConfigError("(root)", "must be a mapping", 1, path)

    def line(*keys: Any) -> int:
        return doc.line(keys)

    if doc.duplicates:
        # YAML keeps the last of two equal keys silently: the first setting would vanish without a word.
        dup_path, pos = min(doc.duplicates, key=lambda d: d[1].line)
        raise ConfigError(".".join(map(str, dup_path)), "appears twice in the same mapping (the first one would "
                          "be ignored)", pos.line, path)
    for key in data:
        if key not in _TOP_KEYS:
            raise ConfigError(str(key), f"unknown key (known: {', '.join(sorted(_TOP_KEYS))})", line(key), path)
    if "rules" in data:
        cfg.rules = _globs(data["rules"], "rules", doc, path)
    if "exclude" in data:
        cfg.exclude = _globs(data["exclude"], "exclude", doc, path)
    if "ads_path" in data:
        if not isinstance(data["ads_path"], str) or "{name}" not in data["ads_path"]:
            raise ConfigError("ads_path", "must be a string containing {name} (and optionally {dir})",
                              line("ads_path"), path)
        try:  # another placeholder would fail every ADS lookup later
            data["ads_path"].format(dir="d", name="n")
        except (KeyError, IndexError, ValueError) as e:
            raise ConfigError("ads_path", f"only {{dir}} and {{name}} may appear in braces ({e!r})",
                              line("ads_path"), path) from None
        cfg.ads_path = data["ads_path"]
    if "checks" in data:
        checks = data["checks"]
        if not isinstance(checks, dict):
            raise ConfigError("checks", "must be a mapping of check name to settings", line("checks"), path)
        for name, settings in checks.items():
            if name not in CHECK_NAMES:
                raise ConfigError(f"checks.{name}", f"unknown check (known: {', '.join(CHECK_NAMES)})",
                                  line("checks", name), path)
            cs = CheckSettings()
            if isinstance(settings, bool):
                cs.enabled = settings
            elif isinstance(settings, dict):
                for k, v in settings.items():
                    if k == "enabled":
                        if not isinstance(v, bool):
                            raise ConfigError(f"checks.{name}.enabled", "must be true or false",
                                              line("checks", name, k), path)
                        cs.enabled = v
                    elif k == "level":
                        if v not in ("failure", "warning", "notice"):
                            raise ConfigError(f"checks.{name}.level", "must be failure, warning or notice",
                                              line("checks", name, k), path)
                        cs.level = v
                    else:
                        # A check's own settings live in its top-level section (`coverage:`, `ads:`, `replay:`).
                        where = f"; its settings go under the top-level `{name}:` section" \
                            if name in FREE_SECTIONS else ""
                        raise ConfigError(f"checks.{name}.{k}", f"unknown key (known: enabled, level){where}",
                                          line("checks", name, k), path)
            else:
                raise ConfigError(f"checks.{name}", "must be true, false or a mapping", line("checks", name), path)
            cfg.checks[name] = cs
    if "validators" in data:
        v = data["validators"]
        if not isinstance(v, dict) or not set(v) <= {"validators", "exclusions", "config"}:
            raise ConfigError("validators", "must be a mapping with validators, exclusions and/or config",
                              line("validators"), path)
        cfg.validators = v
        # Validator names are checked now, so a typo is a config error (exit 2) like any other key.
        from .validation import build_validators
        build_validators(cfg)
    if "placeholders" in data:
        ph = data["placeholders"]
        if not isinstance(ph, dict):
            raise ConfigError("placeholders", "must map placeholder names to values", line("placeholders"), path)
        cfg.placeholders = {str(k): [str(x) for x in _strings(
            [str(i) for i in vals] if isinstance(vals, list) else vals, f"placeholders.{k}", doc, path)]
            for k, vals in ph.items()}
    if "parsers" in data:
        routes = data["parsers"]
        if not isinstance(routes, list):
            raise ConfigError("parsers", "must be a list of {logsource, parser, backend}", line("parsers"), path)
        for i, r in enumerate(routes):
            if not isinstance(r, dict) or "parser" not in r or not isinstance(r.get("logsource", {}), dict):
                raise ConfigError(f"parsers[{i}]", "needs `parser` and a `logsource` mapping",
                                  line("parsers", i), path)
            extra = set(r) - {"logsource", "parser", "backend"}
            if extra:
                raise ConfigError(f"parsers[{i}].{sorted(extra)[0]}", "unknown key", line("parsers", i, sorted(extra)[0]), path)
            cfg.parsers.append(ParserRoute({str(k): str(v) for k, v in (r.get("logsource") or {}).items()},
                                           str(r["parser"]), str(r.get("backend", "embedded"))))
    if isinstance(data.get("kpi"), dict) and data["kpi"]:
        # Nothing reads `kpi:`: a setting there would be ignored without a word.
        key = next(iter(data["kpi"]))
        raise ConfigError(f"kpi.{key}", f"unknown key: KPI settings go under `alerts:` (alerts.{key})",
                          line("kpi", key), path)
    for name in FREE_SECTIONS:
        if name in data:
            if not isinstance(data[name], dict):
                raise ConfigError(name, "must be a mapping", line(name), path)
            cfg.sections[name] = ConfigSection(name, data[name], doc, path)
    return cfg


def load_config(source: FileSource, path: str = CONFIG_PATH) -> Config:
    try:
        raw = source.read(path)
    except FileNotFoundError:
        return Config()
    return parse_config(raw, path)
