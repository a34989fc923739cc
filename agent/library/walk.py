"""Folder listings for discovery: stat'ed entries, change signatures, artwork and NFO lookups, scope."""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Final, NamedTuple

from agent.errors import PathError
from agent.library.naming import IMAGE_EXTENSIONS, JUNK_NAMES, PARTIAL_SUFFIXES, split_ext

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
_IMAGE_RANK: Final = {".jpg": 0, ".jpeg": 1, ".png": 2, ".webp": 3}  # which wins when several share a name
_RANK_STRIDE: Final = 100  # more than any art type's number of names
# Name (case-folded, no extension) -> (art type, rank within that type), inverted from the tables above.
_STEM_SUFFIX_RANK: Final = {suffix: (kind, i) for kind, names in STEM_ART.items() for i, suffix in enumerate(names)}
_FOLDER_NAME_RANK: Final = {name: (kind, i) for kind, names in FOLDER_ART.items() for i, name in enumerate(names)}
STACK_FOLDER: Final = re.compile(r"^(?:cd|dvd|disc|disk|part|pt)[ _.\-]*\d{1,2}$", re.IGNORECASE)


class Entry(NamedTuple):
    """One directory entry with the stat fields a signature needs."""

    name: str
    path: str
    is_dir: bool
    size: int
    mtime_ns: int
    ident: tuple[int, int] | None = None  # a folder's (st_dev, st_ino): symlink loops are walked once


_new_tuple: Final = tuple.__new__


def scan_folder(path: str) -> list[Entry]:
    """The non-junk entries of one folder sorted by name, files stat'ed once; unreadable gives [] and a warning.

    A sub-folder (not a symlink) is not stat'ed: the listing already says it is a folder and gives
    its inode, and its own entries are what signatures cover, so its mtime is left at 0. That saves
    one stat per folder of the library (10,000 for 10,000 movie folders). Its identity for the walks'
    loop check is (this folder's st_dev, its inode), the same pair a stat would give unless it is a
    mount point, where it is still unique. A symlink is followed and stat'ed (a linked folder's
    identity is its target's; its mtime is 0 too).
    """
    entries: list[Entry] = []
    append = entries.append
    new, entry_type, junk, partial = _new_tuple, Entry, JUNK_NAMES, PARTIAL_SUFFIXES  # locals: once per file
    dev: int | None = None
    try:
        with os.scandir(path) as it:
            for item in it:
                name = item.name
                if name[0] == ".":
                    continue  # naming.is_junk, inlined: this loop runs once per file of the library
                folded = name.casefold()
                if folded in junk or folded.endswith(partial):
                    continue
                try:
                    if item.is_dir() and not item.is_symlink():  # both from the directory entry's type
                        if dev is None:
                            dev = os.stat(path).st_dev
                        append(new(entry_type, (name, item.path, True, 0, 0, (dev, item.inode()))))
                        continue
                    st = item.stat()
                except OSError:
                    continue  # vanished or a dangling link
                if st.st_mode & 0o170000 == 0o040000:  # S_IFMT, S_IFDIR: a symlink to a folder
                    fields = (name, item.path, True, 0, 0, (st.st_dev, st.st_ino))
                else:
                    fields = (name, item.path, False, st.st_size, st.st_mtime_ns, None)
                append(new(entry_type, fields))  # Entry(*fields) without NamedTuple's __new__ wrapper
    except OSError as exc:
        log.warning("cannot read folder %s: %s", path, exc)
    entries.sort()
    return entries


def quick_signature(path: str) -> tuple[str, bool] | None:
    """(listing_signature(scan_folder(path)), whether it holds a sub-folder), without building entries.

    A rescan asks this of a folder the store knew as one unchanged movie: when the whole listing
    hashes the same, nothing in it needs a look. None when the folder cannot be read.
    """
    lines: list[str] = []
    append = lines.append
    junk, partial = JUNK_NAMES, PARTIAL_SUFFIXES
    subfolders = False
    try:
        with os.scandir(path) as it:
            for item in it:  # the same entries as scan_folder: junk left out, folders by name only
                name = item.name
                if name[0] == ".":
                    continue
                folded = name.casefold()
                if folded in junk or folded.endswith(partial):
                    continue
                if item.is_dir():
                    subfolders = True
                    append(f"{name}\0{0}\0{0}\n")
                    continue
                try:
                    st = item.stat()
                except OSError:
                    continue
                append(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\n")
    except OSError:
        return None
    lines.sort()  # NUL sorts below any character of a name: the order of entries sorted by name
    return lines_signature(lines), subfolders


def folder_signature(entries: Iterable[Entry]) -> str:
    """A short hash of sorted (name, size, mtime_ns): changes when anything in the folder changes."""
    return signature_of(sorted((e.name, e.size, e.mtime_ns) for e in entries))


def signature_of(rows: Iterable[tuple[str, int, int]]) -> str:
    """The signature of (name, size, mtime_ns) rows already in sorted order (see folder_signature)."""
    return lines_signature([f"{name}\0{size}\0{mtime_ns}\n" for name, size, mtime_ns in rows])


def listing_signature(entries: list[Entry]) -> str:
    """folder_signature of one scan_folder listing, whose unique names are already in order."""
    text = "".join([f"{e[0]}\0{e[3]}\0{e[4]}\n" for e in entries])  # name, size, mtime_ns: see signature_of
    return hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=16).hexdigest()


def lines_signature(lines: list[str]) -> str:
    """The hash of signature lines (`name\\0size\\0mtime_ns\\n`, see signature_of) in their given order."""
    text = "".join(lines)
    return hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=16).hexdigest()


def by_name(entries: Iterable[Entry]) -> dict[str, Entry]:
    """Entries keyed by case-folded name (the exact spelling wins over a case variant)."""
    return {e.name.casefold(): e for e in entries}


def images_of(index: dict[str, Entry]) -> dict[str, str]:
    """Image files of a folder by case-folded base name; `.jpg` wins over `.jpeg`, `.png`, `.webp`."""
    found: dict[str, tuple[int, str]] = {}
    for key, entry in index.items():
        dot = key.rfind(".")
        if dot <= 0 or entry.is_dir:
            continue
        rank = _IMAGE_RANK.get(key[dot:].lower())
        if rank is None:
            continue
        base = key[:dot]
        if base not in found or rank < found[base][0]:
            found[base] = (rank, entry.path)
    return {base: path for base, (_, path) in found.items()}


def find_artwork(index: dict[str, Entry], stems: Iterable[str], folder_names: bool) -> dict[str, str]:
    """Artwork by type from `<stem>-poster.jpg`-style names and, unless shared, `poster.jpg`-style ones."""
    return artwork_in(images_of(index), stems, folder_names)


def artwork_in(images: dict[str, str], stems: Iterable[str], folder_names: bool) -> dict[str, str]:
    """find_artwork over a folder's images_of, for a caller that needs those images for more."""
    if not images:
        return {}
    folded = [s.casefold() for s in stems]
    # Each image name is looked up once; the best (lowest) rank per art type wins, in the order
    # `<stem1>-<suffix>...`, `<stem2>-<suffix>...`, then the folder-wide names of FOLDER_ART.
    best: dict[str, tuple[int, str]] = {}
    for base, path in images.items():
        for stem_rank, stem in enumerate(folded):
            if len(base) > len(stem) + 1 and base[len(stem)] == "-" and base.startswith(stem):
                hit = _STEM_SUFFIX_RANK.get(base[len(stem) + 1 :])
                if hit is not None:
                    _better(best, hit[0], stem_rank * _RANK_STRIDE + hit[1], path)
        if folder_names:
            hit = _FOLDER_NAME_RANK.get(base)
            if hit is not None:
                _better(best, hit[0], len(folded) * _RANK_STRIDE + hit[1], path)
    found = {kind: best[kind][1] for kind in STEM_ART if kind in best}
    if folder_names and "poster" not in found:
        for stem in folded:
            if stem in images:
                found["poster"] = images[stem]
                break
    return found


def _better(best: dict[str, tuple[int, str]], kind: str, rank: int, path: str) -> None:
    """Keep `path` as the art of `kind` when its rank beats the one held."""
    held = best.get(kind)
    if held is None or rank < held[0]:
        best[kind] = (rank, path)


def extrafanart(index: dict[str, Entry]) -> list[str]:
    """Images in the `extrafanart/` subfolder, sorted by name."""
    entry = index.get("extrafanart")
    if entry is None or not entry.is_dir:
        return []
    return sorted(e.path for e in scan_folder(entry.path) if not e.is_dir and split_ext(e.name)[1] in IMAGE_EXTENSIONS)


def pick(index: dict[str, Entry], names: Iterable[str]) -> str | None:
    """The first of several file names present in a folder index."""
    for name in names:
        entry = index.get(name.casefold())
        if entry is not None and not entry.is_dir:
            return entry.path
    return None


def single_nfo(index: dict[str, Entry]) -> str | None:
    """The folder's only .nfo (Kodi's last resort for a folder holding one movie)."""
    nfos = [e for e in index.values() if not e.is_dir and split_ext(e.name)[1] == ".nfo"]
    return nfos[0].path if len(nfos) == 1 else None


def resolve_scope(library_root: Path, only: Path | None) -> tuple[Path, Path | None]:
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


def existing_start(root: Path, target: Path | None) -> Path | None:
    """Where a walk limited to `target` starts: its nearest existing folder, None when all of it is gone."""
    if target is None:
        return root
    start = target
    while start != root and not start.exists():
        start = start.parent
    if start == root and target != root:
        return None if not target.exists() else root
    return start


def first_visit(folder: str, seen: set[tuple[int, int]], ident: tuple[int, int] | None = None) -> bool:
    """False for a folder already walked (a symlink loop) or gone; remembers it otherwise.

    `ident` is the folder's (st_dev, st_ino) when its parent's listing already stat'ed it.
    """
    if ident is None:
        try:
            st = os.stat(folder)
        except OSError:
            return False
        ident = (st.st_dev, st.st_ino)
    if ident in seen:
        return False
    seen.add(ident)
    return True
