"""The Client: configuration, the lazy session, and one method per endpoint."""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Unpack
from urllib.parse import quote

import aiohttp

from . import _bodies as bodies
from . import _validate as check
from ._actions import Press, press_for, retry_fresh_parent, send_press
from ._batch import DEFAULT_MAX_IN_FLIGHT, BatchResult, run_batch
from ._callbacks import Callbacks
from ._decode import acknowledged, seed, task_list, urls
from ._endpoints import MODAL, QUERY, optional
from ._images import save_image
from ._jobs import DEFAULT_RETENTION, Jobs
from ._logging import logger, redact_url, setup_from_env
from ._lookup import ReconcileStrategy
from ._memory_store import MemoryStore
from ._models import Button, CustomId, Dimensions, TaskInfo, parse_custom_id
from ._options import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_RETRIES,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_TIMEOUT,
    ClientOptions,
    Overrides,
    evolved,
)
from ._poller import Poller
from ._reader import Reader
from ._retry import RequestKind
from ._stats import ClientStats
from ._store import Store
from ._submit import DEFAULT_RESEND_AFTER, Job, Submitter
from ._task import DEFAULT_WAIT_TIMEOUT, ImagineOptions, SubmitOptions, Task, id_of, image_source
from ._transport import AuthStyle, SessionHolder, Transport
from ._validate import BotType, VideoMotion

__all__ = ["Client"]


class Client:
    """An async client for one Midjourney proxy (`/mj/...` API).

    Construction does no I/O and needs no running loop; the aiohttp session is created on first
    use. Close it with `async with Client(...)` or `await client.close()`.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        auth: AuthStyle = "bearer",
        mode: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        retry_backoff: float = 0.5,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        poll_batch_size: int = 100,
        missing_after: float = 60.0,
        reconcile: ReconcileStrategy = "auto",
        reconcile_delays: Sequence[float] = (2.0, 5.0),
        resend_after: float | None = DEFAULT_RESEND_AFTER,
        verify_tls: bool = True,
        session: aiohttp.ClientSession | None = None,
        store: Store | None = None,
        replica: str | None = None,
        retention: float = DEFAULT_RETENTION,
    ) -> None:
        setup_from_env()
        options = ClientOptions(
            base_url=base_url, api_key=api_key, auth=auth, mode=mode, timeout=timeout,
            connect_timeout=connect_timeout, max_retries=max_retries, retry_backoff=retry_backoff,
            poll_interval=poll_interval, poll_batch_size=poll_batch_size, missing_after=missing_after,
            reconcile=reconcile, reconcile_delays=reconcile_delays, resend_after=resend_after,
            verify_tls=verify_tls,
        )
        sessions = SessionHolder(session, verify_tls=verify_tls)
        check.timeout(retention, "retention")
        callbacks = Callbacks()
        jobs = Jobs(
            store if store is not None else MemoryStore(), check.name(replica, "replica"), retention,
            relay=callbacks.relay,
        )
        callbacks.forward(jobs.publish)
        self._start(options, sessions, callbacks, jobs, [], owns_sessions=True)

    def _start(
        self, options: ClientOptions, sessions: SessionHolder, callbacks: Callbacks, jobs: Jobs,
        submitters: list[Submitter], *, owns_sessions: bool,
    ) -> None:
        self._options = options
        self._sessions = sessions
        self._owns_sessions = owns_sessions
        self._transport = Transport(options.config(), sessions)
        self._reader = Reader(self._transport, batch_size=options.poll_batch_size)
        self._jobs = jobs
        """The store, this replica's name and lease; shared with copies."""
        self._submitter = Submitter(
            self._transport, strategy=options.reconcile, delays=options.reconcile_delays,
            resend_after=options.resend_after, jobs=jobs,
        )
        self._submitters = submitters
        """This client's and its copies' submitters: the owner's close stops their look-ups."""
        submitters.append(self._submitter)
        self._poller = Poller(
            self._reader, interval=options.poll_interval, missing_after=options.missing_after,
            stats=self._transport.stats, on_end=jobs.ended, on_start=jobs.started,
        )
        self.callbacks = callbacks
        """notifyHook intake (configure, serve, aiohttp_handler, deliver); shared with copies."""
        callbacks.attach(self._poller)
        self._missing: set[str] = set()
        """Endpoints this server showed it lacks, when a fallback exists (action -> change)."""

    @property
    def options(self) -> ClientOptions:
        """The settings this client was built with (`with_options()` makes a copy with others)."""
        return self._options

    @property
    def stats(self) -> ClientStats:
        """Requests, retries and reconciles this client (not its copies) has made so far."""
        return self._transport.stats

    @property
    def base_url(self) -> str:
        return self._options.base_url

    def __repr__(self) -> str:
        return f"<mjasync.Client base_url={redact_url(self.base_url)!r} auth={self._options.auth!r}>"

    def with_options(self, **overrides: Unpack[Overrides]) -> Client:
        """A copy with some constructor options changed, sharing this client's session and callbacks.

        An unknown option, `session` or `verify_tls` (fixed by the shared session) raises
        InvalidRequestError."""
        options = evolved(self._options, overrides)
        copy = object.__new__(type(self))
        copy._start(
            options, self._sessions, self.callbacks, self._jobs, self._submitters, owns_sessions=False
        )
        return copy

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop polling, stop a callback receiver started by `callbacks.serve()`, and close the
        session (unless it was passed in, or belongs to the client this one was copied from).
        Jobs are not cancelled on the server."""
        for submitter in self._submitters if self._owns_sessions else (self._submitter,):
            await submitter.close()
        # The owner's close ends its copies too: they share the session being closed.
        for poller in self.callbacks.pollers() if self._owns_sessions else (self._poller,):
            await poller.close()
            self.callbacks.detach(poller)
        if self._owns_sessions:
            await self.callbacks.close()
            await self._jobs.close()
            await self._sessions.close()

    # --- submits ----------------------------------------------------------------------------

    async def imagine(
        self, prompt: str, *, bot_type: BotType = "MID_JOURNEY", images: Sequence[str | bytes] | None = None,
        notify_hook: str | None = None, state: str | None = None, extra_body: Mapping[str, Any] | None = None,
        meta: Mapping[str, Any] | None = None, idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> Task:
        """Submit an /imagine job; returns its Task once the server accepted it.

        `images` are base64 strings, data URLs or raw bytes, sent as `base64Array`. Resent only
        when the request provably created nothing; otherwise found again by its state tag.
        `meta` (small JSON) is stored with the job (`task.meta`); an `idempotency_key` the store
        already holds returns that job's Task and sends nothing.
        """
        return await self._submit(
            "/mj/submit/imagine", bodies.imagine(prompt, bot_type, images), notify_hook=notify_hook,
            state=state, extra_body=extra_body, meta=meta, idempotency_key=idempotency_key, timeout=timeout,
        )

    def imagine_many(
        self, prompts: Iterable[str], *, max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        timeout: float | None = DEFAULT_WAIT_TIMEOUT, **common: Unpack[ImagineOptions],
    ) -> AsyncGenerator[BatchResult, None]:
        """Run many imagine jobs with at most `max_in_flight` submitted but unfinished, yielding a
        BatchResult for each as it ends (not in input order).

        A full queue (23, queue-full 9/4, 429) is waited out and the same prompt submitted again:
        those answers prove nothing was created. Nothing ambiguous is ever resent. `timeout` bounds
        each prompt from its first submit attempt to its result. Close the iterator (`aclosing`,
        or `break` inside `async with aclosing(...)`) to stop: no new submits, waits cancelled.
        On close, every job accepted but not yielded is logged (WARNING, with its `task_id`);
        a submit cut off mid-request is looked for in the background like any cancelled submit.
        """
        items, images = bodies.imagine_many(prompts, max_in_flight, timeout, common)
        if images is not None:
            common["images"] = images
        return run_batch(
            items, lambda prompt: self.imagine(prompt, **common), max_in_flight=max_in_flight,
            timeout=timeout, backoff=self._options.retry_backoff, stats=self.stats,
        )

    async def action(
        self, parent: Task | TaskInfo | str | int, custom_id: str | Button | CustomId,
        **options: Unpack[SubmitOptions],
    ) -> Task:
        """Press any button of a finished task by its customId (taken from `info.buttons`).

        On a server without `/submit/action` (the reference server) U1-U4, V1-V4 and reroll go
        through `/submit/change`; other buttons raise UnsupportedEndpointError.
        """
        press = press_for(custom_id)
        return await self._press(id_of(parent), press, options)

    async def _press(self, parent_id: str, press: Press, options: SubmitOptions) -> Task:
        """Send one follow-up: `/submit/action`, or `/submit/change` where the server lacks it."""
        return await send_press(
            lambda path, body: self._submit(path, body, pressed=press.pressed, **options), parent_id, press,
            self._missing, backoff=self._options.retry_backoff, stats=self.stats,
        )

    async def modal(
        self, task: Task | TaskInfo | str | int, *, prompt: str | None = None,
        mask_base64: str | bytes | None = None, **options: Unpack[SubmitOptions],
    ) -> Task:
        """Complete a task waiting in MODAL (see ActionRequiredError.modal_kind); the job goes on
        under the same id. `mask_base64`: Vary Region's mask, white where to redraw, black elsewhere."""
        body = bodies.modal(id_of(task), prompt, mask_base64)
        pressed = task._pressed if isinstance(task, Task) else None

        async def send() -> Task:  # not a lambda: tenacity awaits only what a coroutine function returns
            return await self._submit(MODAL, body, pressed=pressed, modal_sent=True, **options)

        return await retry_fresh_parent(send, backoff=self._options.retry_backoff, stats=self.stats)

    async def blend(
        self, images: Sequence[str | bytes], *, dimensions: Dimensions = "SQUARE",
        bot_type: BotType = "MID_JOURNEY", **options: Unpack[SubmitOptions],
    ) -> Task:
        """Blend 2-5 images into one picture, shaped PORTRAIT (2:3), SQUARE (1:1) or LANDSCAPE (3:2)."""
        return await self._submit("/mj/submit/blend", bodies.blend(images, dimensions, bot_type), **options)

    async def describe(
        self, image: str | bytes, *, bot_type: BotType = "MID_JOURNEY", **options: Unpack[SubmitOptions]
    ) -> Task:
        """Ask for four prompts that describe an image; they arrive in the result's `final_prompt`."""
        return await self._submit("/mj/submit/describe", bodies.describe(image, bot_type), **options)

    async def shorten(
        self, prompt: str, *, bot_type: BotType = "MID_JOURNEY", **options: Unpack[SubmitOptions]
    ) -> Task:
        """Analyse a prompt into shorter ones; the analysis arrives in the result's `final_prompt`."""
        return await self._submit("/mj/submit/shorten", bodies.shorten(prompt, bot_type), **options)

    async def swap_face(
        self, source: str | bytes, target: str | bytes, **options: Unpack[SubmitOptions]
    ) -> Task:
        """Put the face of `source` onto `target` (InsightFace); each an image or an http(s) URL."""
        return await self._submit("/mj/insight-face/swap", bodies.swap_face(source, target), **options)

    async def edit(self, prompt: str, image: str | bytes, **options: Unpack[SubmitOptions]) -> Task:
        """Edit an image as the prompt says (extended server, web accounts); `image` is an image or a URL."""
        return await self._submit("/mj/submit/edits", bodies.image_job(prompt, image), **options)

    async def retexture(self, prompt: str, image: str | bytes, **options: Unpack[SubmitOptions]) -> Task:
        """Keep an image's shapes and redo its surfaces as the prompt says (extended server, web accounts)."""
        return await self._submit("/mj/submit/retexture", bodies.image_job(prompt, image), **options)

    async def video(
        self, prompt: str, image: str | bytes, *, end_image: str | bytes | None = None,
        motion: VideoMotion = "low", loop: bool = False, batch_size: int | None = None,
        video_type: str | None = None, **options: Unpack[SubmitOptions],
    ) -> Task:
        """Animate an image into a short video (extended server); the result's `video_url` has it.

        `batch_size` 1, 2 or 4 videos; `video_type` such as `vid_1.1_i2v_720` picks the quality.
        """
        body = bodies.video(prompt, image, end_image, motion, loop, batch_size, video_type)
        return await self._submit("/mj/submit/video", body, **options)

    async def extend_video(
        self, task: Task | TaskInfo | str | int, index: int, prompt: str, *, motion: VideoMotion = "low",
        **options: Unpack[SubmitOptions],
    ) -> Task:
        """Make one video (`index` 0-3) of a finished video job longer (extended server)."""
        body = bodies.extend_video(check.video_index(index), id_of(task), prompt, motion)  # index first
        return await self._submit("/mj/submit/video", body, **options)

    async def upload_images(
        self, images: Sequence[str | bytes], *, timeout: float | None = None
    ) -> list[str]:
        """Upload images to Discord and return their URLs (usable in prompts); creates no task.

        Resent only when the request provably did not arrive; an ambiguous failure is raised
        as is (there is no task to look up).
        """
        body = {"base64Array": check.upload_images(images)}
        check.timeout(timeout)
        path = "/mj/submit/upload-discord-images"
        with optional(path):
            return await self._transport.request(
                "POST", path, urls, body=body, kind=RequestKind.SUBMIT, timeout=timeout
            )

    async def _submit(
        self,
        path: str,
        body: dict[str, Any],
        *,
        notify_hook: str | None = None,
        state: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        meta: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        pressed: CustomId | None = None,
        modal_sent: bool = False,
    ) -> Task:
        """Send a job's submit, its record written first; `pressed` and `modal_sent` tell the new
        handle how to read a MODAL."""
        meta = bodies.submit_options(timeout, state, meta, idempotency_key)
        hook = notify_hook if notify_hook is not None else self.callbacks.hook_url
        body = check.submit_body(body, hook, extra_body)
        self._jobs.started()
        with optional(path):
            job = await self._submitter.submit(
                path, body, state=state, timeout=timeout, meta=meta, key=idempotency_key,
                pressed=None if pressed is None else pressed.raw,
            )
        logger.info("POST %s accepted: task %s (code %d)", path, job.task_id, job.result.code)
        return self._handle(job, modal_sent=modal_sent)

    def _handle(self, job: Job, *, modal_sent: bool = False) -> Task:
        """The Task of a job this client follows from now on."""
        record = job.record
        pressed = None if record.pressed is None else parse_custom_id(record.pressed)
        task = Task(
            self, job.task_id, last=record.final, submit_result=job.result, pressed=pressed,
            modal_sent=modal_sent, meta=record.meta,
        )
        self._jobs.followed[record.tag] = task
        return task

    # --- durable jobs -------------------------------------------------------------------------

    async def resume(self) -> list[Task]:
        """Claim the open records of this replica and of replicas whose lease expired, and return
        a Task for each this client does not follow yet (`task.meta` is what was stored).

        A record with a task id is followed again; one without (the process died between send
        and answer) is looked up by its state tag: found -> adopted; absent from a complete view
        `resend_after` seconds since its last send -> sent again, same tag; otherwise it
        stays open for a later call. Never a blind resend; call it at any time."""
        self._jobs.started()
        records = [record for record in await self._jobs.claim() if record.tag not in self._jobs.followed]
        return [self._handle(job) for job in await self._submitter.resume(records, self.callbacks.hook_url)]

    async def forget(self, task: Task | TaskInfo | str | int) -> None:
        """The job is handled: `resume()` never returns it again. Its record, and so its
        idempotency key, stays until `retention` has passed. Also takes a state tag (a record
        no look-up can settle, on a relay say)."""
        await self._jobs.forget(id_of(task))

    async def find(self, state_tag: str) -> Task | None:
        """The job a submit with this state tag created (`SubmitUncertainError.state_tag`, or a tag
        logged for a cancelled submit); None while no task carrying it has been seen.

        Returns what the background look-ups found, else looks the tag up once now."""
        found = await self._submitter.find(check.state_tag(state_tag))
        return None if found is None else Task(self, str(found.result), submit_result=found)

    # --- reads --------------------------------------------------------------------------------

    def task(self, task_id: str | int | TaskInfo) -> Task:
        """A handle on an existing task, for example one whose id was stored before a restart.

        Given a TaskInfo, the handle starts from that snapshot (so its buttons need no fetch).
        """
        if isinstance(task_id, TaskInfo):
            return Task(self, task_id.id, last=task_id)
        return Task(self, check.task_id(task_id))

    async def fetch(self, task_id: str | int, *, timeout: float | None = None) -> TaskInfo:
        """One status lookup; TaskNotFoundError when the server does not know the id."""
        task_id = check.task_id(task_id)
        check.timeout(timeout)
        info = await self._reader.fetch(task_id, timeout=timeout)
        self._poller.publish(info)
        return info

    async def fetch_many(
        self, task_ids: Iterable[str | int], *, timeout: float | None = None
    ) -> list[TaskInfo]:
        """Snapshots of many tasks in few requests (list-by-condition, chunked); unknown ids are
        left out, the rest keep the order asked."""
        check.timeout(timeout)
        ids = list(dict.fromkeys(check.task_id(t) for t in check.sequence(task_ids, "task_ids")))
        return await self._reader.fetch_many(ids, timeout=timeout)

    async def image_seed(self, task: Task | TaskInfo | str | int, *, timeout: float | None = None) -> str:
        """The seed of a finished job's image (GET /mj/task/{id}/image-seed)."""
        check.timeout(timeout)
        path = f"/mj/task/{quote(id_of(task), safe='')}/image-seed"
        with optional("/mj/task/{id}/image-seed"):
            return await self._transport.request("GET", path, seed, timeout=timeout)

    async def cancel(self, task: Task | TaskInfo | str | int, *, timeout: float | None = None) -> None:
        """Ask the server to cancel a job. The only call that does: timeouts and cancelled waits
        never cancel a paid job. The extended server then reports FAILURE `取消任务`."""
        check.timeout(timeout)
        path = f"/mj/task/{quote(id_of(task), safe='')}/cancel"
        with optional("/mj/task/{id}/cancel"):
            await self._transport.request("POST", path, acknowledged, timeout=timeout)

    async def list_tasks(self, *, timeout: float | None = None) -> list[TaskInfo]:
        """The server's task list, newest first (the extended server: its newest 100, all users)."""
        return await self._list("/mj/task/list", timeout)

    async def list_queue(self, *, timeout: float | None = None) -> list[TaskInfo]:
        """The tasks the server has not finished (GET /mj/task/queue)."""
        return await self._list("/mj/task/queue", timeout)

    async def query_tasks(
        self, *, state: str | None = None, ids: Iterable[str | int] | None = None, status: str | None = None,
        action: str | None = None, prompt: str | None = None, extra_body: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> list[TaskInfo]:
        """Search tasks with the plus server's `POST /mj/task/query` (the only server that finds
        a task by `state`); paging fields go in `extra_body`. Unknown elsewhere."""
        check.timeout(timeout)
        body = bodies.query_tasks(state, ids, status, action, prompt, extra_body)
        with optional(QUERY):
            return await self._transport.request("POST", QUERY, task_list, body=body, timeout=timeout)

    async def _list(self, path: str, timeout: float | None) -> list[TaskInfo]:
        check.timeout(timeout)
        with optional(path):
            return await self._transport.request("GET", path, task_list, timeout=timeout)

    async def read_image(self, source: TaskInfo | Task | str, *, timeout: float | None = None) -> bytes:
        """The bytes of a task's result image (or of any image URL), with READ retries."""
        check.timeout(timeout)
        url, _ = await image_source(source, timeout)
        return await self._transport.get_bytes(url, timeout=timeout)

    async def download(
        self, source: TaskInfo | Task | str, path: str | os.PathLike[str] = ".", *,
        timeout: float | None = None,
    ) -> Path:
        """Save a result image to `path` and return the file written.

        `path` is a file, or a directory (existing, or given with a trailing `/`) that gets
        `<task id>.png` (the suffix follows the bytes). Result URLs expire about a day after the
        job: save what you keep. A Task is fetched first unless it already saw SUCCESS.
        """
        check.timeout(timeout)
        url, stem = await image_source(source, timeout)
        return await save_image(self._transport, url, path, stem, timeout=timeout)
