"""Walk library folders and find movies and series, with their NFOs, artwork and change signatures."""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, NamedTuple

from agent.errors import PathError
from agent.library.naming import (
    IMAGE_EXTENSIONS,
    ids_from_name,
    is_extra_file,
    is_extras_folder,
    is_junk,
    is_video,
    parse_episode,
    parse_movie_name,
    parse_season_folder,
    split_ext,
    stack_key,
)

log = logging.getLogger(__name__)

# Art type -> base names (case-folded, no extension) in the order Kodi, then Jellyfin, look for them.
FOLDER_ART: Final = {
    "poster": ("poster", "folder", "cover", "default", "movie"),
    "fanart": ("fanart", "backdrop", "background", "art"),
    "banner": ("banner",),
    "clearlogo": ("clearlogo", "logo"),
    "clearart": ("clearart",),
    "discart": ("discart", "disc", "cdart"),
    "landscape": ("landscape", "thumb"),
    "keyart": ("keyart",),
    "characterart": ("characterart",),
}
# Art type -> suffixes after `<stem>-`; an empty suffix means `<stem>.jpg` itself.
STEM_ART: Final = {
    "poster": ("poster", "folder", "cover"),
    "fanart": ("fanart", "backdrop", "background"),
    "banner": ("banner",),
    "clearlogo": ("clearlogo", "logo"),
    "clearart": ("clearart",),
    "discart": ("discart", "disc", "cdart"),
    "landscape": ("landscape", "thumb"),
    "keyart": ("keyart",),
    "characterart": ("characterart",),
}
_IMAGE_ORDER: Final = (".jpg", ".jpeg", ".png", ".webp")
_SEASON_ART: Final = re.compile(r"^season[ _-]?(?P<which>\d{1,4}|-?specials|-?all)-(?P<kind>[a-z]+)$")
_MAX_SHOW_DEPTH: Final = 4  # folders below a season folder that are still searched (stops symlink loops)
_SEASON_ART_ALIASES: Final = {"thumb": "landscape", "folder": "poster", "backdrop": "fanart"}
_STACK_FOLDER: Final = re.compile(r"^(?:cd|dvd|disc|disk|part|pt)[ _.\-]*\d{1,2}$", re.IGNORECASE)


class Entry(NamedTuple):
    """One directory entry with the stat fields a signature needs."""

    name: str
    path: str
    is_dir: bool
    size: int
    mtime_ns: int


@dataclass
class MovieCandidate:
    """A movie found on disk: its main file, stack parts, NFO and artwork, and a change signature."""

    folder: Path
    file: Path
    parts: list[Path]
    disc: str | None
    shared_folder: bool
    title: str
    year: int | None
    ids: dict[str, str]
    nfo: Path | None
    artwork: dict[str, Path]
    extrafanart: list[Path]
    size: int
    signature: str


@dataclass
class EpisodeCandidate:
    """An episode file with what its name says and its sidecar NFO and thumb."""

    file: Path
    season: int | None
    episodes: list[int]
    aired: str | None
    title: str | None
    nfo: Path | None
    thumb: Path | None
    size: int


@dataclass
class SeriesCandidate:
    """A show folder: seasons, episodes, show and season artwork, and files that did not parse."""

    folder: Path
    title: str
    year: int | None
    ids: dict[str, str]
    nfo: Path | None
    artwork: dict[str, Path]
    season_artwork: dict[int | str, dict[str, Path]]
    seasons: dict[int, Path]
    episodes: list[EpisodeCandidate] = field(default_factory=list)
    unmatched: list[Path] = field(default_factory=list)
    signature: str = ""


def scan_folder(path: str) -> list[Entry]:
    """The non-junk entries of one folder, stat'ed once; an unreadable folder gives [] and a warning."""
    entries: list[Entry] = []
    try:
        with os.scandir(path) as it:
            for item in it:
                if is_junk(item.name):
                    continue
                try:
                    is_dir = item.is_dir()
                    st = item.stat()
                except OSError:
                    continue  # vanished or a dangling link
                size = 0 if is_dir else st.st_size
                entries.append(Entry(item.name, item.path, is_dir, size, st.st_mtime_ns))
    except OSError as exc:
        log.warning("cannot read folder %s: %s", path, exc)
    entries.sort()
    return entries


def folder_signature(entries: Iterable[Entry]) -> str:
    """A short hash of sorted (name, size, mtime_ns): changes when anything in the folder changes."""
    digest = hashlib.blake2b(digest_size=16)
    for name, size, mtime_ns in sorted((e.name, e.size, e.mtime_ns) for e in entries):
        digest.update(f"{name}\0{size}\0{mtime_ns}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def _by_name(entries: Iterable[Entry]) -> dict[str, Entry]:
    """Entries keyed by case-folded name (the exact spelling wins over a case variant)."""
    return {e.name.casefold(): e for e in entries}


def _images(index: dict[str, Entry]) -> dict[str, str]:
    """Image files of a folder by case-folded base name; `.jpg` wins over `.jpeg`, `.png`, `.webp`."""
    found: dict[str, tuple[int, Entry]] = {}
    for key, entry in index.items():
        base, ext = split_ext(key)
        if entry.is_dir or ext not in IMAGE_EXTENSIONS:
            continue
        rank = _IMAGE_ORDER.index(ext)
        if base not in found or rank < found[base][0]:
            found[base] = (rank, entry)
    return {base: entry.path for base, (_, entry) in found.items()}


def find_artwork(index: dict[str, Entry], stems: Iterable[str], folder_names: bool) -> dict[str, Path]:
    """Artwork by type from `<stem>-poster.jpg`-style names and, unless shared, `poster.jpg`-style ones."""
    images = _images(index)
    if not images:
        return {}
    found: dict[str, Path] = {}
    folded = [s.casefold() for s in stems]
    for kind, suffixes in STEM_ART.items():
        candidates = [f"{stem}-{suffix}" for stem in folded for suffix in suffixes]
        if folder_names:
            candidates.extend(FOLDER_ART[kind])
        for base in candidates:
            if base in images:
                found[kind] = Path(images[base])
                break
    if folder_names and "poster" not in found:
        for stem in folded:
            if stem in images:
                found["poster"] = Path(images[stem])
                break
    return found


def _extrafanart(index: dict[str, Entry]) -> list[Path]:
    """Images in the `extrafanart/` subfolder, sorted by name."""
    entry = index.get("extrafanart")
    if entry is None or not entry.is_dir:
        return []
    return sorted(Path(e.path) for e in scan_folder(entry.path) if not e.is_dir and _is_image(e.name))


def _is_image(name: str) -> bool:
    """True for an artwork image name."""
    return split_ext(name)[1] in IMAGE_EXTENSIONS


def _pick(index: dict[str, Entry], names: Iterable[str]) -> Path | None:
    """The first of several file names present in a folder index."""
    for name in names:
        entry = index.get(name.casefold())
        if entry is not None and not entry.is_dir:
            return Path(entry.path)
    return None


def _resolve_scope(library_root: Path, only: Path | None) -> tuple[Path, Path | None]:
    """Check the root and that `only` lies inside it; returns (root, folder to walk or None for all)."""
    root = Path(os.path.abspath(library_root))
    if not root.is_dir():
        raise PathError(f"library root {root} is not a folder")
    if only is None:
        return root, None
    target = Path(os.path.abspath(only))
    if target != root and root not in target.parents:
        raise PathError(f"{target} is not inside library {root}")
    return root, target


def _existing_start(root: Path, target: Path | None) -> Path | None:
    """Where a walk limited to `target` starts: its nearest existing folder, None when all of it is gone."""
    if target is None:
        return root
    start = target
    while start != root and not start.exists():
        start = start.parent
    if start == root and target != root:
        return None if not target.exists() else root
    return start


# ---------------------------------------------------------------- movies


def discover_movies(library_root: Path, only: Path | None = None) -> Iterator[MovieCandidate]:
    """Every movie under a library root (or only under `only`), one candidate per main video."""
    root, target = _resolve_scope(library_root, only)
    start = _existing_start(root, target)
    if start is None:
        return
    while start != root and (
        not start.is_dir() or is_extras_folder(start.name) or start.name.upper() in ("BDMV", "VIDEO_TS")
    ):
        start = start.parent
    yield from _walk_movies(str(start), root_level=start == root, seen=set())


def _walk_movies(folder: str, root_level: bool, seen: set[tuple[int, int]]) -> Iterator[MovieCandidate]:
    """Find movies in one folder, then in its sub-folders."""
    try:
        st = os.stat(folder)
    except OSError:
        return
    if (st.st_dev, st.st_ino) in seen:
        return  # a symlink loop
    seen.add((st.st_dev, st.st_ino))
    entries = scan_folder(folder)
    index = _by_name(entries)
    disc = _disc_movie(folder, entries, index)
    if disc is not None:
        yield disc
        return
    yield from _folder_movies(folder, entries, index, root_level)
    for entry in entries:
        if entry.is_dir and not is_extras_folder(entry.name) and not _STACK_FOLDER.match(entry.name):
            yield from _walk_movies(entry.path, root_level=False, seen=seen)


def _disc_movie(folder: str, entries: list[Entry], index: dict[str, Entry]) -> MovieCandidate | None:
    """A Blu-ray (`BDMV/index.bdmv`) or DVD (`VIDEO_TS/VIDEO_TS.IFO`) folder as one movie."""
    for sub, index_name, kind, nfo_name in (
        ("bdmv", "index.bdmv", "bluray", "index.nfo"),
        ("video_ts", "video_ts.ifo", "dvd", "VIDEO_TS.nfo"),
    ):
        entry = index.get(sub)
        if entry is None or not entry.is_dir:
            continue
        inner = scan_folder(entry.path)
        inner_index = _by_name(inner)
        main = inner_index.get(index_name)
        if main is None or main.is_dir:
            continue
        name = os.path.basename(folder)
        title, year = parse_movie_name(name, None)
        nfo = _pick(inner_index, [nfo_name]) or _pick(index, [f"{name}.nfo", "movie.nfo"])
        return MovieCandidate(
            folder=Path(folder),
            file=Path(main.path),
            parts=[Path(main.path)],
            disc=kind,
            shared_folder=False,
            title=title,
            year=year,
            ids=ids_from_name(name),
            nfo=nfo or _single_nfo(index),
            artwork=find_artwork(index, [], folder_names=True),
            extrafanart=_extrafanart(index),
            size=main.size,
            signature=folder_signature([*entries, *inner]),
        )
    return None


def _single_nfo(index: dict[str, Entry]) -> Path | None:
    """The folder's only .nfo (Kodi's last resort for a folder holding one movie)."""
    nfos = [e for e in index.values() if not e.is_dir and split_ext(e.name)[1] == ".nfo"]
    return Path(nfos[0].path) if len(nfos) == 1 else None


def _is_main_video(entry: Entry) -> bool:
    """True for a video file that is not a trailer, sample or other extra."""
    return not entry.is_dir and is_video(entry.name) and not is_extra_file(split_ext(entry.name)[0])


def _main_videos(entries: list[Entry], folder: str) -> list[list[Entry]]:
    """Main videos of a folder grouped into stacks (one group per movie), extras left out."""
    videos = [e for e in entries if _is_main_video(e)]
    for entry in entries:  # Kodi's `CD1/`, `CD2/` sub-folders hold the parts of one movie
        if entry.is_dir and _STACK_FOLDER.match(entry.name):
            videos.extend(e for e in scan_folder(entry.path) if _is_main_video(e))
    stacks: dict[str, list[tuple[int, Entry]]] = {}
    singles: list[list[Entry]] = []
    for entry in videos:
        parent = os.path.basename(os.path.dirname(entry.path))
        key = stack_key(split_ext(entry.name)[0])
        if key is None and _STACK_FOLDER.match(parent):
            key = (os.path.basename(folder) + "\0" + split_ext(entry.name)[0], int(re.sub(r"\D", "", parent)))
        if key is None:
            singles.append([entry])
        else:
            stacks.setdefault(key[0].casefold(), []).append((key[1], entry))
    for parts in stacks.values():
        parts.sort(key=lambda p: (p[0], p[1].name))
        if len(parts) == 1:
            singles.append([parts[0][1]])
        else:
            singles.append([e for _, e in parts])
    singles.sort(key=lambda group: group[0].name.casefold())
    return singles


def _folder_movies(
    folder: str, entries: list[Entry], index: dict[str, Entry], root_level: bool
) -> Iterator[MovieCandidate]:
    """The movies whose main videos sit in this folder (one, or several when the folder is shared)."""
    groups = _main_videos(entries, folder)
    if not groups:
        return
    shared = len(groups) > 1 or root_level
    folder_path = Path(folder)
    name = os.path.basename(folder)
    for group in groups:
        main = group[0]
        stem = split_ext(main.name)[0]
        key = stack_key(stem) if len(group) > 1 else None
        stems = [stem] if key is None else [stem, key[0]]
        title, year = parse_movie_name("" if shared else name, key[0] if key else stem)
        ids = ids_from_name(main.name) if shared else {**ids_from_name(main.name), **ids_from_name(name)}
        nfo_names = [f"{s}.nfo" for s in stems]
        if not shared:
            nfo_names.append("movie.nfo")
        nfo = _pick(index, nfo_names)
        if nfo is None and not shared:
            nfo = _single_nfo(index)
        if shared:
            prefixes = tuple(s.casefold() for s in stems)
            own = [e for e in entries if e.name.casefold().startswith(prefixes)]
        else:
            own = entries
        parts = [Path(e.path) for e in group]
        yield MovieCandidate(
            folder=folder_path,
            file=parts[0],
            parts=parts,
            disc=None,
            shared_folder=shared,
            title=title,
            year=year,
            ids=ids,
            nfo=nfo,
            artwork=find_artwork(index, stems, folder_names=not shared),
            extrafanart=[] if shared else _extrafanart(index),
            size=main.size,
            signature=folder_signature([*own, *(e for e in group if e not in own)]),
        )


# ---------------------------------------------------------------- series


def discover_series(library_root: Path, only: Path | None = None) -> Iterator[SeriesCandidate]:
    """Every show under a library root (or only the show holding `only`), with its episodes."""
    root, target = _resolve_scope(library_root, only)
    start = _existing_start(root, target)
    if start is None:
        return
    while start != root and (
        not start.is_dir() or parse_season_folder(start.name) is not None or is_extras_folder(start.name)
    ):
        start = start.parent
    if start == root:
        yield from _walk_grouping(str(root), seen=set())
    else:
        yield from _walk_show_or_group(str(start), seen=set())


def _walk_grouping(folder: str, seen: set[tuple[int, int]]) -> Iterator[SeriesCandidate]:
    """Treat each sub-folder of a library root or grouping folder (`TV/A-M/`) as a show or a group."""
    for entry in scan_folder(folder):
        if entry.is_dir and not is_extras_folder(entry.name):
            yield from _walk_show_or_group(entry.path, seen)
        elif not entry.is_dir and is_video(entry.name):
            log.info("ignoring %s: episodes belong in a show folder", entry.path)


def _walk_show_or_group(folder: str, seen: set[tuple[int, int]]) -> Iterator[SeriesCandidate]:
    """A folder with tvshow.nfo, season folders or videos is a show; any other folder groups shows."""
    try:
        st = os.stat(folder)
    except OSError:
        return
    if (st.st_dev, st.st_ino) in seen:
        return
    seen.add((st.st_dev, st.st_ino))
    entries = scan_folder(folder)
    is_show = any(
        (e.is_dir and parse_season_folder(e.name) is not None)
        or (not e.is_dir and (e.name.casefold() == "tvshow.nfo" or is_video(e.name)))
        for e in entries
    )
    if is_show:
        yield _series(folder, entries)
    else:
        for entry in entries:
            if entry.is_dir and not is_extras_folder(entry.name):
                yield from _walk_show_or_group(entry.path, seen)


def _series(folder: str, entries: list[Entry]) -> SeriesCandidate:
    """Build one show: its seasons, episodes, artwork and a signature over everything inside."""
    name = os.path.basename(folder)
    title, year = parse_movie_name(name, None)
    index = _by_name(entries)
    show = SeriesCandidate(
        folder=Path(folder),
        title=title,
        year=year,
        ids=ids_from_name(name),
        nfo=_pick(index, ["tvshow.nfo"]),
        artwork=find_artwork(index, [], folder_names=True),
        season_artwork=_season_artwork(index),
        seasons={},
    )
    seen_entries: list[Entry] = list(entries)
    _collect_episodes(show, entries, None)
    for entry in entries:
        if not entry.is_dir or is_extras_folder(entry.name):
            continue
        season = parse_season_folder(entry.name)
        inner = _walk_season(show, entry.path, season, seen_entries)
        if season is not None:
            show.seasons.setdefault(season, Path(entry.path))
            season_art = find_artwork(_by_name(inner), [], folder_names=True)
            for kind, path in season_art.items():
                show.season_artwork.setdefault(season, {}).setdefault(kind, path)
    show.episodes.sort(key=lambda ep: (ep.season if ep.season is not None else -1, ep.episodes, str(ep.file)))
    show.unmatched.sort()
    show.signature = folder_signature(
        Entry(os.path.relpath(e.path, folder), e.path, e.is_dir, e.size, e.mtime_ns) for e in seen_entries
    )
    return show


def _walk_season(
    show: SeriesCandidate, folder: str, season: int | None, seen: list[Entry], depth: int = 0
) -> list[Entry]:
    """Collect episodes in a season (or other) folder and its sub-folders; returns its own entries."""
    entries = scan_folder(folder)
    seen.extend(entries)
    _collect_episodes(show, entries, season)
    if depth < _MAX_SHOW_DEPTH:
        for entry in entries:
            if entry.is_dir and not is_extras_folder(entry.name):
                _walk_season(show, entry.path, season, seen, depth + 1)
    return entries


def _collect_episodes(show: SeriesCandidate, entries: list[Entry], season: int | None) -> None:
    """Add the episode videos among a folder's entries to the show; unparsable videos go to unmatched."""
    index = _by_name(entries)
    images = _images(index)
    for entry in entries:
        if entry.is_dir or not is_video(entry.name):
            continue
        stem = split_ext(entry.name)[0]
        if is_extra_file(stem):
            continue
        parsed = parse_episode(entry.name, season)
        if parsed is None or (not parsed.episodes and parsed.aired is None):
            show.unmatched.append(Path(entry.path))
            continue
        folded = stem.casefold()
        thumb_path = images.get(f"{folded}-thumb") or images.get(folded)
        show.episodes.append(
            EpisodeCandidate(
                file=Path(entry.path),
                season=parsed.season,
                episodes=parsed.episodes,
                aired=parsed.aired,
                title=parsed.title,
                nfo=_pick(index, [f"{stem}.nfo"]),
                thumb=Path(thumb_path) if thumb_path else None,
                size=entry.size,
            )
        )


def _season_artwork(index: dict[str, Entry]) -> dict[int | str, dict[str, Path]]:
    """`season01-poster.jpg`, `season-specials-poster.jpg`, `season-all-poster.jpg` grouped by season."""
    found: dict[int | str, dict[str, Path]] = {}
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
        found.setdefault(season, {}).setdefault(kind, Path(entry.path))
    return found
