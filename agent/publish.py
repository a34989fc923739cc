"""Put NFOs and cached artwork beside media under Kodi/Jellyfin names, atomically, inside libraries only."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import os
import re
import sqlite3
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

from agent.cache import ENTITY_TYPES, AssetCache
from agent.clock import Clock
from agent.errors import AgentError, PathError, PermanentFailure, RetryLater, UserError
from agent.fsutil import RecentWrites, atomic_link_or_copy, atomic_write, is_temp_name, sha256_file
from agent.imageinfo import AssetError
from agent.paths import resolve_inside
from agent.store.db import Database

log = logging.getLogger(__name__)
T = TypeVar("T")

# DESIGN section 7: the base name of each artwork type; the extension always follows the real image type
FOLDER_ART = ("poster", "fanart", "banner", "landscape", "keyart", "clearlogo", "clearart", "discart",
              "characterart")
SEASON_ART = ("poster", "fanart", "banner", "landscape")
IMAGE_EXTS = ("jpg", "png", "webp")
_SEASON_SLOT = re.compile(r"^season(\d{1,4})-([a-z]+)$")
# errors a later retry can fix (network shares dropping, a full disk being cleaned)
_TRANSIENT = {errno.EIO, errno.ENOSPC, errno.EAGAIN, errno.ETIMEDOUT, errno.ESTALE, errno.EBUSY,
              errno.EHOSTDOWN, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ECONNRESET}


def _check_stem(stem: str | None, what: str) -> str:
    """A video file stem usable in a file name, or UserError."""
    if not stem:
        raise UserError(f"{what} needs the video file's stem")
    if "/" in stem or "\\" in stem or "\0" in stem or stem in (".", ".."):
        raise UserError(f"'{stem}' is not a usable file stem")
    return stem


def _norm_ext(ext: str) -> str:
    """Lower-case image extension with jpeg spelled jpg; UserError for anything not cached."""
    value = (ext or "").lower().lstrip(".")
    value = "jpg" if value == "jpeg" else value
    if value not in IMAGE_EXTS:
        raise UserError(f"'{ext}' is not an image extension the agent writes ({', '.join(IMAGE_EXTS)})")
    return value


def art_filename(art_type: str, ext: str, stem: str | None = None, shared_folder: bool = False,
                 season: int | None = None, position: int = 0) -> str:
    """The file name (relative to the media folder) for one artwork, per DESIGN section 7.

    `art_type` may also be a season slot such as "season01-poster". Fanart at position N >= 1 is
    `extrafanart/fanartN` (or `<stem>-fanartN` in a shared folder). The extension is the image's own.
    """
    ext = _norm_ext(ext)
    slot = _SEASON_SLOT.match(art_type or "")
    if slot:
        season, art_type = int(slot.group(1)), slot.group(2)
    if position < 0:
        raise UserError(f"artwork position {position} is negative")
    if season is not None:
        if season < 0 or art_type not in SEASON_ART:
            raise UserError(f"no season file name for '{art_type}' of season {season}"
                            f" (season art is {', '.join(SEASON_ART)})")
        if position:
            raise UserError("season artwork has only one position")
        prefix = "season-specials" if season == 0 else f"season{season:02d}"
        return f"{prefix}-{art_type}.{ext}"
    if art_type == "thumb":
        if position:
            raise UserError("an episode has only one thumb")
        return f"{_check_stem(stem, 'an episode thumb')}-thumb.{ext}"
    if art_type not in FOLDER_ART:
        raise UserError(f"unknown artwork type '{art_type}' (known: {', '.join((*FOLDER_ART, 'thumb'))})")
    if position and art_type != "fanart":
        raise UserError(f"only fanart has extra positions, not {art_type}")
    if shared_folder:
        name = _check_stem(stem, "artwork in a folder shared by several videos")
        return f"{name}-fanart{position}.{ext}" if position else f"{name}-{art_type}.{ext}"
    return f"extrafanart/fanart{position}.{ext}" if position else f"{art_type}.{ext}"


def nfo_filename(entity_type: str, stem: str | None = None, movie_nfo: bool = False) -> str:
    """The NFO name: `<stem>.nfo` or `movie.nfo` for movies, `tvshow.nfo`, `season.nfo`, `<stem>.nfo`."""
    if entity_type == "movie":
        return "movie.nfo" if movie_nfo else f"{_check_stem(stem, 'a movie NFO')}.nfo"
    if entity_type == "series":
        return "tvshow.nfo"
    if entity_type == "season":
        return "season.nfo"
    if entity_type == "episode":
        return f"{_check_stem(stem, 'an episode NFO')}.nfo"
    raise UserError(f"entity type '{entity_type}' is not one of {', '.join(ENTITY_TYPES)}")


@dataclass(frozen=True)
class PlannedFile:
    """One file to put in the folder: NFO bytes (kind "nfo") or a cached asset (kind "asset")."""

    kind: str
    name: str
    data: bytes | None = None
    sha256: str | None = None
    ext: str | None = None
    art_type: str | None = None
    position: int = 0

    def __post_init__(self) -> None:
        """Refuse a half-filled plan."""
        if self.kind == "nfo" and self.data is None:
            raise UserError(f"NFO '{self.name}' has no content")
        if self.kind == "asset" and not (self.sha256 and self.ext and self.art_type):
            raise UserError(f"artwork '{self.name}' needs sha256, ext and art_type")
        if self.kind not in ("nfo", "asset"):
            raise UserError(f"planned file kind '{self.kind}' is not nfo or asset")

    @classmethod
    def nfo(cls, name: str, data: bytes) -> PlannedFile:
        """An NFO with its rendered bytes."""
        return cls("nfo", name, data=data)

    @classmethod
    def asset(cls, name: str, sha256: str, ext: str, art_type: str, position: int = 0) -> PlannedFile:
        """A cached image published under `name`."""
        return cls("asset", name, sha256=sha256, ext=ext, art_type=art_type, position=position)


@dataclass
class PublishReport:
    """Paths written, skipped as identical, removed as stale, and kept because someone else owns them."""

    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept_foreign: list[str] = field(default_factory=list)

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


def _disk_status(path: Path, sha: str) -> str:
    """'gone', 'ours' (a regular file with the hash we wrote) or 'foreign' (replaced by someone)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return "gone"
    if not stat.S_ISREG(info.st_mode):
        return "foreign"
    return "ours" if sha256_file(path) == sha else "foreign"


def _remove(path: Path) -> None:
    """Delete a stale file and an `extrafanart` folder it leaves empty."""
    path.unlink(missing_ok=True)
    if path.parent.name == "extrafanart":
        try:
            path.parent.rmdir()
        except OSError:
            pass


def _io_error(exc: OSError, action: str, path: Path | str) -> AgentError:
    """Name the file and say whether a retry can help."""
    message = f"could not {action} '{path}': {exc.strerror or exc}"
    if exc.errno in _TRANSIENT:
        return RetryLater(message)
    return PermanentFailure(message)


def _record(conn: sqlite3.Connection, args: tuple) -> None:
    """Remember a written file and point its asset reference at it (one transaction)."""
    path, entity_type, entity_id, plan, digest, now, own = args
    if own:
        conn.execute(
            """INSERT INTO published_files (path, entity_type, entity_id, kind, sha256, written_at)
               VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT (path) DO UPDATE SET entity_type = excluded.entity_type,
                   entity_id = excluded.entity_id, kind = excluded.kind, sha256 = excluded.sha256,
                   written_at = CASE WHEN published_files.sha256 = excluded.sha256
                                     THEN published_files.written_at ELSE excluded.written_at END""",
            (path, entity_type, entity_id, plan.kind, digest, now))
    if plan.kind == "asset":
        conn.execute(
            "UPDATE asset_references SET library_path = ? WHERE entity_type = ? AND entity_id = ?"
            " AND art_type = ? AND position = ? AND sha256 = ?",
            (path, entity_type, entity_id, plan.art_type, plan.position, digest))


def _forget(conn: sqlite3.Connection, path: str) -> None:
    """Drop the record of a published file and any reference pointing at it."""
    conn.execute("DELETE FROM published_files WHERE path = ?", (path,))
    conn.execute("UPDATE asset_references SET library_path = NULL WHERE library_path = ?", (path,))


class Publisher:
    """Writes an entity's planned files beside its media and removes the agent's own stale ones."""

    def __init__(self, db: Database, cache: AssetCache, clock: Clock | None = None,
                 recent_writes: RecentWrites | None = None,
                 allowed_roots: Sequence[str | os.PathLike[str]] = ()) -> None:
        self.db = db
        self.cache = cache
        self.clock = clock or Clock()
        self.recent_writes = recent_writes if recent_writes is not None else RecentWrites(self.clock)
        self.allowed_roots = list(allowed_roots)

    async def written_hash(self, path: str | os.PathLike[str]) -> str | None:
        """The sha256 of what the agent last wrote at `path`, or None if it never wrote there."""
        row = await self.db.fetchone("SELECT sha256 FROM published_files WHERE path = ?", (_key(path),))
        return row["sha256"] if row else None

    def _folder(self, folder: Path) -> tuple[Path, Path]:
        """Check the folder lies inside a library root; return (stored form, real path)."""
        if not self.allowed_roots:
            raise PathError(f"no library folders are configured, refusing to write into '{folder}'")
        real = resolve_inside(_key(folder), self.allowed_roots)
        if not real.is_dir():
            raise PathError(f"media folder '{folder}' does not exist")
        return Path(_key(folder)), real

    async def publish(self, entity_type: str, entity_id: int, folder: Path, files: list[PlannedFile],
                      remove_stale: bool = True) -> PublishReport:
        """Write every planned file (skipping identical ones) and remove this entity's stale files."""
        if entity_type not in ENTITY_TYPES:
            raise UserError(f"entity type '{entity_type}' is not one of {', '.join(ENTITY_TYPES)}")
        base, real = self._folder(Path(folder))
        targets: dict[str, PlannedFile] = {}
        for plan in files:
            path = str(base / _relative(plan.name))
            if path in targets:
                raise UserError(f"'{plan.name}' is planned twice")
            targets[path] = plan
        report = PublishReport()
        for path, plan in targets.items():
            await self._publish_one(entity_type, entity_id, Path(path), real, plan, report)
        if remove_stale:
            await self._remove_stale(entity_type, entity_id, set(targets), report)
        return report

    async def _publish_one(self, entity_type: str, entity_id: int, target: Path, real_folder: Path,
                           plan: PlannedFile, report: PublishReport) -> None:
        """Write one file atomically and record it."""
        write: Callable[[], bool]
        if plan.kind == "nfo":
            data = plan.data or b""
            digest = hashlib.sha256(data).hexdigest()
            write = partial(atomic_write, target, data)
        else:
            digest = plan.sha256 or ""
            source = self.cache.path_for(digest, plan.ext or "")
            if not source.is_file():
                raise AssetError(f"asset {digest} for '{target.name}' is missing from the cache;"
                                 " fetch it again")
            write = partial(atomic_link_or_copy, source, target)
        owner = await self.db.fetchone("SELECT entity_type, entity_id FROM published_files WHERE path = ?",
                                       (str(target),))
        self.recent_writes.add(target)
        wrote = await _in_thread(self._write, target, real_folder, write)
        own = wrote or (owner is not None and tuple(owner) == (entity_type, entity_id))
        now = self.clock.now()
        await self.db.write(_record, (str(target), entity_type, entity_id, plan, digest, now, own))
        (report.written if wrote else report.skipped).append(str(target))

    @staticmethod
    def _write(target: Path, real_folder: Path, write: Callable[[], bool]) -> bool:
        """Create a sub-folder if needed, re-check containment, refuse to replace a folder, then write."""
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _io_error(exc, "create folder", target.parent) from exc
        parent = Path(os.path.realpath(target.parent))
        if parent != real_folder and not parent.is_relative_to(real_folder):
            raise PathError(f"'{target}' would be written to '{parent}', outside '{real_folder}'")
        if target.is_dir() and not target.is_symlink():
            raise PathError(f"'{target}' is a folder; the agent will not replace it with a file")
        try:
            return write()
        except OSError as exc:
            raise _io_error(exc, "write", target) from exc

    async def _remove_stale(self, entity_type: str, entity_id: int, planned: set[str],
                            report: PublishReport) -> None:
        """Delete files the agent wrote for this entity that are no longer planned, if still untouched."""
        rows = await self.db.fetchall(
            "SELECT path, sha256 FROM published_files WHERE entity_type = ? AND entity_id = ? ORDER BY path",
            (entity_type, entity_id))
        for row in rows:
            path = row["path"]
            if path in planned:
                continue
            try:
                resolve_inside(os.path.dirname(path), self.allowed_roots)
            except PathError:
                log.warning("not removing stale file %s: it is outside every library folder", path)
                report.kept_foreign.append(path)
                continue
            status = await _in_thread(_disk_status, Path(path), row["sha256"])
            if status == "ours":
                self.recent_writes.add(path)
                try:
                    await _in_thread(_remove, Path(path))
                except OSError as exc:
                    raise _io_error(exc, "remove", path) from exc
                report.removed.append(path)
            elif status == "foreign":
                log.info("keeping %s: it changed since the agent wrote it", path)
                report.kept_foreign.append(path)
            await self.db.write(_forget, path)


async def _in_thread(fn: Callable[..., T], *args: object) -> T:
    """Run blocking file work off the event loop."""
    return await asyncio.to_thread(fn, *args)
