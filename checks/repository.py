"""Rule bundles: a Sigma rule file with its test events and its ADS document, found by convention."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from posixpath import basename, dirname, join
from typing import Iterable

from .config import CONFIG_PATH, Config
from .source import FileSource

TESTS_FILE = ".tests.yml"
TESTS_DIR = ".tests"
ADS_SUFFIX = ".ads.md"


@lru_cache(maxsize=256)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """`**/` spans any number of directories, `*` and `?` stay inside one."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def matches(path: str, patterns: Iterable[str]) -> bool:
    return any(glob_regex(p).match(path) for p in patterns)


def _stem(path: str) -> str:
    name = basename(path)
    return name.rsplit(".", 1)[0]


def is_companion(path: str) -> bool:
    """Test files and ADS documents live next to rules and must not be taken for rules."""
    return (path.endswith((TESTS_FILE, ".tests.yaml", ADS_SUFFIX))
            or f"{TESTS_DIR}/" in path or path == CONFIG_PATH)


def is_rule_path(path: str, config: Config) -> bool:
    return matches(path, config.rules) and not matches(path, config.exclude) and not is_companion(path)


@dataclass
class RuleBundle:
    rule_path: str
    test_paths: list[str] = field(default_factory=list)
    ads_path: str = ""

    @property
    def name(self) -> str:
        return _stem(self.rule_path)

    def paths(self) -> list[str]:
        return [self.rule_path, *self.test_paths, self.ads_path]


def ads_path_for(rule_path: str, config: Config) -> str:
    return config.ads_path.format(dir=dirname(rule_path), name=_stem(rule_path)).lstrip("/")


class _TestIndex:
    """Test files by the rule they belong to, built in one pass: looking them up per rule by scanning every
    path made discovery quadratic (minutes on a few thousand rules)."""

    def __init__(self, all_paths: Iterable[str]):
        self.files: dict[str, list[str]] = {}
        for p in all_paths:
            if p.endswith((TESTS_FILE, ".tests.yaml")):
                self.files.setdefault(p.rsplit(".tests.", 1)[0], []).append(p)
            elif f"{TESTS_DIR}/" in p and p.endswith((".yml", ".yaml", ".json")):
                self.files.setdefault(p.split(f"{TESTS_DIR}/", 1)[0], []).append(p)

    def for_rule(self, rule_path: str) -> list[str]:
        return self.files.get(join(dirname(rule_path), _stem(rule_path)), [])


def _bundle(rule_path: str, all_paths: Iterable[str] | _TestIndex, config: Config) -> RuleBundle:
    index = all_paths if isinstance(all_paths, _TestIndex) else _TestIndex(all_paths)
    return RuleBundle(rule_path, list(index.for_rule(rule_path)), ads_path_for(rule_path, config))


def discover(source: FileSource, config: Config) -> list[RuleBundle]:
    all_paths = list(source.paths())
    index = _TestIndex(all_paths)
    return [_bundle(p, index, config) for p in all_paths if is_rule_path(p, config)]


def owner_rule(path: str, all_paths: set[str], config: Config) -> str | None:
    """The rule a changed file belongs to (itself, its tests, its ADS), if any."""
    if is_rule_path(path, config):
        return path if path in all_paths else None
    d, name = dirname(path), basename(path)
    candidates: list[str] = []
    for suffix in (TESTS_FILE, ".tests.yaml", ADS_SUFFIX):
        if name.endswith(suffix):
            stem = name[: -len(suffix)]
            candidates += [join(d, stem + ".yml"), join(d, stem + ".yaml")]
    if f"{TESTS_DIR}/" in path:
        head = path.split(f"{TESTS_DIR}/", 1)[0]
        candidates += [head + ".yml", head + ".yaml"]
    for c in candidates:
        if c in all_paths and is_rule_path(c, config):
            return c
    # A custom ads_path template: find the rule whose ADS this is.
    for p in all_paths:
        if is_rule_path(p, config) and ads_path_for(p, config) == path:
            return p
    return None


def bundles_for_changed(changed: Iterable[str], source: FileSource, config: Config) -> list[RuleBundle]:
    all_list = list(source.paths())
    all_set = set(all_list)
    rules: dict[str, None] = {}
    for path in changed:
        owner = owner_rule(path, all_set, config)
        if owner is not None:
            rules[owner] = None
    index = _TestIndex(all_list)
    return [_bundle(r, index, config) for r in rules]
