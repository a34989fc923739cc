"""Read any NFO (Kodi, Jellyfin, tinyMediaManager, Radarr/Sonarr, Ember, URL-only) into the field model."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import re
import time
import xml.etree.ElementTree as ET
from typing import Any, Final

from agent.nfo.document import PARSE_SECONDS, Document, check_deadline, decode_nfo, split_document
from agent.nfo.ids import collect_ids, collection_id, ids_from_text, scalar_ids
from agent.nfo.model import KINDS, NfoError, NfoResult

# field key -> tags read for it, first non-empty wins.
_TEXT_FIELDS: Final = {
    "title": ("title", "name", "localtitle"),
    "original_title": ("originaltitle",),
    "sort_title": ("sorttitle", "sortname"),
    "plot": ("plot", "biography", "review"),
    "outline": ("outline",),
    "tagline": ("tagline",),
    "mpaa": ("mpaa",),
    "certification": ("certification",),
    "trailer": ("trailer",),
    "dateadded": ("dateadded",),
    "lastplayed": ("lastplayed",),
    "showtitle": ("showtitle",),
}
_INT_FIELDS: Final = {
    "year": ("year",),
    "runtime": ("runtime",),
    "userrating": ("userrating",),
    "season": ("season",),
    "episode": ("episode",),
    "episode_end": ("episodenumberend",),
    "display_season": ("displayseason",),
    "display_episode": ("displayepisode",),
    "playcount": ("playcount",),
}
_LIST_FIELDS: Final = {
    "genres": ("genre",),
    "countries": ("country",),
    "studios": ("studio",),
    "directors": ("director",),
    "credits": ("credits", "writer"),
    "tags": ("tag",),
}
_STREAM_INTS: Final = {"width", "height", "channels", "durationinseconds", "bitrate"}
_STREAM_FLOATS: Final = {"aspect"}
# Kodi's CDateTime::SetFromDBDate: yyyy-mm-dd or dd-mm-yyyy, the separator any of - . /
_DATE_YMD: Final = re.compile(r"^(\d{4})([-./])(\d{1,2})\2(\d{1,2})(?!\d)")
_DATE_DMY: Final = re.compile(r"^(\d{1,2})([-./])(\d{1,2})\2(\d{4})(?!\d)")
_FIRST_YEAR, _LAST_YEAR = 1800, 2200  # the range the field table (agent/store/fields.py Date) holds
_CLOCK: Final = re.compile(r"[ T](\d{2}:\d{2}:\d{2})\b")
_MAX_PLAYCOUNT: Final = 1_000_000  # the field table's range
_SIGNED: Final = re.compile(r"^\s*(-?\d{1,9})\s*$")
# Jellyfin/Emby <actor><type>: who is cast, and which people go to the director and writer lists.
_CAST_TYPES: Final = frozenset({"", "actor", "gueststar"})
_PEOPLE_LISTS: Final = {"director": "directors", "writer": "credits"}
_LEADING_NUMBER: Final = re.compile(r"^\s*(\d{1,30}(?:[.,]\d{1,30})?)(?!\d)")
_MAX_INT: Final = 2**53  # larger numbers in an NFO are nonsense (and over 2**63 no database column holds them)


def _text(el: ET.Element | None) -> str:
    """The stripped text of an element ('' when missing)."""
    return (el.text or "").strip() if el is not None else ""


def _first_text(root: ET.Element, tags: tuple[str, ...]) -> str:
    """The first non-empty text among the given child tags."""
    for tag in tags:
        for el in root.findall(tag):
            if value := _text(el):
                return value
    return ""


def to_int(value: str | None) -> int | None:
    """An int from NFO text ('136', '136 min', '8.0', '1,234'), else None."""
    text = (value or "").replace(",", "").strip()
    match = _LEADING_NUMBER.match(text)
    if not match:
        return None
    number = round(float(match.group(1).replace(",", ".")))
    return number if number <= _MAX_INT else None


def to_float(value: str | None) -> float | None:
    """A finite float from NFO text (comma decimal accepted), else None (also for inf and nan)."""
    try:
        number = float((value or "").strip().replace(",", "."))
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _date(value: str) -> str:
    """A real calendar date from the start of value in a form Kodi reads, as YYYY-MM-DD; '' otherwise."""
    text = value.strip()
    if match := _DATE_YMD.match(text):
        year, month, day = match.group(1), match.group(3), match.group(4)
    elif match := _DATE_DMY.match(text):
        day, month, year = match.group(1), match.group(3), match.group(4)
    else:
        return ""
    try:
        day_read = dt.date(int(year), int(month), int(day))
    except ValueError:  # 2009-13-45, 31.02.2009, 0000-00-00
        return ""
    return day_read.isoformat() if _FIRST_YEAR <= day_read.year <= _LAST_YEAR else ""


def _stamp(value: str) -> str:
    """Kodi's "yyyy-mm-dd hh:mm:ss" from a date (any form _date reads) and an optional time; '' otherwise."""
    text = value.strip()
    day = _date(text)
    if not day:
        return ""
    clock = _CLOCK.search(text)
    return f"{day} {clock.group(1)}" if clock else day


def _signed(value: str | None) -> int | None:
    """A whole number that may be negative (season="-1" is the all-seasons art), else None."""
    match = _SIGNED.match(value or "")
    return int(match.group(1)) if match else None


def _list(root: ET.Element, tags: tuple[str, ...]) -> list[str]:
    """Repeated tag values, each split on ' / ', de-duplicated in order."""
    values: list[str] = []
    for tag in tags:
        for el in root.findall(tag):
            for part in _text(el).split(" / "):
                if (item := part.strip()) and item not in values:
                    values.append(item)
    return values


def _ratings(root: ET.Element) -> list[dict[str, Any]]:
    """<ratings><rating>, or the legacy top-level <rating>+<votes> when there is no <ratings>."""
    out: list[dict[str, Any]] = []
    for el in root.findall("ratings/rating"):
        value = to_float(_text(el.find("value")))
        if value is None:
            continue
        out.append({
            "name": (el.get("name") or "default").strip() or "default",
            "value": value,
            "votes": to_int(_text(el.find("votes"))) or 0,
            "max": to_int(el.get("max")) or 10,
            "default": (el.get("default") or "").lower() == "true",
        })
    if not out and root.find("ratings") is None:
        value = to_float(_first_text(root, ("rating",)))
        if value is not None and value > 0:
            votes = to_int(_first_text(root, ("votes",))) or 0
            out.append({"name": "default", "value": value, "votes": votes, "max": 10, "default": True})
    if not out and root.find("ratings") is None:  # Jellyfin/Emby's <communityrating>, 0-10
        value = to_float(_first_text(root, ("communityrating",)))
        if value is not None and 0 < value <= 10:
            out.append({"name": "default", "value": value, "votes": 0, "max": 10, "default": True})
    return out


def _actors(root: ET.Element, people: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
    """Cast with name, role, order (the NFO's, else the position) and thumb.

    A Jellyfin/Emby <type> other than Actor or GuestStar is not cast: Director and Writer names are
    added to `people` ("directors", "credits"), other crew (Producer, Lyricist...) is skipped.
    """
    out: list[dict[str, Any]] = []
    for index, el in enumerate(root.findall("actor")):
        name = _text(el.find("name"))
        if not name:
            continue
        person_type = _text(el.find("type")).lower()
        if person_type not in _CAST_TYPES:
            if people is not None and person_type in _PEOPLE_LISTS:
                names = people.setdefault(_PEOPLE_LISTS[person_type], [])
                if name not in names:
                    names.append(name)
            continue
        order = to_int(_text(el.find("order"))) if el.find("order") is not None else None
        if order is None:
            order = to_int(_text(el.find("sortorder")))
        out.append({
            "name": name,
            "role": _text(el.find("role")),
            "order": index if order is None else order,
            "thumb": _text(el.find("thumb")),
        })
    return out


def _set(root: ET.Element) -> dict[str, Any] | None:
    """The movie set: <set><name/><overview/></set> or the legacy <set>name</set>, with its collection id."""
    el = root.find("set")
    if el is None:
        return None
    name = _text(el.find("name")) or _text(el)
    if not name:
        return None
    out: dict[str, Any] = {"name": name, "overview": _text(el.find("overview"))}
    if (collection := collection_id(root)) is not None:
        out["tmdbcolid"] = int(collection)
    return out


def _thumbs(root: ET.Element) -> list[dict[str, Any]]:
    """Top-level <thumb> artwork as {aspect, url} (+ season for season art)."""
    out: list[dict[str, Any]] = []
    for el in root.findall("thumb"):
        url = _text(el)
        if not url:
            continue
        thumb: dict[str, Any] = {"aspect": (el.get("aspect") or "").strip(), "url": url}
        season = _signed(el.get("season"))
        if season is not None and (el.get("type") or "season") == "season":
            thumb["season"] = season
        out.append(thumb)
    return out


def _fanart(root: ET.Element) -> list[str]:
    """<fanart><thumb> URLs, joined with the legacy fanart@url prefix when present."""
    out: list[str] = []
    for fanart in root.findall("fanart"):
        base = (fanart.get("url") or "").strip()
        for el in fanart.findall("thumb"):
            if url := _text(el):
                out.append(url if not base or "://" in url else base + url)
    return out


def _streamdetails(root: ET.Element) -> dict[str, list[dict[str, Any]]] | None:
    """fileinfo/streamdetails as {video: [...], audio: [...], subtitle: [...]} of tag -> value."""
    details = root.find("fileinfo/streamdetails")
    if details is None:
        return None
    out: dict[str, list[dict[str, Any]]] = {"video": [], "audio": [], "subtitle": []}
    for stream_type, streams in out.items():
        for el in details.findall(stream_type):
            stream: dict[str, Any] = {}
            for child in el:
                value: Any = _text(child)
                if not value:
                    continue
                if child.tag in _STREAM_INTS:
                    value = to_int(value)
                elif child.tag in _STREAM_FLOATS:
                    value = to_float(value)
                if value is not None:
                    stream[child.tag] = value
            streams.append(stream)
    return out if any(out.values()) else None


def _named_seasons(root: ET.Element) -> dict[str, str]:
    """<namedseason number="1">Name</namedseason> as {"1": "Name"}."""
    out: dict[str, str] = {}
    for el in root.findall("namedseason"):
        number = to_int(el.get("number"))
        if number is not None and (name := _text(el)):
            out[str(number)] = name
    return out


def fields_from_element(root: ET.Element, kind: str | None) -> dict[str, Any]:
    """The agent's field dict for one NFO root element; keys without a value are omitted."""
    fields: dict[str, Any] = {}
    for key, tags in _TEXT_FIELDS.items():
        if value := _first_text(root, tags):
            fields[key] = value
    for key, tags in _INT_FIELDS.items():
        if (number := to_int(_first_text(root, tags))) is not None:
            fields[key] = number
    for key, tags in (("premiered", ("premiered", "releasedate")), ("aired", ("aired",))):
        if value := _date(_first_text(root, tags)):
            fields[key] = value
    if "lastplayed" in fields:
        fields["lastplayed"] = _stamp(fields["lastplayed"])
        if not fields["lastplayed"]:
            del fields["lastplayed"]  # a stamp that does not start with a date Kodi reads
    if not 0 <= fields.get("playcount", 0) <= _MAX_PLAYCOUNT:
        del fields["playcount"]
    if kind == "tvshow":  # Kodi counts a show's plays from its episodes
        fields.pop("playcount", None)
        fields.pop("lastplayed", None)
        if status := _first_text(root, ("status",)):
            fields["show_status"] = status
    if "year" not in fields and (premiered := fields.get("premiered")):
        fields["year"] = int(premiered[:4])  # Kodi reads <year> only without <premiered>
    if (top250 := to_int(_first_text(root, ("top250",)))) is not None and 0 < top250 <= 250:
        fields["top250"] = top250  # 0 is "not in the top 250"
    people: dict[str, list[str]] = {}
    actors = _actors(root, people)
    for key, tags in _LIST_FIELDS.items():
        values = _list(root, tags)
        values += [name for name in people.get(key, []) if name not in values]
        if values:
            fields[key] = values
    extras: dict[str, Any] = {
        "actors": actors,
        "ratings": _ratings(root),
        "set": _set(root),
        "thumbs": _thumbs(root),
        "fanart": _fanart(root),
        "streamdetails": _streamdetails(root),
        "named_seasons": _named_seasons(root),
        "uniqueids": collect_ids(root, kind),
    }
    fields.update({key: value for key, value in extras.items() if value})
    fields.update(scalar_ids(fields.get("uniqueids", {})))
    return fields


def _with_free_text_ids(result: NfoResult, free_text: str) -> str | None:
    """Add the ids and URLs of free text to the result; returns the kind a URL implies."""
    ids, urls, url_kind = ids_from_text(free_text)
    result.urls = urls
    if ids:
        targets = result.episodes if result.episodes else [result.fields]
        for fields in targets:
            merged = dict(fields.get("uniqueids") or {})
            for id_type, value in ids.items():
                merged.setdefault(id_type, value)
            fields["uniqueids"] = merged
            fields.update(scalar_ids(merged))
    return url_kind


def parse_nfo(data: bytes, kind_hint: str | None = None, budget: float = PARSE_SECONDS) -> NfoResult:
    """Read an NFO; a malformed or hostile file gives `error`, never an exception.

    Blocking CPU work bounded by MAX_NFO_BYTES, the root and depth limits and `budget` seconds: an
    async caller runs it in a thread (see parse_nfo_async).
    """
    result = NfoResult()
    deadline = time.monotonic() + budget
    try:
        text, result.encoding = decode_nfo(data)
        check_deadline(deadline)
        doc = split_document(text, result.encoding, deadline)
        _read_document(result, doc, kind_hint, deadline)
    except NfoError as exc:
        return NfoResult(encoding=result.encoding, error=exc.message)
    except (RecursionError, ValueError, OverflowError) as exc:  # a hostile value deep in a tag
        return NfoResult(encoding=result.encoding, error=f"NFO could not be read: {type(exc).__name__}: {exc}")
    return result


def _read_document(result: NfoResult, doc: Document, kind_hint: str | None, deadline: float) -> None:
    """Fill `result` from a split document (each root's fields, ids and URLs of the free text)."""
    if doc.roots:
        name = doc.roots[0].name
        result.kind = name if name in KINDS else (kind_hint if kind_hint in KINDS else None)
        parsed = []
        for root in doc.roots:
            check_deadline(deadline)
            parsed.append(fields_from_element(root.element, result.kind))
        result.fields = parsed[0]
        if result.kind == "episodedetails":
            result.episodes = parsed
        _with_free_text_ids(result, doc.free_text)
        return
    url_kind = _with_free_text_ids(result, doc.free_text)
    result.kind = kind_hint if kind_hint in KINDS else url_kind
    if not result.fields.get("uniqueids"):
        result.error = "not a metadata NFO: no XML root element and no TMDB, IMDb or TVDB link"


async def parse_nfo_async(data: bytes, kind_hint: str | None = None, budget: float = PARSE_SECONDS) -> NfoResult:
    """parse_nfo off the event loop, in a worker thread (the budget bounds how long that thread works)."""
    return await asyncio.to_thread(parse_nfo, data, kind_hint, budget)
