"""Small but real image files for tests, made without Pillow.

`png_bytes(w, h, rgb)` writes an RGB(A) PNG with zlib + struct. `jpeg_bytes(w, h, rgb)` writes
a baseline JFIF JPEG of one flat colour: every 8x8 block has only a DC coefficient, so the
entropy data is a handful of standard Huffman codes per block. Any decoder opens both.
`image_size(data)` reads the (kind, width, height) back, for assertions.
"""

from __future__ import annotations

import struct
import zlib
from functools import lru_cache

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# JPEG standard luminance DC table (ITU T.81 K.3): code counts per length 1..16, symbols 0..11.
_DC_BITS = (0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0)
_DC_VALS = tuple(range(12))
# A two-symbol AC table: 0x00 (end of block) = "0", 0xF0 (unused) = "10".
_AC_BITS = (1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
_AC_VALS = (0x00, 0xF0)
_EOB = "0"


def _chunk(kind: bytes, data: bytes) -> bytes:
    """Return one PNG chunk with its length and CRC."""
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


@lru_cache(maxsize=64)
def png_bytes(
    width: int, height: int, rgb: tuple[int, int, int] = (200, 40, 40), alpha: int | None = None
) -> bytes:
    """Return a valid PNG of one colour (RGBA when `alpha` is given, like a clearlogo)."""
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    pixel = bytes(rgb) + (bytes([alpha]) if alpha is not None else b"")
    colour_type = 6 if alpha is not None else 2
    raw = (b"\x00" + pixel * width) * height
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 9))
        + _chunk(b"IEND", b"")
    )


def _huffman_codes(bits: tuple[int, ...], vals: tuple[int, ...]) -> dict[int, str]:
    """Build the canonical Huffman code strings of a JPEG DHT table."""
    codes: dict[int, str] = {}
    code, k = 0, 0
    for length, count in enumerate(bits, start=1):
        for _ in range(count):
            codes[vals[k]] = format(code, f"0{length}b")
            code += 1
            k += 1
        code <<= 1
    return codes


_DC_CODES = _huffman_codes(_DC_BITS, _DC_VALS)


def _dc_bits(diff: int) -> str:
    """Return the bits coding a DC difference: category code plus magnitude bits."""
    category = abs(diff).bit_length()
    if category == 0:
        return _DC_CODES[0]
    magnitude = diff if diff > 0 else diff + (1 << category) - 1
    return _DC_CODES[category] + format(magnitude, f"0{category}b")


def _segment(marker: int, payload: bytes) -> bytes:
    """Return a JPEG marker segment with its length."""
    return struct.pack(">HH", 0xFF00 | marker, len(payload) + 2) + payload


@lru_cache(maxsize=64)
def jpeg_bytes(width: int, height: int, rgb: tuple[int, int, int] = (30, 60, 120)) -> bytes:
    """Return a valid baseline JPEG (YCbCr, 4:4:4) of one flat colour."""
    if not (1 <= width <= 65535 and 1 <= height <= 65535):
        raise ValueError(f"JPEG size must be 1..65535, got {width}x{height}")
    r, g, b = rgb
    ycc = (
        0.299 * r + 0.587 * g + 0.114 * b,
        128 - 0.168736 * r - 0.331264 * g + 0.5 * b,
        128 + 0.5 * r - 0.418688 * g - 0.081312 * b,
    )
    dcs = [round(8 * (v - 128)) for v in ycc]  # DC of a flat block with quantiser 1
    blocks = ((width + 7) // 8) * ((height + 7) // 8)
    first = "".join(_dc_bits(dc) + _EOB for dc in dcs)
    rest = (_dc_bits(0) + _EOB) * 3
    bits = first + rest * (blocks - 1)
    bits += "1" * (-len(bits) % 8)
    data = int(bits, 2).to_bytes(len(bits) // 8, "big").replace(b"\xff", b"\xff\x00")

    def dht(table_class: int, bits_: tuple[int, ...], vals: tuple[int, ...]) -> bytes:
        """Return one DHT segment."""
        return _segment(0xC4, bytes([table_class << 4]) + bytes(bits_) + bytes(vals))

    components = b"".join(bytes([cid, 0x11, 0]) for cid in (1, 2, 3))
    return b"".join(
        [
            b"\xff\xd8",
            _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"),
            _segment(0xDB, b"\x00" + b"\x01" * 64),
            _segment(0xC0, struct.pack(">BHHB", 8, height, width, 3) + components),
            dht(0, _DC_BITS, _DC_VALS),
            dht(1, _AC_BITS, _AC_VALS),
            _segment(0xDA, b"\x03" + b"".join(bytes([cid, 0x00]) for cid in (1, 2, 3)) + b"\x00\x3f\x00"),
            data,
            b"\xff\xd9",
        ]
    )


def image_size(data: bytes) -> tuple[str, int, int] | None:
    """Return ("png"|"jpeg", width, height) read from the header, or None for anything else."""
    if data.startswith(PNG_SIGNATURE) and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return "png", width, height
    if data.startswith(b"\xff\xd8"):
        i = 2
        while i + 4 <= len(data) and data[i] == 0xFF:
            marker, length = data[i + 1], struct.unpack(">H", data[i + 2 : i + 4])[0]
            if 0xC0 <= marker <= 0xC3:
                height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                return "jpeg", width, height
            i += 2 + length
    return None


def header_jpeg(width: int, height: int) -> bytes:
    """The smallest byte string that identifies as a JPEG of this size (SOI, SOF0, EOI); not decodable."""
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + sof0 + b"\xff\xd9"
