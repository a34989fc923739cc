"""Atomic file writes under data_dir, the agent's temp names and the registry of its own recent writes.

Files beside media are written through folder handles instead (agent/dirfd.py).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
import threading
from pathlib import Path
from typing import BinaryIO

from agent.clock import Clock

CHUNK = 1024 * 1024
TEMP_MARKER = ".metarr-tmp-"
RECENT_WRITE_SECONDS = 30.0  # the folder watcher ignores the agent's own writes this long


def is_temp_name(name: str) -> bool:
    """True for the agent's temp file names (`.metarr-tmp-<random>`, and `.<name>.metarr-tmp-<random>` of old)."""
    return name.startswith(".") and TEMP_MARKER in name


def temp_name() -> str:
    """A fresh temp file name, short whatever the target's name (24 bytes: a 255-byte name still fits)."""
    return f"{TEMP_MARKER}{secrets.token_hex(6)}"


def temp_path_for(target: Path) -> Path:
    """A fresh temp name in the target's own folder."""
    return target.parent / temp_name()


def sha256_file(path: Path) -> str:
    """Hash a file in chunks, never holding it whole in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _regular_size(path: Path) -> int | None:
    """Size of a regular file at `path` (symlinks not followed), or None."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def _same_bytes(path: Path, data: bytes) -> bool:
    """True if `path` is a regular file holding exactly `data`."""
    if _regular_size(path) != len(data):
        return False
    with open(path, "rb") as handle:
        return handle.read(len(data) + 1) == data


def fsync_dir(folder: Path | str, dir_fd: int | None = None) -> None:
    """Flush a directory's entries (the rename) to disk; a no-op where directories cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0), dir_fd=dir_fd)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _discard(path: Path) -> None:
    """Remove a temp file if it exists."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def atomic_write(path: Path, data: bytes) -> bool:
    """Write `data` to `path` atomically; return False (and touch nothing) if it already holds these bytes."""
    path = Path(path)
    if _same_bytes(path, data):
        return False
    tmp = temp_path_for(path)
    try:
        with _new_temp(tmp) as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        _discard(tmp)
        raise
    fsync_dir(path.parent)
    return True


def _new_temp(tmp: Path) -> BinaryIO:
    """Create a temp file that did not exist (never through a symlink), open for writing."""
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
    return os.fdopen(fd, "wb")


class RecentWrites:
    """Paths the agent wrote in the last ~30 s, so the folder watcher can ignore its own changes."""

    def __init__(self, clock: Clock | None = None, ttl: float = RECENT_WRITE_SECONDS) -> None:
        self._clock = clock or Clock()
        self._ttl = ttl
        self._entries: dict[str, float] = {}
        self._lock = threading.Lock()  # watchdog calls `contains` from its own thread

    @staticmethod
    def _key(path: str | os.PathLike[str]) -> str:
        """Normalise a path the same way for add and contains."""
        return os.path.normpath(os.path.abspath(os.fspath(path)))

    def add(self, path: str | os.PathLike[str]) -> None:
        """Remember that the agent just wrote (or removed) `path`."""
        now = self._clock.monotonic()
        with self._lock:
            self._expire(now)
            self._entries[self._key(path)] = now + self._ttl

    def contains(self, path: str | os.PathLike[str]) -> bool:
        """True if the agent wrote `path` within the last ttl seconds."""
        now = self._clock.monotonic()
        with self._lock:
            self._expire(now)
            return self._key(path) in self._entries

    def __len__(self) -> int:
        """Number of live entries."""
        with self._lock:
            self._expire(self._clock.monotonic())
            return len(self._entries)

    def _expire(self, now: float) -> None:
        """Drop entries past their deadline (caller holds the lock)."""
        stale = [key for key, deadline in self._entries.items() if deadline <= now]
        for key in stale:
            del self._entries[key]

