"""Provider ids in NFOs: <uniqueid>, <id>, Jellyfin's <tmdbid> tags, episodeguide and TMDB/IMDb/TVDB URLs."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from agent.nfo.model import NfoResult

# Tags other tools write for one provider id (Jellyfin, Radarr, Ember); the value is the provider type.
ALIAS_ID_TAGS: Final = {
    "tmdbid": "tmdb",
    "imdbid": "imdb",
    "imdb_id": "imdb",
    "tvdbid": "tvdb",
    "tvmazeid": "tvmaze",
    "tvrageid": "tvrage",
    "traktid": "trakt",
    "zap2itid": "zap2it",
    "anidbid": "anidb",
}
# Collection ids: they name the movie's set, never the movie (Jellyfin's uniqueid type and <{provider}id> tags).
COLLECTION_ID_TYPES: Final = frozenset({"tmdbcol", "tmdbcollection"})
COLLECTION_ID_TAGS: Final = frozenset({"tmdbcolid", "tmdbcollectionid"})
UNKNOWN: Final = "unknown"  # Kodi's type for an id that names no provider
_JELLYFIN_ID_ATTRS: Final = ("tmdb", "imdb", "tvdb")
_IMDB: Final = re.compile(r"^tt\d{5,}$")
_DIGITS: Final = re.compile(r"^\d+$")
_URL: Final = re.compile(r"https?://[^\s<>\"']+", re.I)
_BARE_IMDB: Final = re.compile(r"\b(tt\d{7,})\b")
_TMDB_URL: Final = re.compile(r"themoviedb\.org/(?:3/)?(movie|tv)/(\d+)", re.I)
_IMDB_URL: Final = re.compile(r"imdb\.[a-z.]+/(?:[a-z]{2}/)?title/(tt\d+)", re.I)
_TVDB_PATH: Final = re.compile(
    r"thetvdb\.com/(?:dereferrer/)?(series|movies?|episodes?)/(\d+)(?:[/?#]|$)", re.I
)
_TVDB_QUERY: Final = re.compile(r"thetvdb\.com/.*?[?&](?:series)?id=(\d+)", re.I)
_TVDB_TAB: Final = re.compile(r"[?&]tab=(series|movie)", re.I)


def clean_id(id_type: str, value: str | None) -> str | None:
    """A provider id with blanks and placeholders ("0", "-1") removed; imdb ids must look like tt123."""
    text = (value or "").strip()
    if not text or text in {"0", "-1"}:
        return None
    if id_type == "imdb":
        return text if _IMDB.match(text) else None
    return text


def default_numeric_type(kind: str | None) -> str:
    """Which provider a bare number in <id> or <uniqueid> belongs to: tmdb for movies, unknown for TV.

    Kodi writes the item's default id there, and for TV that is TMDB as often as TVDB (its TMDB scraper
    is the default since v19), so a TV number is kept as an id of unknown provider rather than misfiled.
    """
    return UNKNOWN if kind in ("tvshow", "episodedetails") else "tmdb"


def id_from_url(url: str) -> tuple[str, str, str | None] | None:
    """(type, value, kind or None) for a TMDB, IMDb or TVDB link, else None."""
    if match := _TMDB_URL.search(url):
        return "tmdb", match.group(2), "movie" if match.group(1).lower() == "movie" else "tvshow"
    if match := _IMDB_URL.search(url):
        return "imdb", match.group(1), None
    if match := _TVDB_PATH.search(url):
        what = match.group(1).lower()
        kinds = {"m": "movie", "e": "episodedetails", "s": "tvshow"}
        return "tvdb", match.group(2), kinds[what[0]]
    if match := _TVDB_QUERY.search(url):
        tab = _TVDB_TAB.search(url)
        kind = None if tab is None else "movie" if tab.group(1).lower() == "movie" else "tvshow"
        return "tvdb", match.group(1), kind
    return None


def ids_from_text(text: str) -> tuple[dict[str, str], list[str], str | None]:
    """Ids, URLs and the kind a URL implies, found in free text (a URL-only NFO or lines after the XML)."""
    ids: dict[str, str] = {}
    urls: list[str] = []
    kind: str | None = None
    for raw in _URL.findall(text):
        url = raw.rstrip(".,;)]")
        urls.append(url)
        found = id_from_url(url)
        if found:
            ids.setdefault(found[0], found[1])
            kind = kind or found[2]
    if "imdb" not in ids and (bare := _BARE_IMDB.search(text)):
        ids["imdb"] = bare.group(1)
    return ids, urls, kind


def _put(ids: dict[str, str], id_type: str, value: str | None) -> None:
    """Record an id unless that type is already known (earlier, more specific sources win)."""
    id_type = id_type.strip().lower()
    cleaned = clean_id(id_type, value)
    if id_type and cleaned is not None:
        ids.setdefault(id_type, cleaned)


def _episodeguide_ids(element: ET.Element, ids: dict[str, str]) -> None:
    """Ids from <episodeguide>: Kodi v20 JSON text, or the old <url> form."""
    text = (element.text or "").strip()
    if text.startswith("{"):
        try:
            data: Any = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict):
            for key, value in data.items():
                if isinstance(value, str | int):
                    _put(ids, str(key), str(value))
            return
    for url_el in element.iter("url"):
        found = id_from_url((url_el.text or "").strip())
        if found:
            _put(ids, found[0], found[1])


def collection_id(root: ET.Element) -> str | None:
    """The movie's collection (set) id: <set tmdbcolid=>, <uniqueid type="tmdbcol">, or <tmdbcolid>."""
    candidates: list[str | None] = []
    for el in root.findall("set"):
        candidates += [value for attr, value in el.attrib.items() if attr.lower() in COLLECTION_ID_TAGS]
    for el in root.findall("uniqueid"):
        if (el.get("type") or "").strip().lower() in COLLECTION_ID_TYPES:
            candidates.append(el.text)
    candidates += [child.text for child in root if isinstance(child.tag, str)
                   and child.tag.lower() in COLLECTION_ID_TAGS]
    for value in candidates:
        if _DIGITS.match((value or "").strip()) and clean_id("tmdb", value):
            return (value or "").strip()
    return None


def _id_tag(el: ET.Element, kind: str | None, ids: dict[str, str]) -> None:
    """The legacy <id>: attributes (Jellyfin), a declared type, tt-ids as imdb, a bare number by kind."""
    attrs = {attr.lower(): value for attr, value in el.attrib.items()}
    for attr in _JELLYFIN_ID_ATTRS:
        if attr in attrs:
            _put(ids, attr, attrs[attr])
    value = (el.text or "").strip()
    declared = attrs.get("type") or attrs.get("provider")
    if declared:
        _put(ids, declared, value)
    elif _IMDB.match(value):
        _put(ids, "imdb", value)
    elif _DIGITS.match(value):
        # Jellyfin's series saver writes <id IMDB= TMDB=>tvdb</id>: named providers beside it make it TVDB.
        jellyfin_series = kind == "tvshow" and any(a in attrs for a in _JELLYFIN_ID_ATTRS) and "tvdb" not in attrs
        _put(ids, "tvdb" if jellyfin_series else default_numeric_type(kind), value)


def collect_ids(root: ET.Element, kind: str | None) -> dict[str, str]:
    """Every provider id in an NFO root, Kodi's rules first.

    The first default <uniqueid> leads; when any <uniqueid> exists <id> is ignored (Kodi's ParseNative);
    <tmdbid>-style tags count in any letter case; collection ids (tmdbcol) are never item ids.
    """
    ids: dict[str, str] = {}
    uniques = [el for el in root.findall("uniqueid")
               if (el.get("type") or "").strip().lower() not in COLLECTION_ID_TYPES]
    uniques.sort(key=lambda el: (el.get("default") or "").lower() != "true")  # stable: defaults first
    for el in uniques:
        value = (el.text or "").strip()
        id_type = el.get("type") or ("imdb" if _IMDB.match(value) else default_numeric_type(kind))
        _put(ids, id_type, value)
    for child in root:
        tag = child.tag.lower() if isinstance(child.tag, str) else ""
        if tag in ALIAS_ID_TAGS:
            _put(ids, ALIAS_ID_TAGS[tag], child.text)
    if not root.findall("uniqueid"):
        for el in root.findall("id"):
            _id_tag(el, kind, ids)
    for el in root.findall("episodeguide"):
        _episodeguide_ids(el, ids)
    return ids


def scalar_ids(ids: dict[str, str]) -> dict[str, Any]:
    """The tmdb_id / imdb_id / tvdb_id fields for a uniqueids dict (ints for numeric providers)."""
    out: dict[str, Any] = {}
    for id_type, key in (("tmdb", "tmdb_id"), ("tvdb", "tvdb_id")):
        if _DIGITS.match(ids.get(id_type, "")):
            out[key] = int(ids[id_type])
    if _IMDB.match(ids.get("imdb", "")):
        out["imdb_id"] = ids["imdb"]
    return out


def nfo_ids(result: NfoResult) -> dict[str, str]:
    """All provider ids an NFO result names, as {type: value}."""
    return dict(result.fields.get("uniqueids") or {})
