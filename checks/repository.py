"""Rule bundles: a Sigma rule file with its test events and its ADS document, found by convention."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from posixpath import basename, dirname, join
from typing import Iterable

from .config import CONFIG_PATH, Config
from .source import FileSource
from .testevents import regression_dirs

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


def _companions(all_paths: list[str]) -> dict[str, list[str]]:
    """Test files by the rule stem they belong to ('rules/x' -> its .tests.yml and .tests/ files), in one
    pass over the listing, so discovering N rules costs O(N) rather than O(N^2)."""
    index: dict[str, list[str]] = {}
    for p in all_paths:
        if p.endswith(TESTS_FILE):
            index.setdefault(p[: -len(TESTS_FILE)], []).append(p)
        elif p.endswith(".tests.yaml"):
            index.setdefault(p[: -len(".tests.yaml")], []).append(p)
        elif f"{TESTS_DIR}/" in p and p.endswith((".yml", ".yaml", ".json")):
            head = p.split(f"{TESTS_DIR}/", 1)[0]
            index.setdefault(head, []).append(p)
    return index


def _bundle(rule_path: str, companions: dict[str, list[str]], config: Config) -> RuleBundle:
    d, stem = dirname(rule_path), _stem(rule_path)
    return RuleBundle(rule_path, list(companions.get(join(d, stem), [])), ads_path_for(rule_path, config))


def discover(source: FileSource, config: Config) -> list[RuleBundle]:
    all_paths = list(source.paths())
    companions = _companions(all_paths)
    return [_bundle(p, companions, config) for p in all_paths if is_rule_path(p, config)]


_SIGMA_DETECTION = re.compile(rb"^detection:", re.M)


def looks_like_rule(raw: bytes) -> bool:
    """A Sigma detection rule has a top-level `detection:` (cheap: no YAML parse)."""
    return bool(_SIGMA_DETECTION.search(raw))


def outside_globs(source: FileSource, config: Config) -> tuple[list[str], list[str]]:
    """YAML files the `rules` globs leave out (neither excluded on purpose, nor companions, nor under a hidden
    directory such as .github/), and those of them that look like Sigma rules (a top-level `detection:`).
    When no rule matched, these tell a wrong PATH or glob from a repository with no rules yet."""
    stray = [p for p in source.paths()
             if p.endswith((".yml", ".yaml")) and not matches(p, config.rules) and not matches(p, config.exclude)
             and not is_companion(p) and not any(part.startswith(".") for part in p.split("/")[:-1])]
    return stray, [p for p in stray if source.exists(p) and looks_like_rule(source.read(p))]


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


def may_be_regression_data(path: str, config: Config) -> bool:
    """A file that may be SigmaHQ regression data (an info.yml, a JSON export, an EVTX) rather than a rule or
    the config: only such files send the search for the rule whose `regression_tests_path` holds them."""
    return (path != CONFIG_PATH and not is_rule_path(path, config)
            and path.lower().endswith((".yml", ".yaml", ".json", ".evtx")))


def _regression_owners(paths: list[str], all_paths: list[str], source: FileSource, config: Config) -> list[str]:
    """Rules whose SigmaHQ regression data (the directory of their `regression_tests_path`) holds one of
    `paths`: a pull request changing only that data must re-check the rule."""
    if not paths:
        return []
    owners = []
    for rule in (p for p in all_paths if is_rule_path(p, config)):
        try:
            raw = source.read(rule)
        except FileNotFoundError:
            continue
        if b"regression_tests_path" not in raw:
            continue
        dirs = regression_dirs(source, rule, raw)
        if any(p.startswith(d + "/") for d in dirs for p in paths):
            owners.append(rule)
    return owners


def bundles_for_changed(changed: Iterable[str], source: FileSource, config: Config) -> list[RuleBundle]:
    all_list = list(source.paths())
    all_set = set(all_list)
    rules: dict[str, None] = {}
    unowned = []
    for path in changed:
        owner = owner_rule(path, all_set, config)
        if owner is not None:
            rules[owner] = None
        elif may_be_regression_data(path, config):
            unowned.append(path)
    for owner in _regression_owners(unowned, all_list, source, config):
        rules[owner] = None
    companions = _companions(all_list)
    return [_bundle(r, companions, config) for r in rules]
