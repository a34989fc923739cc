"""What a sender (Radarr, Sonarr, Plex) told us about an item: typed, and carried as such from the
webhook to the scan and to enrichment. Job payloads hold its `to_payload()` form; `from_payload`
reads it back and names the first bad value."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent.errors import UserError

ID_KEYS = ("tmdb_id", "imdb_id", "tvdb_id")


@dataclass(frozen=True)
class HintImage:
    """One artwork URL the sender offered; `type` is our art type (poster, fanart, banner, clearlogo)."""

    type: str
    url: str


@dataclass(frozen=True)
class HintEpisode:
    """One episode the sender named; `file` is our (mapped) path of its video when known."""

    season: int | None = None
    episode: int | None = None
    title: str | None = None
    aired: str | None = None
    overview: str | None = None
    tvdb_id: int | None = None
    file: str | None = None


@dataclass(frozen=True)
class Hints:
    """Fields a scan or enrich may use to fill gaps; ids are keyed `tmdb_id`, `imdb_id`, `tvdb_id`."""

    title: str | None = None
    year: int | None = None
    overview: str | None = None
    genres: tuple[str, ...] = ()
    ids: dict[str, int | str] = field(default_factory=dict)
    images: tuple[HintImage, ...] = ()
    episodes: tuple[HintEpisode, ...] = ()

    def __bool__(self) -> bool:
        """True when the sender told us anything at all."""
        return bool(self.title or self.year or self.overview or self.genres or self.ids or self.images
                    or self.episodes)

    def to_payload(self) -> dict[str, Any]:
        """The JSON form kept in a job payload (empty values left out)."""
        out: dict[str, Any] = {
            "title": self.title,
            "year": self.year,
            "overview": self.overview,
            "genres": list(self.genres),
            "ids": dict(self.ids),
            "images": [{"type": i.type, "url": i.url} for i in self.images],
            "episodes": [{k: v for k, v in vars(e).items() if v is not None} for e in self.episodes],
        }
        return {k: v for k, v in out.items() if v not in (None, [], {})}

    @classmethod
    def from_payload(cls, data: Any) -> Hints:
        """Read hints back from a job payload; UserError names the first value of the wrong kind."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise UserError("hints must be an object")
        ids = data.get("ids") or {}
        if not isinstance(ids, dict) or any(k not in ID_KEYS or not isinstance(v, (int, str)) or isinstance(v, bool)
                                            for k, v in ids.items()):
            raise UserError(f"hints.ids must map {', '.join(ID_KEYS)} to numbers or strings")
        return cls(
            title=_opt(data, "title", str),
            year=_opt(data, "year", int),
            overview=_opt(data, "overview", str),
            genres=tuple(_strings(data, "genres")),
            ids=dict(ids),
            images=tuple(HintImage(_req(i, "images[].type", "type"), _req(i, "images[].url", "url"))
                         for i in _objects(data, "images")),
            episodes=tuple(HintEpisode(season=_opt(e, "season", int), episode=_opt(e, "episode", int),
                                       title=_opt(e, "title", str), aired=_opt(e, "aired", str),
                                       overview=_opt(e, "overview", str), tvdb_id=_opt(e, "tvdb_id", int),
                                       file=_opt(e, "file", str))
                           for e in _objects(data, "episodes")),
        )


def _opt(data: dict[str, Any], key: str, kind: type) -> Any:
    """data[key] when it is of `kind` (bools are not ints), None when absent; UserError otherwise."""
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise UserError(f"hints.{key} must be a {kind.__name__}, got {value!r}")
    return value


def _req(data: dict[str, Any], name: str, key: str) -> str:
    """A required string member of one list element."""
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise UserError(f"hints.{name} must be a non-empty string")
    return value


def _strings(data: dict[str, Any], key: str) -> list[str]:
    """A list of strings, or an error naming the key."""
    value = data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UserError(f"hints.{key} must be a list of strings")
    return value


def _objects(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """A list of objects, or an error naming the key."""
    value = data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise UserError(f"hints.{key} must be a list of objects")
    return value
