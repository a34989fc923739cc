"""Bounded reads of files people and other tools put in the libraries (NFOs, artwork, videos).

Only regular files are opened, never a FIFO, device, socket or folder (a FIFO would block the
reader forever, /dev/zero never ends). With `roots`, a path is opened one component at a time from
the library root with O_NOFOLLOW, so what is checked is what is read: a symlink is followed only
when it leads to a place inside the roots, and a link swapped in during the read is refused.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from typing import Final

from agent.errors import PathError, UnsafeUserFile
from agent.paths import resolve_inside

StrPath = str | os.PathLike[str]

_NOFOLLOW: Final = getattr(os, "O_NOFOLLOW", 0)
_READ: Final = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
_FOLDER: Final = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
_KINDS: Final = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISLNK, "a symbolic link"),
)
_CHUNK: Final = 1 << 20
_DIR_FD: Final = os.open in os.supports_dir_fd and bool(_NOFOLLOW)


def _refuse(path: StrPath, reason: str) -> UnsafeUserFile:
    """The error for a file that is not read: its path and why, in one sentence."""
    return UnsafeUserFile(f"{os.fspath(path)} {reason}; not read", detail={"path": os.fspath(path), "reason": reason})


def _check_regular(path: StrPath, mode: int) -> None:
    """Refuse anything but a regular file, naming what it is."""
    if stat.S_ISREG(mode):
        return
    kind = next((name for test, name in _KINDS if test(mode)), "not an ordinary file")
    raise _refuse(path, f"is {kind}, not a regular file")


def _lexical_parts(path: str, root: str) -> list[str] | None:
    """The components of `path` below `root` when it is spelled under it, else None."""
    root = os.path.abspath(root)
    if path == root:
        return []
    prefix = root if root.endswith(os.sep) else root + os.sep
    return path[len(prefix):].split(os.sep) if path.startswith(prefix) else None


class _LinkOnTheWay(Exception):
    """A component below the root is a symbolic link (the walk does not follow it)."""


def _open_step(name: str, folder: int, flags: int) -> int:
    """Open one component relative to `folder` without following a link; _LinkOnTheWay when it is one."""
    try:
        return os.open(name, flags | _NOFOLLOW, dir_fd=folder)
    except OSError as exc:  # ELOOP for a file, ENOTDIR when O_DIRECTORY meets a link to a folder
        if exc.errno in (errno.ELOOP, errno.ENOTDIR) and stat.S_ISLNK(
            os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode
        ):
            raise _LinkOnTheWay(name) from exc
        raise


def _open_below(shown: StrPath, root: str, parts: list[str]) -> int:
    """Open root/parts... for reading without following any link below `root`; a regular file only."""
    folder = os.open(root, _FOLDER)
    try:
        for part in parts[:-1]:
            inner = _open_step(part, folder, _FOLDER)
            os.close(folder)
            folder = inner
        if not parts:
            _check_regular(shown, os.fstat(folder).st_mode)
        mode = os.stat(parts[-1], dir_fd=folder, follow_symlinks=False).st_mode
        if stat.S_ISLNK(mode):
            raise _LinkOnTheWay(parts[-1])
        _check_regular(shown, mode)  # never open a FIFO or a device, even without blocking
        return _open_step(parts[-1], folder, _READ)
    finally:
        os.close(folder)


def _outside(path: str) -> UnsafeUserFile:
    """The error for a path whose links lead outside every root."""
    return _refuse(path, f"is a link to {os.path.realpath(path)}, outside the library folders")


def _open_inside(path: str, roots: Sequence[StrPath]) -> int:
    """Open `path` (regular, inside `roots` after following links) without a check-then-use race."""
    for root in roots:
        parts = _lexical_parts(path, os.fspath(root))
        if parts is not None:
            try:
                return _open_below(path, os.fspath(root), parts)
            except _LinkOnTheWay:
                break  # follow the links below, if they stay inside
    try:
        real = str(resolve_inside(path, roots))
    except PathError:
        raise _outside(path) from None
    for root in roots:
        real_root = os.path.realpath(os.fspath(root))
        parts = _lexical_parts(real, real_root)
        if parts is not None:
            try:
                return _open_below(path, real_root, parts)
            except _LinkOnTheWay:
                raise _refuse(path, "changed into a link while it was being opened") from None
    raise _outside(path)  # unreachable: resolve_inside found a root


def open_user_file(path: StrPath, roots: Sequence[StrPath] | None = None) -> int:
    """A descriptor for reading the regular file at `path` (opened without blocking; caller closes it).

    With `roots`, a link is followed only when it ends inside one of them. Raises UnsafeUserFile
    for anything else, FileNotFoundError when it does not exist, OSError when it cannot be opened.
    """
    text = os.path.abspath(os.fspath(path))
    if roots is not None and _DIR_FD:
        fd = _open_inside(text, roots)
    else:
        if roots is not None:  # no dir_fd here: check where it leads, then refuse a link at the end
            try:
                resolve_inside(text, roots)
            except PathError:
                raise _refuse(text, f"is a link to {os.path.realpath(text)}, outside the library folders") from None
            text = os.path.realpath(text)
        _check_regular(path, os.stat(text).st_mode)
        fd = os.open(text, _READ | (_NOFOLLOW if roots is not None else 0))
    try:
        _check_regular(path, os.fstat(fd).st_mode)  # it may have been swapped between the stat and the open
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_fd(fd: int, count: int, first: int = _CHUNK) -> bytes:
    """Up to `count` bytes from a descriptor (fewer only at the end); the first read asks for `first` bytes."""
    chunks: list[bytes] = []
    want = first
    while count > 0:
        chunk = os.read(fd, max(1, min(count, want)))
        if not chunk:
            break
        chunks.append(chunk)
        count -= len(chunk)
        want = _CHUNK
    return b"".join(chunks)


def _size_text(cap: int) -> str:
    """A cap for messages: whole MiB or KiB when it is one, else bytes."""
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if cap >= size and cap % size == 0:
            return f"{cap // size} {unit}"
    return f"{cap} bytes"


def read_user_file(path: StrPath, roots: Sequence[StrPath] | None, cap: int) -> bytes:
    """The bytes of a regular file of at most `cap` bytes (blocking: run it in a thread off the event loop).

    Refuses (UnsafeUserFile, a permanent error naming the file) a FIFO, device, socket, folder, a
    link leading outside `roots`, and a file larger than `cap`; a file still growing stops at the cap.
    """
    fd = open_user_file(path, roots)
    try:
        size = os.fstat(fd).st_size
        if size > cap:
            raise _refuse(path, f"is larger than {_size_text(cap)}")
        data = read_fd(fd, cap + 1, size + 1)  # one read of the whole file (and its end) when it holds still
    finally:
        os.close(fd)
    if len(data) > cap:  # it grew after the size check
        raise _refuse(path, f"is larger than {_size_text(cap)}")
    return data


__all__ = ["open_user_file", "read_fd", "read_user_file"]

