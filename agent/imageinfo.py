"""Identify JPEG, PNG and WebP images and read their size from the header bytes (no Pillow)."""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import BinaryIO

from agent.errors import PermanentFailure

_JPEG_SOF = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


class AssetError(PermanentFailure):
    """An image could not be cached (not an image, too big, gone upstream); a retry will not help."""

    status = 400
    default_message = "invalid image"


def _jpeg_size(handle: BinaryIO) -> tuple[int, int] | None:
    """Scan JPEG markers for the first SOFn and return (width, height)."""
    handle.seek(2)
    for _ in range(10000):
        byte = handle.read(1)
        while byte == b"\xff":
            byte = handle.read(1)
        if not byte:
            return None
        marker = byte[0]
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:
            continue
        if marker in (0xD9, 0xDA):
            return None
        raw = handle.read(2)
        if len(raw) < 2:
            return None
        length = struct.unpack(">H", raw)[0]
        if length < 2:
            return None
        if marker in _JPEG_SOF:
            body = handle.read(5)
            if len(body) < 5:
                return None
            height, width = struct.unpack(">xHH", body)
            return width, height
        handle.seek(length - 2, os.SEEK_CUR)
        if handle.read(1) != b"\xff":
            return None
        handle.seek(-1, os.SEEK_CUR)
    return None


def _webp_size(head: bytes) -> tuple[int, int] | None:
    """Read (width, height) from a WebP VP8, VP8L or VP8X chunk header."""
    chunk = head[12:16]
    if chunk == b"VP8 " and len(head) >= 30 and head[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(head) >= 25 and head[20] == 0x2F:
        bits = struct.unpack("<I", head[21:25])[0]
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(head) >= 30:
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        return width, height
    return None


def _describe(head: bytes) -> str:
    """A short human hint of what a non-image body looks like."""
    text = head.lstrip()[:64].lower()
    if text.startswith((b"<!doctype html", b"<html")) or b"<html" in text:
        return "an HTML page"
    if text.startswith((b"{", b"[")):
        return "JSON"
    if text.startswith(b"<"):
        return "XML/HTML text"
    if head.startswith(b"GIF8"):
        return "a GIF (only JPEG, PNG and WebP are cached)"
    return f"unknown data starting {head[:8].hex(' ')}"


def sniff_image(handle: BinaryIO) -> tuple[str, int | None, int | None]:
    """Identify a JPEG, PNG or WebP by magic bytes; return (ext, width, height) or raise AssetError."""
    handle.seek(0)
    head = handle.read(64)
    if not head:
        raise AssetError("the image is empty (0 bytes)")
    if head.startswith(b"\xff\xd8\xff"):
        dims = _jpeg_size(handle)
        return ("jpg", *dims) if dims else ("jpg", None, None)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        if len(head) >= 24 and head[12:16] == b"IHDR":
            width, height = struct.unpack(">II", head[16:24])
            return "png", width, height
        return "png", None, None
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        dims = _webp_size(head)
        return ("webp", *dims) if dims else ("webp", None, None)
    raise AssetError(f"not a JPEG, PNG or WebP image: got {_describe(head)}")


def sniff_path(path: Path) -> tuple[str, int | None, int | None]:
    """sniff_image on a file."""
    with open(path, "rb") as handle:
        return sniff_image(handle)
