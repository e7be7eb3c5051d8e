"""Decoders: a decoded answer (and its raw body) to a model, or the typed error it stands for."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import cattrs

from ._classify import decode_body, proxy_error
from ._convert import structure
from ._exceptions import APIError, ResponseDecodeError, TaskNotFoundError
from ._logging import logger
from ._models import SubmitResult, TaskInfo

if TYPE_CHECKING:
    from ._transport import Decoder

__all__ = [
    "accepted_envelope", "acknowledged", "seed", "tags_view", "task_list", "task_or_none", "urls",
]

ACCEPTED: Final = frozenset({1, 21, 22})


def _errors(exc: Exception) -> list[str]:
    if isinstance(exc, cattrs.BaseValidationError):
        return cattrs.transform_error(exc)
    return [str(exc)]


def _shape_error(
    method: str, path: str, raw: bytes, what: str, exc: Exception | None = None
) -> ResponseDecodeError:
    return ResponseDecodeError(
        f"{method} {path}: {what}",
        method=method, path=path, body=decode_body(raw), status_code=200,
        errors=_errors(exc) if exc is not None else None,
    )


def envelope(method: str, path: str, parsed: Any, raw: bytes) -> SubmitResult:
    """The `{code, description, result, properties}` envelope, whatever its code."""
    if not isinstance(parsed, dict) or not isinstance(parsed.get("code"), int):
        raise _shape_error(method, path, raw, "the answer is not a result envelope")
    try:
        return structure(parsed, SubmitResult)
    except (cattrs.BaseValidationError, ValueError, TypeError) as exc:
        raise _shape_error(method, path, raw, "the result envelope has the wrong shape", exc) from exc


def accepted_envelope(method: str, path: str, parsed: Any, raw: bytes) -> SubmitResult:
    """For submits: an accepted envelope carrying a task id, else the typed error for it.

    An accepted code without an id means the job exists but its id is unknown: an error whose
    `job_created` is None, so the submit is reconciled rather than resent.
    """
    result = envelope(method, path, parsed, raw)
    if result.code not in ACCEPTED:
        raise _result_error(method, path, result, raw)
    if not isinstance(result.result, str):
        raise _shape_error(method, path, raw, f"code {result.code} without a task id")
    return result


def seed(method: str, path: str, parsed: Any, raw: bytes) -> str:
    """image-seed: the seed of a code-1 envelope, else the typed error."""
    result = _data_result(method, path, parsed, raw)
    if not isinstance(result, str):
        raise _shape_error(method, path, raw, "the seed is not a string or a number")
    return result


def urls(method: str, path: str, parsed: Any, raw: bytes) -> list[str]:
    """upload-discord-images: the list of URLs of a code-1 envelope, else the typed error."""
    result = _data_result(method, path, parsed, raw)
    if not isinstance(result, list):
        raise _shape_error(method, path, raw, "the result is not a list of URLs")
    return result


def _data_result(method: str, path: str, parsed: Any, raw: bytes) -> str | list[str] | None:
    """The `result` of an envelope that answers data rather than a job; failing codes raise."""
    result = envelope(method, path, parsed, raw)
    if result.code != 1:
        raise _result_error(method, path, result, raw)
    return result.result


def acknowledged(method: str, path: str, parsed: Any, raw: bytes) -> None:
    """For control calls (cancel): an empty answer or a code-1 envelope; a failing code raises."""
    if isinstance(parsed, dict) and isinstance(parsed.get("code"), int) and parsed["code"] != 1:
        raise envelope_error(method, path, parsed, raw)


def _result_error(method: str, path: str, result: SubmitResult, raw: bytes) -> APIError:
    return proxy_error(
        method, path, code=result.code, description=result.description,
        properties=result.properties, body=decode_body(raw), status_code=200,
    )


def task_or_none(method: str, path: str, parsed: Any, raw: bytes) -> TaskInfo | None:
    """A fetched task; None when the server says it does not know the id (empty body, code 3)."""
    if parsed is None:
        return None
    if isinstance(parsed, dict) and "id" not in parsed and isinstance(parsed.get("code"), int):
        error = envelope_error(method, path, parsed, raw)
        if isinstance(error, TaskNotFoundError):
            return None
        raise error
    try:
        return structure(parsed, TaskInfo)
    except (cattrs.BaseValidationError, ValueError, TypeError) as exc:
        raise _shape_error(method, path, raw, "the answer is not a task", exc) from exc


def envelope_error(method: str, path: str, parsed: dict[str, Any], raw: bytes) -> APIError:
    return _result_error(method, path, envelope(method, path, parsed, raw), raw)


def task_list(method: str, path: str, parsed: Any, raw: bytes) -> list[TaskInfo]:
    """A list of tasks (or a page of them under `content`); entries that are not tasks are
    logged and left out."""
    return tasks_in(_list_items(method, path, parsed, raw))


def tags_view(tags: frozenset[str]) -> Decoder[tuple[dict[str, list[TaskInfo]], bool]]:
    """Decoder: (tag -> the tasks of a list whose wire `state` ends with it, is the list complete).

    Complete means it provably holds every task it stands for: not a page short of its
    `totalElements`, and every entry shows its `state`. The filter runs on the raw entries, so a
    server's whole task list (thousands) is not turned into models to find a few."""
    lengths = {len(tag) for tag in tags}

    def decode(method: str, path: str, parsed: Any, raw: bytes) -> tuple[dict[str, list[TaskInfo]], bool]:
        items = _list_items(method, path, parsed, raw)
        whole = isinstance(parsed, list) or _whole_page(parsed, items)
        complete = whole and all(isinstance(i, dict) and "state" in i for i in items)
        tagged: dict[str, list[Any]] = {}
        for item in items:
            state = str(item.get("state") or "") if isinstance(item, dict) else ""
            for length in lengths:
                if state[-length:] in tags:
                    tagged.setdefault(state[-length:], []).append(item)
        return {tag: tasks_in(entries) for tag, entries in tagged.items()}, complete

    return decode


def _whole_page(parsed: Any, items: list[Any]) -> bool:
    total = parsed.get("totalElements") if isinstance(parsed, dict) else None
    return isinstance(total, int) and not isinstance(total, bool) and len(items) >= total


def _list_items(method: str, path: str, parsed: Any, raw: bytes) -> list[Any]:
    if isinstance(parsed, dict) and isinstance(parsed.get("content"), list):
        parsed = parsed["content"]
    if not isinstance(parsed, list):
        raise _shape_error(method, path, raw, "the answer is not a list of tasks")
    return parsed


def tasks_in(items: Any) -> list[TaskInfo]:
    """The entries of a decoded list that are valid tasks."""
    if not isinstance(items, list):
        return []
    tasks = []
    for item in items:
        try:
            tasks.append(structure(item, TaskInfo))
        except (cattrs.BaseValidationError, ValueError, TypeError) as exc:
            logger.warning("left out a list entry that is not a task: %s", "; ".join(_errors(exc)))
    return tasks
