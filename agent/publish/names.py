"""Where an item's files go and what they are called (DESIGN section 7, peers.md A1): the folder and video
stem, each artwork type's file name, the NFO the configured naming picks and every NFO a player may read."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from agent.errors import UserError
from agent.library.naming import stack_key
from agent.store.media import Item

KIND = {"movie": "movie", "series": "tvshow", "episode": "episodedetails"}  # the NFO root of each entity
DISC_FILES = ("index.bdmv", "video_ts.ifo")  # a disc's video: its NFO is movie.nfo whatever the naming

# DESIGN section 7: the base name of each artwork type; the extension always follows the real image type
FOLDER_ART = ("poster", "fanart", "banner", "landscape", "keyart", "clearlogo", "clearart", "discart",
              "characterart")
SEASON_ART = ("poster", "fanart", "banner", "landscape")
IMAGE_EXTS = ("jpg", "png", "webp")
_SEASON_SLOT = re.compile(r"^season(\d{1,4})-([a-z]+)$")


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


def folder_and_stem(item: Item) -> tuple[Path, str | None]:
    """The folder an item's files go into and the video stem used in their names."""
    if item.entity == "series":
        return Path(item.row["path"]), None
    video = Path(item.row["file"])
    if item.entity == "movie":
        return Path(item.row["path"]), video.stem
    return video.parent, video.stem


def nfo_target(item: Item, shared_folder: bool, movie_filename: str = "basename") -> Path:
    """Where the item's NFO goes: `tvshow.nfo`; a disc's `movie.nfo`; `movie.nfo` for a movie alone in its folder
    under `nfo.movie_filename: movie`; else `<stem>.nfo` beside the video."""
    if item.entity == "series":
        return Path(item.row["path"]) / "tvshow.nfo"
    video = Path(item.row["file"])
    if item.entity == "movie":
        folder = Path(item.row["path"])
        if video.name.lower() in DISC_FILES:
            return folder / "movie.nfo"
        if movie_filename == "movie" and not shared_folder:
            return folder / "movie.nfo"
    return video.with_suffix(".nfo")


def nfo_candidates(item: Item, shared_folder: bool, movie_filename: str = "basename") -> list[Path]:
    """Every NFO a player may read for the item, the configured target first (peers.md A1).

    A movie alone in its folder: `<stem>.nfo`, the stacked title's `<name>.nfo`, `movie.nfo`; a disc:
    `movie.nfo`, `<folder>.nfo`, `BDMV/index.nfo` or `VIDEO_TS/VIDEO_TS.nfo`. In a shared folder only `<stem>.nfo`.
    """
    target = nfo_target(item, shared_folder, movie_filename)
    if item.entity != "movie" or shared_folder:
        return [target]
    video, folder = Path(item.row["file"]), Path(item.row["path"])
    if video.name.lower() in DISC_FILES:
        others = [folder / f"{folder.name}.nfo", video.with_suffix(".nfo")]
    else:
        stack = stack_key(video.stem)
        others = [video.with_suffix(".nfo"), *([folder / f"{stack[0]}.nfo"] if stack else []), folder / "movie.nfo"]
    out = [target]
    for path in others:
        if path not in out:
            out.append(path)
    return out


def present_nfos(paths: Sequence[Path]) -> dict[Path, Path]:
    """Candidate -> the file that exists for it, spelled as on disk (any case); blocking: run in a thread."""
    listings: dict[Path, dict[str, str]] = {}
    found: dict[Path, Path] = {}
    for path in paths:
        if path.parent not in listings:
            try:
                with os.scandir(path.parent) as entries:
                    listings[path.parent] = {e.name.casefold(): e.name for e in entries}
            except OSError:
                listings[path.parent] = {}
        name = listings[path.parent].get(path.name.casefold())
        if name is not None and path.parent / name not in found.values():
            found[path] = path.parent / name
    return found
