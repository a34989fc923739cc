"""Naming rules for media files: titles and years, episodes, seasons, stacks, extras and junk."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any, Final

from agent.library.scene import scene_title, scene_title_year

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

_YEAR: Final = r"(?P<year>18[89]\d|19\d\d|20\d\d)"
_PAREN_MOVIE: Final = re.compile(rf"^(?P<title>.*?\S)\s*\(\s*{_YEAR}\s*\)(?P<rest>.*)$")
_DOTTED_MOVIE: Final = re.compile(rf"^(?P<title>[^()\[\]{{}}]*?[^\s._\-()\[\]])[ ._]+{_YEAR}(?:[ ._\-\[(]|$)")
_YEAR_TOKEN: Final = re.compile(r"(?<![0-9])(?:18[89]\d|19\d\d|20\d\d)(?![0-9])")
_ID_TAG: Final = re.compile(
    r"[\[{]\s*(?P<kind>tmdb|imdb|tvdb|tvmaze|anidb)(?:id)?\s*[-=]\s*(?P<value>[a-z0-9]+)\s*[\]}]",
    re.IGNORECASE,
)
_BRACE_TAG: Final = re.compile(r"\{[^{}]*\}|\[[^\[\]]*\]")
_SPACES: Final = re.compile(r"\s+")

_SXXEYY: Final = re.compile(
    r"(?<![a-z0-9])s(?P<season>\d{1,4})[ ._-]?e(?P<episode>\d{1,4})(?![0-9])"
    r"(?P<more>(?:(?:[ ._]?e|[ ._]?-[ ._]?e?)\d{1,4}(?![0-9pi]))*)",
    re.IGNORECASE,
)
_MORE_EP: Final = re.compile(r"(?P<sep>[ ._]?e|[ ._]?-[ ._]?e?)(?P<num>\d{1,4})", re.IGNORECASE)
_NXNN: Final = re.compile(
    r"(?<![a-z0-9])(?P<season>\d{1,2})x(?P<episode>\d{1,3})(?![0-9])(?P<more>(?:[-_x]\d{1,3}(?![0-9p]))*)",
    re.IGNORECASE,
)
_MORE_X: Final = re.compile(r"(?P<sep>[-_x])(?P<num>\d{1,3})", re.IGNORECASE)
_DAILY: Final = re.compile(r"(?<![0-9])(?P<y>19\d\d|20\d\d)[-. _](?P<m>\d{2})[-. _](?P<d>\d{2})(?![0-9])")
_QUALITY: Final = re.compile(
    r"(?:^|[ ._\-\[(])(?:480p|576p|720p|1080[pi]|2160p|4k|uhd|bluray|blu-ray|bdrip|brrip|web-?dl|webrip|web|"
    r"hdtv|dvdrip|x264|x265|h\.?264|h\.?265|hevc|xvid|proper|repack|aac|ac3|dts|remux|hdr)(?:$|[ ._\-\])])",
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

_MAX_RANGE: Final = 30  # a "S01E01-E40" range longer than this is a typo, not 40 episodes


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


def strip_tags(name: str) -> str:
    """A name without `{...}` and `[...]` tags, with runs of spaces collapsed."""
    if "{" in name or "[" in name:
        name = _BRACE_TAG.sub(" ", name)
    return _collapse(name).strip(" -_.")


def _collapse(text: str) -> str:
    """Runs of whitespace as one space (most names have none to collapse: no regex then)."""
    if "  " in text or not text.isprintable():
        return _SPACES.sub(" ", text)
    return text


def _tidy_title(raw: str) -> str:
    """Turn `The.Matrix` or `The_Matrix` into `The Matrix`; leave spaced titles alone."""
    text = raw.strip(" -_.")
    if " " not in text and ("." in text or "_" in text):
        text = text.replace(".", " ").replace("_", " ")
    return _collapse(text).strip()


@lru_cache(maxsize=65536)
def parse_strict(name: str) -> tuple[str, int] | None:
    """(title, year) from `Title (Year)` or an unambiguous `Title.Year.rest`; None when not strict."""
    text = strip_tags(name)
    if match := _PAREN_MOVIE.match(text):
        title = _tidy_title(match.group("title"))
        if title:
            return title, int(match.group("year"))
    if len(_YEAR_TOKEN.findall(text)) == 1 and (match := _DOTTED_MOVIE.match(text)):
        title = _tidy_title(match.group("title"))
        if title:
            return title, int(match.group("year"))
    return None


def _guess(name: str, kind: str) -> dict[str, Any]:
    """guessit's answer for a name, or {} when guessit fails on it."""
    from guessit import guessit

    try:
        return dict(guessit(name, {"type": kind}))
    except Exception:
        log.warning("guessit could not parse %r", name, exc_info=True)
        return {}


@lru_cache(maxsize=65536)
def _guess_movie(name: str) -> tuple[str | None, int | None]:
    """(title, year) guessit finds in a movie name (common year-less scene names answered without it)."""
    text = strip_tags(name)
    if scene := scene_title(text):
        return scene, None
    if dated := scene_title_year(text):
        return dated
    guess = _guess(text, "movie")
    title = guess.get("title")
    if isinstance(title, list):
        title = " ".join(str(part) for part in title)
    year = guess.get("year")
    if isinstance(year, list):
        year = year[0] if year else None
    return (str(title).strip() or None) if title else None, year if isinstance(year, int) else None


def parse_movie_name(folder_name: str, file_stem: str | None) -> tuple[str, int | None]:
    """A movie's (title, year): a strict folder name wins, then a strict file name, then guessit."""
    for name in (folder_name, file_stem):
        if name and (strict := parse_strict(name)):
            return strict
    for name in (file_stem, folder_name):
        if not name:
            continue
        title, year = _guess_movie(name)
        if title:
            return title, year
    fallback = strip_tags(folder_name or file_stem or "")
    return (_tidy_title(fallback) or fallback or "Unknown"), None


def _numbers(first: int, more: str, pattern: re.Pattern[str]) -> list[int]:
    """Episode numbers from a first number and a continuation like `E02E03`, `-E05` or `-02`."""
    numbers = [first]
    if not more:
        return numbers
    for match in pattern.finditer(more):
        num = int(match.group("num"))
        is_range = "-" in match.group("sep")
        last = numbers[-1]
        if is_range and last < num <= last + _MAX_RANGE:
            numbers.extend(range(last + 1, num + 1))
        elif num not in numbers:
            numbers.append(num)
    return numbers


def _episode_title(rest: str) -> str | None:
    """The episode title after the episode marker, cut before release tags."""
    text = strip_tags(rest)
    if quality := _QUALITY.search(text):
        text = text[: quality.start()]
    title = _tidy_title(text)
    return title or None


def _valid_date(y: str, m: str, d: str) -> str | None:
    """ISO date for year/month/day strings, or None when that day does not exist."""
    try:
        return date(int(y), int(m), int(d)).isoformat()
    except ValueError:
        return None


@lru_cache(maxsize=65536)
def _parse_episode_stem(stem: str) -> tuple[int | None, tuple[int, ...], str | None, str | None] | None:
    """(season, episodes, aired, title) from the strict patterns, or None."""
    for regex, more_regex in ((_SXXEYY, _MORE_EP), (_NXNN, _MORE_X)):
        if match := regex.search(stem):
            episodes = _numbers(int(match.group("episode")), match.group("more"), more_regex)
            return int(match.group("season")), tuple(episodes), None, _episode_title(stem[match.end() :])
    if (match := _DAILY.search(stem)) and (aired := _valid_date(match["y"], match["m"], match["d"])):
        return None, (), aired, _episode_title(stem[match.end() :])
    return None


@lru_cache(maxsize=65536)
def _guess_episode(name: str) -> tuple[int | None, tuple[int, ...], str | None, str | None] | None:
    """(season, episodes, aired, title) guessit finds, or None when it sees no episode."""
    guess = _guess(strip_tags(name), "episode")
    raw = guess.get("episode", guess.get("absolute_episode"))
    aired = guess.get("date")
    if raw is None and aired is None:
        return None
    values = raw if isinstance(raw, list) else [] if raw is None else [raw]
    episodes = tuple(int(v) for v in values if isinstance(v, int))
    season = guess.get("season")
    if isinstance(season, list):
        season = season[0] if season else None
    title = guess.get("episode_title")
    aired_text = aired.isoformat() if isinstance(aired, date) else None
    if not episodes and not aired_text:
        return None
    return season if isinstance(season, int) else None, episodes, aired_text, str(title) if title else None


def parse_episode(file_name: str, folder_season: int | None = None) -> EpisodeName | None:
    """What a file name says about its episode; the folder's season fills in when the name has none."""
    stem, ext = split_ext(file_name)
    if ext not in VIDEO_EXTENSIONS:
        stem = file_name
    if strict := _parse_episode_stem(stem):
        season, episodes, aired, title = strict
        return EpisodeName(season if season is not None else folder_season, list(episodes), aired, title)
    guessed = _guess_episode(file_name)
    if guessed is None:
        return None
    season, episodes, aired, title = guessed
    # guessit reads "012" as season 0 episode 12; a season folder knows better.
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
