"""Decoding bodies and reading loosely-typed values out of sender JSON without crashing."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from agent import safejson
from agent.errors import UserError
from agent.safejson import MAX_INT
from agent.store.fields import fit

if TYPE_CHECKING:
    from agent.webhooks.model import WebhookEvent

_GUID_RE = re.compile(
    r"^\{?([0-9a-fA-F]{8})-?([0-9a-fA-F]{4})-?([0-9a-fA-F]{4})-?([0-9a-fA-F]{4})-?([0-9a-fA-F]{12})\}?$"
)
_IMDB_RE = re.compile(r"^(?:tt)?0*(\d{1,10})$", re.IGNORECASE)
_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off", ""}


def decode_json_object(body: bytes, content_type: str, source: str) -> dict[str, Any]:
    """Decode a body as a JSON object whatever the content type; UserError says what is wrong."""
    if not body or not body.strip():
        raise UserError(f"{source} webhook: empty body (expected a JSON object)")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        where = f"{exc.reason} at byte {exc.start}"
        raise UserError(f"{source} webhook: body is not UTF-8 text ({where})") from None
    try:
        data = safejson.loads(text)
    except json.JSONDecodeError as exc:
        shown = f" (content type {content_type})" if content_type else ""
        raise UserError(
            f"{source} webhook: body is not JSON{shown}: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except ValueError as exc:  # a number with more than 4,300 digits
        raise UserError(f"{source} webhook: body is not usable JSON: {exc}") from None
    except UserError as exc:  # NaN, a huge number, a lone surrogate, NUL, deep nesting: named by key path
        raise UserError(f"{source} webhook: {exc.message}", detail=exc.detail) from None
    if not isinstance(data, dict):
        raise UserError(f"{source} webhook: body is JSON {json_type(data)}, expected an object")
    return data


def json_type(value: object) -> str:
    """Name a decoded JSON value's type the way a user would (object, array, string ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def require_str(data: Mapping[str, Any], key: str, source: str) -> str:
    """Return a non-empty string field or raise UserError naming it."""
    if key not in data:
        raise UserError(f"{source} webhook: no '{key}' in the body; is this a {source} payload?")
    value = data[key]
    if not isinstance(value, str):
        raise UserError(f"{source} webhook: '{key}' is {json_type(value)}, expected a string")
    if not value.strip():
        raise UserError(f"{source} webhook: '{key}' is empty")
    return value.strip()


def opt_obj(data: Mapping[str, Any], key: str, source: str) -> dict[str, Any] | None:
    """Return an optional object field; a present value of another type is a UserError."""
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise UserError(f"{source} webhook: '{key}' is {json_type(value)}, expected an object")
    return value


def opt_list(data: Mapping[str, Any], key: str) -> list[Any]:
    """Return a list field, or [] when it is missing or not a list."""
    value = data.get(key)
    return value if isinstance(value, list) else []


def as_str(value: object) -> str | None:
    """A stripped non-empty string, numbers turned into text; anything else is None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def as_int(value: object) -> int | None:
    """An int (64-bit) from an int, a whole float or a numeric string ("05"); anything else is None."""
    if isinstance(value, bool) or value is None:
        return None
    number: int | None = None
    if isinstance(value, int):
        number = value
    elif (isinstance(value, float) and math.isfinite(value) and value.is_integer()) or (
            isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,19}\s*", value)):
        number = int(value)
    return number if number is not None and -MAX_INT - 1 <= number <= MAX_INT else None


def as_float(value: object) -> float | None:
    """A finite float from a number or a numeric string; anything else ("NaN", "inf" too) is None."""
    if isinstance(value, bool) or value is None:
        return None
    number: float | None = None
    if isinstance(value, int | float):
        number = float(value) if abs(value) < 1e300 else None
    elif isinstance(value, str) and len(value) < 100:
        try:
            number = float(value.strip())
        except ValueError:
            return None
    return number if number is not None and math.isfinite(number) else None


def as_bool(value: object) -> bool | None:
    """A bool from a bool, 0/1 or "True"/"false" (Handlebars renders C# bools as "True")."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    return None


def as_date(value: object) -> str | None:
    """The `YYYY-MM-DD` part of a date or timestamp string, else None."""
    text = as_str(value)
    if text and re.match(r"^\d{4}-\d{2}-\d{2}", text):
        return text[:10]
    return None


def normalise_guid(value: object) -> str | None:
    """A GUID as 32 lower-case hex digits, accepting dashed, braced or bare forms; None if not one."""
    text = as_str(value)
    if not text:
        return None
    match = _GUID_RE.match(text)
    return "".join(match.groups()).lower() if match else None


def positive_id(value: object) -> int | None:
    """A TMDB/TVDB id as a positive int (0, negatives and junk dropped)."""
    number = as_int(value)
    return number if number and number > 0 else None


def imdb_id(value: object) -> str | None:
    """An IMDb id as "tt" + at least 7 digits; "0", "" and junk dropped."""
    text = as_str(value)
    match = _IMDB_RE.match(text) if text else None
    if not match or int(match.group(1)) == 0:
        return None
    return "tt" + match.group(1).zfill(7)


def make_ids(tmdb: object = None, imdb: object = None, tvdb: object = None) -> dict[str, int | str]:
    """Build the normalised ids dict, keeping only the ids that are really there."""
    ids: dict[str, int | str] = {}
    if (t := positive_id(tmdb)) is not None:
        ids["tmdb"] = t
    if (i := imdb_id(imdb)) is not None:
        ids["imdb"] = i
    if (v := positive_id(tvdb)) is not None:
        ids["tvdb"] = v
    return ids


def merge_ids(primary: dict[str, int | str], fallback: dict[str, int | str]) -> dict[str, int | str]:
    """Fill ids missing from `primary` with those from `fallback`."""
    return {**fallback, **primary}


def genres(value: object) -> list[str]:
    """Genres from a list of strings or a "Drama, Comedy" string."""
    if isinstance(value, str):
        items: list[object] = list(value.split(","))
    elif isinstance(value, list):
        items = value
    else:
        return []
    out = [s for s in (as_str(item) for item in items) if s]
    return list(dict.fromkeys(out))


def clock_seconds(value: object) -> float | None:
    """Seconds from an "hh:mm:ss" (or "mm:ss") string, else None."""
    text = as_str(value)
    if not text or not re.fullmatch(r"\d+(:\d{1,2}){1,2}(\.\d+)?", text):
        return None
    total = 0.0
    for part in text.split(":"):
        total = total * 60 + float(part)
    return total


class CaseInsensitive(Mapping[str, Any]):
    """A read-only view of a dict whose keys match regardless of case (Jellyfin templates vary)."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = dict(data)
        self._keys = {k.lower(): k for k in data if isinstance(k, str)}

    def __getitem__(self, key: str) -> Any:
        """Look a key up case-insensitively."""
        return self._data[self._keys[key.lower()]]

    def __contains__(self, key: object) -> bool:
        """True when a key matches case-insensitively."""
        return isinstance(key, str) and key.lower() in self._keys

    def __iter__(self) -> Iterator[str]:
        """Iterate the original keys."""
        return iter(self._data)

    def __len__(self) -> int:
        """Number of keys."""
        return len(self._data)


def fit_event(event: WebhookEvent) -> WebhookEvent:
    """The event with every value that becomes an item field checked against the field table (agent.store.fields).

    A sender's value that cannot fit (year 99999, a 5,000-character title, an id past 2^63) is dropped, and
    text is cleaned of control characters, so a webhook hint can never fail an enrich or a publish later.
    """
    event.title, event.series_title = fit("title", event.title), fit("title", event.series_title)
    event.overview, event.year = fit("plot", event.overview), fit("year", event.year)
    event.genres = fit("genres", event.genres) or []
    event.season, event.episode = fit("season", event.season), fit("episode", event.episode)
    event.ids = {k: v for k, v in event.ids.items() if fit(f"{k}_id", v) is not None}
    event.images = [i for i in event.images if len(i.url) <= 2048]
    event.episodes = [
        dataclasses.replace(ep, season=fit("season", ep.season), episode=fit("episode", ep.episode),
                            title=fit("title", ep.title), aired=fit("aired", ep.aired),
                            overview=fit("plot", ep.overview), tvdb_id=fit("tvdb_id", ep.tvdb_id))
        for ep in event.episodes
    ]
    if event.playback is not None:
        pb = event.playback
        event.playback = dataclasses.replace(
            pb, position_seconds=_seconds_or_none(pb.position_seconds),
            total_seconds=_seconds_or_none(pb.total_seconds),
            user=fit("title", pb.user), player=fit("title", pb.player), client=fit("title", pb.client))
    return event


def _seconds_or_none(value: float | None) -> float | None:
    """A playback position in seconds when it is finite and not negative."""
    return value if value is not None and math.isfinite(value) and 0 <= value <= 1e8 else None
