"""Atomic file writes beside media: same-folder temp file, fsync, rename; identical bytes are left alone."""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import shutil
import stat
import threading
from pathlib import Path
from typing import BinaryIO

from agent.clock import Clock

CHUNK = 1024 * 1024
TEMP_MARKER = ".metarr-tmp-"
RECENT_WRITE_SECONDS = 30.0  # the folder watcher ignores the agent's own writes this long
# errors where a hardlink cannot be made but a copy can (other filesystem, no link support, too many links)
_LINK_FALLBACK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EACCES}


def is_temp_name(name: str) -> bool:
    """True for the agent's own temp file names (`.<name>.metarr-tmp-<random>`)."""
    return name.startswith(".") and TEMP_MARKER in name


def temp_path_for(target: Path) -> Path:
    """A fresh temp name in the target's own folder."""
    return target.parent / f".{target.name}{TEMP_MARKER}{secrets.token_hex(6)}"


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


def same_file_content(src: Path, dest: Path) -> bool:
    """True if dest is a regular file with the same bytes as src (size first, then sha256)."""
    size = _regular_size(dest)
    if size is None or size != os.stat(src).st_size:
        return False
    if os.path.samefile(src, dest):
        return True
    return sha256_file(src) == sha256_file(dest)


def fsync_dir(folder: Path) -> None:
    """Flush a directory entry (the rename) to disk; a no-op where directories cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
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


def _copy_to(src: Path, tmp: Path) -> None:
    """Copy src into a new temp file and flush it."""
    with _new_temp(tmp) as out, open(src, "rb") as source:
        shutil.copyfileobj(source, out, CHUNK)
        out.flush()
        os.fsync(out.fileno())


def atomic_link_or_copy(src: Path, dest: Path) -> bool:
    """Put a cache file at dest (hardlink on the same filesystem, else copy) atomically; False if identical.

    A hardlink shares its inode with the cache: the published file must never be written in place.
    """
    src, dest = Path(src), Path(dest)
    if same_file_content(src, dest):
        return False
    tmp = temp_path_for(dest)
    try:
        try:
            os.link(src, tmp, follow_symlinks=False)
        except OSError as exc:
            if exc.errno not in _LINK_FALLBACK:
                raise
            _discard(tmp)
            _copy_to(src, tmp)
        os.replace(tmp, dest)
    except BaseException:
        _discard(tmp)
        raise
    fsync_dir(dest.parent)
    return True


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


recent_writes = RecentWrites()
