"""The endpoint catalogue: who serves the endpoints not every server has, and the error for a
server that lacks one."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Final

from ._classify import endpoint_missing, unsupported
from ._exceptions import APIStatusError, UnsupportedEndpointError

__all__ = ["ACTION", "CHANGE", "MODAL", "QUERY", "optional"]

ACTION: Final = "/mj/submit/action"
CHANGE: Final = "/mj/submit/change"
MODAL: Final = "/mj/submit/modal"
QUERY: Final = "/mj/task/query"
SERVED_BY: Final = {
    QUERY: "the plus server",
    ACTION: "the extended and plus servers and relays (the reference server takes /mj/submit/change)",
    CHANGE: "the reference and plus servers, relays, and extended servers before v10",
    MODAL: "the extended and plus servers and relays",
    "/mj/submit/shorten": "the extended and plus servers and relays",
    "/mj/submit/upload-discord-images": "the extended and plus servers and relays",
    "/mj/task/{id}/image-seed": "the extended and plus servers and relays",
    "/mj/insight-face/swap": "the extended and plus servers and relays",
    "/mj/submit/edits": "the extended server (Midjourney web accounts)",
    "/mj/submit/retexture": "the extended server (Midjourney web accounts)",
    "/mj/submit/video": "the extended server",
    "/mj/task/{id}/cancel": "the plus server, and the extended server for admins",
    "/mj/task/list": "the reference, extended and plus servers (not relays)",
    "/mj/task/queue": "the reference and plus servers, and extended servers before v10",
}
"""Who serves the endpoints that not every server has (protocol.md section 6)."""


@contextlib.contextmanager
def optional(path: str) -> Iterator[None]:
    """Turn the 404/405 of an endpoint of the catalogue (one not every server has) into
    UnsupportedEndpointError, naming who serves it; other paths' errors pass as they are."""
    try:
        yield
    except APIStatusError as exc:
        if path not in SERVED_BY or isinstance(exc, UnsupportedEndpointError) or not endpoint_missing(exc):
            raise
        raise unsupported(exc, SERVED_BY[path]) from exc
