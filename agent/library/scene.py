"""Names guessit would read plainly: its title (and year) for one name, without guessit.

guessit takes ~8-15 ms a name. Most names are plain words followed by a year, a resolution or a source
tag, and for those guessit's title is the words as written. A fast path here answers only when every
title word is one guessit cannot read as something else (an edition, a language, a country, a part, a
format, a streaming service...: any word of guessit's own vocabulary, read from its packaged config);
otherwise it returns None and the caller asks guessit. Forms answered:

- `Title Words (Year)` with nothing after but release tags (`Heat (1995)`, `Amelie (2001) - 1080p`);
- `Title.Words.Year.rest` (dots, spaces or underscores, one separator throughout, one year);
- `Title.Words.<resolution or source>...` with no year (`scene_title`);
- `Title.Words.<yearlike>.<year>.<resolution or source>...` (`scene_title_year`: Blade.Runner.2049.2017).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

log = logging.getLogger(__name__)

# The token right after the title: a resolution or a source guessit always recognises.
_MARKER: Final = re.compile(
    r"(?:360|480|540|576|720|900|1080|1440|2160|4320)[pi]|4k|uhd|blu-?ray|bdrip|brrip|bdremux|web-?dl|web-?rip|"
    r"webrip|web|hdtv|hdrip|dvdrip|dvd|remux",
    re.IGNORECASE,
)
SCREEN_NUMBERS: Final = frozenset({"360", "480", "540", "576", "720", "900", "1080", "1440", "2160", "4320"})
_YEARISH: Final = re.compile(r"(?<![0-9])(?:19\d\d|20[0-2]\d|203[0-4])(?![0-9])")  # guessit's valid_year range
_EPISODISH: Final = re.compile(
    r"(?<![a-z0-9])(?:s\d{1,4}[ ._-]?e\d{1,4}|\d{1,2}x\d{1,3}|e\d{1,4}|s\d{1,2})(?![0-9])", re.IGNORECASE
)
_PAREN_YEAR: Final = re.compile(r"^(?P<title>[^()\[\]{}]*?[^\s()\[\]{}]) \((?P<year>\d{4})\)(?P<rest>.*)$")
_REST_START: Final = re.compile(r"^(?:$|[ ._\-\[(])")
_WORD: Final = re.compile(r"[a-z0-9]+")
_BRACE_TAG: Final = re.compile(r"\{[^{}]*\}|\[[^\[\]]*\]")
_SPACES: Final = re.compile(r"\s+")
_SKIP_SECTIONS: Final = frozenset({"title", "groups", "expected_title", "streaming_service"})
# Keys of guessit's config that hold code or tag names, not words of a name.
_SKIP_KEYS: Final = frozenset({"conflict_solver", "tags", "forbidden_names"})
# Words guessit reads only beside a number (`1 of 3`, `1 to 3`, `1 and 2`) or before `Complete`.
_CONTEXT_WORDS: Final = frozenset({"the", "and", "of", "to", "a"})
# Words guessit reads through code rather than its config (seen in tests against guessit itself).
_EXTRA_STOP: Final = frozenset(
    {
        "usa", "america", "american", "british", "english", "french", "german", "truefrench", "vostfr", "multi",
        "subbed", "dubbed", "internal", "proper", "repack", "rerip", "real", "limited", "extended", "remastered",
        "directors", "director", "cut", "edition", "collectors", "collector", "special", "unrated", "uncut",
        "uncensored", "theatrical", "imax", "criterion", "deluxe", "ultimate", "alternative", "fan", "part",
        "vol", "volume", "episode", "season", "complete", "sample", "trailer", "proof", "screener", "pilot",
        "final", "hybrid", "dual", "audio", "untouched", "retail", "festival", "restored", "colorized", "bonus",
    }
)  # fmt: skip


def collapse(text: str) -> str:
    """Runs of whitespace as one space (most names have none to collapse: no regex then)."""
    if "  " in text or not text.isprintable():
        return _SPACES.sub(" ", text)
    return text


def strip_tags(name: str) -> str:
    """A name without `{...}` and `[...]` tags, with runs of spaces collapsed."""
    if "{" in name or "[" in name:
        name = _BRACE_TAG.sub(" ", name)
    return collapse(name).strip(" -_.")


def tidy_title(raw: str) -> str:
    """Turn `The.Matrix` or `The_Matrix` into `The Matrix`; leave spaced titles alone."""
    text = raw.strip(" -_.")
    if " " not in text and ("." in text or "_" in text):
        text = text.replace(".", " ").replace("_", " ")
    return collapse(text).strip()


def _guessit_config() -> dict[str, Any]:
    """guessit's packaged options.json (its vocabulary), read without importing guessit."""
    spec = importlib.util.find_spec("guessit")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(next(iter(spec.submodule_search_locations))) / "config" / "options.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("cannot read guessit's vocabulary (%s): every name goes to guessit", exc)
        return {}
    return data if isinstance(data, dict) else {}


def _letters(text: str) -> list[str]:
    """The words of a text that are letters only (`2in1` and `mp4a` hold no word of a title)."""
    return [word for word in _WORD.findall(text.casefold()) if word.isalpha()]


def _words_in(value: Any, out: set[str]) -> None:
    """Every word in a nested config value (keys of property tables included, code left out)."""
    if isinstance(value, str):
        out.update(_letters(value))
    elif isinstance(value, dict):
        for key, item in value.items():
            if key in _SKIP_KEYS:
                continue
            out.update(_letters(str(key)))
            _words_in(item, out)
    elif isinstance(value, list):
        for item in value:
            _words_in(item, out)


@lru_cache(maxsize=1)
def stop_words() -> tuple[frozenset[str], frozenset[str]]:
    """(words guessit may read as a property anywhere, words of streaming services); empty when unknown.

    guessit keeps a streaming service only right before a source tag (its ValidateStreamingService
    rule), so those words matter only as the last word before the marker.
    """
    config = _guessit_config()
    if not config:
        return frozenset(), frozenset()
    words: set[str] = set(_EXTRA_STOP)
    advanced = config.get("advanced_config") or {}
    for section, value in advanced.items():
        if section not in _SKIP_SECTIONS:
            _words_in(value, words)
    services: set[str] = set()
    _words_in(advanced.get("streaming_service") or {}, services)
    allowed = {str(code).casefold() for code in config.get("allowed_languages") or ()}
    countries = {str(code).casefold() for code in config.get("allowed_countries") or ()}
    words |= allowed | countries
    from babelfish.country import COUNTRY_MATRIX
    from babelfish.language import LANGUAGE_MATRIX

    for lang in LANGUAGE_MATRIX:
        codes = {lang.alpha2, lang.alpha3, lang.alpha3b, lang.alpha3t}
        if codes & allowed:
            words |= {c for c in codes if c}
            words.update(_letters(lang.name))
    for country in COUNTRY_MATRIX:
        if country.alpha2.casefold() in countries:
            words.update(_letters(country.name))
    return frozenset(words - _CONTEXT_WORDS), frozenset(services)


def _plain(token: str, position: int, stops: frozenset[str]) -> bool:
    """A title word guessit keeps as it is: letters outside its vocabulary, or a small number."""
    if not token.isascii():
        return False
    if token.isdigit():
        no_padding = len(token) == 1 or not token.startswith("0")
        return position > 0 and len(token) <= 4 and token not in SCREEN_NUMBERS and no_padding
    if not token.isalpha():
        return False
    word = token.casefold()
    if len(word) < 3:
        return len(word) == 2 and word not in stops
    return word not in stops


def plain_title(tokens: list[str], lead_number: bool = False) -> bool:
    """True when guessit reads these title words as they are (see _plain; `the`, `of`... away from numbers).

    With `lead_number`, the first word may be a number (`12 Angry Men`): a year right after settles it.
    """
    stops, _ = stop_words()
    if not stops or not tokens:
        return False
    last = len(tokens) - 1
    for position, token in enumerate(tokens):
        word = token.casefold()
        if not position and lead_number and token.isdigit():
            if len(token) > 4 or token in SCREEN_NUMBERS:
                return False
        elif word in _CONTEXT_WORDS:
            beside = (tokens[position - 1] if position else "", tokens[position + 1] if position < last else "")
            if any(t.isdigit() for t in beside) or (word == "the" and beside[1].casefold() == "complete"):
                return False
        elif not _plain(token, position, stops):
            return False
    return True


def _valid_year(year: int) -> bool:
    """guessit's own year range (guessit.rules.common.date.valid_year)."""
    return 1900 <= year < 2035


def _tokens(name: str) -> tuple[str, list[str]] | None:
    """(separator, tokens) of a name that uses one separator throughout (dot, space or underscore)."""
    used = [sep for sep in (".", " ", "_") if sep in name]
    if len(used) != 1:
        return None
    return used[0], name.split(used[0])


def paren_title_year(name: str) -> tuple[str, int] | None:
    """guessit's (title, year) for `Title Words (Year)` followed by nothing or release tags; None when unsure.

    A number may open the title here (`1917 (2019)`, `21 (2008)`): the year in parentheses settles it.
    """
    match = _PAREN_YEAR.match(name)
    if match is None or _EPISODISH.search(name):
        return None
    year, title, rest = int(match.group("year")), match.group("title"), match.group("rest")
    if not _valid_year(year) or not _REST_START.match(rest) or _YEARISH.search(rest) or "." in title or "_" in title:
        return None
    return (title, year) if plain_title(title.split(" "), lead_number=True) else None


def dotted_title_year(name: str) -> tuple[str, int] | None:
    """guessit's (title, year) for `Title.Words.Year.rest` (one separator up to the year, one year); else None."""
    years = list(_YEARISH.finditer(name))
    if len(years) != 1 or _EPISODISH.search(name):
        return None
    head, year, after = name[: years[0].start()], int(years[0].group()), name[years[0].end() :]
    if len(head) < 2 or head[-1] not in "._ " or (after and after[0] not in " ._-[("):
        return None
    sep, title = head[-1], head[:-1]
    if any(other in title for other in "._ " if other != sep) or not _valid_year(year):
        return None
    return (title.replace(sep, " "), year) if plain_title(title.split(sep), lead_number=True) else None


def _dotted(name: str, years: int) -> list[str] | None:
    """The dot-separated tokens of a name with exactly `years` year-like numbers and no episode marker."""
    if " " in name or "_" in name or _EPISODISH.search(name) or len(_YEARISH.findall(name)) != years:
        return None
    return name.split(".")


def scene_title(name: str) -> str | None:
    """guessit's title for `Words.Of.Title.<resolution or source>...` with no year; None when unsure."""
    _, services = stop_words()
    tokens = _dotted(name, 0)
    if tokens is None:
        return None
    for position, token in enumerate(tokens):
        if _MARKER.fullmatch(token):
            if not position or tokens[position - 1].casefold() in services or not plain_title(tokens[:position]):
                return None
            return " ".join(tokens[:position])
    return None


def scene_title_year(name: str) -> tuple[str, int] | None:
    """guessit's (title, year) for `Words.Of.Title.<yearlike>.<year>.<resolution or source>...`; None when unsure.

    With two year-like numbers side by side before the marker, guessit keeps the first in the title
    (`Blade.Runner.2049.2017.1080p` is "Blade Runner 2049", 2017) when the second is a year it accepts.
    """
    tokens = _dotted(name, 2)
    if tokens is None:
        return None
    for position, token in enumerate(tokens):
        if _YEARISH.fullmatch(token):
            year = tokens[position + 1] if position + 1 < len(tokens) else ""
            marker = tokens[position + 2] if position + 2 < len(tokens) else ""
            if not position or not _YEARISH.fullmatch(year) or not _MARKER.fullmatch(marker):
                return None
            if not _valid_year(int(year)) or not plain_title(tokens[: position + 1]):
                return None
            return " ".join(tokens[: position + 1]), int(year)
    return None


def fast_title_year(name: str) -> tuple[str, int | None] | None:
    """guessit's (title, year) for one name in any of the plain forms above; None when unsure."""
    if "(" in name:
        return paren_title_year(name)
    if dated := dotted_title_year(name):
        return dated
    if dated := scene_title_year(name):
        return dated
    if title := scene_title(name):
        return title, None
    return None


def repeats_title_year(name: str, title: str, year: int) -> bool:
    """True when a file name only repeats its folder's `Title (Year)`: the title words, maybe the year, then tags.

    `Borat.(2006).R5...` or `1917.2160p` under `1917 (2019)`. guessit reads the second as 1917 from 1917
    (a number of the title taken for the year); the folder names the movie, as Kodi and Jellyfin read it.
    Written in other letter case, the folder's spelling is guessit's only when the file's year is bare
    (guessit prefers the title beside a year in parentheses).
    """
    words = title.split(" ")
    head = r"[ ._]+".join(re.escape(word) for word in words)
    match = re.match(rf"(?P<head>{head})(?:[ ._]*(?P<year>\(?{year}\)?))?(?=[ ._\-\[(]|$)", name, re.IGNORECASE)
    if match is None:
        return False
    if re.split(r"[ ._]+", match.group("head")) != words and "(" in (match.group("year") or ""):
        return False
    return not any(found != str(year) for found in _YEARISH.findall(name[match.end() :]))


def has_year(name: str) -> bool:
    """True when a name holds a year-like number."""
    return _YEARISH.search(name) is not None
