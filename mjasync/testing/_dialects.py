"""What differs between the reference server, the extended server and relays: one object per family.

Handlers ask their `Dialect` (a key, a text, an answer, a task shape) and never test its name.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any, ClassVar, Final, Literal

from aiohttp import web

from ._answers import envelope, gateway_error, json_answer, result_failure, spring_error, upstream_error
from ._jobs import MODAL_BUTTONS, TERMINAL, VIDEO_ACTIONS, FakeJob

__all__ = ["DIALECTS", "LIST_ROUTES", "Dialect", "DialectName"]

DialectName = Literal["reference", "extended", "relay"]
AuthName = Literal["bearer", "mj-api-secret", "authorization"]

LIST_ROUTES: Final = frozenset({"/mj/task/list-by-condition", "/mj/task/list-by-ids"})
"""Batch query routes (switched off by ``list_by_condition=False``)."""
_CHILD_ACTIONS: Final = (
    ("MJ::JOB::upsample::", "UPSCALE"),
    ("MJ::JOB::upsample_", "UPSCALE_HD"),
    ("MJ::JOB::reroll::", ""),  # the parent's action
    ("MJ::JOB::pan_", "PAN"),
    ("MJ::Inpaint::", "VARIATION"),
    ("MJ::Outpaint::", "ZOOM"),
    ("MJ::CustomZoom::", "ZOOM"),
    ("MJ::JOB::", "VARIATION"),  # variation, low_variation, high_variation
)


class Dialect:
    """One server family (protocol.md sections 1, 3, 4, 7.5, 8, 12.3).

    The methods here answer as the midjourney-proxy family does; a subclass overrides what its
    family does differently, and sets the constants each family has of its own.
    """

    name: ClassVar[DialectName]
    auth: ClassVar[AuthName]
    """The SDK's auth style name for this family."""
    mode_segment: ClassVar[str | None]
    """Regex of the optional path segment before ``/mj``; None = no such segment."""
    accepted: ClassVar[str]
    """The description of an accepted submit."""
    timeout_text: ClassVar[str]
    """The failReason of a job that ran out of time."""
    queue_full: ClassVar[tuple[int, str]]
    instance: ClassVar[Mapping[str, str]]
    """The `properties` ids an accepted submit carries."""
    missing: ClassVar[frozenset[str]]
    """Route paths this family does not serve (answered 404)."""
    prompt_required: ClassVar[str] = "prompt不能为空"
    parent_not_ready: ClassVar[str] = "关联任务状态错误"
    """The rejection of a button pressed on a task that has not (visibly) succeeded."""
    unknown_button: ClassVar[str] = "未知的 Action 类型"
    """The rejection of a customId the parent does not show; ``{}`` stands for the customId."""
    child_actions: ClassVar[tuple[tuple[str, str], ...]] = _CHILD_ACTIONS
    """customId prefix -> the action of the child task; the first match wins, ``""`` = the parent's."""
    keeps_notify_hook: ClassVar[bool] = True
    """False: the family drops `notifyHook` (no callbacks, no hook in the task)."""
    describe_takes_link: ClassVar[bool] = False
    """True: describe also takes an http(s) `link` instead of `base64`."""
    needs_custom_id: ClassVar[bool] = False
    """True: `/submit/action` without a customId is rejected before the task is looked up."""
    needs_index: ClassVar[bool] = False
    """True: `/submit/change` without an index is rejected, even for REROLL."""
    list_limit: ClassVar[int | None] = None
    """How many of the newest tasks `/task/list` shows; None = all."""
    auth_first: ClassVar[bool] = False
    """True: a wrong key is answered 401 before routing, so even on a route not served."""

    def __repr__(self) -> str:
        return f"<Dialect {self.name}>"

    def sent_key(self, headers: Mapping[str, str]) -> str:
        """The API key a request presents, read from the headers this family reads."""
        return headers.get("mj-api-secret", "")

    def unauthorized(self) -> web.Response:
        """The answer to a missing or wrong key."""
        return web.Response(status=401)

    def rate_limited(self) -> web.Response:
        """The answer of the `http_429` fault."""
        return web.Response(status=429)

    def not_served(self) -> web.Response:
        """The answer on a route this family does not serve."""
        return web.Response(status=404)

    def rejection(
        self, code: int, text: str, properties: Mapping[str, Any] | None = None, *, status: int = 200
    ) -> web.Response:
        """A refused request with the proxy's `code` and `text`."""
        return json_answer(envelope(code, text, None, properties), status)

    def bad_body(self, path: str) -> web.Response:
        """The answer to a body that is not a JSON object: Spring's default 400, no `code`."""
        return spring_error(400, "Bad Request", path)

    def unknown_fetch(self) -> web.Response:
        """`fetch` of an id this server never issued."""
        return self.unknown_task()

    def unknown_task(self) -> web.Response:
        """`image-seed` or `cancel` of an unknown id."""
        return self.rejection(3, "任务不存在", status=404)

    def unknown_parent(self) -> web.Response:
        """A follow-up submit naming an unknown parent task."""
        return self.rejection(3, "关联任务不存在或已失效")

    def no_seed(self) -> web.Response:
        """`image-seed` of a task that has no image hash yet (not finished)."""
        return self.rejection(3, "未找到 seed")

    def accepted_code(self, code: int, custom_id: str) -> int:
        """The code an accepted submit shows for the server's `code` (1, 21 or 22)."""
        return code

    def task_json(self, job: FakeJob) -> dict[str, Any]:
        """`job` as this family's fetch, list and callbacks show it."""
        properties: dict[str, Any] = {"finalPrompt": job.final_prompt, "messageHash": job.hash}
        properties.update(self.instance)
        if job.notify_hook:
            properties["notifyHook"] = job.notify_hook
        return {
            "id": job.id,
            "action": job.action,
            "status": job.status,
            "prompt": job.prompt,
            "promptEn": job.prompt,
            "description": job.description,
            "state": job.state,
            "submitTime": job.submit_time,
            "startTime": job.start_time,
            "finishTime": job.finish_time,
            "imageUrl": job.image_url,
            "progress": job.progress,
            "failReason": job.fail_reason,
            "properties": properties,
        }


class Reference(Dialect):
    """novicezk/midjourney-proxy: `mj-api-secret`, an empty 200 for an unknown id.

    A body it cannot bind gets Spring's default 400 (`timestamp`, `status`, `error`, `path`; no
    `code`), as its Jackson binding throws before the controller runs (protocol.md section 14).
    """

    name = "reference"
    auth = "mj-api-secret"
    mode_segment = None
    accepted = "提交成功"
    timeout_text = "任务超时"
    queue_full = (23, "队列已满，请稍后尝试")
    instance: ClassVar[Mapping[str, str]] = {"discordInstanceId": "1118138338562560102"}
    missing = frozenset(
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
    )

    def unknown_fetch(self) -> web.Response:
        return web.Response()


class Extended(Dialect):
    """The extended server (trueai-org): raw Authorization, extra task fields (protocol.md section 14).

    Its own code: fetch of an unknown id returns a null `ActionResult` (HTTP 204, empty body); a new
    task is `NOT_START` from the start and accepted with `提交成功`; image-seed of an unknown id is
    404 code 3 `关联任务不存在或已失效`, of a task without a hash 400 code 4; the auth middleware
    runs before routing (a wrong key on a missing route is 401); a body it cannot bind is
    ``{"success": false, "code": -1, ...}``.
    """

    name = "extended"
    auth = "authorization"
    mode_segment = r"mj-(?:fast|relax|turbo)"
    accepted = "提交成功"
    timeout_text = "执行超时 5 分钟"
    queue_full = (9, "提交失败，队列已满，请稍后重试")
    instance: ClassVar[Mapping[str, str]] = {
        "discordChannelId": "1300842676874379336",
        "discordInstanceId": "1300842676874379336",
    }
    missing = frozenset({"/mj/submit/change", "/mj/submit/simple-change", "/mj/task/queue"})
    describe_takes_link = True
    list_limit = 100
    auth_first = True

    def sent_key(self, headers: Mapping[str, str]) -> str:
        return headers.get("Authorization", "") or super().sent_key(headers)

    def unauthorized(self) -> web.Response:
        return web.Response(status=401, text="Authorization header missing.")

    def bad_body(self, path: str) -> web.Response:
        return result_failure("请求参数错误")

    def unknown_fetch(self) -> web.Response:
        return web.Response(status=204)

    def unknown_task(self) -> web.Response:
        return self.rejection(3, "关联任务不存在或已失效", status=404)

    def unknown_parent(self) -> web.Response:
        return self.rejection(3, "关联任务不存在或已失效", status=404)

    def no_seed(self) -> web.Response:
        return self.rejection(4, "关联任务状态错误", status=400)

    def task_json(self, job: FakeJob) -> dict[str, Any]:
        task = super().task_json(job)
        if job.custom_id:
            task["properties"]["custom_id"] = job.custom_id
        done = job.status in TERMINAL
        url = job.image_url if job.status == "SUCCESS" else None
        used = None
        if done and job.start_time is not None and job.finish_time is not None:
            used = f"{(job.finish_time - job.start_time) / 1000:.2f} s"
        task.update(
            isCompleted=done,
            botType=job.bot_type,
            parentId=job.parent_id,
            mode=job.mode,
            buttons=job.buttons,
            imageUrls=[{"url": url, "thumbnail": url}] if url else [],
            displays={"status": job.status},
            useTime=used,
        )
        if job.action in VIDEO_ACTIONS and url:
            video = f"https://cdn.midjourney.com/video/{job.hash}/0.mp4"
            task.update(videoUrl=video, videoUrls=[{"url": video}])
        return task


class Relay(Dialect):
    """A new-api style relay: Bearer, 22 shown as 1, `{"error": {...}}` gateway bodies (protocol.md 14).

    From new-api's own code: `result` is a string; a task is the relay's copy, filled by polling its
    upstream (every ~15 s): until the first poll (FakeProxy's `upstream_poll_seconds`) it shows
    `status: ""`, `progress: "0%"`, `buttons`/`properties: null`, `state: ""` (the caller's state
    only arrives with that poll), `videoUrl: ""`, `videoUrls: null`, `description: "提交成功"`. A
    FAILURE shows `progress: "100%"`; there are no `mode`/`cost` fields. Plus-style customIds are
    mapped to actions as `CoverPlusActionToNormalAction` does (REROLL, UPSCALE, LOW_/HIGH_VARIATION).
    Every refused Midjourney request is HTTP 400 (429 for code 30) with
    ``{"description": "<text> ", "type": "upstream_error", "code": 4}``: code 4 whatever the
    upstream's code, so a caller cannot tell a banned prompt from a full queue but by the text.
    `bearer` is accepted in any case.
    """

    name = "relay"
    auth = "bearer"
    mode_segment = r"[^/]+"
    accepted = "成功"
    timeout_text = "上游任务超时（超过1小时）"
    queue_full = (23, "队列已满，请稍后尝试")
    instance: ClassVar[Mapping[str, str]] = {
        "discordChannelId": "1300842676874379336",
        "discordInstanceId": "1572398367386955776",
    }
    missing = frozenset(
        {
            "/mj/task/list-by-ids",
            "/mj/task/list",
            "/mj/task/queue",
            "/mj/task/{id}/cancel",
            "/mj/submit/edits",  # relays may add these later (protocol.md section 6)
            "/mj/submit/retexture",
            "/mj/submit/video",
        }
    )
    prompt_required = "prompt_is_required"
    parent_not_ready = "task_status_not_success"
    unknown_button = "unknown_action:{}"
    # CoverPlusActionToNormalAction: the action named in the customId, variations by their kind.
    child_actions = (
        ("MJ::JOB::upsample", "UPSCALE"),
        ("MJ::JOB::low_variation::", "LOW_VARIATION"),
        ("MJ::JOB::high_variation::", "HIGH_VARIATION"),
        ("MJ::JOB::variation::", "VARIATION"),
        ("MJ::JOB::pan_", "PAN"),
        ("MJ::JOB::reroll::", "REROLL"),
        ("MJ::Outpaint::", "ZOOM"),
        ("MJ::CustomZoom::", "CUSTOM_ZOOM"),
        ("MJ::Inpaint::", "INPAINT"),
    )
    keeps_notify_hook = False
    needs_custom_id = True
    needs_index = True

    def sent_key(self, headers: Mapping[str, str]) -> str:
        token = headers.get("Authorization", "")
        token = (token[7:] if token[:7].lower() == "bearer " else token).strip()
        return token if token not in ("", "midjourney-proxy") else super().sent_key(headers)

    def unauthorized(self) -> web.Response:
        return gateway_error(f"无效的令牌 (request id: {secrets.token_hex(12)})", 401)

    def rate_limited(self) -> web.Response:
        return gateway_error("您已达到请求数限制：1分钟内最多请求60次", 429)

    def not_served(self) -> web.Response:
        return web.Response(status=404, text="404 page not found")

    def rejection(
        self, code: int, text: str, properties: Mapping[str, Any] | None = None, *, status: int = 200
    ) -> web.Response:
        return upstream_error(text, 429 if code == 30 else 400)

    def bad_body(self, path: str) -> web.Response:
        listing = path.endswith(tuple(LIST_ROUTES))
        return upstream_error("do_request_failed" if listing else "bind_request_body_failed")

    def unknown_fetch(self) -> web.Response:
        return self.rejection(4, "task_no_found")

    def unknown_task(self) -> web.Response:
        return self.rejection(3, "task_not_found", status=404)

    def unknown_parent(self) -> web.Response:
        return self.rejection(3, "task_not_found")

    def accepted_code(self, code: int, custom_id: str) -> int:
        # 22 (queued) shows as 1, and so does 21 (modal) except for Vary Region and Custom Zoom.
        if code == 22 or (code == 21 and not custom_id.startswith(MODAL_BUTTONS)):
            return 1
        return code

    def task_json(self, job: FakeJob) -> dict[str, Any]:
        task = {k: "" if v is None else v for k, v in super().task_json(job).items()}
        task.update(
            description="提交成功",
            customId=job.custom_id,
            botType="",
            maskBase64="",
            videoUrl="",
            videoUrls=None,
        )
        if not job.upstream_polled:
            task.update(
                status="", progress="0%", state="", promptEn="", imageUrl="", failReason="",
                startTime=0, finishTime=0, buttons=None, properties=None,
            )
            return task
        task.update(
            progress="100%" if job.status == "FAILURE" else job.progress or "",
            startTime=job.start_time or 0,
            finishTime=job.finish_time or 0,
            properties={"finalPrompt": job.final_prompt, "finalZhPrompt": ""},
            buttons=job.buttons or None,
        )
        return task


DIALECTS: Final[Mapping[str, Dialect]] = {d.name: d for d in (Reference(), Extended(), Relay())}
