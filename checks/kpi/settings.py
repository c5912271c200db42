"""The `alerts:` section of `.github/detbot.yml`: where alerts are stored, how files and SIEMs map onto the record,
and how KPIs are shown. Every key is validated; a mistake is a ConfigError naming the key and its line.

    alerts:
      store: sqlite:///alerts.db         # or postgresql://user@host/db
      days: 30                           # KPI window
      min_triaged: 10                    # below this, "2 of 3 rejected" and no percentage
      benign_positive: closed            # or rejected: which side benign positives count on (always shown apart)
      charts: 5                          # daily charts for the noisiest changed rules
      import:
        source: soc-export               # the source name stored with each alert (re-imports update it)
        columns: {alert_id: id, rule_id: sigma_id, created_at: created, status: state}
        statuses: {"Escalated": in_progress, "Dismissed": false_positive}
      rule_map:
        by: id                           # id | field | table
        field: kibana.alert.rule.tags    # with by: field
        pattern: 'sigma:([0-9a-f-]{36})' # optional, group 1 is the Sigma id
        table: {platform-rule-id: sigma-id}
      sekoia: {url: https://api.sekoia.io, api_key_env: SEKOIA_API_KEY, rules: [rule-uuid, ...]}
      elastic: {url: https://es:9200, index: .alerts-security.alerts-*, api_key_env: ELASTIC_API_KEY}
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from checks.config import Config, ConfigSection

from .normalise import STATUS_WORDS, get_path, stage_of, verdict_of, word
from .stats import MIN_TRIAGED

DEFAULT_STORE = "sqlite:///.detbot/alerts.db"
FIELDS = ("source", "alert_id", "rule_id", "platform_rule_id", "rule_title", "created_at", "closed_at", "stage",
          "verdict", "status")


@dataclass
class RuleMap:
    """From a platform's rule id (or a field of the alert) to the Sigma rule's `id`."""

    by: str = "id"
    field: str | None = None
    pattern: re.Pattern[str] | None = None
    table: dict[str, str] = dataclasses.field(default_factory=dict)  # `field` is the attribute above

    def sigma_id(self, platform_rule_id: str, record: dict | None = None) -> str | None:
        if platform_rule_id and platform_rule_id in self.table:
            return self.table[platform_rule_id]
        if self.by == "id":
            return platform_rule_id or None
        if self.by == "field" and record is not None and self.field:
            value = get_path(record, self.field)
            for candidate in value if isinstance(value, list) else [value]:
                if candidate is None or candidate == "":
                    continue
                text = str(candidate)
                if self.pattern is None:
                    return text
                m = self.pattern.search(text)
                if m:
                    return m.group(1) if m.groups() else m.group(0)
        return None


@dataclass
class ImportSettings:
    source: str = "file"
    columns: dict[str, str] = field(default_factory=dict)      # our field -> column (or dotted JSON path)
    statuses: dict[str, tuple[str, str | None]] = field(default_factory=dict)

    def column(self, name: str) -> str:
        return self.columns.get(name, name)


@dataclass
class SiemSettings:
    url: str = ""
    api_key_env: str = ""
    index: str = ".alerts-security.alerts-*"
    rules: list[str] = field(default_factory=list)
    page_size: int = 0


@dataclass
class AlertSettings:
    store: str = DEFAULT_STORE
    days: int = 30
    min_triaged: int = MIN_TRIAGED
    benign_positive: str = "closed"
    charts: int = 5
    imports: ImportSettings = field(default_factory=ImportSettings)
    rule_map: RuleMap = field(default_factory=RuleMap)
    sekoia: SiemSettings = field(default_factory=lambda: SiemSettings(url="https://api.sekoia.io",
                                                                      api_key_env="SEKOIA_API_KEY"))
    elastic: SiemSettings = field(default_factory=lambda: SiemSettings(api_key_env="ELASTIC_API_KEY"))


_TOP = {"store", "days", "min_triaged", "benign_positive", "charts", "import", "rule_map", "sekoia", "elastic"}


def _status_spec(value: Any) -> tuple[str, str | None]:
    """`in_progress`, `false_positive`, or `closed/benign_positive`."""
    text = word(value)
    if "/" in text:
        stage, verdict = text.split("/", 1)
        return stage_of(stage), verdict_of(verdict)
    if text in STATUS_WORDS:
        return STATUS_WORDS[text]
    raise ValueError(f"{value!r}: use a status ({', '.join(sorted(STATUS_WORDS))}) or stage/verdict")


def alert_settings(config: Config | ConfigSection | None) -> AlertSettings:
    section = config.section("alerts") if isinstance(config, Config) else config
    out = AlertSettings()
    if section is None or not section.data:
        return out
    data = section.data

    def mapping(key: str, value: Any, allowed: set[str] | None = None) -> dict:
        if not isinstance(value, dict):
            raise section.error(key, "must be a mapping")
        if allowed is not None:
            for k in value:
                if k not in allowed:
                    raise section.error(f"{key}.{k}", f"unknown key (known: {', '.join(sorted(allowed))})")
        return value

    def integer(key: str, value: Any, low: int, high: int) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise section.error(key, f"must be a whole number from {low} to {high}")
        return value

    def string(key: str, value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise section.error(key, "must be a non-empty string")
        return value

    for key in data:
        if key not in _TOP:
            raise section.error(str(key), f"unknown key (known: {', '.join(sorted(_TOP))})")
    if "store" in data:
        out.store = string("store", data["store"])
        if "://" in out.store and not out.store.startswith(("sqlite://", "postgresql://", "postgres://")):
            raise section.error("store", "must be a file path, a sqlite:///path.db or a postgresql://... URL")
    if "days" in data:
        out.days = integer("days", data["days"], 1, 3660)
    if "min_triaged" in data:
        out.min_triaged = integer("min_triaged", data["min_triaged"], 1, 1_000_000)
    if "charts" in data:
        out.charts = integer("charts", data["charts"], 0, 20)
    if "benign_positive" in data:
        if data["benign_positive"] not in ("closed", "rejected"):
            raise section.error("benign_positive", "must be closed or rejected")
        out.benign_positive = data["benign_positive"]
    if "import" in data:
        imp = mapping("import", data["import"], {"source", "columns", "statuses"})
        if "source" in imp:
            out.imports.source = string("import.source", imp["source"])
        if "columns" in imp:
            cols = mapping("import.columns", imp["columns"], set(FIELDS))
            out.imports.columns = {k: string(f"import.columns.{k}", v) for k, v in cols.items()}
        if "statuses" in imp:
            for raw, spec in mapping("import.statuses", imp["statuses"]).items():
                try:
                    out.imports.statuses[word(raw)] = _status_spec(spec)
                except ValueError as e:
                    raise section.error(f"import.statuses.{raw}", str(e)) from None
    if "rule_map" in data:
        rm = mapping("rule_map", data["rule_map"], {"by", "field", "pattern", "table"})
        out.rule_map.by = rm.get("by", "table" if "table" in rm and "field" not in rm else
                                 "field" if "field" in rm else "id")
        if out.rule_map.by not in ("id", "field", "table"):
            raise section.error("rule_map.by", "must be id, field or table")
        if "field" in rm:
            out.rule_map.field = string("rule_map.field", rm["field"])
        if out.rule_map.by == "field" and not out.rule_map.field:
            raise section.error("rule_map.field", "is required with by: field")
        if "pattern" in rm:
            try:
                out.rule_map.pattern = re.compile(string("rule_map.pattern", rm["pattern"]))
            except re.error as e:
                raise section.error("rule_map.pattern", f"not a regular expression: {e}") from None
        if "table" in rm:
            table = mapping("rule_map.table", rm["table"])
            out.rule_map.table = {str(k): str(v) for k, v in table.items()}
    for name in ("sekoia", "elastic"):
        if name in data:
            siem = mapping(name, data[name], {"url", "api_key_env", "index", "rules", "page_size"})
            target: SiemSettings = getattr(out, name)
            for k in ("url", "api_key_env", "index"):
                if k in siem:
                    setattr(target, k, string(f"{name}.{k}", siem[k]))
            if "rules" in siem:
                rules = siem["rules"]
                if not isinstance(rules, list) or not all(isinstance(r, str) for r in rules):
                    raise section.error(f"{name}.rules", "must be a list of rule ids")
                target.rules = list(rules)
            if "page_size" in siem:
                target.page_size = integer(f"{name}.page_size", siem["page_size"], 1, 10_000)
    return out
