"""Naming rules for media files: titles and years, episodes, seasons, stacks, extras and junk."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any, Final

from agent.library.episodes import EpisodeParse, fast_episode
from agent.library.scene import (
    collapse,
    fast_title_year,
    has_year,
    plain_title,
    repeats_title_year,
    strip_tags,
    tidy_title,
)

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS: Final = frozenset(
    {
        ".mkv", ".mp4", ".avi", ".m4v", ".mov", ".wmv", ".ts", ".m2ts", ".mts", ".webm", ".mpg", ".mpeg",
        ".iso", ".vob", ".divx", ".flv", ".ogm", ".ogv", ".3gp", ".3g2", ".asf", ".rm", ".rmvb", ".f4v",
        ".m2v", ".mpe", ".mk3d", ".dvr-ms", ".wtv", ".img", ".strm",
    }
)  # fmt: skip
IMAGE_EXTENSIONS: Final = frozenset({".jpg", ".jpeg", ".png", ".webp"})

# Names (case-folded) that NAS software, OS shells and download clients leave behind.
JUNK_NAMES: Final = frozenset(
    {
        ".ds_store", "thumbs.db", "desktop.ini", "@eadir", "#recycle", ".@__thumb", "$recycle.bin",
        "lost+found", "system volume information", "#snapshot", ".snapshot", ".recycle", ".trash",
    }
)  # fmt: skip
PARTIAL_SUFFIXES: Final = (".part", ".!qb", ".crdownload", ".partial", ".tmp", ".!ut", ".download", ".aria2")

# Folders (case-folded) that hold extras, never the main video.
EXTRAS_FOLDERS: Final = frozenset(
    {
        "trailers", "extras", "featurettes", "behind the scenes", "deleted scenes", "interviews", "scenes",
        "shorts", "other", "others", "sample", "samples", "clips", ".actors", "extrafanart", "extrathumbs",
        "backdrops", "theme-music", "specials-extras",
    }
)  # fmt: skip
_EXTRA_WORDS: Final = (
    "trailer", "sample", "featurette", "behindthescenes", "deleted", "deletedscene", "interview", "scene",
    "short", "other", "clip", "extra",
)  # fmt: skip
# `-trailer` is Jellyfin's and Kodi's suffix; `.sample`, `_sample` and ` sample` are what release groups use.
EXTRAS_SUFFIXES: Final = tuple(f"-{word}" for word in _EXTRA_WORDS) + tuple(
    f"{sep}{word}" for word in ("trailer", "sample") for sep in (".", "_", " ")
)
_EXTRA_STEMS: Final = frozenset({"sample", "trailer"})

_ID_TAG: Final = re.compile(
    r"[\[{]\s*(?P<kind>tmdb|imdb|tvdb|tvmaze|anidb)(?:id)?\s*[-=]\s*(?P<value>[a-z0-9]+)\s*[\]}]",
    re.IGNORECASE,
)

_SEASON_FOLDER: Final = re.compile(
    r"^(?:season|series|staffel|saison|temporada|stagione)[ ._-]*(?P<n>\d{1,4})(?![0-9])", re.IGNORECASE
)
_SHORT_SEASON: Final = re.compile(r"^s(?P<n>\d{1,4})$", re.IGNORECASE)
_SPECIALS: Final = frozenset({"specials", "special", "season specials", "extras specials"})
_STACK: Final = re.compile(
    r"^(?P<base>.*?)[ _.\-]+(?:cd|dvd|part|pt|disc|disk)[ _.\-]*(?P<part>\d{1,2})(?![0-9])(?P<tail>.*)$",
    re.IGNORECASE,
)


@dataclass
class EpisodeName:
    """What a file name says about an episode: season, episode numbers, air date, title."""

    season: int | None
    episodes: list[int] = field(default_factory=list)
    aired: str | None = None
    title: str | None = None


def split_ext(name: str) -> tuple[str, str]:
    """Split a file name into stem and lower-case extension (`.mkv`); no dot means no extension."""
    dot = name.rfind(".")
    if dot <= 0:
        return name, ""
    return name[:dot], name[dot:].lower()


def is_video(name: str) -> bool:
    """True for a file name with a video extension."""
    return split_ext(name)[1] in VIDEO_EXTENSIONS


def is_image(name: str) -> bool:
    """True for a file name with an artwork image extension."""
    return split_ext(name)[1] in IMAGE_EXTENSIONS


def is_junk(name: str) -> bool:
    """True for OS/NAS litter, hidden names and partial downloads, which a scan never looks at."""
    folded = name.casefold()
    return folded.startswith(".") or folded in JUNK_NAMES or folded.endswith(PARTIAL_SUFFIXES)


def is_extras_folder(name: str) -> bool:
    """True for a folder that holds trailers, samples or other extras."""
    return name.casefold() in EXTRAS_FOLDERS


def is_extra_file(stem: str) -> bool:
    """True for a video stem that names an extra (`X-trailer`, `X.sample`, `sample`)."""
    folded = stem.casefold()
    return folded in _EXTRA_STEMS or folded.endswith(EXTRAS_SUFFIXES)


def ids_from_name(name: str) -> dict[str, str]:
    """Provider ids tagged in a name: `{tmdb-603}`, `[imdbid-tt0133093]`, `{tvdb-12345}`."""
    ids: dict[str, str] = {}
    if "{" not in name and "[" not in name:
        return ids  # most names carry no tag: skip the regex
    for match in _ID_TAG.finditer(name):
        kind, value = match.group("kind").lower(), match.group("value")
        if kind == "imdb":
            value = value.lower()
            if not re.fullmatch(r"tt\d{5,}", value):
                continue
        elif not value.isdigit() or int(value) == 0:
            continue
        ids.setdefault(kind, value)
    return ids


def _without_ids(name: str) -> str:
    """A name without our own provider id tags (`{tmdb-603}`, `[imdbid-tt0133093]`); other brackets stay."""
    if "{" not in name and "[" not in name:
        return name
    cut = _ID_TAG.sub(" ", name)
    return name if cut == name else collapse(cut).strip(" -_.")


def _joined(folder: str, name: str) -> str:
    """The path guessit reads: the folder's name, then the file's (guessit weighs both, as in its tests)."""
    if folder and name:
        return f"{folder}/{name}"
    return folder or name


@lru_cache(maxsize=65536)
def parse_strict(name: str) -> tuple[str, int | None] | None:
    """guessit's (title, year) for one plain name (`Title (Year)`, `Title.Year.rest`, scene forms); else None."""
    return fast_title_year(_without_ids(name))


def _fast_movie(folder: str, stem: str) -> tuple[str, int | None] | None:
    """guessit's (title, year) for a folder and file name when the plain forms settle it; None when unsure.

    guessit prefers the title of the name part that holds a year (its PreferTitleWithYear rule), and
    otherwise the file's: a folder with a year wins unless the file has another year; a file answers
    alone when the folder has no year.
    """
    in_folder = parse_strict(folder) if folder else None
    if not stem:
        return in_folder
    if in_folder is not None and in_folder[1] is not None:
        title, year = in_folder
        if not has_year(stem) or parse_strict(stem) == in_folder or repeats_title_year(stem, title, year):
            return in_folder
        return None
    if folder and has_year(folder):
        return None
    return parse_strict(stem)


def _guess(name: str, kind: str) -> dict[str, Any]:
    """guessit's answer for a name, or {} when guessit fails on it."""
    from guessit import guessit

    try:
        return dict(guessit(name, {"type": kind}))
    except Exception:
        log.warning("guessit could not parse %r", name, exc_info=True)
        return {}


def _first(value: Any) -> Any:
    """The first item of a list guessit returned, or the value itself."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


@lru_cache(maxsize=65536)
def _guess_movie(name: str) -> tuple[str | None, int | None]:
    """(title, year) guessit finds in a movie's name (`folder/file` when both are known)."""
    guess = _guess(name, "movie")
    title = guess.get("title")
    if isinstance(title, list):
        title = " ".join(str(part) for part in title)
    year = _first(guess.get("year"))
    return (str(title).strip() or None) if title else None, year if isinstance(year, int) else None


def parse_movie_name(folder_name: str, file_stem: str | None) -> tuple[str, int | None]:
    """A movie's (title, year) as guessit reads its folder and file names; plain names answered without it."""
    folder = _without_ids(folder_name) if folder_name else ""
    stem = _without_ids(file_stem) if file_stem else ""
    if (fast := _fast_movie(folder, stem)) is not None:
        return fast
    title, year = _guess_movie(_joined(folder, stem))
    if title:
        return title, year
    fallback = strip_tags(folder_name or file_stem or "")
    return (tidy_title(fallback) or fallback or "Unknown"), None


@lru_cache(maxsize=65536)
def parse_show_name(folder_name: str) -> tuple[str, int | None]:
    """A show folder's (title, year) as guessit reads it: `Coupling Season 4` is Coupling, `The Office (US)` kept."""
    name = _without_ids(folder_name)
    if (fast := parse_strict(name)) is not None:
        return fast
    if plain_title(name.split(" ")) and not has_year(name):
        return name, None
    guess = _guess(name, "episode")
    title = guess.get("title")
    if isinstance(title, list):
        title = " ".join(str(part) for part in title)
    if not title:
        fallback = strip_tags(folder_name)
        return (tidy_title(fallback) or fallback or "Unknown"), None
    country = _first(guess.get("country"))
    code = getattr(country, "alpha2", None)
    if code:
        title = f"{title} ({'UK' if code == 'GB' else code})"
    year = _first(guess.get("year"))
    return str(title), year if isinstance(year, int) else None


def _has_digit(text: str) -> bool:
    """True when a text holds a digit (of any script)."""
    return any(char.isdigit() for char in text)


@lru_cache(maxsize=65536)
def _guess_episode(name: str) -> EpisodeParse | None:
    """(season, episodes, aired, title) guessit finds (in `folder/file` when the folder is known), or None."""
    guess = _guess(name, "episode")
    raw = guess.get("episode", guess.get("absolute_episode"))
    aired = guess.get("date")
    if raw is None and aired is None:
        return None
    values = raw if isinstance(raw, list) else [] if raw is None else [raw]
    episodes = tuple(int(v) for v in values if isinstance(v, int))
    season = _first(guess.get("season"))
    title = guess.get("episode_title")
    aired_text = aired.isoformat() if isinstance(aired, date) else None
    if not episodes and not aired_text:
        return None
    return season if isinstance(season, int) else None, episodes, aired_text, str(title) if title else None


def parse_episode(file_name: str, folder_season: int | None = None, folder_name: str = "") -> EpisodeName | None:
    """What a file name says about its episode, read as guessit reads `folder/file`.

    Plain markers (`S01E02`, `1x02`, an air date) are answered without guessit; the folder's season
    fills in when the name has none, and wins over guessit's (which reads `012` as season 0 episode 12).
    """
    stem, ext = split_ext(file_name)
    if ext not in VIDEO_EXTENSIONS:
        stem = file_name
    strict = fast_episode(stem)
    if strict is not None and (strict[0] is not None or folder_season is not None or not _has_digit(folder_name)):
        season, episodes, aired, title = strict
        return EpisodeName(season if season is not None else folder_season, list(episodes), aired, title)
    # A name without a season in a folder like `Friends S03` or `第二季`: guessit reads the season there.
    guessed = _guess_episode(_joined(_without_ids(folder_name), _without_ids(file_name)))
    if guessed is None:
        return None
    season, episodes, aired, title = guessed
    chosen = folder_season if folder_season is not None else season
    return EpisodeName(chosen, list(episodes), aired, title)


def parse_season_folder(name: str) -> int | None:
    """The season number a folder name stands for: `Season 01`, `S1`, `Specials` (0), else None."""
    text = name.strip()
    if text.casefold() in _SPECIALS:
        return 0
    if match := _SEASON_FOLDER.match(text) or _SHORT_SEASON.match(text):
        return int(match.group("n"))
    return None


@lru_cache(maxsize=65536)
def stack_key(stem: str) -> tuple[str, int] | None:
    """(stack base, part number) for `Movie cd1`, `Movie-part2`, `Movie.disc1`, `Movie_pt1`; else None."""
    match = _STACK.match(stem)
    if not match:
        return None
    base = (match.group("base") + match.group("tail")).strip(" _.-")
    if not base:
        return None
    return base, int(match.group("part"))
