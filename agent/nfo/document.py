"""Turn NFO bytes into text and split it into XML roots and trailing text, parsing each root safely."""

from __future__ import annotations

import codecs
import re
import time
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
MAX_NFO_DEPTH: Final = 64  # Kodi NFOs nest 5 deep; copying or indenting 100k levels overflows the stack
MAX_NFO_ROOTS: Final = 1000
PARSE_SECONDS: Final = 5.0  # time budget of one NFO parse; real NFOs take milliseconds
_EMPTY_TAIL: Final = re.compile(r"[^<>]*/>")
_TOO_DEEP: Final = "/".join(["*"] * MAX_NFO_DEPTH)  # an element below MAX_NFO_DEPTH levels


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


class _Lines:
    """One-based line numbers of offsets visited in increasing order, counted once (linear overall)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1

    def at(self, pos: int) -> int:
        """The line of `pos`; counting restarts from the start only when asked about an earlier offset."""
        if pos < self.pos:
            self.pos, self.line = 0, 1
        self.line += self.text.count("\n", self.pos, pos)
        self.pos = pos
        return self.line


def _line_of(text: str, pos: int) -> int:
    """One-based line number of a character offset."""
    return text.count("\n", 0, pos) + 1


def check_deadline(deadline: float) -> None:
    """Raise NfoError when the parse ran past `deadline` (time.monotonic())."""
    if time.monotonic() > deadline:
        raise NfoError("NFO took longer than its time budget to read, refused")


def _parse_root(segment: str, first_line: int) -> ET.Element:
    """Parse one XML element starting on `first_line`, refusing DTDs, entities and deep nesting."""
    try:
        root = SafeET.fromstring(segment, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except ET.ParseError as exc:
        line = exc.position[0] + first_line - 1 if exc.position else first_line
        reason = _POSITION_SUFFIX.sub("", str(exc))
        raise NfoError(f"malformed XML at line {line}: {reason}") from exc
    except (DTDForbidden, EntitiesForbidden) as exc:
        raise NfoError(f"NFO declares a DTD or entities, refused for safety: {exc}") from exc
    except DefusedXmlException as exc:
        raise NfoError(f"NFO refers to external resources, refused for safety: {exc}") from exc
    if root.find(_TOO_DEEP) is not None:  # checked after the build: a counting TreeBuilder cost 30% of a parse
        raise NfoError(f"NFO has tags nested deeper than {MAX_NFO_DEPTH} levels, refused")
    return root


def split_document(text: str, encoding: str, deadline: float | None = None) -> Document:
    """Find the XML roots (several only for <episodedetails>) and the free text of an NFO.

    Linear in the size of the text: each root is parsed once, line numbers are counted once, and a
    root's end is searched only from its own start. More than MAX_NFO_ROOTS roots, tags nested deeper
    than MAX_NFO_DEPTH, or a parse past `deadline` (default: PARSE_SECONDS from now) is an NfoError.
    """
    if deadline is None:
        deadline = time.monotonic() + PARSE_SECONDS
    doc = Document(text=text, encoding=encoding)
    doctype = _DOCTYPE.search(text)
    if doctype:
        raise NfoError(
            f"NFO declares a DTD or entities at line {_line_of(text, doctype.start())}, refused for safety"
        )
    body = _XML_DECL.sub(lambda m: " " * len(m.group(0)), text, count=1)
    lines = _Lines(body)
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
                f"malformed XML at line {lines.at(pos)}: second root <{name}> after "
                f"<{doc.roots[0].name}>; only <episodedetails> may repeat"
            )
        if len(doc.roots) >= MAX_NFO_ROOTS:
            raise NfoError(f"NFO holds more than {MAX_NFO_ROOTS} <{name}> roots, refused")
        check_deadline(deadline)
        empty = _EMPTY_TAIL.match(body, start.end())
        if empty:
            end = empty.end()
        else:
            close = re.compile(rf"</{re.escape(name)}\s*>").search(body, start.end())
            end = close.end() if close else len(body)
        line = lines.at(pos)
        doc.roots.append(Root(name=name, element=_parse_root(body[pos:end], line), line=line))
        pos = _skip_misc(body, end)
