"""What a pull request touches, read through the API at its head SHA, and the config from the default branch.

Only what the checks need is downloaded: the changed files' rule bundles are fetched up front in parallel, and any
other file the checks follow a reference to (a SigmaHQ `regression_tests_path`, a parser definition for replay) is
fetched on first read from the tree listing. PR content is data: it is read, parsed and never executed.
"""
from __future__ import annotations

import asyncio
import base64
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass, field
from posixpath import dirname
from typing import Any, Callable, Iterable
from urllib.parse import quote

import structlog
from gidgethub import HTTPException

from checks.config import CONFIG_PATH, Config, parse_config
from checks.dependents import dependent_correlations, lost_references
from checks.repository import bundles_for_changed, is_rule_path, may_be_regression_data
from checks.source import MemorySource

log = structlog.get_logger(__name__)

MAX_PR_FILES = 3000  # GitHub lists at most 3,000 files of a pull request
FETCH_CONCURRENCY = 16
# A hostile rule could reference many files; lazily fetched files beyond this are treated as absent.
MAX_LAZY_FETCHES = 2000
LAZY_FETCH_TIMEOUT = 60.0
# Rule files fetched up front for repository-wide checks (duplicate ids), unless the repository has more.
MAX_PREFETCH_RULES = 20_000
BLOB_CACHE_BYTES = 256 * 1024 * 1024


class BlobCache:
    """Git blob contents by sha, least recently used out first. A blob sha names its content, so an entry is
    never stale: the next pull request of a repository downloads only what changed."""

    def __init__(self, max_bytes: int = BLOB_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._data: OrderedDict[str, bytes] = OrderedDict()
        self.hits = 0

    def get(self, sha: str) -> bytes | None:
        data = self._data.get(sha)
        if data is not None:
            self._data.move_to_end(sha)
            self.hits += 1
        return data

    def put(self, sha: str, data: bytes) -> None:
        if sha in self._data or len(data) > self.max_bytes // 4:
            return
        self._data[sha] = data
        self.bytes += len(data)
        while self.bytes > self.max_bytes:
            _, old = self._data.popitem(last=False)
            self.bytes -= len(old)

    def clear(self) -> None:
        self._data.clear()
        self.bytes = 0


BLOBS = BlobCache()


@dataclass
class ChangedFiles:
    paths: list[str]  # added, modified, renamed (new path): what exists at the head SHA
    removed: list[str] = field(default_factory=list)
    before: list[str] = field(default_factory=list)  # base paths of the modified, renamed and removed files
    listed: int = 0
    truncated: bool = False  # GitHub stopped at 3,000 files

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def touched(self) -> list[str]:
        """What the change touches, deletions included: deleting a rule's test file or ADS document changes
        that rule's verdict (its tests or ADS check must then fail), so it selects the rule's bundle too."""
        return [*self.paths, *self.removed]


async def list_changed_files(gh: Any, repo: str, number: int) -> ChangedFiles:
    out = ChangedFiles([])
    async for f in gh.getiter(f"/repos/{repo}/pulls/{number}/files?per_page=100"):
        out.listed += 1
        status = f.get("status")
        if status == "removed":
            out.removed.append(f["filename"])
        else:
            out.paths.append(f["filename"])
        if status in ("removed", "modified", "changed"):
            out.before.append(f["filename"])
        elif status == "renamed" and f.get("previous_filename"):
            out.before.append(f["previous_filename"])
        if out.listed >= MAX_PR_FILES:
            out.truncated = True
            break
    return out


def _decode_blob(obj: dict[str, Any]) -> bytes:
    content = obj.get("content") or ""
    if obj.get("encoding", "base64") == "base64":
        return base64.b64decode(content)
    return content.encode("utf-8")


class TreeSource(MemorySource):
    """A MemorySource over a git tree: the listing is the whole tree, `files` what was fetched so far.

    `read` of a listed but unfetched file fetches it through the event loop; it is called from the worker thread
    that runs the checks, never from the loop itself.
    """

    def __init__(self, files: dict[str, bytes], tree: dict[str, str], fetcher: "Fetcher | None" = None,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(files, tree.keys())
        self.tree = tree
        self._fetcher, self._loop = fetcher, loop
        self.lazy_fetches = 0

    def exists(self, path: str) -> bool:
        return path in self.tree or path in self.files

    def read(self, path: str) -> bytes:
        if path in self.files:
            return self.files[path]
        if path not in self.tree or self._fetcher is None or self._loop is None:
            raise FileNotFoundError(path)
        if self.lazy_fetches >= MAX_LAZY_FETCHES:
            raise FileNotFoundError(path)
        self.lazy_fetches += 1
        fut: Future[bytes] = asyncio.run_coroutine_threadsafe(self._fetcher.blob(self.tree[path]), self._loop)
        self.files[path] = fut.result(LAZY_FETCH_TIMEOUT)
        return self.files[path]


class Fetcher:
    def __init__(self, gh: Any, repo: str, concurrency: int = FETCH_CONCURRENCY,
                 cache: BlobCache | None = BLOBS) -> None:
        self.gh, self.repo = gh, repo
        self._sem = asyncio.Semaphore(concurrency)
        self.cache = cache
        self.requests = 0

    async def blob(self, sha: str) -> bytes:
        if self.cache is not None and (hit := self.cache.get(sha)) is not None:
            return hit
        async with self._sem:
            self.requests += 1
            data = _decode_blob(await self.gh.getitem(f"/repos/{self.repo}/git/blobs/{sha}"))
        if self.cache is not None:
            self.cache.put(sha, data)
        return data

    async def blobs(self, tree: dict[str, str], paths: Iterable[str]) -> dict[str, bytes]:
        wanted = sorted({p for p in paths if p in tree})
        contents = await asyncio.gather(*(self.blob(tree[p]) for p in wanted))
        return dict(zip(wanted, contents))

    async def tree(self, sha: str, needed_dirs: Iterable[str] = ()) -> dict[str, str]:
        """path -> blob sha of every file at `sha`. When GitHub truncates the recursive listing (very large
        repositories), walk only the directories that hold the files we need."""
        self.requests += 1
        t = await self.gh.getitem(f"/repos/{self.repo}/git/trees/{sha}?recursive=1")
        if not t.get("truncated"):
            return {e["path"]: e["sha"] for e in t.get("tree", []) if e.get("type") == "blob"}
        log.warning("fetch.tree_truncated", repo=self.repo, sha=sha)
        return await self._partial_tree(sha, needed_dirs)

    async def _partial_tree(self, sha: str, dirs: Iterable[str]) -> dict[str, str]:
        listing: dict[str, str] = {}
        subtrees: dict[str, str] = {"": sha}
        walked: set[str] = set()

        async def walk(d: str) -> None:
            if d in walked or d not in subtrees:
                return
            walked.add(d)
            self.requests += 1
            t = await self.gh.getitem(f"/repos/{self.repo}/git/trees/{subtrees[d]}")
            for e in t.get("tree", []):
                p = f"{d}/{e['path']}" if d else e["path"]
                if e.get("type") == "tree":
                    subtrees[p] = e["sha"]
                elif e.get("type") == "blob":
                    listing[p] = e["sha"]

        for target in sorted(set(dirs)):
            parts = [x for x in target.split("/") if x]
            await walk("")
            for i in range(1, len(parts) + 1):
                await walk("/".join(parts[:i]))
        # Directory-per-test layouts (`<name>.tests/`) sit one level below the rule's directory.
        for d in [p for p in list(subtrees) if p.endswith(".tests") and dirname(p) in walked]:
            await walk(d)
        return listing

    async def config(self, ref: str) -> Config:
        """`.github/detbot.yml` at `ref` (the default branch); absent -> defaults. Raises ConfigError."""
        try:
            self.requests += 1
            obj = await self.gh.getitem(f"/repos/{self.repo}/contents/{quote(CONFIG_PATH)}?ref={quote(ref)}")
        except HTTPException as e:
            if e.status_code == 404:
                return Config()
            raise
        if isinstance(obj, list) or obj.get("type") != "file":
            return Config()
        raw = _decode_blob(obj) if obj.get("content") else await self.blob(obj["sha"])
        from .config_check import validate_config  # publish and schedule import this module's neighbours
        return validate_config(parse_config(raw))


@dataclass
class PullRequestSnapshot:
    source: TreeSource
    changed: ChangedFiles
    rule_paths: list[str]   # the rules to check: those the change touches, then `dependents`
    dependents: list[str] = field(default_factory=list)   # unchanged correlations the change may break


async def snapshot(gh: Any, repo: str, number: int, head_sha: str, config: Config,
                   fetcher: Fetcher | None = None, *, all_rules: bool | None = None,
                   extra: Callable[[Iterable[str]], Iterable[str]] | None = None,
                   dependents: bool = False) -> PullRequestSnapshot:
    """The changed files, the tree at the head SHA and the touched rule bundles' files.

    `all_rules`: also fetch every rule file up front (default: when the syntax check, which looks for duplicate
    ids across the repository, is enabled). `extra(tree paths)` names more files to fetch (replay's parsers).
    `dependents`: also the correlation rules that refer to an id or name the change took away."""
    fetcher = fetcher or Fetcher(gh, repo)
    changed = await list_changed_files(gh, repo, number)
    needed_dirs = {dirname(p) for p in changed.touched} | {dirname(CONFIG_PATH)}
    tree = await fetcher.tree(head_sha, needed_dirs)
    snap = await _snapshot_of(fetcher, tree, changed, config, all_rules, extra, f"{repo}#{number}@{head_sha}")
    if dependents:
        await _add_dependents(gh, repo, number, config, fetcher, snap)
    return snap


async def _add_dependents(gh: Any, repo: str, number: int, config: Config, fetcher: Fetcher,
                          snap: PullRequestSnapshot) -> None:
    """Only bundles the change touches are checked; a correlation elsewhere naming a rule the change renamed or
    deleted would pass unnoticed. Read the changed rules as they were at the base, and add the correlations
    that still refer to an id or name no longer there."""
    former = [p for p in snap.changed.before if is_rule_path(p, config)]
    if not former:
        return
    base_sha = (await gh.getitem(f"/repos/{repo}/pulls/{number}"))["base"]["sha"]
    base_tree = await fetcher.tree(base_sha, {dirname(p) for p in former})
    files = snap.source.files
    now = {p: files[p] for p in snap.changed.paths if p in files and is_rule_path(p, config)}
    lost = lost_references(await fetcher.blobs(base_tree, former), now)
    if not lost:
        return
    tree = snap.source.tree
    rules = _rule_paths(tree, config)
    if len(rules) > MAX_PREFETCH_RULES:
        log.warning("fetch.dependents_skipped", rules=len(rules), lost=sorted(lost)[:20])
        return
    await _fetch_missing(fetcher, tree, files, rules)
    found = dependent_correlations(MemorySource(files, tree.keys()), config, lost, skip=snap.rule_paths)
    bundles = bundles_for_changed(found, MemorySource({}, tree.keys()), config)
    await _fetch_missing(fetcher, tree, files, (p for b in bundles for p in b.paths()))
    snap.dependents = [b.rule_path for b in bundles]
    snap.rule_paths = [*snap.rule_paths, *snap.dependents]
    log.info("fetch.dependents", lost=sorted(lost)[:20], correlations=snap.dependents)


async def branch_snapshot(gh: Any, repo: str, ref: str, config: Config, *,
                          extra: Callable[[Iterable[str]], Iterable[str]] | None = None) -> PullRequestSnapshot:
    """Every rule bundle of a branch (the daily replay of the whole catalog)."""
    fetcher = Fetcher(gh, repo)
    tree = await fetcher.tree(ref)
    rules = _rule_paths(tree, config)
    return await _snapshot_of(fetcher, tree, ChangedFiles(rules, listed=len(rules)), config, True, extra,
                              f"{repo}@{ref}")


def _rule_paths(tree: dict[str, str], config: Config) -> list[str]:
    return [p for p in tree if is_rule_path(p, config)]


async def _fetch_missing(fetcher: Fetcher, tree: dict[str, str], files: dict[str, bytes],
                         paths: Iterable[str | None]) -> None:
    """Add to `files` those of `paths` not read yet (mostly from the blob cache)."""
    files.update(await fetcher.blobs(tree, [p for p in paths if p and p not in files]))


def _maybe_regression_data(changed: Iterable[str], claimed: set[str], config: Config) -> bool:
    return any(p not in claimed and may_be_regression_data(p, config) for p in changed)


async def _snapshot_of(fetcher: Fetcher, tree: dict[str, str], changed: ChangedFiles, config: Config,
                       all_rules: bool | None, extra: Callable[[Iterable[str]], Iterable[str]] | None,
                       label: str) -> PullRequestSnapshot:
    listing_only = MemorySource({}, tree.keys())
    bundles = bundles_for_changed(changed.touched, listing_only, config)
    wanted = {p for b in bundles for p in b.paths() if p}
    if all_rules is None:
        # The syntax check looks for duplicate rule ids across the whole repository: fetch every rule file
        # now, concurrently (and from the blob cache after the first pull request), not one by one later.
        all_rules = bool(bundles) and config.check("syntax").enabled
    if all_rules:
        rules = _rule_paths(tree, config)
        if len(rules) <= MAX_PREFETCH_RULES:
            wanted.update(rules)
    if extra is not None:
        wanted.update(extra(tree.keys()))
    files = await fetcher.blobs(tree, wanted)
    if _maybe_regression_data(changed.touched, wanted, config):
        # SigmaHQ regression data lies outside the rule globs: the rules naming it are found by reading them.
        rules = _rule_paths(tree, config)
        if len(rules) <= MAX_PREFETCH_RULES:
            await _fetch_missing(fetcher, tree, files, rules)
            bundles = bundles_for_changed(changed.touched, TreeSource(files, tree), config)
            await _fetch_missing(fetcher, tree, files, (p for b in bundles for p in b.paths()))
    source = TreeSource(files, tree, fetcher, asyncio.get_running_loop())
    log.info("fetch.snapshot", target=label, changed=len(changed), rules=len(bundles), files=len(files),
             requests=fetcher.requests)
    return PullRequestSnapshot(source, changed, [b.rule_path for b in bundles])
