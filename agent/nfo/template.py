"""NFO templates: an XML skeleton per kind naming the managed tags to write, in order, plus literal tags."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import defusedxml.ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from agent.errors import ConfigError
from agent.nfo.model import KINDS

DEFAULT_TEMPLATE_DIR: Final = Path(__file__).parent / "default_templates"

_COMMON: Final = frozenset({
    "title", "originaltitle", "sorttitle", "ratings", "userrating", "outline", "plot", "tagline", "runtime",
    "thumb", "fanart", "mpaa", "certification", "uniqueid", "id", "tmdbid", "imdbid", "tvdbid", "genre",
    "country", "tag", "credits", "director", "premiered", "year", "studio", "trailer", "actor", "dateadded",
    "fileinfo",
})
# Managed tags a template may name for each kind (an empty element in the template).
MANAGED_TAGS: Final = {
    "movie": _COMMON | {"set", "playcount", "lastplayed", "watched", "resume"},
    "tvshow": _COMMON | {"showtitle", "status", "episodeguide", "namedseason"},
    "episodedetails": _COMMON
    | {"showtitle", "season", "episode", "episodenumberend", "displayseason", "displayepisode", "aired"}
    | {"playcount", "lastplayed", "watched", "resume"},
}
# Watched-state tags are replaced only when the item has a value (captured from a player); otherwise the
# existing NFO's copy (Kodi's export, another tool) is kept. Maps tag -> the field it is written from.
WATCHED_TAGS: Final = {"playcount": "playcount", "lastplayed": "lastplayed", "watched": "playcount",
                       "resume": "resume"}
# Older tags a managed tag replaces, so no stale copy survives next to the new one.
SUPERSEDES: Final = {
    "ratings": ("rating", "votes"),
    "uniqueid": ("id", "tmdbid", "imdbid", "imdb_id", "tvdbid"),
}


@dataclass(frozen=True)
class Slot:
    """One template line: a managed tag written from fields, or a literal element copied as is."""

    tag: str
    literal: ET.Element | None = None


@dataclass(frozen=True)
class Template:
    """A parsed template: its kind, where it came from and its slots in output order."""

    kind: str
    source: Path
    slots: tuple[Slot, ...]

    def owned_tags(self, fields: dict[str, Any]) -> set[str]:
        """Tags this template writes; an existing NFO's copies of them are replaced, all others kept."""
        owned: set[str] = set()
        for slot in self.slots:
            if slot.tag == "fileinfo" and slot.literal is None and not fields.get("streamdetails"):
                continue  # no fresh stream details: keep whatever fileinfo the NFO already has
            watched_field = WATCHED_TAGS.get(slot.tag) if slot.literal is None else None
            if watched_field and fields.get(watched_field) in (None, ""):
                continue  # no captured watched state: keep the NFO's own
            owned.add(slot.tag)
            if slot.literal is None:
                owned.update(SUPERSEDES.get(slot.tag, ()))
        return owned


def _is_managed_slot(el: ET.Element) -> bool:
    """An empty element without attributes or children names a managed tag."""
    return not el.attrib and len(el) == 0 and not (el.text or "").strip()


def parse_template(kind: str, text: str, source: Path) -> Template:
    """Validate template text for one kind; every problem is a ConfigError naming the file."""
    try:
        root = SafeET.fromstring(text, forbid_dtd=True)
    except ET.ParseError as exc:
        raise ConfigError(f"NFO template {source}: not well-formed XML: {exc}") from exc
    except DefusedXmlException as exc:
        raise ConfigError(f"NFO template {source}: DTDs and entities are not allowed: {exc}") from exc
    if root.tag != kind:
        raise ConfigError(f"NFO template {source}: root element must be <{kind}>, found <{root.tag}>")
    slots: list[Slot] = []
    seen: set[str] = set()
    for el in root:
        if not isinstance(el.tag, str):
            continue
        if not _is_managed_slot(el):
            el.tail = None
            slots.append(Slot(tag=el.tag, literal=el))
            continue
        if el.tag not in MANAGED_TAGS[kind]:
            known = ", ".join(sorted(MANAGED_TAGS[kind]))
            raise ConfigError(
                f"NFO template {source}: <{el.tag}/> is not a tag the agent writes for {kind} "
                f"(known: {known}); give it content to write it literally"
            )
        if el.tag in seen:
            raise ConfigError(f"NFO template {source}: <{el.tag}/> appears twice")
        seen.add(el.tag)
        slots.append(Slot(tag=el.tag))
    return Template(kind=kind, source=source, slots=tuple(slots))


def template_path(kind: str, template_dir: Path | None) -> Path:
    """The template file for a kind: the user's copy when it exists, else the packaged default."""
    if kind not in KINDS:
        raise ConfigError(f"unknown NFO kind {kind!r} (expected one of {', '.join(KINDS)})")
    if template_dir is not None:
        user = Path(template_dir) / f"{kind}.nfo"
        if user.is_file():
            return user
    return DEFAULT_TEMPLATE_DIR / f"{kind}.nfo"


def load_template(kind: str, template_dir: Path | None = None) -> Template:
    """Load and validate the template for a kind."""
    path = template_path(kind, template_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"NFO template {path}: cannot read: {exc}") from exc
    return parse_template(kind, text, path)
