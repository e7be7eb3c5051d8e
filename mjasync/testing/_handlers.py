"""The simulator's endpoints: check the request, record or read jobs, answer as the dialect does."""

from __future__ import annotations

import base64
import itertools
import random
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from aiohttp import web

from ._answers import Answer, envelope, json_answer
from ._dialects import Dialect
from ._inputs import id_of, is_data_url, is_url, read_json, text_of, word_in
from ._jobs import (
    DESCRIPTION,
    MODAL_BUTTONS,
    REMIX_BUTTONS,
    TERMINAL,
    VIDEO_ACTIONS,
    FakeJob,
    JobBoard,
    shortened,
)
from ._png import grid_png
from ._stats import FakeStats

__all__ = ["Handlers"]


class Live(Protocol):
    """The FakeProxy settings the handlers read at each request (a test may change them)."""

    remix: bool
    save_lag: float
    uploads: dict[str, bytes]

    @property
    def url(self) -> str: ...


class Handlers:
    """The endpoint handlers of one FakeProxy; a rejection raises `Answer`."""

    def __init__(
        self,
        dialect: Dialect,
        board: JobBoard,
        stats: FakeStats,
        rng: random.Random,
        live: Live,
        *,
        banned_words: Sequence[str],
        fail_words: Sequence[str],
        stuck_words: Sequence[str],
        upstream_poll: float,
    ) -> None:
        self._dialect = dialect
        self._board = board
        self._stats = stats
        self._rng = rng
        self._live = live
        self._upstream_poll = upstream_poll
        self._banned, self._fail, self._stuck = tuple(banned_words), tuple(fail_words), tuple(stuck_words)

    # --- submits ---

    async def imagine(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        prompt = self._prompt(body)
        images = body.get("base64Array") or []
        if not isinstance(images, list) or not all(map(is_data_url, images)):
            raise self._reject(4, "base64格式错误")
        banned = word_in(prompt, self._banned)
        if banned is not None:
            raise self._reject(24, "可能包含敏感词", {"promptEn": prompt, "bannedWord": banned})
        return self._create(request, body, "IMAGINE", prompt, f"/imagine {prompt}")

    async def blend(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        images = body.get("base64Array")
        if not isinstance(images, list) or not 2 <= len(images) <= 5:
            raise self._reject(4, "图片参数错误，2~5张图片")
        if not all(map(is_data_url, images)):
            raise self._reject(4, "base64格式错误")
        return self._create(request, body, "BLEND", "", f"/blend {len(images)} images")

    async def describe(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        link = self._dialect.describe_takes_link and is_url(body.get("link"))
        if not (is_data_url(body.get("base64")) or link):
            raise self._reject(4, "base64格式错误")
        return self._create(request, body, "DESCRIBE", "", "/describe", final_prompt=DESCRIPTION)

    async def shorten(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        prompt = self._prompt(body)
        analysis = shortened(prompt)
        return self._create(request, body, "SHORTEN", prompt, f"/shorten {prompt}", final_prompt=analysis)

    async def upload(self, request: web.Request) -> web.Response:
        """upload-discord-images: no task, `result` is one URL per image (served by this fake)."""
        images = (await self._body(request)).get("base64Array")
        if not isinstance(images, list) or not images or not all(map(is_data_url, images)):
            raise self._reject(4, "base64格式错误")
        urls = []
        for image in images:
            name = f"{uuid.UUID(int=self._rng.getrandbits(128), version=4)}.png"
            self._live.uploads[name] = base64.b64decode(image.split(",", 1)[1])
            urls.append(f"{self._live.url}/attachments/{name}")
        return json_answer(envelope(1, self._dialect.accepted, urls))

    async def image_job(self, action: str, request: web.Request) -> web.Response:
        """edits and retexture: a prompt and one image (a data URL or an http(s) URL)."""
        body = await self._body(request)
        prompt = self._prompt(body)
        if not (is_data_url(body.get("image")) or is_url(body.get("image"))):
            raise self._reject(4, "base64格式错误")
        return self._create(request, body, action, prompt, f"/{action.lower()} {prompt}")

    async def video(self, request: web.Request) -> web.Response:
        """A video from a start image, or (`action: extend`) a longer one of a finished video job."""
        body = await self._body(request)
        prompt = self._prompt(body)
        if body.get("motion", "low") not in ("low", "high"):
            raise self._reject(4, "motion参数错误")
        if body.get("action") == "extend":
            parent = self._parent(id_of(body.get("taskId")))
            if parent.action not in VIDEO_ACTIONS or parent.status != "SUCCESS":
                raise self._reject(4, "关联任务状态错误")
            if body.get("index") not in (0, 1, 2, 3):
                raise self._reject(4, "index参数错误")
            description = f"/video extend {parent.id} {body['index']}"
            return self._create(request, body, "VIDEO_EXTEND", prompt, description, parent=parent)
        if not (is_data_url(body.get("image")) or is_url(body.get("image"))):
            raise self._reject(4, "base64格式错误")
        return self._create(request, body, "VIDEO", prompt, f"/video {prompt}")

    async def swap_face(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        for side in ("source", "target"):
            if not (is_data_url(body.get(f"{side}Base64")) or is_url(body.get(f"{side}Url"))):
                raise self._reject(4, "base64格式错误")
        return self._create(request, body, "SWAP_FACE", "", "/swap_face")

    # --- follow-ups ---

    async def action(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        custom_id = text_of(body, "customId")
        if self._dialect.needs_custom_id and not custom_id:
            raise self._reject(4, "custom_id_is_required")
        parent = self._parent(id_of(body.get("taskId")))
        return self._press(request, body, parent, custom_id)

    async def modal(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        job = self._parent(id_of(body.get("taskId")))
        if job.status != "MODAL":
            raise self._reject(4, "关联任务状态错误")
        prompt = text_of(body, "prompt").strip()
        if prompt:
            job.prompt = job.final_prompt = prompt
        answer = self._start(job)
        job.status = "NOT_START"
        return answer

    async def change(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        index = body.get("index")
        if self._dialect.needs_index and index is None:
            raise self._reject(4, "index_is_required")
        parent = self._parent(id_of(body.get("taskId")))
        return self._change_to(request, body, parent, text_of(body, "action"), id_of(index))

    async def simple_change(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        match = re.fullmatch(r"\s*(\d+)\s+(?:([UV])([1-4])|R)\s*", text_of(body, "content"))
        if match is None:
            raise self._reject(4, "content参数错误")
        action = {"U": "UPSCALE", "V": "VARIATION"}.get(match[2] or "", "REROLL")
        return self._change_to(request, body, self._parent(match[1]), action, match[3] or "")

    # --- task queries ---

    async def fetch(self, request: web.Request) -> web.Response:
        job = self._board.jobs.get(request.match_info["id"])
        return self._dialect.unknown_fetch() if job is None else json_answer(job.task_json())

    async def image_seed(self, request: web.Request) -> web.Response:
        job = self._known(request.match_info["id"])
        if job.status != "SUCCESS":
            raise Answer(self._dialect.no_seed())
        return json_answer(envelope(1, "成功", job.seed))

    async def cancel(self, request: web.Request) -> web.Response:
        """The extended server's admin cancel: an empty 200; the job ends in FAILURE `取消任务`."""
        self._board.cancel(self._known(request.match_info["id"]), "取消任务")
        return web.Response()

    async def list_by_ids(self, request: web.Request) -> web.Response:
        ids = (await self._body(request)).get("ids")
        wanted = [id_of(i) for i in ids] if isinstance(ids, list) else []
        self._stats.list_batches.append(len(wanted))
        jobs = self._board.jobs
        found = [jobs[i].task_json() for i in dict.fromkeys(wanted) if i in jobs]
        self._rng.shuffle(found)
        return json_answer(found)

    async def task_list(self, request: web.Request) -> web.Response:
        newest = reversed(self._board.jobs.values())
        return json_answer([job.task_json() for job in itertools.islice(newest, self._dialect.list_limit)])

    async def task_queue(self, request: web.Request) -> web.Response:
        jobs = self._board.jobs.values()
        return json_answer([job.task_json() for job in jobs if job.status not in TERMINAL])

    async def image(self, request: web.Request) -> web.Response:
        job = self._board.jobs.get(request.match_info["id"])
        if job is None:
            return web.Response(status=404)
        return web.Response(body=grid_png(job.hash), content_type="image/png")

    async def attachment(self, request: web.Request) -> web.Response:
        image = self._live.uploads.get(request.match_info["name"])
        if image is None:
            return web.Response(status=404)
        return web.Response(body=image, content_type="image/png")

    # --- reading the request ---

    def _reject(self, code: int, text: str, properties: Mapping[str, Any] | None = None) -> Answer:
        return Answer(self._dialect.rejection(code, text, properties))

    async def _body(self, request: web.Request) -> dict[str, Any]:
        body = read_json(await request.read())
        if isinstance(body, dict):
            return body
        raise Answer(self._dialect.bad_body(request.path))

    def _prompt(self, body: Mapping[str, Any]) -> str:
        prompt = text_of(body, "prompt")
        if not prompt.strip():
            raise self._reject(4, self._dialect.prompt_required)
        return prompt

    def _parent(self, task_id: str) -> FakeJob:
        job = self._board.jobs.get(task_id)
        if job is None:
            raise Answer(self._dialect.unknown_parent())
        return job

    def _known(self, task_id: str) -> FakeJob:
        job = self._board.jobs.get(task_id)
        if job is None:
            raise Answer(self._dialect.unknown_task())
        return job

    # --- recording jobs ---

    def _create(
        self,
        request: web.Request,
        body: Mapping[str, Any],
        action: str,
        prompt: str,
        description: str,
        *,
        final_prompt: str | None = None,
        parent: FakeJob | None = None,
        custom_id: str = "",
        modal: bool = False,
    ) -> web.Response:
        state = body.get("state")
        hook = text_of(body, "notifyHook")
        segment = request.match_info.get("mode", "").upper()
        job = FakeJob(
            id=self._board.new_id(self._rng),
            action=action,
            prompt=prompt,
            state=state if isinstance(state, str) else None,
            description=description,
            dialect=self._dialect,
            base_url=self._live.url,
            hash=str(uuid.UUID(int=self._rng.getrandbits(128), version=4)),
            notify_hook=hook if hook and self._dialect.keeps_notify_hook else None,
            bot_type="NIJI_JOURNEY" if "NIJI" in text_of(body, "botType").upper() else "MID_JOURNEY",
            mode=next((m for m in ("RELAX", "TURBO") if m in segment), "FAST"),
            parent_id=parent.id if parent is not None else None,
            custom_id=custom_id,
            final_prompt=prompt if final_prompt is None else final_prompt,
            fails=word_in(prompt, self._fail) is not None,
            stuck=word_in(prompt, self._stuck) is not None,
            polled_at=time.monotonic() + self._upstream_poll,
        )
        if modal:
            job.status = "MODAL"
            answer = self._accepted(job, 21, "Waiting for window confirm", finalPrompt=prompt, remix=True)
        else:
            answer = self._start(job)
        self._board.jobs[job.id] = job
        self._stats.accepted_submits += 1
        self._stats.submits_by_state[job.state or ""] += 1
        return answer

    def _start(self, job: FakeJob) -> web.Response:
        """Give `job` a slot (code 1) or a waiting place (22); a full queue raises 23 or 9."""
        position = self._board.admit(job)
        if position is None:
            code, text = self._dialect.queue_full
            raise self._reject(code, text, self._dialect.instance)
        if not position:
            return self._accepted(job)
        return self._accepted(job, 22, f"排队中，前面还有{position}个任务", numberOfQueues=position)

    def _accepted(self, job: FakeJob, code: int = 1, text: str = "", **properties: Any) -> web.Response:
        job.submit_text = text or self._dialect.accepted
        code = self._dialect.accepted_code(code, job.custom_id)
        shown = {**self._dialect.instance, **properties}
        return json_answer(envelope(code, job.submit_text, job.id, shown))

    def _press(
        self, request: web.Request, body: Mapping[str, Any], parent: FakeJob, custom_id: str
    ) -> web.Response:
        """Create the child job of pressing button `custom_id` on `parent`."""
        if parent.status != "SUCCESS" or parent.finished_within(self._live.save_lag):
            raise self._reject(4, self._dialect.parent_not_ready)
        button = next((b for b in parent.buttons if b["customId"] == custom_id), None)
        if button is None:
            raise self._reject(4, self._dialect.unknown_button.format(custom_id))
        action = next(a for prefix, a in self._dialect.child_actions if custom_id.startswith(prefix))
        return self._create(
            request,
            body,
            action or parent.action,
            parent.prompt,
            f"/up {parent.id} {button['label'] or button['emoji'] or 'R'}",
            parent=parent,
            custom_id=custom_id,
            modal=custom_id.startswith(MODAL_BUTTONS)
            or (self._live.remix and custom_id.startswith(REMIX_BUTTONS)),
        )

    def _change_to(
        self, request: web.Request, body: Mapping[str, Any], parent: FakeJob, action: str, index: str
    ) -> web.Response:
        custom_id = {
            "UPSCALE": f"MJ::JOB::upsample::{index}::{parent.hash}",
            "VARIATION": f"MJ::JOB::variation::{index}::{parent.hash}",
            "REROLL": f"MJ::JOB::reroll::0::{parent.hash}::SOLO",
        }.get(action, "")
        return self._press(request, body, parent, custom_id)
