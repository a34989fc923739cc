"""Write planned files (NFO bytes, cached artwork) into a media folder atomically, inside libraries only, and
remove the agent's own stale ones; every write is recorded in published_files."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

from agent.cache import ENTITY_TYPES, AssetCache
from agent.clock import Clock
from agent.dirfd import (
    NAME_MAX,
    SymlinkInPath,
    Written,
    copy_at,
    fsync_folder,
    hash_at,
    open_path,
    open_real,
    write_at,
)
from agent.errors import AgentError, PathError, PermanentFailure, RetryLater, UserError
from agent.fsutil import RecentWrites, is_temp_name
from agent.imageinfo import AssetError
from agent.paths import resolve_inside
from agent.store import assets
from agent.store.base import Database

log = logging.getLogger("agent.publish")
T = TypeVar("T")

# errors a later retry can fix (network shares dropping, a full disk being cleaned)
_TRANSIENT = {errno.EIO, errno.ENOSPC, errno.EAGAIN, errno.ETIMEDOUT, errno.ESTALE, errno.EBUSY,
              errno.EHOSTDOWN, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ECONNRESET}


@dataclass(frozen=True)
class PlannedFile:
    """One file to put in the folder: NFO bytes (kind "nfo") or a cached asset (kind "asset").

    `keep_original`: whatever the file held before (a release's text .nfo) is kept as `<name>-orig` first.
    """

    kind: str
    name: str
    data: bytes | None = None
    sha256: str | None = None
    ext: str | None = None
    art_type: str | None = None
    position: int = 0
    keep_original: bool = False

    def __post_init__(self) -> None:
        """Refuse a half-filled plan."""
        if self.kind == "nfo" and self.data is None:
            raise UserError(f"NFO '{self.name}' has no content")
        if self.kind == "asset" and not (self.sha256 and self.ext and self.art_type):
            raise UserError(f"artwork '{self.name}' needs sha256, ext and art_type")
        if self.kind not in ("nfo", "asset"):
            raise UserError(f"planned file kind '{self.kind}' is not nfo or asset")

    @classmethod
    def nfo(cls, name: str, data: bytes, keep_original: bool = False) -> PlannedFile:
        """An NFO with its rendered bytes."""
        return cls("nfo", name, data=data, keep_original=keep_original)

    @classmethod
    def asset(cls, name: str, sha256: str, ext: str, art_type: str, position: int = 0) -> PlannedFile:
        """A cached image published under `name`."""
        return cls("asset", name, sha256=sha256, ext=ext, art_type=art_type, position=position)


@dataclass
class PublishReport:
    """Paths written, skipped as identical, removed as stale, kept because someone else owns them, and the
    copies (`<name>-orig`) under which files the agent replaced were kept."""

    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept_foreign: list[str] = field(default_factory=list)
    kept_original: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """True if anything on disk changed (players should rescan)."""
        return bool(self.written or self.removed)


def _key(path: str | os.PathLike[str]) -> str:
    """How a published path is stored: absolute and normalised, symlinks not resolved."""
    return os.path.normpath(os.path.abspath(os.fspath(path)))


def _relative(name: str) -> Path:
    """A planned name as a safe relative path (no absolute part, no `..`, no temp names)."""
    if not name or "\0" in name or "\\" in name:
        raise PathError(f"'{name}' is not a usable file name")
    rel = Path(name)
    if rel.is_absolute() or any(part in ("", ".", "..") for part in name.split("/")):
        raise PathError(f"'{name}' must be a plain name inside the media folder")
    if is_temp_name(rel.name):
        raise PathError(f"'{name}' looks like one of the agent's temp files")
    return rel


def _io_error(exc: OSError, action: str, path: Path | str) -> AgentError:
    """Name the file and say whether a retry can help."""
    if exc.errno == errno.ENAMETOOLONG:
        size = len(os.fsencode(os.path.basename(path)))
        return PermanentFailure(f"could not {action} '{path}': its name is {size} bytes, over the"
                                f" {NAME_MAX}-byte limit of a file name")
    message = f"could not {action} '{path}': {exc.strerror or exc}"
    if exc.errno in _TRANSIENT:
        return RetryLater(message)
    return PermanentFailure(message)


class Publisher:
    """Writes an entity's planned files beside its media and removes the agent's own stale ones.

    Every folder is checked against the library roots, then opened from "/" along its real path without
    following a symlink; all writes and removals go through that handle (agent/dirfd.py).
    """

    def __init__(self, db: Database, cache: AssetCache, clock: Clock | None = None,
                 recent_writes: RecentWrites | None = None,
                 allowed_roots: Sequence[str | os.PathLike[str]] = (), umask: int | None = None) -> None:
        self.db = db
        self.cache = cache
        self.clock = clock or Clock()
        self.recent_writes = recent_writes if recent_writes is not None else RecentWrites(self.clock)
        self.allowed_roots = list(allowed_roots)
        self.umask = umask  # for new files and folders; None: the process umask

    async def written_hash(self, path: str | os.PathLike[str]) -> str | None:
        """The sha256 of what the agent last wrote at `path`, or None if it never wrote there."""
        return await self.db.read(assets.published_hash, _key(path))

    def _open_folder(self, folder: Path) -> tuple[Path, Path, int]:
        """Check the folder lies inside a library root and open it; (stored form, real path, handle)."""
        if not self.allowed_roots:
            raise PathError(f"no library folders are configured, refusing to write into '{folder}'")
        shown = _key(folder)
        real = resolve_inside(shown, self.allowed_roots)
        try:
            fd = open_real(real)
        except SymlinkInPath as exc:
            raise PathError(f"media folder '{shown}' changed after it was checked: '{exc.filename}' is now a"
                            " symbolic link; nothing was written") from exc
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise PathError(f"media folder '{folder}' does not exist") from exc
        except OSError as exc:
            raise _io_error(exc, "open folder", shown) from exc
        return Path(shown), real, fd

    async def publish(self, entity_type: str, entity_id: int, folder: Path, files: list[PlannedFile],
                      remove_stale: bool = True) -> PublishReport:
        """Write every planned file (skipping identical ones) and remove this entity's stale files."""
        if entity_type not in ENTITY_TYPES:
            raise UserError(f"entity type '{entity_type}' is not one of {', '.join(ENTITY_TYPES)}")
        base, real, fd = await _in_thread(self._open_folder, Path(folder))
        report = PublishReport()
        records: list[tuple[object, ...]] = []  # record_published's arguments, written in one transaction
        try:
            targets: dict[str, tuple[Path, PlannedFile]] = {}
            for plan in files:
                rel = _relative(plan.name)
                path = str(base / rel)
                if path in targets:
                    raise UserError(f"'{plan.name}' is planned twice")
                targets[path] = (rel, plan)
            owners = await self.db.read(assets.published_owners, list(targets))
            try:
                for path, (rel, plan) in targets.items():
                    await self._publish_one(entity_type, entity_id, Path(path), rel, (real, fd), plan, report,
                                            owners.get(path), records)
            finally:
                # One fsync of the folder for every rename in it, then one transaction recording every file
                # written, also when a later file failed: what is on disk is always known as the agent's.
                if report.written or report.kept_original:
                    await _in_thread(fsync_folder, fd)
                if records:
                    await self.db.write(assets.record_published_many, records)
        finally:
            os.close(fd)
        if remove_stale:
            await self._remove_stale(entity_type, entity_id, set(targets), report)
        return report

    async def _publish_one(self, entity_type: str, entity_id: int, target: Path, rel: Path,
                           folder: tuple[Path, int], plan: PlannedFile, report: PublishReport,
                           owner: tuple[str, int] | None, records: list[tuple[object, ...]]) -> None:
        """Write one file atomically and add its record to `records` (the caller writes them)."""
        write: Callable[..., Written]  # (dir_fd, name, sync_folder=...)
        if plan.kind == "nfo":
            data = plan.data or b""
            digest = hashlib.sha256(data).hexdigest()
            write = partial(write_at, data=data, umask=self.umask, keep=plan.keep_original)
        else:
            digest = plan.sha256 or ""
            write = partial(_copy_cached, src=self.cache.path_for(digest, plan.ext or ""), digest=digest,
                            umask=self.umask)
        self.recent_writes.expect(target)
        done = await _in_thread(self._write, target, rel, folder, write)
        if done.kept:
            kept = str(target.parent / done.kept)
            log.info("kept the previous %s as %s before writing the agent's own", target, kept)
            report.kept_original.append(kept)
        own = done.wrote or owner == (entity_type, entity_id)
        records.append((str(target), entity_type, entity_id, plan.kind, digest, self.clock.now(), own,
                        plan.art_type if plan.kind == "asset" else None, plan.position))
        (report.written if done.wrote else report.skipped).append(str(target))

    def _write(self, target: Path, rel: Path, folder: tuple[Path, int],
               write: Callable[..., Written]) -> Written:
        """Open (creating) the file's sub-folders below the media folder's handle, then write through it."""
        real_folder, folder_fd = folder
        done: Written | None = None
        if len(rel.parts) > 1:
            self.recent_writes.expect(target.parent)
            try:
                dir_fd = self._open_sub(target, rel.parts[:-1], real_folder, folder_fd)
            finally:
                self.recent_writes.settle(target.parent)
        else:
            dir_fd = folder_fd
        try:
            # In the media folder itself the publish fsyncs the folder once for all its files; a sub-folder
            # (extrafanart) is synced with each file, as its handle closes right after.
            done = write(dir_fd, rel.name, sync_folder=dir_fd != folder_fd)
            return done
        except IsADirectoryError as exc:
            raise PathError(f"'{target}' is a folder; the agent will not replace it with a file") from exc
        except OSError as exc:
            raise _io_error(exc, "write", target) from exc
        finally:
            if dir_fd != folder_fd:
                os.close(dir_fd)
            self.recent_writes.settle(target)  # as the agent left it: the events of this write are its own
            if done is not None and done.kept:
                self.recent_writes.settle(target.parent / done.kept)

    def _open_sub(self, target: Path, parts: tuple[str, ...], real_folder: Path, folder_fd: int) -> int:
        """A sub-folder such as extrafanart; a symlinked one only if it leads to a folder inside the media folder."""
        try:
            try:
                return open_path(folder_fd, parts, create=True, umask=self.umask)
            except SymlinkInPath:
                parent = Path(os.path.realpath(real_folder.joinpath(*parts)))
                if parent != real_folder and not parent.is_relative_to(real_folder):
                    raise PathError(f"'{target}' would be written to '{parent}', outside '{real_folder}'") from None
                return open_path(folder_fd, parent.relative_to(real_folder).parts, create=True, umask=self.umask)
        except SymlinkInPath as exc:
            raise PathError(f"'{target.parent}' changed while it was opened: '{exc.filename}' is now a"
                            " symbolic link; nothing was written") from exc
        except NotADirectoryError as exc:
            raise PathError(f"'{target.parent}' is not a folder; the agent will not write '{target.name}'") from exc
        except OSError as exc:
            raise _io_error(exc, "create folder", target.parent) from exc

    async def _remove_stale(self, entity_type: str, entity_id: int, planned: set[str],
                            report: PublishReport) -> None:
        """Delete files the agent wrote for this entity that are no longer planned, if still untouched."""
        rows = await self.db.read(assets.published_of, entity_type, entity_id)
        for row in rows:
            path = row["path"]
            if path in planned:
                continue
            self.recent_writes.expect(path)
            if Path(path).parent.name == "extrafanart":
                self.recent_writes.expect(Path(path).parent)  # the folder goes too once empty
            try:
                status = await _in_thread(self._remove_if_ours, path, row["sha256"])
            except OSError as exc:
                raise _io_error(exc, "remove", path) from exc
            if status == "ours":
                report.removed.append(path)
            elif status == "foreign":
                log.info("keeping %s: it changed since the agent wrote it", path)
                report.kept_foreign.append(path)
            elif status == "outside":
                report.kept_foreign.append(path)
                continue
            await self.db.write(assets.forget_published, path)

    def _remove_if_ours(self, path: str, sha: str) -> str:
        """Remove a stale file still holding the bytes the agent wrote, through its folder's handle.

        Returns 'ours' (removed), 'foreign' (changed by someone: kept), 'gone', or 'outside' (its folder is
        not inside a library any more, or turned into a symlink: nothing touched).
        """
        try:
            return self._remove_unless_changed(path, sha)
        finally:
            self.recent_writes.settle(path)
            if Path(path).parent.name == "extrafanart":
                self.recent_writes.settle(Path(path).parent)

    def _remove_unless_changed(self, path: str, sha: str) -> str:
        """`_remove_if_ours` without the bookkeeping of the agent's own writes."""
        folder, name = os.path.split(path)
        try:
            real = resolve_inside(folder, self.allowed_roots)
            fd = open_real(real)
        except PathError:
            log.warning("not removing stale file %s: it is outside every library folder", path)
            return "outside"
        except SymlinkInPath as exc:
            log.warning("not removing stale file %s: '%s' on its way is now a symbolic link", path, exc.filename)
            return "outside"
        except (FileNotFoundError, NotADirectoryError):
            return "gone"
        try:
            digest = hash_at(fd, name)
            if digest is None:
                return "gone" if not _exists_at(fd, name) else "foreign"
            if digest != sha:
                return "foreign"
            os.unlink(name, dir_fd=fd)
            if real.name == "extrafanart":
                _remove_empty(fd)
            return "ours"
        finally:
            os.close(fd)


def _exists_at(dir_fd: int, name: str) -> bool:
    """True if anything (file, link, folder) is at `name` in the folder."""
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _remove_empty(fd: int) -> None:
    """Remove the folder behind `fd` (an emptied extrafanart) if it is empty and still at its name."""
    try:
        parent_fd = os.open("..", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
    except OSError:
        return
    try:
        here = os.fstat(fd)
        there = os.stat("extrafanart", dir_fd=parent_fd, follow_symlinks=False)
        if (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino):
            os.rmdir("extrafanart", dir_fd=parent_fd)
    except OSError:
        pass
    finally:
        os.close(parent_fd)


def _copy_cached(dir_fd: int, name: str, *, src: Path, digest: str, umask: int | None,
                 sync_folder: bool = True) -> Written:
    """copy_at from the asset cache, or AssetError when the cache no longer holds the asset (worker thread)."""
    if not src.is_file():
        raise AssetError(f"asset {digest} for '{name}' is missing from the cache; fetch it again")
    return copy_at(dir_fd, name, src=src, umask=umask, sync_folder=sync_folder)


async def _in_thread(fn: Callable[..., T], *args: object) -> T:
    """Run blocking file work off the event loop."""
    return await asyncio.to_thread(fn, *args)
