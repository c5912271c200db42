"""A new rule bundle (rule, tests, ADS) rendered from the templates in checks/templates/."""
from __future__ import annotations

import datetime as _dt
import json
import re
import uuid
from dataclasses import dataclass
from importlib import resources
from posixpath import join, normpath

from .config import Config
from .repository import TESTS_FILE, ads_path_for, is_rule_path

TEMPLATES = {"rule": "rule.yml", "tests": "rule.tests.yml", "ads": "rule.ads.md"}
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class ScaffoldError(ValueError):
    pass


@dataclass
class Scaffold:
    files: dict[str, str]  # repository path -> text
    rule_path: str


def template(kind: str) -> str:
    return resources.files("checks").joinpath("templates", TEMPLATES[kind]).read_text("utf-8")


def title_from(name: str) -> str:
    words = re.split(r"[_\-.\s]+", name)
    return " ".join(w if w.isupper() else w.capitalize() for w in words if w)


def render(name: str, directory: str = "rules", config: Config | None = None, title: str | None = None,
           author: str = "TODO your name", date: _dt.date | None = None, rule_id: str | None = None) -> Scaffold:
    if name.endswith((".yml", ".yaml")):
        name = name.rsplit(".", 1)[0]
    if not NAME.fullmatch(name):
        raise ScaffoldError(f"{name!r} is not a rule name: use letters, digits, '_', '-' and '.' only")
    directory = normpath(directory.strip("/")) if directory.strip("/") else ""
    if directory.startswith("..") or directory.startswith("/"):
        raise ScaffoldError(f"{directory!r} must be a directory inside the repository")
    config = config or Config()
    values = {"name": name, "title": title or title_from(name), "author": author,
              "date": (date or _dt.date.today()).isoformat(), "id": rule_id or str(uuid.uuid4())}

    def fill(text: str, yaml_values: bool = False) -> str:
        def value(m: re.Match[str]) -> str:
            v = values.get(m.group(1), m.group(0))
            # A title with YAML punctuation must be quoted to stay one string.
            return json.dumps(v) if yaml_values and re.search(r"[:#'\"{}\[\],&*!|>%@`]", v) else v
        return re.sub(r"\{\{(\w+)\}\}", value, text)

    rule_path = join(directory, name + ".yml") if directory else name + ".yml"
    if not is_rule_path(rule_path, config):
        # Written anyway, the rule would never be checked: every check would pass it whatever it held.
        raise ScaffoldError(f"{rule_path} is not a rule for detbot: the `rules` globs ({', '.join(config.rules)})"
                            f"{' and exclude (' + ', '.join(config.exclude) + ')' if config.exclude else ''} "
                            f"of .github/detbot.yml leave it out; choose --dir under them or add the directory")
    files = {
        rule_path: fill(template("rule"), yaml_values=True),
        rule_path[: -len(".yml")] + TESTS_FILE: fill(template("tests")),
        ads_path_for(rule_path, config): fill(template("ads")),
    }
    return Scaffold(files, rule_path)
