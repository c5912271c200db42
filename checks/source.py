"""One small interface for reading a rules repository: a local directory, or files fetched from GitHub."""
from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Iterable, Protocol


class FileSource(Protocol):
    """Paths are POSIX and relative to the repository root."""

    def paths(self) -> Iterable[str]: ...

    def read(self, path: str) -> bytes:
        """Raise FileNotFoundError when absent."""
        ...

    def exists(self, path: str) -> bool: ...


_SKIP_DIRS = {".git", ".venv", "node_modules", "__pycache__"}


class LocalSource:
    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    def paths(self) -> Iterable[str]:
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
            rel = Path(dirpath).relative_to(self.root)
            for name in sorted(filenames):
                yield (rel / name).as_posix() if rel.parts else name

    def _resolve(self, path: str) -> Path:
        # Paths come from rule files (regression_tests_path); never let them leave the root.
        pure = PurePosixPath(path)
        if pure.is_absolute() or ".." in pure.parts:
            raise FileNotFoundError(path)
        return self.root / pure

    def read(self, path: str) -> bytes:
        p = self._resolve(path)
        if not p.is_file():
            raise FileNotFoundError(path)
        return p.read_bytes()

    def exists(self, path: str) -> bool:
        try:
            return self._resolve(path).is_file()
        except FileNotFoundError:
            return False


class MemorySource:
    """Files already in memory, e.g. fetched from GitHub at a commit."""

    def __init__(self, files: dict[str, bytes], listing: Iterable[str] | None = None):
        self.files = dict(files)
        # The listing may name more files than were fetched (a git tree), so discovery sees the whole repo.
        self._listing = sorted(set(listing) | set(files)) if listing is not None else sorted(files)

    def paths(self) -> Iterable[str]:
        return list(self._listing)

    def read(self, path: str) -> bytes:
        try:
            return self.files[path]
        except KeyError:
            raise FileNotFoundError(path) from None

    def exists(self, path: str) -> bool:
        return path in self.files
