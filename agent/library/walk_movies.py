"""Walk a movie library: one candidate per main video, with its NFO, artwork and change signature.

A scan passes `known(key, file, signature)`; a movie it already holds with that signature comes
back as a MovieStub, built before any title parsing or artwork lookup.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from agent.library.naming import (
    VIDEO_EXTENSIONS,
    ids_from_name,
    is_extra_file,
    is_extras_folder,
    is_video,
    parse_movie_name,
    split_ext,
    stack_key,
)
from agent.library.walk import (
    STACK_FOLDER,
    Entry,
    by_name,
    existing_start,
    extrafanart,
    find_artwork,
    first_visit,
    folder_signature,
    listing_signature,
    pick,
    quick_signature,
    resolve_scope,
    scan_folder,
    single_nfo,
)

Known = Callable[[str, str, str], bool]  # (signature key, main file, signature) -> unchanged in the store
Stored = Callable[[str], str | None]  # folder -> its signature, when the store holds it as one present movie


@dataclass
class MovieCandidate:
    """A movie found on disk: its main file, stack parts, NFO and artwork, and a change signature."""

    folder: str
    file: str
    parts: list[str]
    disc: str | None
    shared_folder: bool
    title: str
    year: int | None
    ids: dict[str, str]
    nfo: str | None
    artwork: dict[str, str]
    extrafanart: list[str]
    size: int
    signature: str


@dataclass
class MovieStub:
    """A movie the store already holds with the same signature: only what an unchanged row needs."""

    folder: str
    file: str
    parts: list[str]
    shared_folder: bool
    signature: str


@dataclass
class FolderStub:
    """A folder of one movie whose whole listing is what the store last saw: that movie, unchanged."""

    folder: str
    signature: str


def movie_key(folder: str, file: str, shared: bool) -> str:
    """A movie's signature key: its folder, or its file when the folder holds several movies."""
    return file if shared else folder


def discover_movies(
    library_root: Path, only: Path | None = None, known: Known | None = None, stored: Stored | None = None
) -> Iterator[MovieCandidate | MovieStub | FolderStub]:
    """Every movie under a library root (or only under `only`); stubs for those `known` calls unchanged.

    With `stored`, a folder the store holds as one movie is first hashed without building its
    entries; when the listing is the stored one it comes back as a FolderStub and is looked at no
    further (a folder with sub-folders is always walked in full).
    """
    root, target = resolve_scope(library_root, only)
    start = existing_start(root, target)
    if start is None:
        return
    while start != root and (
        not start.is_dir() or is_extras_folder(start.name) or start.name.upper() in ("BDMV", "VIDEO_TS")
    ):
        start = start.parent
    yield from _walk_movies(str(start), start == root, known, stored)


def _walk_movies(
    start: str, root_level: bool, known: Known | None, stored: Stored | None
) -> Iterator[MovieCandidate | MovieStub | FolderStub]:
    """Find movies in each folder, then in its sub-folders: depth first, in name order, each folder once."""
    seen: set[tuple[int, int]] = set()
    stack: list[tuple[str, bool, tuple[int, int] | None]] = [(start, root_level, None)]
    while stack:
        folder, at_root, ident = stack.pop()
        if not first_visit(folder, seen, ident):
            continue
        expected = stored(folder) if stored is not None and not at_root else None
        if expected is not None and quick_signature(folder) == (expected, False):  # same files, no sub-folder
            yield FolderStub(folder, expected)
            continue
        entries = scan_folder(folder)
        videos: list[Entry] = []
        dirs: list[Entry] = []
        for entry in entries:  # _is_main_video, inlined: this loop runs once per file of the library
            if entry.is_dir:
                dirs.append(entry)
                continue
            name = entry.name
            dot = name.rfind(".")
            if dot > 0 and name[dot:].lower() in VIDEO_EXTENSIONS and not is_extra_file(name[:dot]):
                videos.append(entry)
        if not dirs:
            if len(videos) == 1 and not at_root:  # the common folder: one movie file, nothing else to walk
                yield _single_movie(folder, entries, videos[0], known)
            elif videos:
                yield from _folder_movies(folder, entries, None, _group_videos(videos, folder), at_root, known)
            continue
        index: dict[str, Entry] | None = None
        if any(e.name.casefold() in ("bdmv", "video_ts") for e in dirs):
            index = by_name(entries)
            disc = _disc_movie(folder, entries, index)
            if disc is not None:
                yield disc
                continue
        videos.extend(_stack_folder_videos(dirs))
        if videos:
            yield from _folder_movies(folder, entries, index, _group_videos(videos, folder), at_root, known)
        stack.extend(
            (e.path, False, e.ident)
            for e in reversed(dirs)
            if not is_extras_folder(e.name) and not STACK_FOLDER.match(e.name)
        )


def _single_movie(folder: str, entries: list[Entry], main: Entry, known: Known | None) -> MovieCandidate | MovieStub:
    """The one movie of a folder holding a single main video and no sub-folders."""
    signature = listing_signature(entries)
    if known is not None and known(folder, main.path, signature):
        return MovieStub(folder, main.path, [main.path], False, signature)
    stem = main.name[: main.name.rfind(".")]
    return _candidate(folder, by_name(entries), [main], stem, None, [stem], False, signature)


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
        inner_index = by_name(inner)
        main = inner_index.get(index_name)
        if main is None or main.is_dir:
            continue
        name = os.path.basename(folder)
        title, year = parse_movie_name(name, None)
        nfo = pick(inner_index, [nfo_name]) or pick(index, [f"{name}.nfo", "movie.nfo"])
        return MovieCandidate(
            folder=folder,
            file=main.path,
            parts=[main.path],
            disc=kind,
            shared_folder=False,
            title=title,
            year=year,
            ids=ids_from_name(name),
            nfo=nfo or single_nfo(index),
            artwork=find_artwork(index, [], folder_names=True),
            extrafanart=extrafanart(index),
            size=main.size,
            signature=folder_signature([*entries, *inner]),
        )
    return None


def _is_main_video(entry: Entry) -> bool:
    """True for a video file that is not a trailer, sample or other extra."""
    return not entry.is_dir and is_video(entry.name) and not is_extra_file(split_ext(entry.name)[0])


def _stack_folder_videos(dirs: list[Entry]) -> list[Entry]:
    """Main videos inside Kodi's `CD1/`, `CD2/` sub-folders, which hold the parts of one movie."""
    found: list[Entry] = []
    for entry in dirs:
        if STACK_FOLDER.match(entry.name):
            found.extend(e for e in scan_folder(entry.path) if _is_main_video(e))
    return found


def _main_videos(entries: list[Entry], folder: str) -> list[list[Entry]]:
    """Main videos of a folder grouped into stacks (one group per movie), extras left out."""
    videos = [e for e in entries if _is_main_video(e)]
    videos.extend(_stack_folder_videos([e for e in entries if e.is_dir]))
    return _group_videos(videos, folder)


def _group_videos(videos: list[Entry], folder: str) -> list[list[Entry]]:
    """A folder's main videos grouped into stacks (`cd1`/`cd2` names or folders), one group per movie."""
    if len(videos) <= 1:
        return [videos] if videos else []  # the common case: one movie file, whatever its name
    stacks: dict[str, list[tuple[int, Entry]]] = {}
    singles: list[list[Entry]] = []
    for entry in videos:
        parent = os.path.basename(os.path.dirname(entry.path))
        key = stack_key(split_ext(entry.name)[0])
        if key is None and STACK_FOLDER.match(parent):
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


def _own_entries(entries: list[Entry], stems: list[str], shared: bool) -> list[Entry]:
    """The entries a movie's signature covers: the whole folder, or those named after it when shared."""
    if not shared:
        return entries
    prefixes = tuple(s.casefold() for s in stems)
    return [e for e in entries if e.name.casefold().startswith(prefixes)]


def _stems(group: list[Entry]) -> tuple[str, tuple[str, int] | None, list[str]]:
    """(main stem, stack key when stacked, stems its sidecar files may be named after)."""
    stem = split_ext(group[0].name)[0]
    key = stack_key(stem) if len(group) > 1 else None
    return stem, key, [stem] if key is None else [stem, key[0]]


def _folder_movies(
    folder: str,
    entries: list[Entry],
    index: dict[str, Entry] | None,
    groups: list[list[Entry]],
    root_level: bool,
    known: Known | None,
) -> Iterator[MovieCandidate | MovieStub]:
    """The movies whose main videos (`groups`) sit in this folder (one, or several when it is shared)."""
    shared = len(groups) > 1 or root_level
    for group in groups:
        stem, key, stems = _stems(group)
        own = _own_entries(entries, stems, shared)
        extra_parts = [e for e in group if e not in own]
        if own is entries and not extra_parts:
            signature = listing_signature(entries)
        else:
            signature = folder_signature([*own, *extra_parts])
        main = group[0]
        if known is not None and known(movie_key(folder, main.path, shared), main.path, signature):
            yield MovieStub(folder, main.path, [e.path for e in group], shared, signature)
            continue
        if index is None:
            index = by_name(entries)
        yield _candidate(folder, index, group, stem, key, stems, shared, signature)


def movie_at(stub: MovieStub) -> MovieCandidate | None:
    """The full candidate for a stub's main file, read again from its folder (None when it is gone)."""
    entries = scan_folder(stub.folder)
    index = by_name(entries)
    shared = stub.shared_folder  # it holds several movies, or it is the library root
    for group in _main_videos(entries, stub.folder):
        if group[0].path != stub.file:
            continue
        stem, key, stems = _stems(group)
        own = _own_entries(entries, stems, shared)
        signature = folder_signature([*own, *(e for e in group if e not in own)])
        return _candidate(stub.folder, index, group, stem, key, stems, shared, signature)
    return None


def _candidate(
    folder: str,
    index: dict[str, Entry],
    group: list[Entry],
    stem: str,
    key: tuple[str, int] | None,
    stems: list[str],
    shared: bool,
    signature: str,
) -> MovieCandidate:
    """The full candidate of one movie: title, ids, NFO, artwork."""
    main = group[0]
    name = os.path.basename(folder)
    title, year = parse_movie_name("" if shared else name, key[0] if key else stem)
    ids = ids_from_name(main.name) if shared else {**ids_from_name(main.name), **ids_from_name(name)}
    nfo_names = [f"{s}.nfo" for s in stems]
    if not shared:
        nfo_names.append("movie.nfo")
    nfo = pick(index, nfo_names)
    if nfo is None and not shared:
        nfo = single_nfo(index)
    parts = [e.path for e in group]
    return MovieCandidate(
        folder=folder,
        file=parts[0],
        parts=parts,
        disc=None,
        shared_folder=shared,
        title=title,
        year=year,
        ids=ids,
        nfo=nfo,
        artwork=find_artwork(index, stems, folder_names=not shared),
        extrafanart=[] if shared else extrafanart(index),
        size=main.size,
        signature=signature,
    )
