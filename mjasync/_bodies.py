"""Request bodies of each endpoint, checked before any request.

One plain function per body: it checks its inputs in the order the Client's signature gives them
and returns the camelCase body, or raises InvalidRequestError before anything is sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from . import _validate as check
from ._exceptions import InvalidRequestError
from ._images import data_url
from ._models import Dimensions
from ._validate import BotType, VideoMotion

__all__ = [
    "blend",
    "describe",
    "extend_video",
    "image_job",
    "imagine",
    "imagine_many",
    "modal",
    "query_tasks",
    "shorten",
    "submit_options",
    "swap_face",
    "video",
]


def imagine(prompt: str, bot_type: BotType, images: Sequence[str | bytes] | None) -> dict[str, Any]:
    """`images` are sent as `base64Array`, each a data URL."""
    body: dict[str, Any] = {"prompt": check.prompt(prompt), "botType": check.bot_type(bot_type)}
    if images:
        body["base64Array"] = check.images(images, "images")
    return body


def modal(task_id: str, prompt: str | None, mask_base64: str | bytes | None) -> dict[str, Any]:
    """A MODAL's completion: the optional new prompt and Vary Region's mask."""
    body: dict[str, Any] = {"taskId": task_id}
    if prompt is not None:
        body["prompt"] = check.text(prompt, "prompt")
    if mask_base64 is not None:
        body["maskBase64"] = data_url(mask_base64, "mask_base64")
    return body


def blend(images: Sequence[str | bytes], dimensions: Dimensions, bot_type: BotType) -> dict[str, Any]:
    encoded = check.blend_images(images)
    check.choice(dimensions, check.DIMENSIONS, "dimensions")
    return {"botType": check.bot_type(bot_type), "base64Array": encoded, "dimensions": dimensions}


def describe(image: str | bytes, bot_type: BotType) -> dict[str, Any]:
    return {"botType": check.bot_type(bot_type), "base64": data_url(image, "image")}


def shorten(prompt: str, bot_type: BotType) -> dict[str, Any]:
    return {"botType": check.bot_type(bot_type), "prompt": check.prompt(prompt)}


def swap_face(source: str | bytes, target: str | bytes) -> dict[str, Any]:
    return {**check.image_or_url(source, "source"), **check.image_or_url(target, "target")}


def image_job(prompt: str, image: str | bytes) -> dict[str, Any]:
    """The body of edit and retexture: a prompt and one image (or URL)."""
    return {"prompt": check.prompt(prompt), "image": check.url_or_data_url(image, "image")}


def video(
    prompt: str, image: str | bytes, end_image: str | bytes | None, motion: VideoMotion, loop: bool,
    batch_size: int | None, video_type: str | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"prompt": check.prompt(prompt), "motion": check.motion(motion)}
    body["image"] = check.url_or_data_url(image, "image")
    if end_image is not None:
        body["endImage"] = check.url_or_data_url(end_image, "end_image")
    if check.flag(loop, "loop"):
        body["loop"] = True
    if batch_size is not None:
        body["batchSize"] = check.video_batch_size(batch_size)
    if video_type is not None:
        body["videoType"] = check.prompt(video_type, "video_type")
    return body


def extend_video(index: int, task_id: str, prompt: str, motion: VideoMotion) -> dict[str, Any]:
    """`index` comes checked (before the task id, as the caller's arguments run)."""
    body: dict[str, Any] = {"prompt": check.prompt(prompt), "motion": check.motion(motion)}
    # Relay docs spell the parent `task_id` (protocol.md section 6, uncertain): send both.
    body.update(action="extend", taskId=task_id, task_id=task_id, index=index)
    return body


def query_tasks(
    state: str | None, ids: Iterable[str | int] | None, status: str | None, action: str | None,
    prompt: str | None, extra_body: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The plus server's task query: the fields given, then `extra_body` (paging) on top."""
    body: dict[str, Any] = {"state": state, "status": status, "action": action, "prompt": prompt}
    if ids is not None:
        body["ids"] = [check.task_id(i) for i in check.sequence(ids, "ids")]
    body = {key: value for key, value in body.items() if value is not None}
    if extra_body:
        body.update(check.json_ready(extra_body))
    return body


def imagine_many(
    prompts: Iterable[str], max_in_flight: int, timeout: float | None, common: Mapping[str, Any]
) -> tuple[list[str], list[str] | None]:
    """The prompts of a batch and its `images` encoded once (None when it has none)."""
    items = check.batch(prompts, max_in_flight, timeout, common.get("bot_type", "MID_JOURNEY"))
    if common.get("idempotency_key") is not None:
        raise InvalidRequestError("imagine_many takes no idempotency_key: one key would name every job")
    images = common.get("images")
    return items, check.images(images, "images") if images else None


def submit_options(
    timeout: float | None, state: str | None, meta: Mapping[str, Any] | None, idempotency_key: str | None
) -> dict[str, Any]:
    """Checks the options every submit takes; returns `meta` as the plain copy to store."""
    check.timeout(timeout)
    check.state(state)
    checked = check.meta(meta)
    check.name(idempotency_key, "idempotency_key")
    return checked
