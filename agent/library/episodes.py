"""Episode names guessit would read plainly: season, episode numbers or air date, without guessit.

`Show.S01E02.720p...`, `Show S01E02E03`, `Show S01E02-E05`, `Show 1x02`, `Show.2024.03.15...` are
answered here. A name that says more than the marker (another number right after it, a second marker,
a connector like `+02`, `& S01E03`, `.and.S01E03`, or digits near an air date that guessit may read as an
episode) is left to guessit: the fast path answers only where guessit would give the same numbers.
"""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache
from typing import Final

from agent.library.scene import SCREEN_NUMBERS, strip_tags, tidy_title

EpisodeParse = tuple[int | None, tuple[int, ...], str | None, str | None]  # season, episodes, aired, title

_SXXEYY: Final = re.compile(
    r"(?<![a-z0-9])s(?P<season>\d{1,4})[ ._-]?e(?P<episode>\d{1,4})(?![0-9])"
    r"(?P<more>(?:(?:[ ._]?e|-e?)\d{1,4}(?![0-9]|[a-df-z]))*)",
    re.IGNORECASE,
)
_MORE_EP: Final = re.compile(r"(?P<sep>[ ._]?e|-e?)(?P<num>\d{1,4})", re.IGNORECASE)
_NXNN: Final = re.compile(
    r"(?<![a-z0-9])(?P<season>\d{1,2})x(?P<episode>\d{1,3})(?![0-9])(?P<more>(?:[-x]\d{1,3}(?![0-9]|[a-wyz]))*)",
    re.IGNORECASE,
)
_MORE_X: Final = re.compile(r"(?P<sep>[-x])(?P<num>\d{1,3})", re.IGNORECASE)
_DAILY: Final = re.compile(r"(?<![0-9])(?P<y>19\d\d|20\d\d)[-. _](?P<m>\d{2})[-. _](?P<d>\d{2})(?![0-9])")
# What may follow a marker without guessit reading more episodes into it: a number right after it
# (`S03E21.22`, `+02`, ` - 313`), maybe behind a connector (`& S01E03`, `.and.S14E01`), is not.
_NUMBER_AFTER: Final = re.compile(
    r"^[ ._\-+&,~]*(?:(?:and|to|et|y|ep|e|s\d{1,4}[ ._-]?e)[ ._\-]*)?(?P<token>\d+[a-z]*)", re.IGNORECASE
)
# Release tags with digits that guessit never reads as an episode.
_TECH: Final = re.compile(r"(?<![a-z0-9])(?:\d{3,4}[pi]|[48]k|[xh]\.?26[45]|\d{1,2}-?bits?)(?![a-z0-9])", re.IGNORECASE)
_ANOTHER_MARKER: Final = re.compile(r"(?<![a-z0-9])(?:s\d{1,4}[ ._-]?e\d|\d{1,2}x\d{1,3}(?![0-9])|cap\.?\d)", re.I)
# `[Group] Title - 05 [720p][CRC].mkv`, `[Group]_Title_679_[tags]`: a fansub release numbered absolutely.
_FANSUB: Final = re.compile(
    r"^\[(?P<group>[^\[\]]+)\][ _.]?(?P<title>[^\[\]()\d]+?)(?:[ _.]-[ _.]|[ _.])(?P<episode>\d{2,4})(?:v\d)?"
    r"(?P<tags>(?:[ _.]*(?:\[[^\[\]]*\]|\([^()]*\)))*)[ _.]*$"
)
_FANSUB_TECH: Final = re.compile(
    r"(?<![a-z0-9])(?:\d{3,4}[pi]|\d{3,4}x\d{3,4}|[0-9a-f]{8}|[xh]\.?26[45]|\d{1,2}-?bits?|hi10p?|[48]k|v\d)(?![a-z0-9])",
    re.IGNORECASE,
)
# Title words that make guessit read a season, a part or a special out of a fansub name.
_SEASON_WORDS: Final = frozenset(
    {
        "season", "saison", "temporada", "staffel", "stagione", "series", "part", "episode", "ep", "cour",
        "ova", "oad", "ona", "special", "specials", "movie", "film", "vol", "volume", "cap", "livre", "book", "final",
    }
)  # fmt: skip
_QUALITY: Final = re.compile(
    r"(?:^|[ ._\-\[(])(?:480p|576p|720p|1080[pi]|2160p|4k|uhd|bluray|blu-ray|bdrip|brrip|web-?dl|webrip|web|"
    r"hdtv|dvdrip|x264|x265|h\.?264|h\.?265|hevc|xvid|proper|repack|aac|ac3|dts|remux|hdr)(?:$|[ ._\-\])])",
    re.IGNORECASE,
)
_GUESSIT_YEAR: Final = re.compile(r"19\d\d|20[0-2]\d|203[0-4]")  # guessit's valid_year range
_MAX_RANGE: Final = 30  # a "S01E01-E40" range longer than this is a typo, not 40 episodes


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


def episode_title(rest: str) -> str | None:
    """The episode title after the episode marker, cut before release tags."""
    text = strip_tags(rest)
    if quality := _QUALITY.search(text):
        text = text[: quality.start()]
    title = tidy_title(text)
    return title or None


def _valid_date(y: str, m: str, d: str) -> str | None:
    """ISO date for year/month/day strings, or None when that day does not exist."""
    try:
        return date(int(y), int(m), int(d)).isoformat()
    except ValueError:
        return None


def _says_more(rest: str) -> bool:
    """True when the text after a marker holds what guessit may read as more episodes."""
    if (after := _NUMBER_AFTER.match(rest)) and not _TECH.fullmatch(after.group("token")):
        return True
    return _ANOTHER_MARKER.search(rest) is not None


def _fansub(stem: str) -> int | None:
    """The absolute episode of `[Group] Title - 05 [tags]`, when nothing else in it holds a number; else None."""
    match = _FANSUB.match(stem)
    if match is None or re.search(r"\d{3}", match.group("group")):
        return None
    words = re.split(r"[ _.]+", match.group("title").strip(" _.-").casefold())
    if not words[0] or any(word in _SEASON_WORDS for word in words):
        return None
    if any(char.isdigit() for char in _FANSUB_TECH.sub(" ", match.group("tags"))):
        return None  # `(191-195)`, `[Cap.408]`: guessit may read another number
    number = match.group("episode")
    if number in SCREEN_NUMBERS or _GUESSIT_YEAR.fullmatch(number):
        return None  # `- 1080 [1080p]`, `- 1999`: guessit may read a resolution or a year
    return int(number)


@lru_cache(maxsize=65536)
def fast_episode(stem: str) -> EpisodeParse | None:
    """(season, episodes, aired, title) for a plain marker guessit reads the same way; None when unsure."""
    for regex, more_regex in ((_SXXEYY, _MORE_EP), (_NXNN, _MORE_X)):
        if match := regex.search(stem):
            rest = stem[match.end() :]
            if _says_more(rest):
                return None
            episodes = _numbers(int(match.group("episode")), match.group("more"), more_regex)
            return int(match.group("season")), tuple(episodes), None, episode_title(rest)
    if (match := _DAILY.search(stem)) and (aired := _valid_date(match["y"], match["m"], match["d"])):
        around = _TECH.sub(" ", stem[: match.start()] + " " + stem[match.end() :])
        if any(char.isdigit() for char in around):
            return None  # `Show.Name.101.Event.2010.11.23`: guessit reads 101 as an episode
        return None, (), aired, episode_title(stem[match.end() :])
    if stem.startswith("[") and (absolute := _fansub(stem)) is not None:
        return None, (absolute,), None, None
    return None
