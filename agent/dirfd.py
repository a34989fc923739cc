"""Files beside media through directory handles: no symlink is followed, so the folder checked is the one written.

A folder is opened one component at a time with O_NOFOLLOW from "/" along its real path, and every
later step (the temp file, the rename, a sub-folder, a removal) names a file relative to that handle.
Swapping a folder for a symlink after the check therefore makes the open fail instead of redirecting
the write. Replaced files keep their owner, group and mode; new ones get the folder's group.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from agent.fsutil import CHUNK, fsync_dir, temp_name

log = logging.getLogger(__name__)

NAME_MAX = 255  # bytes in one file name on every filesystem the agent writes to
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_WALK = _DIR | getattr(os, "O_PATH", 0)  # O_PATH needs only search permission on the folder
_READ = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
# copy_file_range errors after which a plain read/write copy still works
_NO_FAST_COPY = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EPERM,
                 errno.EBADF}
# errors of chown/chmod where the filesystem or our rights do not allow it (the file is still written)
_NO_OWNERSHIP = {errno.EPERM, errno.EACCES, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}
# errors where a hardlink cannot be made but a copy can
_NO_LINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EACCES}


class SymlinkInPath(OSError):
    """A folder on the way is a symbolic link (or was swapped for one after it was checked)."""

    def __init__(self, name: str) -> None:
        super().__init__(errno.ELOOP, "is a symbolic link", name)


@dataclass(frozen=True)
class Written:
    """What one write did: whether the file changed, and the name its previous bytes were kept under."""

    wrote: bool
    kept: str | None = None


def _lstat(dir_fd: int, name: str) -> os.stat_result | None:
    """lstat `name` in the folder, or None if it is not there."""
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def open_dir(parent_fd: int, name: str, create: bool = False, umask: int | None = None) -> int:
    """Open one folder below `parent_fd` without following a symlink; create it first if asked."""
    try:
        return os.open(name, _WALK, dir_fd=parent_fd)
    except FileNotFoundError:
        if not create:
            raise
    except OSError as exc:
        if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
            raise
        info = _lstat(parent_fd, name)
        if info is not None and stat.S_ISLNK(info.st_mode):
            raise SymlinkInPath(name) from None
        raise
    try:
        os.mkdir(name, 0o777, dir_fd=parent_fd)
    except FileExistsError:
        return open_dir(parent_fd, name)
    fd = os.open(name, _DIR, dir_fd=parent_fd)  # a full handle: fchown/fchmod need one
    try:
        _settle_dir(fd, parent_fd, umask)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_path(base_fd: int, parts: Sequence[str], create: bool = False, umask: int | None = None) -> int:
    """Open base/parts[0]/parts[1]/... one folder at a time, never through a symlink; a new handle."""
    fd = os.dup(base_fd)
    try:
        for part in parts:
            if part in ("", ".", "..") or "/" in part:
                raise NotADirectoryError(errno.ENOTDIR, "not a plain folder name", part)
            child = open_dir(fd, part, create, umask)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_real(path: str | os.PathLike[str]) -> int:
    """Open an absolute path from "/" without following any symlink (give it a real path)."""
    text = os.fspath(path)
    if not os.path.isabs(text):
        raise NotADirectoryError(errno.ENOTDIR, "not an absolute path", text)
    root = os.open("/", _WALK)
    try:
        return open_path(root, [p for p in text.split("/") if p])
    finally:
        os.close(root)


def fsync_folder(dir_fd: int) -> None:
    """Flush the folder's entries (a rename) to disk; best effort."""
    fsync_dir(".", dir_fd)


def _open_regular(dir_fd: int, name: str) -> int | None:
    """A read handle on `name` if it is a regular file (never a symlink, FIFO or device), else None."""
    try:
        fd = os.open(name, _READ, dir_fd=dir_fd)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO):
            return None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return fd


def _chunks(fd: int) -> Iterator[bytes]:
    """The bytes of an open file from its current position, a chunk at a time."""
    while chunk := os.read(fd, CHUNK):
        yield chunk


def hash_at(dir_fd: int, name: str) -> str | None:
    """sha256 of a regular file in the folder, or None if it is absent or not a regular file."""
    fd = _open_regular(dir_fd, name)
    if fd is None:
        return None
    try:
        digest = hashlib.sha256()
        for chunk in _chunks(fd):
            digest.update(chunk)
        return digest.hexdigest()
    finally:
        os.close(fd)


def _holds(dir_fd: int, name: str, data: bytes) -> bool:
    """True if `name` is a regular file holding exactly `data`."""
    fd = _open_regular(dir_fd, name)
    if fd is None:
        return False
    try:
        if os.fstat(fd).st_size != len(data):
            return False
        got = bytearray()
        while len(got) <= len(data) and (chunk := os.read(fd, CHUNK)):
            got += chunk
        return bytes(got) == data
    finally:
        os.close(fd)


def _chown(fd: int, uid: int, gid: int) -> None:
    """Set owner and group where allowed: both, else the group alone, else leave them (not root, or a share)."""
    if uid == -1 and gid == -1:
        return
    try:
        os.fchown(fd, uid, gid)
    except OSError as exc:
        if exc.errno not in _NO_OWNERSHIP:
            raise
        if uid != -1 and gid != -1:
            _chown(fd, -1, gid)
        else:
            log.debug("cannot give a new file owner %s group %s: %s", uid, gid, exc.strerror)


def _chmod(fd: int, mode: int) -> None:
    """Set the mode where the filesystem allows it (some network shares do not)."""
    try:
        os.fchmod(fd, mode)
    except OSError as exc:
        if exc.errno not in _NO_OWNERSHIP:
            raise
        log.debug("cannot set mode %o on a new file: %s", mode, exc.strerror)


def _settle_file(fd: int, old: os.stat_result | None, dir_fd: int, umask: int | None) -> None:
    """Give a temp file the replaced file's owner, group and mode; a new file the folder's group and umask."""
    now = os.fstat(fd)
    if old is not None and stat.S_ISREG(old.st_mode):
        uid, gid, mode = old.st_uid, old.st_gid, stat.S_IMODE(old.st_mode) & 0o777
    else:
        uid, gid = -1, os.fstat(dir_fd).st_gid
        mode = None if umask is None else 0o666 & ~umask
    _chown(fd, -1 if uid == now.st_uid else uid, -1 if gid == now.st_gid else gid)
    if mode is not None and stat.S_IMODE(os.fstat(fd).st_mode) != mode:
        _chmod(fd, mode)


def _settle_dir(fd: int, parent_fd: int, umask: int | None) -> None:
    """A new sub-folder gets its parent's group and the configured umask (a setgid bit is kept)."""
    now, parent = os.fstat(fd), os.fstat(parent_fd)
    _chown(fd, -1, -1 if parent.st_gid == now.st_gid else parent.st_gid)
    if umask is not None:
        keep = stat.S_IMODE(os.fstat(fd).st_mode) & stat.S_ISGID
        _chmod(fd, (0o777 & ~umask) | keep)


def _new_temp(dir_fd: int) -> tuple[str, int]:
    """Create a fresh, short temp file in the folder (never through a symlink); (name, write handle)."""
    while True:
        name = temp_name()
        try:
            return name, os.open(name, _NEW, 0o666, dir_fd=dir_fd)
        except FileExistsError:
            continue


def _discard(dir_fd: int, name: str) -> None:
    """Remove a temp file if it is there."""
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass


def _write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is out."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _copy_fd(src: int, dst: int) -> None:
    """Copy an open file into another (copy_file_range: in-kernel, a reflink where the filesystem can)."""
    try:
        while os.copy_file_range(src, dst, 64 * CHUNK):
            pass
        return
    except (AttributeError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno not in _NO_FAST_COPY:
            raise
    os.lseek(src, 0, os.SEEK_SET)
    os.lseek(dst, 0, os.SEEK_SET)
    os.ftruncate(dst, 0)
    for chunk in _chunks(src):
        _write_all(dst, chunk)


def _orig_names(name: str) -> Iterator[str]:
    """`<name>-orig`, then `<name>-orig.1` ... each shortened at the stem to fit a file name."""
    stem, ext = os.path.splitext(name)
    for n in range(100):
        suffix = f"{ext}-orig" + (f".{n}" if n else "")
        room = NAME_MAX - len(os.fsencode(suffix))
        raw = os.fsencode(stem)[:room]
        while raw:
            try:
                raw.decode("utf-8")
                break
            except UnicodeDecodeError:
                raw = raw[:-1]
        yield os.fsdecode(raw) + suffix


def _same_entry(dir_fd: int, a: str, b: str) -> bool:
    """True when two names in the folder are one file, or regular files with the same bytes."""
    sa, sb = _lstat(dir_fd, a), _lstat(dir_fd, b)
    if sa is None or sb is None:
        return False
    if (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino):
        return True
    if sa.st_size != sb.st_size:
        return False
    digest = hash_at(dir_fd, a)
    return digest is not None and digest == hash_at(dir_fd, b)


def keep_original(dir_fd: int, name: str) -> str | None:
    """Keep what is at `name` under a free `<name>-orig[.N]` (a hardlink, else a copy); return that name.

    None if `name` is gone meanwhile (nothing left to keep).
    """
    for candidate in _orig_names(name):
        try:
            os.link(name, candidate, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
            return candidate
        except FileNotFoundError:
            return None
        except FileExistsError:
            if _same_entry(dir_fd, candidate, name):
                return candidate  # kept by an earlier, interrupted run
        except OSError as exc:
            if exc.errno not in _NO_LINK:
                raise
            if _copy_original(dir_fd, name, candidate):
                return candidate
    raise FileExistsError(errno.EEXIST, "no free name to keep the original under", f"{name}-orig")


def _copy_original(dir_fd: int, name: str, candidate: str) -> bool:
    """Copy `name` to a new `candidate` keeping owner, group and mode; False if candidate exists already."""
    src = _open_regular(dir_fd, name)
    if src is None:
        raise FileNotFoundError(errno.ENOENT, "the file to keep is not a regular file", name)
    try:
        try:
            dst = os.open(candidate, _NEW, 0o600, dir_fd=dir_fd)
        except FileExistsError:
            return _same_entry(dir_fd, candidate, name)
        try:
            _copy_fd(src, dst)
            info = os.fstat(src)
            _settle_file(dst, info, dir_fd, None)
            os.utime(dst, ns=(info.st_atime_ns, info.st_mtime_ns))
            os.fsync(dst)
        except BaseException:
            os.close(dst)
            _discard(dir_fd, candidate)
            raise
        os.close(dst)
        return True
    finally:
        os.close(src)


def _replace(dir_fd: int, name: str, fill_from: int | bytes, umask: int | None, keep: bool,
             sync_folder: bool = True) -> Written:
    """Fill a temp file from bytes or an open file, settle its owner/mode, keep the old file, rename over.

    The folder is fsynced after the rename unless `sync_folder` is False: then the caller fsyncs it once
    after several files (a publish does, before it records any of them).
    """
    old = _lstat(dir_fd, name)
    if old is not None and stat.S_ISDIR(old.st_mode):
        raise IsADirectoryError(errno.EISDIR, "is a folder", name)
    tmp, fd = _new_temp(dir_fd)
    kept = None
    try:
        try:
            if isinstance(fill_from, bytes):
                _write_all(fd, fill_from)
            else:
                _copy_fd(fill_from, fd)
            _settle_file(fd, old, dir_fd, umask)
            os.fsync(fd)
        finally:
            os.close(fd)
        if keep and old is not None:
            kept = keep_original(dir_fd, name)
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        _discard(dir_fd, tmp)
        raise
    if sync_folder:
        fsync_folder(dir_fd)
    return Written(True, kept)


def write_at(dir_fd: int, name: str, data: bytes, umask: int | None = None, keep: bool = False,
             sync_folder: bool = True) -> Written:
    """Put `data` at `name` in the folder atomically; identical bytes are left alone.

    With `keep`, whatever `name` held before is first kept as `<name>-orig` (or a free `.N` variant).
    """
    if _holds(dir_fd, name, data):
        return Written(False)
    return _replace(dir_fd, name, data, umask, keep, sync_folder)


def copy_at(dir_fd: int, name: str, src: str | os.PathLike[str], umask: int | None = None,
            sync_folder: bool = True) -> Written:
    """Put a copy of `src` (a cache file) at `name` atomically; a copy with the same bytes is left alone.

    Never a hardlink: writing into the published file must not change the cache. A file that is the
    cache file itself (hardlinked by an older version) is replaced by a copy.
    """
    with open(src, "rb") as source:
        info = os.fstat(source.fileno())
        here = _lstat(dir_fd, name)
        if (here is not None and stat.S_ISREG(here.st_mode) and here.st_size == info.st_size
                and (here.st_dev, here.st_ino) != (info.st_dev, info.st_ino)):
            digest = hashlib.sha256()
            for chunk in _chunks(source.fileno()):
                digest.update(chunk)
            if hash_at(dir_fd, name) == digest.hexdigest():
                return Written(False)
            os.lseek(source.fileno(), 0, os.SEEK_SET)
        return _replace(dir_fd, name, source.fileno(), umask, False, sync_folder)
