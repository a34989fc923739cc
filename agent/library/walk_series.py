"""Walk a TV library: one candidate per show folder, with its seasons, episodes, artwork and signature.

A show folder is listed once (every sub-folder to a fixed depth); its signature is compared through
`known(folder, signature)` before any episode name is parsed, and an unchanged show comes back as a
SeriesStub.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from agent.library.naming import (
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    ids_from_name,
    is_extra_file,
    is_extras_folder,
    is_video,
    parse_episode,
    parse_season_folder,
    parse_show_name,
    split_ext,
)
from agent.library.walk import (
    Entry,
    artwork_in,
    by_name,
    existing_start,
    find_artwork,
    first_visit,
    images_of,
    lines_signature,
    pick,
    resolve_scope,
    scan_folder,
)

log = logging.getLogger(__name__)

_SEASON_ART: Final = re.compile(r"^season[ _-]?(?P<which>\d{1,4}|-?specials|-?all)-(?P<kind>[a-z]+)$")
_MAX_SHOW_DEPTH: Final = 4  # folders below a season folder that are still searched (stops symlink loops)
_SEASON_ART_ALIASES: Final = {"thumb": "landscape", "folder": "poster", "backdrop": "fanart"}

Known = Callable[[str, str], bool]  # (show folder, signature) -> unchanged in the store


@dataclass
class EpisodeCandidate:
    """An episode file with what its name says and its sidecar NFO and thumb."""

    file: str
    season: int | None
    episodes: list[int]
    aired: str | None
    title: str | None
    nfo: str | None
    thumb: str | None
    size: int


@dataclass
class SeriesCandidate:
    """A show folder: seasons, episodes, show and season artwork, and files that did not parse."""

    folder: str
    title: str
    year: int | None
    ids: dict[str, str]
    nfo: str | None
    artwork: dict[str, str]
    season_artwork: dict[int | str, dict[str, str]]
    seasons: dict[int, str]
    episodes: list[EpisodeCandidate] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    signature: str = ""


@dataclass
class SeriesStub:
    """A show the store already holds with the same signature; `entries` sizes its batch share."""

    folder: str
    signature: str
    entries: int


@dataclass(slots=True)
class _Listing:
    """One folder of a show: its entries, the season its folder names, how deep it sits."""

    path: str
    entries: list[Entry]
    season: int | None
    depth: int  # -1 for the show folder itself, 0 for its direct sub-folders


def discover_series(
    library_root: Path, only: Path | None = None, known: Known | None = None
) -> Iterator[SeriesCandidate | SeriesStub]:
    """Every show under a library root (or only the show holding `only`); stubs for unchanged ones."""
    root, target = resolve_scope(library_root, only)
    start = existing_start(root, target)
    if start is None:
        return
    while start != root and (
        not start.is_dir() or parse_season_folder(start.name) is not None or is_extras_folder(start.name)
    ):
        start = start.parent
    if start == root:
        yield from _walk_grouping(str(root), set(), known)
    else:
        yield from _walk_show_or_group(str(start), set(), known, None)


def _walk_grouping(
    folder: str, seen: set[tuple[int, int]], known: Known | None
) -> Iterator[SeriesCandidate | SeriesStub]:
    """Treat each sub-folder of a library root or grouping folder (`TV/A-M/`) as a show or a group."""
    for entry in scan_folder(folder):
        if entry.is_dir and not is_extras_folder(entry.name):
            yield from _walk_show_or_group(entry.path, seen, known, entry.ident)
        elif not entry.is_dir and is_video(entry.name):
            log.info("ignoring %s: episodes belong in a show folder", entry.path)


def _walk_show_or_group(
    folder: str, seen: set[tuple[int, int]], known: Known | None, ident: tuple[int, int] | None
) -> Iterator[SeriesCandidate | SeriesStub]:
    """A folder with tvshow.nfo, season folders or videos is a show; any other folder groups shows."""
    stack: list[tuple[str, tuple[int, int] | None]] = [(folder, ident)]
    while stack:  # depth first, in name order, each folder once
        folder, ident = stack.pop()
        if not first_visit(folder, seen, ident):
            continue
        entries = scan_folder(folder)
        if not _is_show(entries):
            stack.extend((e.path, e.ident) for e in reversed(entries) if e.is_dir and not is_extras_folder(e.name))
            continue
        tree = _list_show(folder, entries)
        signature = show_signature(folder, tree)
        if known is not None and known(folder, signature):
            yield SeriesStub(folder, signature, sum([len(t.entries) for t in tree]))
        else:
            yield _series(folder, tree, signature)


def _is_show(entries: list[Entry]) -> bool:
    """True when a folder holds tvshow.nfo, a season folder or a video."""
    for entry in entries:
        if entry.is_dir:
            if parse_season_folder(entry.name) is not None:
                return True
            continue
        name = entry.name
        dot = name.rfind(".")
        if dot > 0 and (name[dot:].lower() in VIDEO_EXTENSIONS or name.casefold() == "tvshow.nfo"):
            return True
    return False


def _list_show(folder: str, entries: list[Entry]) -> list[_Listing]:
    """The show folder and every non-extras folder under it (to a fixed depth), depth first in name order."""
    tree = [_Listing(folder, entries, None, -1)]
    stack = [
        (e.path, parse_season_folder(e.name), 0) for e in reversed(entries) if e.is_dir and not is_extras_folder(e.name)
    ]
    while stack:
        path, season, depth = stack.pop()
        inner = scan_folder(path)
        tree.append(_Listing(path, inner, season, depth))
        if depth < _MAX_SHOW_DEPTH:
            stack.extend(
                (e.path, season, depth + 1) for e in reversed(inner) if e.is_dir and not is_extras_folder(e.name)
            )
    return tree


def series_at(folder: str) -> SeriesCandidate:
    """The full candidate of one show folder, listed afresh."""
    tree = _list_show(folder, scan_folder(folder))
    return _series(folder, tree, show_signature(folder, tree))


def show_signature(folder: str, tree: list[_Listing]) -> str:
    """The signature over every entry of a show, named by its path relative to the show folder.

    A folder counts by its name (scan_folder leaves its size and mtime at 0): what it holds is
    listed below it.

    It equals signature_of(sorted((relative path, size, mtime_ns) rows)): NUL sorts below any
    character a name can hold, so sorting the lines sorts them by relative path.
    """
    cut = len(folder.rstrip(os.sep)) + 1
    lines = [f"{e[0]}\0{e[3]}\0{e[4]}\n" for e in tree[0].entries]  # name, size, mtime_ns
    for listing in tree[1:]:
        prefix = listing.path[cut:] + os.sep
        lines += [f"{prefix}{e[0]}\0{e[3]}\0{e[4]}\n" for e in listing.entries]
    lines.sort()
    return lines_signature(lines)


def _series(folder: str, tree: list[_Listing], signature: str) -> SeriesCandidate:
    """Build one show: its seasons, episodes and artwork from its listed folders."""
    name = os.path.basename(folder)
    title, year = parse_show_name(name)
    index = by_name(tree[0].entries)
    show = SeriesCandidate(
        folder=folder,
        title=title,
        year=year,
        ids=ids_from_name(name),
        nfo=pick(index, ["tvshow.nfo"]),
        artwork=find_artwork(index, [], folder_names=True),
        season_artwork=_season_artwork(index),
        seasons={},
        signature=signature,
    )
    for listing in tree:
        listing_index, images = (index, None) if listing.depth == -1 else (None, None)
        if listing.depth == 0 and listing.season is not None:
            show.seasons.setdefault(listing.season, listing.path)
            listing_index = by_name(listing.entries)
            images = images_of(listing_index)
            for kind, path in artwork_in(images, [], folder_names=True).items():
                show.season_artwork.setdefault(listing.season, {}).setdefault(kind, path)
        _collect_episodes(show, listing.entries, listing.season, listing_index, images)
    show.episodes.sort(key=lambda ep: (ep.season if ep.season is not None else -1, ep.episodes, ep.file))
    show.unmatched.sort(key=_path_parts)
    return show


def _path_parts(path: str) -> list[str]:
    """A path's parts: the order pathlib sorts paths in (`a/x` before `a b/x`)."""
    return path.split(os.sep)


def _collect_episodes(
    show: SeriesCandidate,
    entries: list[Entry],
    season: int | None,
    index: dict[str, Entry] | None,
    images: dict[str, str] | None,
) -> None:
    """Add a folder's episode videos to the show (unparsable ones to unmatched); index and images when known."""
    folder_name = ""  # the folder's own name: guessit reads it with the file's (a release folder, `Friends S03`)
    for entry in entries:
        if entry.is_dir:
            continue
        name = entry.name
        dot = name.rfind(".")
        if dot <= 0 or name[dot:].lower() not in VIDEO_EXTENSIONS:
            continue
        stem = name[:dot]
        if is_extra_file(stem):
            continue
        if not folder_name:
            folder_name = os.path.basename(os.path.dirname(entry.path))
        parsed = parse_episode(name, season, folder_name)
        if parsed is None or (not parsed.episodes and parsed.aired is None):
            show.unmatched.append(entry.path)
            continue
        if index is None:
            index = by_name(entries)
        if images is None:
            images = images_of(index)
        folded = stem.casefold()
        nfo = index.get(folded + ".nfo")
        show.episodes.append(
            EpisodeCandidate(
                file=entry.path,
                season=parsed.season,
                episodes=parsed.episodes,
                aired=parsed.aired,
                title=parsed.title,
                nfo=None if nfo is None or nfo.is_dir else nfo.path,
                thumb=(images.get(folded + "-thumb") or images.get(folded)) if images else None,
                size=entry.size,
            )
        )


def _season_artwork(index: dict[str, Entry]) -> dict[int | str, dict[str, str]]:
    """`season01-poster.jpg`, `season-specials-poster.jpg`, `season-all-poster.jpg` grouped by season."""
    found: dict[int | str, dict[str, str]] = {}
    for key, entry in sorted(index.items()):
        base, ext = split_ext(key)
        if entry.is_dir or ext not in IMAGE_EXTENSIONS:
            continue
        match = _SEASON_ART.match(base)
        if not match:
            continue
        which = match.group("which").lstrip("-")
        season: int | str = 0 if which == "specials" else "all" if which == "all" else int(which)
        kind = _SEASON_ART_ALIASES.get(match["kind"], match["kind"])
        found.setdefault(season, {}).setdefault(kind, entry.path)
    return found
