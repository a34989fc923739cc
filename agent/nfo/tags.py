"""Build the XML elements of each managed NFO tag from the agent's field dict."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any, Final

_TEXT_TAGS: Final = {
    "title": "title", "originaltitle": "original_title", "sorttitle": "sort_title", "showtitle": "showtitle",
    "outline": "outline", "plot": "plot", "tagline": "tagline", "mpaa": "mpaa",
    "certification": "certification", "dateadded": "dateadded", "premiered": "premiered", "aired": "aired",
    "status": "show_status", "lastplayed": "lastplayed",
}
_INT_TAGS: Final = {
    "userrating": "userrating", "runtime": "runtime", "year": "year", "season": "season",
    "episode": "episode", "episodenumberend": "episode_end", "displayseason": "display_season",
    "displayepisode": "display_episode", "playcount": "playcount",
}
_LIST_TAGS: Final = {
    "genre": "genres", "country": "countries", "tag": "tags", "credits": "credits",
    "director": "directors", "studio": "studios",
}
_ALIAS_TAGS: Final = {"tmdbid": "tmdb", "imdbid": "imdb", "tvdbid": "tvdb"}
_ART_ORDER: Final = ("poster", "banner", "clearlogo", "clearart", "discart", "landscape", "keyart", "thumb")
_SEASON_ART: Final = re.compile(r"^season(\d+|-specials|-all)-(\w+)$")
_INVALID_XML: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_YOUTUBE_KEY: Final = re.compile(r"^[A-Za-z0-9_-]{11}$")
_YOUTUBE_URL: Final = re.compile(
    r"(?:youtube(?:-nocookie)?\.com/(?:watch\?(?:.*&)?v=|embed/|shorts/|v/)|youtu\.be/"
    r"|plugin\.video\.youtube/\?(?:.*&)?videoid=)([A-Za-z0-9_-]{11})"
)
YOUTUBE_PLUGIN: Final = "plugin://plugin.video.youtube/play/?video_id="


def clean_text(value: Any) -> str:
    """Text safe for XML 1.0: str() of the value, newlines normalised, without characters XML cannot hold."""
    text = str(value).replace("\r\n", "\n").replace("\r", "\n")
    return _INVALID_XML.sub("", text).strip()


def _el(tag: str, text: Any = None, **attrs: str) -> ET.Element:
    """A new element with cleaned text and attributes."""
    el = ET.Element(tag, {k: clean_text(v) for k, v in attrs.items()})
    if text is not None:
        el.text = clean_text(text)
    return el


def _sub(parent: ET.Element, tag: str, text: Any) -> None:
    """Append a child with text unless the text is empty."""
    if text is not None and clean_text(text) != "":
        parent.append(_el(tag, text))


def kodi_trailer(value: str) -> str:
    """A bare YouTube key or YouTube URL as Kodi's YouTube plugin URL; anything else unchanged."""
    text = value.strip()
    if text.startswith(YOUTUBE_PLUGIN):
        return text
    if _YOUTUBE_KEY.match(text):
        return YOUTUBE_PLUGIN + text
    match = _YOUTUBE_URL.search(text)
    return YOUTUBE_PLUGIN + match.group(1) if match else text


def merged_ids(fields: dict[str, Any]) -> dict[str, str]:
    """uniqueids plus the tmdb_id / imdb_id / tvdb_id scalars (scalars win)."""
    ids = {str(k).lower(): clean_text(v) for k, v in (fields.get("uniqueids") or {}).items() if clean_text(v)}
    for key, id_type in (("tmdb_id", "tmdb"), ("imdb_id", "imdb"), ("tvdb_id", "tvdb")):
        if fields.get(key) not in (None, "", 0):
            ids[id_type] = clean_text(fields[key])
    return ids


def default_id_type(kind: str, ids: dict[str, str]) -> str | None:
    """The one uniqueid marked default: tmdb for movies, tvdb for TV, else the first known one."""
    preferred = ("tmdb", "imdb", "tvdb") if kind == "movie" else ("tvdb", "tmdb", "imdb")
    for id_type in preferred:
        if id_type in ids:
            return id_type
    return sorted(ids)[0] if ids else None


def _uniqueid(kind: str, fields: dict[str, Any]) -> list[ET.Element]:
    """<uniqueid type default> lines, the default one first, then tmdb, imdb, tvdb, others by name."""
    ids = merged_ids(fields)
    default = default_id_type(kind, ids)
    rank = {"tmdb": 1, "imdb": 2, "tvdb": 3}
    ordered = sorted(ids, key=lambda t: (t != default, rank.get(t, 9), t))
    out = []
    for id_type in ordered:
        attrs = {"type": id_type, "default": "true"} if id_type == default else {"type": id_type}
        out.append(_el("uniqueid", ids[id_type], **attrs))
    return out


def _id(kind: str, fields: dict[str, Any]) -> list[ET.Element]:
    """The legacy <id>: the default uniqueid's value."""
    ids = merged_ids(fields)
    default = default_id_type(kind, ids)
    return [_el("id", ids[default])] if default else []


def _ratings(kind: str, fields: dict[str, Any]) -> list[ET.Element]:
    """<ratings><rating name max default><value/><votes/></rating></ratings>."""
    ratings = fields.get("ratings") or []
    if not ratings:
        return []
    wrapper = ET.Element("ratings")
    for rating in ratings:
        if rating.get("value") is None:
            continue
        attrs = {"name": rating.get("name") or "default", "max": str(int(rating.get("max") or 10))}
        if rating.get("default"):
            attrs["default"] = "true"
        el = _el("rating", **attrs)
        _sub(el, "value", repr(float(rating["value"])))
        if int(rating.get("votes") or 0) > 0:
            _sub(el, "votes", int(rating["votes"]))
        wrapper.append(el)
    return [wrapper] if len(wrapper) else []


def _art_thumbs(art: dict[str, Any]) -> list[dict[str, Any]]:
    """Artwork {type: url or [urls]} as thumb entries in a stable order, fanart excluded."""
    entries: list[dict[str, Any]] = []
    keys = sorted((k for k in art if k != "fanart"), key=lambda k: (
        _ART_ORDER.index(k) if k in _ART_ORDER else len(_ART_ORDER), k))
    for key in keys:
        values = art[key] if isinstance(art[key], list) else [art[key]]
        season = _SEASON_ART.match(key)
        for value in values:
            if not value:
                continue
            if season:
                number = {"-specials": 0, "-all": -1}.get(season.group(1))
                entry = {"aspect": season.group(2), "url": value,
                         "season": int(season.group(1)) if number is None else number}
            else:
                entry = {"aspect": key, "url": value}
            entries.append(entry)
    return entries


def _thumb(kind: str, fields: dict[str, Any]) -> list[ET.Element]:
    """<thumb aspect=..> artwork from `art` when given, else the `thumbs` read from the NFO."""
    art = fields.get("art")
    entries = _art_thumbs(art) if art else (fields.get("thumbs") or [])
    out = []
    for entry in entries:
        attrs = {"aspect": entry["aspect"]} if entry.get("aspect") else {}
        if entry.get("season") is not None:
            attrs.update(season=str(entry["season"]), type="season")
        out.append(_el("thumb", entry["url"], **attrs))
    return out


def _fanart(kind: str, fields: dict[str, Any]) -> list[ET.Element]:
    """<fanart><thumb>url</thumb>...</fanart> from art["fanart"] when given, else `fanart`."""
    art = fields.get("art") or {}
    urls = art.get("fanart") if art.get("fanart") else fields.get("fanart") or []
    urls = [urls] if isinstance(urls, str) else urls
    if not urls:
        return []
    wrapper = ET.Element("fanart")
    for url in urls:
        _sub(wrapper, "thumb", url)
    return [wrapper]


def _set(kind: str, fields: dict[str, Any]) -> list[ET.Element]:
    """<set tmdbcolid><name/><overview/></set> (a plain string names the set; tmdbcolid as Jellyfin writes it)."""
    value = fields.get("set")
    if isinstance(value, str):
        value = {"name": value}
    if not value or not value.get("name"):
        return []
    el = _el("set", tmdbcolid=str(value["tmdbcolid"])) if value.get("tmdbcolid") else ET.Element("set")
    _sub(el, "name", value["name"])
    _sub(el, "overview", value.get("overview"))
    return [el]


def _actor(kind: str, fields: dict[str, Any]) -> list[ET.Element]:
    """<actor><name/><role/><order/><thumb/></actor>; order defaults to the position."""
    out = []
    for index, actor in enumerate(fields.get("actors") or []):
        if not actor.get("name"):
            continue
        el = ET.Element("actor")
        _sub(el, "name", actor["name"])
        _sub(el, "role", actor.get("role"))
        _sub(el, "order", int(actor["order"]) if actor.get("order") is not None else index)
        _sub(el, "thumb", actor.get("thumb"))
        out.append(el)
    return out


def _trailer(kind: str, fields: dict[str, Any]) -> list[ET.Element]:
    """<trailer> with YouTube keys and links turned into the Kodi plugin URL."""
    value = clean_text(fields.get("trailer") or "")
    return [_el("trailer", kodi_trailer(value))] if value else []


def _episodeguide(kind: str, fields: dict[str, Any]) -> list[ET.Element]:
    """Kodi v20 <episodeguide>{"tmdb":"..","tvdb":"..","imdb":".."}</episodeguide>."""
    ids = merged_ids(fields)
    guide = {t: ids[t] for t in ("tmdb", "tvdb", "imdb") if t in ids}
    return [_el("episodeguide", json.dumps(guide, separators=(",", ":")))] if guide else []


def _namedseason(kind: str, fields: dict[str, Any]) -> list[ET.Element]:
    """<namedseason number="N">Name</namedseason> from named_seasons {"N": name}."""
    named = fields.get("named_seasons") or {}
    return [_el("namedseason", named[n], number=str(n)) for n in sorted(named, key=lambda n: int(n))]


# Kodi's own order (CStreamDetailVideo/Audio/Subtitle::Archive); tags it does not know follow, sorted.
STREAM_TAG_ORDER: Final = {
    "video": ("codec", "aspect", "width", "height", "durationinseconds", "stereomode", "hdrtype"),
    "audio": ("codec", "language", "channels"),
    "subtitle": ("language",),
}


def _fileinfo(kind: str, fields: dict[str, Any]) -> list[ET.Element]:
    """<fileinfo><streamdetails><video|audio|subtitle>...</...></streamdetails></fileinfo>."""
    details = fields.get("streamdetails") or {}
    if not any(details.get(t) for t in ("video", "audio", "subtitle")):
        return []
    fileinfo = ET.Element("fileinfo")
    streamdetails = ET.SubElement(fileinfo, "streamdetails")
    for stream_type, order in STREAM_TAG_ORDER.items():
        for stream in details.get(stream_type) or []:
            el = ET.SubElement(streamdetails, stream_type)
            keys = [k for k in order if k in stream] + sorted(k for k in stream if k not in order)
            for key in keys:
                value = stream[key]
                _sub(el, key, f"{value:.6f}" if isinstance(value, float) else value)
    return [fileinfo]


def _watched(kind: str, fields: dict[str, Any]) -> list[ET.Element]:
    """Legacy <watched>true|false</watched>, derived from playcount (only when playcount is known)."""
    count = fields.get("playcount")
    return [] if count in (None, "") else [_el("watched", "true" if int(count) > 0 else "false")]


def _resume(kind: str, fields: dict[str, Any]) -> list[ET.Element]:
    """<resume><position/><total/></resume> in seconds, as Kodi exports it."""
    resume = fields.get("resume") or {}
    if not isinstance(resume, dict) or resume.get("position") in (None, ""):
        return []
    el = ET.Element("resume")
    _sub(el, "position", repr(float(resume["position"])))
    _sub(el, "total", repr(float(resume.get("total") or 0.0)))
    return [el]


def _simple(tag: str) -> Callable[[str, dict[str, Any]], list[ET.Element]]:
    """Builder for a text, int, list or provider-id tag."""

    def build(kind: str, fields: dict[str, Any]) -> list[ET.Element]:
        """Elements for one simple tag."""
        if tag in _TEXT_TAGS:
            value = fields.get(_TEXT_TAGS[tag])
            return [_el(tag, value)] if value not in (None, "") and clean_text(value) else []
        if tag in _INT_TAGS:
            value = fields.get(_INT_TAGS[tag])
            return [_el(tag, int(value))] if value not in (None, "") else []
        if tag in _LIST_TAGS:
            return [_el(tag, v) for v in fields.get(_LIST_TAGS[tag]) or [] if clean_text(v)]
        value = merged_ids(fields).get(_ALIAS_TAGS[tag])
        return [_el(tag, value)] if value else []

    return build


BUILDERS: Final[dict[str, Callable[[str, dict[str, Any]], list[ET.Element]]]] = {
    **{tag: _simple(tag) for tag in (*_TEXT_TAGS, *_INT_TAGS, *_LIST_TAGS, *_ALIAS_TAGS)},
    "uniqueid": _uniqueid, "id": _id, "ratings": _ratings, "thumb": _thumb, "fanart": _fanart,
    "set": _set, "actor": _actor, "trailer": _trailer, "episodeguide": _episodeguide,
    "namedseason": _namedseason, "fileinfo": _fileinfo, "watched": _watched, "resume": _resume,
}


def build_tag(tag: str, kind: str, fields: dict[str, Any]) -> list[ET.Element]:
    """The elements of one managed tag (none when the fields have no value for it)."""
    return BUILDERS[tag](kind, fields)
