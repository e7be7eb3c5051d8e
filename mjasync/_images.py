"""Images in and out: data URLs for what is sent, files on disk for what comes back."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import os
import re
import uuid
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Final, Protocol
from urllib.parse import unquote, urlsplit

import aiohttp

from ._exceptions import InvalidRequestError

if TYPE_CHECKING:
    from ._transport import Consume

__all__ = ["data_url", "save_image"]

_DATA_URL: Final = re.compile(r"data:([\w.+-]+/[\w.+-]+);base64,(.*)\Z", re.S)
_MAGIC: Final = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"RIFF", "image/webp"),
)
_SUFFIX: Final = {"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/webp": ".webp"}
_SAFE: Final = re.compile(r"[^\w.-]+")
CHUNK: Final = 256 * 1024
"""Bytes read from the network and written to disk at a time."""


def sniff_mime(raw: bytes) -> str | None:
    """The image MIME type from the first bytes, or None when they match no known format."""
    return next((mime for magic, mime in _MAGIC if raw.startswith(magic)), None)


def data_url(image: str | bytes, name: str) -> str:
    """A data URL for an image given as raw bytes, base64 text or a data URL; validated."""
    match = None
    if isinstance(image, bytes):
        raw, payload = image, base64.b64encode(image).decode()
    elif isinstance(image, str):
        match = _DATA_URL.match(image)
        payload = match.group(2) if match else image
        try:
            raw = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidRequestError(f"{name} is neither base64 nor a base64 data URL") from exc
        if match and not match.group(1).lower().startswith("image/"):
            raise InvalidRequestError(f"{name} is a data URL of {match.group(1)}, not of an image")
    else:
        raise InvalidRequestError(f"{name} must be bytes, base64 text or a data URL")
    if not raw:
        raise InvalidRequestError(f"{name} is empty")
    mime = sniff_mime(raw)
    if mime is None:
        raise InvalidRequestError(f"{name} is not a PNG, JPEG, GIF or WebP image")
    return match.group(0) if match else f"data:{mime};base64,{payload}"


class ImageSource(Protocol):
    """What saving needs from the transport: a GET whose body is handed over as it arrives."""

    async def stream(self, url: str, consume: Consume, *, timeout: float | None = None) -> None: ...


async def save_image(
    source: ImageSource, url: str, target: str | os.PathLike[str], stem: str, *, timeout: float | None
) -> Path:
    """Stream `url` to disk and return the file's path.

    `target` is a file path, or a directory (existing, or written with a trailing separator) that
    gets `<stem><suffix>`, the suffix sniffed from the first bytes. The body goes chunk by chunk
    into a temporary sibling, renamed into place once complete: a reader never sees half a file.
    """
    target = os.fspath(target)
    into_dir = target.endswith((os.sep, "/")) or await asyncio.to_thread(Path(target).is_dir)
    folder = Path(target) if into_dir else Path(target).parent
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    # The stem comes from the server (a task id, a URL): never let it name a path elsewhere.
    stem = _SAFE.sub("_", stem or PurePosixPath(unquote(urlsplit(url).path)).stem).strip("._") or "image"
    part = folder / f".{stem}.{uuid.uuid4().hex[:8]}.part"
    head = bytearray()

    async def consume(response: aiohttp.ClientResponse) -> None:
        head.clear()  # a retry starts the file over
        with await asyncio.to_thread(part.open, "wb") as file:
            async for chunk in response.content.iter_chunked(CHUNK):
                if len(head) < 16:
                    head.extend(chunk[:16])
                await asyncio.to_thread(file.write, chunk)

    try:
        await source.stream(url, consume, timeout=timeout)
        if into_dir:
            path = folder / (stem + _SUFFIX.get(sniff_mime(bytes(head)) or "", ".png"))
        else:
            path = Path(target)
        await asyncio.to_thread(part.replace, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(part.unlink)
    return path
