"""Turn NFO bytes into text and split it into XML roots and trailing text, parsing each root safely."""

from __future__ import annotations

import codecs
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Final

import defusedxml.ElementTree as SafeET
from defusedxml.common import DefusedXmlException, DTDForbidden, EntitiesForbidden

from agent.nfo.model import MAX_NFO_BYTES, NfoError

_BOMS: Final = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_DECL_ENCODING: Final = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_XML_DECL: Final = re.compile(r"^\s*<\?xml[^>]*\?>")
_COMMENT_OR_PI: Final = re.compile(r"\s*(?:<!--.*?-->|<\?.*?\?>)", re.S)
_ROOT_START: Final = re.compile(r"<([A-Za-z_][\w.:-]*)")
_DOCTYPE: Final = re.compile(r"<!(?:DOCTYPE|ENTITY)", re.I)
_POSITION_SUFFIX: Final = re.compile(r": line \d+, column \d+$")


@dataclass
class Root:
    """One parsed XML root of an NFO and the line it starts on."""

    name: str
    element: ET.Element
    line: int


@dataclass
class Document:
    """An NFO split into its XML roots (none for a URL-only NFO) and the free text around them."""

    text: str
    encoding: str
    roots: list[Root] = field(default_factory=list)
    free_text: str = ""


def decode_nfo(data: bytes) -> tuple[str, str]:
    """Decode NFO bytes: BOM first, then the XML declaration, then UTF-8, then cp1252/Latin-1."""
    if len(data) > MAX_NFO_BYTES:
        raise NfoError(f"NFO too large ({len(data)} bytes, limit {MAX_NFO_BYTES})")
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec), codec
            except UnicodeDecodeError as exc:
                raise NfoError(f"NFO has a {codec} byte-order mark but is not {codec}: {exc}") from exc
    candidates = ["utf-8", "cp1252", "latin-1"]
    declared = _DECL_ENCODING.match(data[:300])
    if declared:
        name = declared.group(1).decode("ascii").lower()
        try:
            codecs.lookup(name)
            candidates.insert(0, name)
        except LookupError:
            pass
    for codec in candidates:
        try:
            return data.decode(codec), codec
        except UnicodeDecodeError:
            continue
    raise NfoError("NFO is in no known text encoding")  # unreachable: latin-1 decodes any byte


def _skip_misc(text: str, pos: int) -> int:
    """Skip whitespace, comments and processing instructions starting at pos."""
    while True:
        match = _COMMENT_OR_PI.match(text, pos)
        if not match:
            break
        pos = match.end()
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def _line_of(text: str, pos: int) -> int:
    """One-based line number of a character offset."""
    return text.count("\n", 0, pos) + 1


def _parse_root(text: str, start: int, end: int) -> ET.Element:
    """Parse text[start:end] as one XML element, refusing DTDs and entities; errors carry file lines."""
    # Pad with the newlines before `start` so expat's line numbers are the file's line numbers.
    segment = "\n" * (_line_of(text, start) - 1) + text[start:end]
    try:
        return SafeET.fromstring(segment, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except ET.ParseError as exc:
        line = exc.position[0] if exc.position else _line_of(text, start)
        reason = _POSITION_SUFFIX.sub("", str(exc))
        raise NfoError(f"malformed XML at line {line}: {reason}") from exc
    except (DTDForbidden, EntitiesForbidden) as exc:
        raise NfoError(f"NFO declares a DTD or entities, refused for safety: {exc}") from exc
    except DefusedXmlException as exc:
        raise NfoError(f"NFO refers to external resources, refused for safety: {exc}") from exc


def split_document(text: str, encoding: str) -> Document:
    """Find the XML roots (several only for <episodedetails>) and the free text of an NFO."""
    doc = Document(text=text, encoding=encoding)
    doctype = _DOCTYPE.search(text)
    if doctype:
        raise NfoError(
            f"NFO declares a DTD or entities at line {_line_of(text, doctype.start())}, refused for safety"
        )
    body = _XML_DECL.sub(lambda m: " " * len(m.group(0)), text, count=1)
    pos = _skip_misc(body, 0)
    if not _ROOT_START.match(body, pos):
        doc.free_text = text
        return doc
    while True:
        start = _ROOT_START.match(body, pos)
        if start is None:
            doc.free_text = body[pos:]
            return doc
        name = start.group(1)
        if doc.roots and not (name == doc.roots[0].name == "episodedetails"):
            raise NfoError(
                f"malformed XML at line {_line_of(body, pos)}: second root <{name}> after "
                f"<{doc.roots[0].name}>; only <episodedetails> may repeat"
            )
        empty = re.compile(r"[^<>]*/>").match(body, start.end())
        close = re.compile(rf"</{re.escape(name)}\s*>").search(body, start.end())
        end = empty.end() if empty else close.end() if close else len(body)
        doc.roots.append(Root(name=name, element=_parse_root(body, pos, end), line=_line_of(body, pos)))
        pos = _skip_misc(body, end)
