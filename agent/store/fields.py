"""The declared shape of every editable item field: its type and range, checked before anything is saved.

`FIELDS` is the one table. A user's PATCH goes through `validate` (a wrong value is a 400 naming
the field, e.g. `actors[0].name: expected text, got 5`); a sender's webhook value goes through `fit`
(a wrong value is dropped, text is cleaned and cut to length), so a field never holds what its NFO
tag, the reply JSON or SQLite cannot take.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Final

from agent.errors import UserError
from agent.safejson import MAX_INT, text_problem
from agent.safejson import where as child

_CONTROL: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")  # never in text
_NEWLINE: Final = re.compile("[\n\r]")


class FieldError(UserError):
    """One field's value does not fit its declared shape; the message starts with the field's path."""


def _kind(value: Any) -> str:
    """A JSON type name for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    return "a list" if isinstance(value, list) else "an object"


def _fail(path: str, message: str, value: Any = None) -> FieldError:
    """A FieldError for `path`, showing a short form of the value."""
    shown = repr(value) if isinstance(value, int | float | bool) or value is None else _kind(value)
    if isinstance(value, str):
        shown = repr(value if len(value) <= 40 else value[:37] + "...")
    return FieldError(f"{path}: {message}, got {shown}", detail={"field": path})


class Spec(ABC):
    """One shape; `check` returns the normalised value or raises FieldError naming `path`."""

    @abstractmethod
    def check(self, value: Any, path: str) -> Any:
        """Validate and normalise."""

    def tidy(self, value: Any) -> Any:
        """A sender's value made as fitting as it can be before `check` (text cleaned and cut)."""
        return value


class Text(Spec):
    """A string of at most `max_len` characters, no control characters (newlines only if `multiline`)."""

    def __init__(self, max_len: int, multiline: bool = False, pattern: str | None = None, hint: str = "") -> None:
        self.max_len, self.multiline = max_len, multiline
        self.pattern, self.hint = (re.compile(pattern) if pattern else None), hint

    def check(self, value: Any, path: str) -> Any:
        """Stripped text, or a FieldError."""
        if not isinstance(value, str):
            raise _fail(path, "expected text", value)
        if (problem := text_problem(value)) is not None:
            raise FieldError(f"{path}: {problem}", detail={"field": path})
        value = value.strip()
        bad = _CONTROL.search(value) or (None if self.multiline else _NEWLINE.search(value))
        if bad:
            raise FieldError(f"{path}: text contains the control character U+{ord(bad.group()):04X}",
                             detail={"field": path})
        if len(value) > self.max_len:
            raise FieldError(f"{path}: text is longer than {self.max_len} characters ({len(value)})",
                             detail={"field": path})
        if self.pattern and value and not self.pattern.fullmatch(value):
            raise _fail(path, f"must look like {self.hint}", value)
        return value

    def tidy(self, value: Any) -> Any:
        """Control characters removed (newlines too unless multiline), cut to max_len."""
        if not isinstance(value, str):
            return value
        value = _CONTROL.sub("", value.replace("\x00", ""))
        value = value if self.multiline else _NEWLINE.sub(" ", value)
        return value.strip()[: self.max_len].strip()


class Int(Spec):
    """An integer in [lo, hi]; a numeric string ("1234") is read as its number."""

    def __init__(self, lo: int, hi: int) -> None:
        self.lo, self.hi = lo, hi

    def check(self, value: Any, path: str) -> Any:
        """The integer, or a FieldError."""
        number = value
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,19}\s*", value):
            number = int(value)
        if isinstance(value, float) and value.is_integer():
            number = int(value)
        if isinstance(number, bool) or not isinstance(number, int):
            raise _fail(path, "expected a whole number", value)
        if not self.lo <= number <= self.hi:
            raise _fail(path, f"must be between {self.lo} and {self.hi}", value)
        return number


class Number(Spec):
    """A finite number in [lo, hi]."""

    def __init__(self, lo: float, hi: float) -> None:
        self.lo, self.hi = lo, hi

    def check(self, value: Any, path: str) -> Any:
        """The number, or a FieldError."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(path, "expected a number", value)
        if not math.isfinite(value) or not self.lo <= value <= self.hi:
            raise _fail(path, f"must be a finite number between {self.lo:g} and {self.hi:g}", value)
        return value


class Bool(Spec):
    """true or false."""

    def check(self, value: Any, path: str) -> Any:
        """The bool, or a FieldError."""
        if not isinstance(value, bool):
            raise _fail(path, "expected true or false", value)
        return value


class Date(Spec):
    """A real calendar date written YYYY-MM-DD, in the years 1800 to 2200."""

    def check(self, value: Any, path: str) -> Any:
        """The date text, or a FieldError."""
        if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
            raise _fail(path, "must be a date like 1999-03-31", value)
        try:
            day = dt.date.fromisoformat(value.strip())
        except ValueError:
            raise _fail(path, "is not a real date", value) from None
        if not 1800 <= day.year <= 2200:
            raise _fail(path, "must be a date in the years 1800 to 2200", value)
        return value.strip()

    def tidy(self, value: Any) -> Any:
        """The date part of a timestamp."""
        return value[:10] if isinstance(value, str) else value


class ListOf(Spec):
    """A list of at most `max_items` values of one shape; `split` also reads "A / B" text as a list."""

    def __init__(self, item: Spec, max_items: int, split: str | None = None) -> None:
        self.item, self.max_items, self.split = item, max_items, split

    def check(self, value: Any, path: str) -> Any:
        """The checked list, or a FieldError."""
        if self.split and isinstance(value, str):
            value = [v.strip() for v in value.split(self.split) if v.strip()]
        if not isinstance(value, list):
            raise _fail(path, "expected a list", value)
        if len(value) > self.max_items:
            raise FieldError(f"{path}: more than {self.max_items} entries ({len(value)})", detail={"field": path})
        return [self.item.check(v, child(path, i)) for i, v in enumerate(value)]

    def tidy(self, value: Any) -> Any:
        """Entries that cannot fit are dropped, the rest tidied."""
        if not isinstance(value, list):
            return value
        return [v for v in (fit_value(self.item, x) for x in value) if v not in (None, "")][: self.max_items]


class Record(Spec):
    """An object with known keys (`required` must be present); `text_key` also reads plain text as that key."""

    def __init__(self, keys: dict[str, Spec], required: tuple[str, ...] = (), text_key: str | None = None,
                 after: Callable[[dict[str, Any], str], None] | None = None) -> None:
        self.keys, self.required, self.text_key, self.after = keys, required, text_key, after

    def check(self, value: Any, path: str) -> Any:
        """The checked object (null members dropped), or a FieldError."""
        if self.text_key and isinstance(value, str):
            value = {self.text_key: value}
        if not isinstance(value, dict):
            raise _fail(path, "expected an object", value)
        out: dict[str, Any] = {}
        for key, member in value.items():
            if key not in self.keys:
                known = ", ".join(self.keys)
                raise FieldError(f"{child(path, key)}: unknown key (known: {known})", detail={"field": path})
            if member is not None:
                out[key] = self.keys[key].check(member, child(path, key))
        for key in self.required:
            if out.get(key) in (None, ""):
                raise FieldError(f"{child(path, key)}: required", detail={"field": path})
        if self.after:
            self.after(out, path)
        return out


class MapOf(Spec):
    """An object of at most `max_items` keys matching `key_pattern`, each value of one shape."""

    def __init__(self, value: Spec, max_items: int, key_pattern: str = r"[A-Za-z0-9_.-]{1,50}") -> None:
        self.value, self.max_items, self.key_pattern = value, max_items, re.compile(key_pattern)

    def check(self, value: Any, path: str) -> Any:
        """The checked object, or a FieldError."""
        if not isinstance(value, dict):
            raise _fail(path, "expected an object", value)
        if len(value) > self.max_items:
            raise FieldError(f"{path}: more than {self.max_items} keys ({len(value)})", detail={"field": path})
        out: dict[str, Any] = {}
        for key, member in value.items():
            if not self.key_pattern.fullmatch(key):
                raise _fail(child(path, key[:40]), "is not a usable key (letters, digits, _ . -)", key)
            out[key] = self.value.check(member, child(path, key))
        return out


class AnyOf(Spec):
    """The first of several shapes that fits."""

    def __init__(self, *specs: Spec, name: str) -> None:
        self.specs, self.name = specs, name

    def check(self, value: Any, path: str) -> Any:
        """The value as the first shape that takes it, or a FieldError."""
        for spec in self.specs:
            try:
                return spec.check(value, path)
            except FieldError:
                continue
        raise _fail(path, f"expected {self.name}", value)


def _rating_in_scale(rating: dict[str, Any], path: str) -> None:
    """A rating's value lies within 0 and its max (10 when not given)."""
    top = rating.get("max", 10)
    if "value" in rating and rating["value"] > top:
        raise _fail(child(path, "value"), f"must be between 0 and the rating's max ({top})", rating["value"])


TITLE = Text(1000)
NAMES = ListOf(Text(300), 500, split="/")
STAMP = Text(40)  # "2024-01-31 20:15:00" as Kodi writes it
URL = Text(2048)
FIELDS: Final[dict[str, Spec]] = {
    "title": TITLE, "original_title": TITLE, "sort_title": TITLE, "showtitle": TITLE,
    "plot": Text(65536, multiline=True), "outline": Text(4096, multiline=True), "tagline": Text(1000),
    "mpaa": Text(100), "certification": Text(100), "show_status": Text(100), "trailer": URL,
    "dateadded": STAMP, "lastplayed": STAMP, "premiered": Date(), "aired": Date(),
    "imdb_id": Text(12, pattern=r"tt\d{5,10}", hint="tt0133093"),
    "year": Int(1800, 2200), "runtime": Int(0, 100_000), "tmdb_id": Int(1, MAX_INT), "tvdb_id": Int(1, MAX_INT),
    "season": Int(0, 10_000), "episode": Int(0, 100_000), "episode_end": Int(0, 100_000),
    "display_season": Int(-1, 10_000), "display_episode": Int(-1, 100_000),
    "userrating": Int(0, 10), "top250": Int(0, 250), "playcount": Int(0, 1_000_000),
    "genres": NAMES, "countries": NAMES, "studios": NAMES, "directors": NAMES, "credits": NAMES, "tags": NAMES,
    "actors": ListOf(Record({"name": Text(300), "role": Text(1000), "order": Int(0, 1_000_000), "thumb": URL},
                            required=("name",)), 5000),
    "ratings": ListOf(Record({"name": Text(100), "value": Number(0, 1000), "votes": Int(0, MAX_INT),
                              "max": Int(1, 1000), "default": Bool()}, required=("value",),
                             after=_rating_in_scale), 50),
    "set": Record({"name": TITLE, "overview": Text(65536, multiline=True), "tmdbcolid": Int(1, MAX_INT)},
                  required=("name",), text_key="name"),
    "uniqueids": MapOf(AnyOf(Text(200), Int(0, MAX_INT), name="an id (text or a whole number)"), 50),
    "streamdetails": Record({kind: ListOf(MapOf(AnyOf(Text(200), Number(-1e12, 1e12), name="text or a number"),
                                                50), 100) for kind in ("video", "audio", "subtitle")}),
    "resume": Record({"position": Number(0, 1e8), "total": Number(0, 1e8)}),
}


def validate(name: str, value: Any) -> Any:
    """A user's value for field `name` checked and normalised; None or "" clears; FieldError otherwise."""
    if value is None or value == "":
        return None
    return FIELDS[name].check(value, name)


def fit_value(spec: Spec, value: Any) -> Any:
    """A sender's value tidied and checked against `spec`; None when it cannot fit."""
    if value is None:
        return None
    try:
        return spec.check(spec.tidy(value), "")
    except FieldError:
        return None


def fit(name: str, value: Any) -> Any:
    """A sender's value for field `name`, or None when it cannot fit (webhooks drop, never refuse, a bad value)."""
    out = fit_value(FIELDS[name], value)
    return None if out in ("", [], {}) else out
