"""Atomic file writes under data_dir, the agent's temp names and the registry of its own recent writes.

Files beside media are written through folder handles instead (agent/dirfd.py).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
import threading
from collections import OrderedDict
from pathlib import Path
from typing import BinaryIO, Final

from agent.clock import Clock

CHUNK = 1024 * 1024
TEMP_MARKER = ".metarr-tmp-"
RECENT_WRITE_SECONDS = 30.0  # a write the agent announced but never finished stops counting as its own after this
MAX_RECENT_WRITES: Final = 200_000  # paths remembered as the agent left them (about 200 bytes each)


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
    """What the agent wrote beside the media, so the folder watcher never takes its own writes for news.

    `expect(path)` marks a write about to happen; `settle(path)` (after it, in the writing thread) records
    the file as the agent left it: its type, size, mtime and inode, or that it is gone. An event for a
    path is the agent's own while the write is under way, and afterwards for as long as the file is still
    exactly as the agent left it, however late the event arrives. A person's change afterwards gives the
    file another size or mtime, so it is news again. Entries are kept per path (the newest MAX_RECENT_WRITES).
    """

    def __init__(self, clock: Clock | None = None, ttl: float = RECENT_WRITE_SECONDS,
                 max_entries: int = MAX_RECENT_WRITES) -> None:
        self._clock = clock or Clock()
        self._ttl = ttl  # an expected write that never settles (a crash mid-write) stops counting after this
        self._max = max_entries
        self._expected: dict[str, tuple[float, int]] = {}  # path -> (deadline, writes under way)
        self._left: OrderedDict[str, Signature] = OrderedDict()  # path -> how the agent left it
        self._lock = threading.Lock()  # the watcher asks from its own thread

    @staticmethod
    def _key(path: str | os.PathLike[str]) -> str:
        """Normalise a path the same way for every call."""
        return os.path.normpath(os.path.abspath(os.fspath(path)))

    def expect(self, path: str | os.PathLike[str]) -> None:
        """The agent is about to write (or remove) `path`."""
        key = self._key(path)
        with self._lock:
            _, under_way = self._expected.get(key, (0.0, 0))
            self._expected[key] = (self._clock.monotonic() + self._ttl, under_way + 1)


    def settle(self, path: str | os.PathLike[str]) -> None:
        """The agent is done with `path`: remember how it left it (blocking: one lstat; call it in a thread)."""
        key = self._key(path)
        left = signature(key)
        with self._lock:
            # Two writes of one path can overlap (two publishes of an item): the path stays expected until
            # the last of them settles, or the second one's rename would look like someone else's change.
            deadline, under_way = self._expected.pop(key, (0.0, 1))
            if under_way > 1:
                self._expected[key] = (deadline, under_way - 1)
            self._left[key] = left
            self._left.move_to_end(key)
            while len(self._left) > self._max:
                self._left.popitem(last=False)

    def contains(self, path: str | os.PathLike[str]) -> bool:
        """True if an event about `path` is the agent's own (blocking: one lstat; the watcher's thread calls it)."""
        key = self._key(path)
        with self._lock:
            expected = self._expected.get(key)
            if expected is not None:
                if expected[0] > self._clock.monotonic():
                    return True
                del self._expected[key]
            left = self._left.get(key, _UNKNOWN)
        if left is _UNKNOWN:
            return False
        if signature(key) == left:
            return True
        with self._lock:  # changed since: whatever happens to it now is someone else's doing
            if self._left.get(key, _UNKNOWN) == left:
                del self._left[key]
        return False

    def __len__(self) -> int:
        """Number of paths remembered (written or under way)."""
        with self._lock:
            return len(self._left.keys() | self._expected.keys())


Signature = tuple[str, int, int, int] | None
_UNKNOWN: Final = ("?", -1, -1, -1)


def signature(path: str) -> Signature:
    """How a path is now: ("f", size, mtime_ns, inode), ("d", 0, 0, inode) for a folder, or None if gone."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if stat.S_ISDIR(st.st_mode):
        return ("d", 0, 0, st.st_ino)  # files added inside change a folder's mtime, not what it is
    return ("f", st.st_size, st.st_mtime_ns, st.st_ino)
