"""Render Kodi v20+ NFOs from a template and an item's fields, keeping an existing NFO's unmanaged tags."""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Final

from agent.nfo.document import decode_nfo, split_document
from agent.nfo.model import NfoError
from agent.nfo.parse import to_int
from agent.nfo.tags import build_tag
from agent.nfo.template import Template, load_template

XML_DECLARATION: Final = '<?xml version="1.0" encoding="UTF-8" standalone="yes" ?>'
INDENT: Final = "    "


def existing_roots(kind: str, existing: bytes | None) -> list[ET.Element]:
    """The XML roots of an existing NFO (none for no file or a URL-only one); unreadable is an NfoError."""
    if not existing or not existing.strip():
        return []
    try:
        text, encoding = decode_nfo(existing)
        doc = split_document(text, encoding)
    except NfoError as exc:
        raise NfoError(f"existing NFO is unreadable, left untouched: {exc.message}") from exc
    for root in doc.roots:
        if root.name != kind:
            raise NfoError(f"existing NFO holds a <{root.name}>, not a <{kind}>; left untouched")
    return [root.element for root in doc.roots]


def build_root(template: Template, fields: dict[str, Any], existing: ET.Element | None) -> ET.Element:
    """One root element: template slots in order, then the existing NFO's unmanaged tags in their order."""
    root = ET.Element(template.kind)
    for slot in template.slots:
        if slot.literal is not None:
            root.append(copy.deepcopy(slot.literal))
        else:
            root.extend(build_tag(slot.tag, template.kind, fields))
    if existing is not None:
        owned = template.owned_tags(fields)
        for child in existing:
            if isinstance(child.tag, str) and child.tag not in owned:
                kept = copy.deepcopy(child)
                kept.tail = None
                root.append(kept)
    return root


def serialize(roots: list[ET.Element]) -> bytes:
    """UTF-8 bytes: the XML declaration, then each root indented by four spaces."""
    parts = [XML_DECLARATION]
    for root in roots:
        ET.indent(root, space=INDENT)
        parts.append(ET.tostring(root, encoding="unicode", short_empty_elements=True))
    return ("\n".join(parts) + "\n").encode("utf-8")


def render_nfo(
    kind: str, fields: dict[str, Any], existing: bytes | None = None, template_dir: Path | None = None
) -> bytes:
    """Render one NFO of `kind` ("movie", "tvshow", "episodedetails") from fields, merging `existing`."""
    template = load_template(kind, template_dir)
    olds = existing_roots(kind, existing)
    return serialize([build_root(template, fields, olds[0] if olds else None)])


def _episode_key(fields: dict[str, Any]) -> tuple[Any, Any]:
    """(season, episode) of an episode's fields, used to pair new and existing roots."""
    return fields.get("season"), fields.get("episode")


def _element_key(element: ET.Element) -> tuple[Any, Any]:
    """(season, episode) of an existing <episodedetails> root."""
    return to_int(element.findtext("season")), to_int(element.findtext("episode"))


def render_episodes(
    episodes: list[dict[str, Any]], existing: bytes | None = None, template_dir: Path | None = None
) -> bytes:
    """Render a multi-episode NFO: one <episodedetails> root per episode, concatenated (as Kodi reads it)."""
    if not episodes:
        raise NfoError("render_episodes needs at least one episode")
    template = load_template("episodedetails", template_dir)
    olds = existing_roots("episodedetails", existing)
    by_key = {_element_key(el): el for el in olds if None not in _element_key(el)}
    roots = []
    for index, fields in enumerate(episodes):
        old = by_key.get(_episode_key(fields))
        if old is None and None in _episode_key(fields) and index < len(olds):
            old = olds[index]
        roots.append(build_root(template, fields, old))
    return serialize(roots)
