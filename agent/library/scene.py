"""Scene release names guessit would read plainly: its title (and year), without guessit.

`Title.Words.1080p.BluRay.x264-GRP` (no year) and `Title.Words.2049.2017.1080p...` (a number that
looks like a year inside the title, then the year) are answered here.

guessit takes ~8 ms a name; most year-less scene names are plain words followed by a resolution or a
source tag, and for those guessit's title is the words joined by spaces. `scene_title` answers only
when every word is one guessit cannot read as something else (an edition, a language, a country, a
part, a streaming service...: any word of guessit's own vocabulary, read from its packaged config);
otherwise it returns None and the caller asks guessit.
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
_SCREEN_NUMBERS: Final = frozenset({"360", "480", "540", "576", "720", "900", "1080", "1440", "2160", "4320"})
_YEARISH: Final = re.compile(r"(?<![0-9])(?:18[89]\d|19\d\d|20\d\d)(?![0-9])")
_EPISODISH: Final = re.compile(r"(?<![a-z0-9])(?:s\d{1,4}[ ._-]?e\d{1,4}|\d{1,2}x\d{1,3}|e\d{1,4})(?![0-9])", re.I)
_WORD: Final = re.compile(r"[a-z]+")
_SKIP_SECTIONS: Final = frozenset({"title", "groups", "expected_title", "streaming_service"})
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


def _guessit_config() -> dict[str, Any]:
    """guessit's packaged options.json (its vocabulary), read without importing guessit."""
    spec = importlib.util.find_spec("guessit")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(next(iter(spec.submodule_search_locations))) / "config" / "options.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("cannot read guessit's vocabulary (%s): every year-less name goes to guessit", exc)
        return {}
    return data if isinstance(data, dict) else {}


def _words_in(value: Any, out: set[str]) -> None:
    """Every run of letters in a nested config value (keys of property tables included)."""
    if isinstance(value, str):
        out.update(_WORD.findall(value.casefold()))
    elif isinstance(value, dict):
        for key, item in value.items():
            out.update(_WORD.findall(str(key).casefold()))
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
            words.update(_WORD.findall(lang.name.casefold()))
    for country in COUNTRY_MATRIX:
        if country.alpha2.casefold() in countries:
            words.update(_WORD.findall(country.name.casefold()))
    return frozenset(words), frozenset(services)


def _plain(token: str, position: int, stops: frozenset[str]) -> bool:
    """A title word guessit keeps as it is: letters outside its vocabulary, or a small number."""
    if not token.isascii():
        return False
    if token.isdigit():
        no_padding = len(token) == 1 or not token.startswith("0")
        return position > 0 and len(token) <= 4 and token not in _SCREEN_NUMBERS and no_padding
    if not token.isalpha() or len(token) < 3:
        return False
    word = token.casefold()
    return not any(word[:end] in stops for end in range(3, len(word) + 1))


def _dotted(name: str, years: int) -> list[str] | None:
    """The dot-separated tokens of a name with exactly `years` year-like numbers and no episode marker."""
    if " " in name or "_" in name or _EPISODISH.search(name) or len(_YEARISH.findall(name)) != years:
        return None
    return name.split(".")


def scene_title(name: str) -> str | None:
    """guessit's title for `Words.Of.Title.<resolution or source>...` with no year; None when unsure."""
    stops, services = stop_words()
    tokens = _dotted(name, 0)
    if not stops or tokens is None:
        return None
    for position, token in enumerate(tokens):
        if _MARKER.fullmatch(token):
            if not position or tokens[position - 1].casefold() in services:
                return None
            return " ".join(tokens[:position])
        if not _plain(token, position, stops):
            return None
    return None


def _valid_year(year: int) -> bool:
    """guessit's own year range (guessit.rules.common.date.valid_year)."""
    return 1900 <= year < 2035


def scene_title_year(name: str) -> tuple[str, int] | None:
    """guessit's (title, year) for `Words.Of.Title.<yearlike>.<year>.<resolution or source>...`; None when unsure.

    With two year-like numbers side by side before the marker, guessit keeps the first in the title
    (`Blade.Runner.2049.2017.1080p` is "Blade Runner 2049", 2017) when the second is a year it accepts.
    """
    stops, _ = stop_words()
    tokens = _dotted(name, 2)
    if not stops or tokens is None:
        return None
    for position, token in enumerate(tokens):
        if _YEARISH.fullmatch(token):
            year = tokens[position + 1] if position + 1 < len(tokens) else ""
            marker = tokens[position + 2] if position + 2 < len(tokens) else ""
            if not position or not _YEARISH.fullmatch(year) or not _MARKER.fullmatch(marker):
                return None
            if not _valid_year(int(year)):
                return None
            return " ".join(tokens[: position + 1]), int(year)
        if not _plain(token, position, stops):
            return None
    return None
