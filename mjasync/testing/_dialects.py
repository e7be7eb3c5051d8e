"""What differs between the reference server, the extended server and relays, as data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

DialectName = Literal["reference", "extended", "relay"]
AuthName = Literal["bearer", "mj-api-secret", "authorization"]


@dataclass(frozen=True)
class Dialect:
    """The constants of one server family (protocol.md sections 1, 3, 4, 7.5, 8)."""

    name: DialectName
    auth: AuthName
    """The SDK's auth style name for this family."""
    mode_segment: str | None
    """Regex of the optional path segment before ``/mj``; None = no such segment."""
    accepted: str
    timeout_text: str
    queue_full: tuple[int, str]
    instance: Mapping[str, str]
    """The `properties` ids an accepted submit carries."""
    missing: frozenset[str]
    """Route paths this family does not serve (answered 404)."""


LIST_ROUTES: Final = frozenset({"/mj/task/list-by-condition", "/mj/task/list-by-ids"})
"""Batch query routes (switched off by ``list_by_condition=False``)."""

DIALECTS: Final[Mapping[str, Dialect]] = {
    "reference": Dialect(
        "reference",
        "mj-api-secret",
        None,
        "提交成功",
        "任务超时",
        (23, "队列已满，请稍后尝试"),
        {"discordInstanceId": "1118138338562560102"},
        frozenset(
            {
                "/mj/submit/action",
                "/mj/submit/modal",
                "/mj/submit/shorten",
                "/mj/submit/upload-discord-images",
                "/mj/submit/edits",
                "/mj/submit/retexture",
                "/mj/submit/video",
                "/mj/insight-face/swap",
                "/mj/task/list-by-ids",
                "/mj/task/{id}/image-seed",
                "/mj/task/{id}/cancel",
            }
        ),
    ),
    "extended": Dialect(
        "extended",
        "authorization",
        r"mj-(?:fast|relax|turbo)",
        "Submit success",
        "执行超时 5 分钟",
        (9, "提交失败，队列已满，请稍后重试"),
        {"discordChannelId": "1300842676874379336", "discordInstanceId": "1300842676874379336"},
        frozenset({"/mj/submit/change", "/mj/submit/simple-change", "/mj/task/queue"}),
    ),
    "relay": Dialect(
        "relay",
        "bearer",
        r"[^/]+",
        "成功",
        "上游任务超时（超过1小时）",
        (23, "队列已满，请稍后尝试"),
        {"discordChannelId": "1300842676874379336", "discordInstanceId": "1572398367386955776"},
        frozenset(
            {
                "/mj/task/list-by-ids",
                "/mj/task/list",
                "/mj/task/queue",
                "/mj/task/{id}/cancel",
                "/mj/submit/edits",  # relays may add these later (protocol.md section 6)
                "/mj/submit/retexture",
                "/mj/submit/video",
            }
        ),
    ),
}
