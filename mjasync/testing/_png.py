"""A real PNG without imaging libraries: a 2x2 grid of colour blocks, like a Midjourney grid."""

from __future__ import annotations

import functools
import hashlib
import struct
import zlib
from typing import Final

__all__ = ["grid_png"]

_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@functools.lru_cache(maxsize=256)
def grid_png(key: str, size: int = 256) -> bytes:
    """Encode a `size`x`size` RGB PNG whose four quadrant colours derive from `key`."""
    digest = hashlib.sha256(key.encode()).digest()
    half = size // 2
    c0, c1, c2, c3 = (digest[i : i + 3] for i in range(0, 12, 3))
    top = b"\x00" + c0 * half + c1 * (size - half)
    bottom = b"\x00" + c2 * half + c3 * (size - half)
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    pixels = zlib.compress(top * half + bottom * (size - half))
    return _SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", pixels) + _chunk(b"IEND", b"")
