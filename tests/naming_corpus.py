"""guessit's published test vectors as a corpus of real-world release names, with their expected answers.

Source: guessit's own test vectors (`movies.yml`, `episodes.yml`, `various.yml`), shipped as package data
in the installed guessit (`guessit/test/`, LGPLv3, https://github.com/guessit-io/guessit). Read here
exactly as guessit's `test_yml.py` reads them: a key without an answer takes the next answer below it,
`__default__` fills in missing keys. Entries guessit tests with options (`-T`, `-E`, `--type`...) or as
negations (`? -name`) are skipped, and counted.

Each usable name is mapped onto the scan's own calls: a movie is `parse_movie_name(parent folder, file
stem)`, an episode `parse_episode(file name, season of the nearest season folder above it, parent folder name)`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from agent.library.naming import (
    VIDEO_EXTENSIONS,
    EpisodeName,
    parse_episode,
    parse_movie_name,
    parse_season_folder,
    split_ext,
)

CORPUS_FILES: Final = ("movies.yml", "episodes.yml", "various.yml")
# Extensions a name may carry in the vectors that the scan would strip with the video's own extension.
_SIDE_EXTENSIONS: Final = frozenset({".srt", ".sub", ".idx", ".ass", ".ssa", ".nfo", ".torrent", ".nzb", ".txt"})
_TOKEN_OPTIONS: Final = re.compile(r"^[ +-]+")


@dataclass(frozen=True)
class Case:
    """One name of the corpus with guessit's expected answer."""

    source: str  # the yml file it comes from
    name: str  # the path guessit's test feeds to guessit
    kind: str  # "movie" or "episode"
    title: str | None = None
    year: int | None = None
    season: int | tuple[int, ...] | None = None
    episodes: tuple[int, ...] = ()


@dataclass
class Corpus:
    """The usable cases, and how many entries were left out and why."""

    cases: list[Case]
    total: int
    skipped_options: int
    skipped_negated: int
    skipped_no_answer: int


def vectors_dir() -> Path:
    """The folder of guessit's packaged test vectors."""
    import guessit

    return Path(os.path.dirname(guessit.__file__)) / "test"


def _load(path: Path) -> dict[str, Any]:
    """One yml file as guessit's test reads it: answers shared downwards, defaults filled in."""
    from guessit.yamlutils import OrderedDictYAMLLoader

    with path.open(encoding="utf-8") as handle:
        data = yaml.load(handle, OrderedDictYAMLLoader)
    last = None
    for key, expected in reversed(list(data.items())):
        if expected is None:
            data[key] = last
        else:
            last = expected
    default = data.pop("__default__", None) or {}
    for expected in data.values():
        for key, value in default.items():
            expected.setdefault(key, value)
    return {str(key): value for key, value in data.items()}


def _ints(value: Any) -> tuple[int, ...] | None:
    """An int or a list of ints as a tuple; None for anything else."""
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return None
    return tuple(values)


def _case(source: str, name: str, expected: dict[str, Any]) -> Case | None:
    """The case an entry gives: a movie with a title, or an episode with episode numbers; else None."""
    kind = expected.get("type")
    if kind == "movie" and isinstance(expected.get("title"), str):
        year = expected.get("year")
        return Case(source, name, "movie", title=expected["title"], year=year if isinstance(year, int) else None)
    if kind == "episode" and (episodes := _ints(expected.get("episode"))):
        season = _ints(expected["season"]) if "season" in expected else None
        if "season" in expected and season is None:
            return None
        return Case(
            source, name, "episode", season=season[0] if season and len(season) == 1 else season, episodes=episodes
        )
    return None


def load_corpus(files: tuple[str, ...] = CORPUS_FILES) -> Corpus:
    """Every usable case of guessit's vectors, with counts of what was skipped."""
    cases: list[Case] = []
    total = options = negated = no_answer = 0
    for source in files:
        for name, expected in _load(vectors_dir() / source).items():
            total += 1
            if expected.get("options"):
                options += 1
                continue
            if (prefix := _TOKEN_OPTIONS.match(name)) and "-" in prefix.group(0):
                negated += 1
                continue
            case = _case(source, _TOKEN_OPTIONS.sub("", name), expected)
            if case is None:
                no_answer += 1
            else:
                cases.append(case)
    return Corpus(cases, total, options, negated, no_answer)


def _parts(name: str) -> list[str]:
    """A vector's path split into its parts."""
    return [part for part in name.replace("\\", "/").split("/") if part]


def _stem(file_name: str) -> str:
    """The stem the scan passes: the name without its video (or sidecar) extension."""
    stem, ext = split_ext(file_name)
    return stem if ext in VIDEO_EXTENSIONS or ext in _SIDE_EXTENSIONS else file_name


def ours_movie(name: str) -> tuple[str, int | None]:
    """Our (title, year) for a vector, through the scan's call: parent folder name and file stem."""
    parts = _parts(name)
    folder = parts[-2] if len(parts) > 1 else ""
    return parse_movie_name(folder, _stem(parts[-1]))


def ours_episode(name: str) -> EpisodeName | None:
    """Our episode answer for a vector, through the scan's call: file name and the season folder's number."""
    parts = _parts(name)
    folder_season = None
    for part in reversed(parts[:-1]):
        if (folder_season := parse_season_folder(part)) is not None:
            break
    return parse_episode(parts[-1], folder_season, parts[-2] if len(parts) > 1 else "")


def movie_agrees(case: Case, title: Any, year: Any) -> bool:
    """True when a (title, year) answer is guessit's expected one."""
    return title == case.title and (year if isinstance(year, int) else None) == case.year


def episode_agrees(case: Case, season: Any, episodes: Any) -> bool:
    """True when a (season, episode numbers) answer is guessit's expected one."""
    got = _ints(episodes) if episodes is not None else None
    return season == case.season and got is not None and sorted(set(got)) == sorted(set(case.episodes))


def ours_agrees(case: Case) -> bool:
    """True when our parser gives guessit's expected answer for a case."""
    if case.kind == "movie":
        return movie_agrees(case, *ours_movie(case.name))
    parsed = ours_episode(case.name)
    return parsed is not None and episode_agrees(case, parsed.season, parsed.episodes)


def guessit_agrees(case: Case, guess: dict[str, Any]) -> bool:
    """True when guessit's own answer (`guessit(name, {"type": kind})`) is the expected one."""
    if case.kind == "movie":
        return movie_agrees(case, guess.get("title"), guess.get("year"))
    season = guess.get("season")
    if isinstance(season, list):
        season = tuple(season) if len(season) > 1 else season[0]
    return episode_agrees(case, season, guess.get("episode"))
