"""A fake Ark (Seedance) provider at the socket level, independent of the project's own sandbox.

It speaks HTTP/1.1 by hand over an anyio TCP listener on 127.0.0.1 (request line, headers, a Content-Length or
chunked body, keep-alive for several requests on one connection), so it can misbehave in ways no HTTP framework
allows. Use it from async tests:

    async with running_fake_ark(render_seconds=0.5) as fake:
        fake.base_url   # http://127.0.0.1:{port}/api/v3   (give this to the client as the Ark base)
        fake.url        # http://127.0.0.1:{port}
        fake.add_fault("create", "drop_after")

Routes (Ark, under `/api/v3`, bearer key checked when `required_key` is set; files need no key, like signed URLs):
    POST   /contents/generations/tasks            create; `{"id": "cgt-…"}`; JSON null = absent
    GET    /contents/generations/tasks/{id}       the Ark task object (protocol.md §4.1); 404 NotFound
    GET    /contents/generations/tasks?…          `{"items": […], "total": n}`, newest first, paged
    DELETE /contents/generations/tasks/{id}       queued → cancelled; running/cancelled → 400 InvalidAction;
                                                  finished → record deleted; unknown → 404 NotFound
    GET    /files/{id}.mp4, /files/{id}.png       the video (real MP4 bytes) and the last frame (a PNG); HEAD and
                                                  a single `Range: bytes=a-b` are honoured

Files: by default every task serves the same sample MP4 and PNG (fast). With `real_clips=True` each task serves a
clip of its own (`seedance_mcp.sandbox.clips.make_clip`, seeded by the task id): as long as the create asked
(`frames`, else `duration` s at 24 fps), in its `ratio` (adaptive: its first frame's shape), with sound when it
asked for `generate_audio`, frame 0 its first frame when it had one (a data: URL, or the fake's own last-frame
URL), and the PNG its clip's real last picture (twice the size). A clip is made on its first download, in a thread,
and kept: `await fake.clip_of(id)` gives exactly what was or will be served; every file fault applies to it.

Life of a task: `queued` for `queue_seconds` after its creation, then `running` for `render_seconds`, then
`succeeded` (so it succeeds `queue_seconds + render_seconds` after creation). `FakeTask.status` overrides that.
Every timestamp the fake reports (created_at, updated_at, the `Date` header) is shifted by `clock_offset`.
`release = fake.hold_task(n)` keeps the n-th task created (from 1) `running` past its render time until
`release.set()`: a test acts while that task renders, however slow the machine.

Faults: `fake.add_fault(route, kind, times=1, task_id=None, **extra)`, route in create | status | list | cancel |
download | frame. Faults are consumed in the order added by matching requests (a fault with `task_id` matches only
requests about that task: its path id, or a list whose `filter.task_ids` holds it); `times=-1` never runs out.
Kinds:
    drop_before       read the request, close the socket without doing anything (nothing is created).
    drop_after        do the normal work (a create DOES create the task), then close without answering.
    half_body         status line and headers with the true Content-Length, half of the body, close.
    truncate_unsized  no Content-Length, `Connection: close`, only the first `fraction` (default 0.5) of the body,
                      close: to the client this looks like a complete, shorter body.
    lie_length        Content-Length says `declared` (default twice the real size), the real body is sent, close.
    http_status       answer `status` (default 500) with an Ark error envelope; optional `code`, `message`, `type`,
                      `retry_after` (sent as the Retry-After header). Nothing is created.
    slow              wait `delay` seconds (default 1.0), then answer normally.
    hold              wait until the anyio.Event given as `release` is set, then answer normally (a create DOES
                      create the task): the test decides what happens while the request is in flight.
    hold_answer       do the normal work first (a create DOES create the task at once), then wait until the
                      anyio.Event given as `release` is set before answering: a client killed meanwhile never
                      reads the answer of a create that was made.
    drip              do the normal work (a create DOES create the task), then send the answer (status line,
                      headers and body) one byte every `interval` seconds (default 1.0): every read gets something
                      long before any read time-out, and the whole answer takes minutes.
    echo_key          put the request's bearer key (the Authorization value without "Bearer ") in the answer, as
                      `where` says:
                        error_code         a 400 whose error.code is the key (any route; nothing is created);
                        request_id         the normal answer, with the key as its X-Request-Id (any route);
                        create_without_id  (create) the task IS created, the answer is 200 `{"message": key}`;
                        task_error         (status, list) status=failed, error.message = 400 chars, then the key;
                        bad_status         (status, list) the status word is the key.
    redirect_loop     (download, frame) 302 to the same URL plus `_loop=1`; that URL redirects to itself forever.
    bad_encoding      (download, frame) `Content-Encoding: gzip` on a body that is not gzip.
    no_video_url      (status, list) the task(s) answered as `succeeded` without `content.video_url`.
    oversize          (download) `size` bytes (default 64 MiB): the MP4 then zeros, with a true Content-Length.
    expired_url       (download, frame) 403 with an XML AccessDenied body, as an expired signed URL gets.
    not_video         (download) 200 `video/mp4` whose body is an HTML page: no video at all.

`running_fake_ark(host=…, name=…, tls=…)` listens on another address (`"::1"`), names itself otherwise in its
URLs (a host name the test resolves), or serves HTTPS with a server-side `ssl.SSLContext`.

Everything the fake sees is in `fake.requests` (method, path, query, headers, body, time, and what was answered:
`status`, `sent_body_bytes`, `abandoned`); `fake.handler_errors` collects unexpected exceptions of the fake itself
(should stay empty).

A retry is told from a second download: an answer the client had given up on (it hung up before the answer went
out, or reset the connection with it unread — a read time-out on a loaded machine) is `abandoned`. So
`downloads_of(id)` counts every answer with the video's body, `deliveries_of(id)` only those the client took, and
`file_requests_of(id)` every request for it.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import io
import json
import random
import socket
import ssl
import string
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from pathlib import Path
from typing import Any, Literal, cast, get_args
from urllib.parse import parse_qs, urlsplit

import anyio
import anyio.to_thread
from anyio.abc import SocketAttribute, SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream
from anyio.streams.tls import TLSStream

from seedance_mcp.sandbox.clips import FPS, SMALL_SIZES, Clip, first_frame_url, make_clip, nearest_ratio

ASSETS = Path(__file__).resolve().parents[2] / "server" / "seedance_mcp" / "sandbox" / "assets"


@functools.cache
def mp4_bytes() -> bytes:
    """The bytes of a real, playable MP4 (the project's sample asset, read as a file)."""
    return (ASSETS / "sample.mp4").read_bytes()


@functools.cache
def png_bytes() -> bytes:
    """The bytes of a real PNG (the project's last-frame asset)."""
    return (ASSETS / "last_frame.png").read_bytes()


API = "/api/v3"
TASKS = f"{API}/contents/generations/tasks"

Route = Literal["create", "status", "list", "cancel", "download", "frame"]
FaultKind = Literal[
    "drop_before",
    "drop_after",
    "half_body",
    "truncate_unsized",
    "lie_length",
    "http_status",
    "slow",
    "hold",
    "hold_answer",
    "drip",
    "echo_key",
    "redirect_loop",
    "bad_encoding",
    "no_video_url",
    "oversize",
    "expired_url",
    "not_video",
]
ROUTES: tuple[str, ...] = get_args(Route)
_ANY_ROUTE = frozenset(ROUTES)
_FILES = frozenset({"download", "frame"})
FAULT_ROUTES: dict[str, frozenset[str]] = {
    "drop_before": _ANY_ROUTE,
    "drop_after": _ANY_ROUTE,
    "half_body": _ANY_ROUTE,
    "truncate_unsized": _ANY_ROUTE,
    "lie_length": _ANY_ROUTE,
    "http_status": _ANY_ROUTE,
    "slow": _ANY_ROUTE,
    "hold": _ANY_ROUTE,
    "hold_answer": _ANY_ROUTE,
    "drip": _ANY_ROUTE,
    "echo_key": _ANY_ROUTE,
    "redirect_loop": _FILES,
    "bad_encoding": _FILES,
    "no_video_url": frozenset({"status", "list"}),
    "oversize": frozenset({"download"}),
    "expired_url": _FILES,
    "not_video": frozenset({"download"}),
}
ECHO_WHERE: dict[str, frozenset[str]] = {
    "error_code": _ANY_ROUTE,
    "request_id": _ANY_ROUTE,
    "create_without_id": frozenset({"create"}),
    "task_error": frozenset({"status", "list"}),
    "bad_status": frozenset({"status", "list"}),
}

_ERROR_DEFAULTS: dict[int, tuple[str, str]] = {
    400: ("InvalidParameter", "BadRequest"),
    401: ("AuthenticationError", "Unauthorized"),
    403: ("AccessDenied", "Forbidden"),
    404: ("NotFound", "NotFound"),
    408: ("RequestTimeout", "RequestTimeout"),
    409: ("Conflict", "Conflict"),
    429: ("RateLimitExceeded.EndpointRPMExceeded", "TooManyRequests"),
    500: ("InternalServiceError", "InternalServiceError"),
    502: ("BadGateway", "BadGateway"),
    503: ("ServiceUnavailable", "ServiceUnavailable"),
    504: ("GatewayTimeout", "GatewayTimeout"),
}
_SIZES_16_9 = {"480p": (864, 496), "720p": (1280, 720), "1080p": (1920, 1080)}
_MAX_HEADER_BYTES = 64 * 1024


def _new_id(alphabet: str, length: int) -> str:
    return "".join(random.choice(alphabet) for _ in range(length))


def request_id() -> str:
    """A fresh Ark-style request id (`2025…` timestamp plus hex)."""
    return time.strftime("%Y%m%d%H%M%S") + _new_id("0123456789abcdef", 24)


@dataclass
class Recorded:
    """One request as the fake read it, and what it answered (`status` None: nothing was answered)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    time: float
    status: int | None = None
    sent_body_bytes: int = 0
    fault: str | None = None
    connection: int = 0
    """Which connection it came on (numbered from 1 in accept order): keep-alive shows as a shared number."""
    answered: float | None = None
    """When the fake began sending its answer (before the first byte left): the client cannot have it sooner."""
    abandoned: bool = False
    """The client had given up on this answer (a read time-out, say): it hung up before the answer was sent, or
    reset the connection with the answer not all read. What it does next is a retry, not a second delivery."""

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Fault:
    route: str
    kind: str
    times: int = 1
    task_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict[str, Any])


@dataclass
class FakeTask:
    """A task the fake knows. `created_at` is real epoch seconds (before `clock_offset`)."""

    id: str
    model: str
    created_at: float
    body: dict[str, Any] = field(default_factory=dict[str, Any])
    status: str | None = None
    """Overrides the clock-driven status (e.g. "failed", "expired", "running") when set."""
    error: dict[str, Any] | None = None
    """The error of a task whose `status` override is "failed" (a default one is made up when None)."""
    service_tier: str = "default"
    safety_identifier: str | None = None
    resolution: str = "720p"
    ratio: str = "16:9"
    duration: int | None = 5
    frames: int | None = None
    seed: int = 0
    return_last_frame: bool = False
    owner: str = "us"
    cancelled: bool = False
    cancelled_at: float | None = None
    seq: int = 0
    held: anyio.Event | None = None
    """Until it is set, the task stays `running` past its render time (`FakeArk.hold_task`)."""
    released_at: float | None = None


@dataclass
class _Response:
    status: int
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list[tuple[str, str]])
    pad_zeros: int = 0
    """Zero bytes sent after `body` (counted in Content-Length): the oversize fault."""
    request_id: str | None = None

    @property
    def size(self) -> int:
        return len(self.body) + self.pad_zeros


def _json_response(status: int, payload: Any, **kw: Any) -> _Response:
    return _Response(status, json.dumps(payload).encode(), **kw)


@dataclass
class FakeArk:
    """The fake's state. Every attribute is plain and may be changed by a test at any time."""

    render_seconds: float = 0.5
    queue_seconds: float = 0.0
    clock_offset: float = 0.0
    list_page_cap: int = 50
    require_filter_model: bool = False
    required_key: str | None = None
    foreign_task_on_create: dict[str, Any] | None = None
    tasks: dict[str, FakeTask] = field(default_factory=dict[str, FakeTask])
    requests: list[Recorded] = field(default_factory=list[Recorded])
    faults: list[Fault] = field(default_factory=list[Fault])
    handler_errors: list[str] = field(default_factory=list[str])
    url: str = ""
    tls: ssl.SSLContext | None = None
    """Serve HTTPS with this server-side context (set by `running_fake_ark(tls=…)`)."""
    created_count: int = 0
    known_files: set[str] = field(default_factory=set[str])
    """Ids whose files are served (a deleted task's signed URL still works, as on Ark)."""
    real_clips: bool = False
    """Serve each task a clip of its own (see the module's "Files"), not the one sample for all."""
    clips: dict[str, Clip] = field(default_factory=dict[str, Clip])
    """The clips made so far (real_clips), by task id: what their files serve."""
    _seq: int = 0
    _connections: int = 0
    _holds: dict[int, anyio.Event] = field(default_factory=dict[int, anyio.Event])
    _file_tasks: dict[str, FakeTask] = field(default_factory=dict[str, FakeTask])
    _rendering: dict[str, anyio.Lock] = field(default_factory=dict[str, anyio.Lock])

    # ---- test helpers -------------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"{self.url}{API}"

    @property
    def creates(self) -> int:
        """How many tasks were created through POST (whatever was answered)."""
        return self.created_count

    def count(self, method: str, path_prefix: str = "") -> int:
        return sum(1 for r in self.requests if r.method == method.upper() and r.path.startswith(path_prefix))

    def polls_of(self, task_id: str) -> int:
        """GETs of that task, alone or within a list's `filter.task_ids`."""
        single = f"{TASKS}/{task_id}"
        return sum(
            1
            for r in self.requests
            if r.method == "GET"
            and (r.path == single or (r.path == TASKS and task_id in r.query.get("filter.task_ids", [])))
        )

    def downloads_of(self, task_id: str) -> int:
        """GETs of its video file that were answered with a body (whole or not)."""
        path = f"/files/{task_id}.mp4"
        return sum(1 for r in self.requests if r.method == "GET" and r.path == path and r.sent_body_bytes > 0)

    def deliveries_of(self, task_id: str) -> int:
        """Answers with its video's body that the client took: those it gave up on (`abandoned`) are not counted,
        so a download tried again after a read time-out counts once and a second download of it counts twice."""
        path = f"/files/{task_id}.mp4"
        return sum(
            1
            for r in self.requests
            if r.method == "GET" and r.path == path and r.sent_body_bytes > 0 and not r.abandoned
        )

    def file_requests_of(self, task_id: str) -> int:
        """Every GET of its video file, whatever was answered."""
        path = f"/files/{task_id}.mp4"
        return sum(1 for r in self.requests if r.method == "GET" and r.path == path)

    def add_fault(self, route: str, kind: str, times: int = 1, task_id: str | None = None, **extra: Any) -> Fault:
        if route not in ROUTES:
            raise ValueError(f"unknown route {route!r}; one of {ROUTES}")
        if kind not in FAULT_ROUTES:
            raise ValueError(f"unknown fault kind {kind!r}; one of {sorted(FAULT_ROUTES)}")
        if route not in FAULT_ROUTES[kind]:
            raise ValueError(f"fault {kind!r} does not apply to route {route!r}")
        if kind == "echo_key":
            where = extra.get("where")
            if where not in ECHO_WHERE or route not in ECHO_WHERE[where]:
                raise ValueError(f"echo_key where={where!r} does not apply to route {route!r}")
        fault = Fault(route, kind, times, task_id, dict(extra))
        self.faults.append(fault)
        return fault

    def hold_task(self, number: int) -> anyio.Event:
        """Keep the `number`-th task created (from 1) `running` past its render time until the event is set."""
        release = anyio.Event()
        self._holds[number] = release
        return release

    async def clip_of(self, task_id: str) -> Clip:
        """The task's own clip (made now in a thread if not yet, then kept): what `real_clips` serves for it."""
        async with self._rendering.setdefault(task_id, anyio.Lock()):
            if task_id not in self.clips:
                task = self._file_tasks[task_id]
                first_png = await self._first_frame_png(task)
                self.clips[task_id] = await anyio.to_thread.run_sync(_render_clip, task, first_png)
        return self.clips[task_id]

    async def _first_frame_png(self, task: FakeTask) -> bytes | None:
        """The picture a task's first frame names: an inline data: URL's, or the last frame of one of our tasks."""
        url = first_frame_url(task.body) or ""
        if url.startswith("data:image/"):
            header, _, payload = url.partition(",")
            return base64.b64decode(payload) if header.endswith(";base64") else payload.encode()
        own = f"{self.url}/files/"
        if url.startswith(own):
            name = urlsplit(url).path.removeprefix("/files/")
            source = name.removesuffix(".png")
            if name.endswith(".png") and source != task.id and source in self._file_tasks:
                return (await self.clip_of(source)).last_frame_png
        return None

    def add_foreign_task(
        self, model: str = "doubao-seedance-1-0-pro-250528", created_at: float | None = None, **fields: Any
    ) -> FakeTask:
        """A task someone else made with the same key: noise for list look-ups. Its status follows the clock too."""
        values: dict[str, Any] = {"owner": "someone-else", "seed": random.randint(0, 2**32 - 1)}
        values.update(fields)
        when = time.time() if created_at is None else created_at
        task = FakeTask(id=self._task_id(when), model=model, created_at=when, **values)
        self._store(task)
        return task

    def status_of(self, task: FakeTask, now: float | None = None) -> str:
        """The task's status at `now` (real time)."""
        if task.status is not None:
            return task.status
        if task.cancelled:
            return "cancelled"
        age = (time.time() if now is None else now) - task.created_at
        if age < self.queue_seconds:
            return "queued"
        if age < self.queue_seconds + self.render_seconds:
            return "running"
        if task.held is not None and task.released_at is None:
            if not task.held.is_set():
                return "running"
            task.released_at = time.time()  # its render ends when first seen set off
        return "succeeded"

    # ---- task bookkeeping ---------------------------------------------------------------------------------------

    def _task_id(self, created_at: float) -> str:
        while True:
            stamp = time.strftime("%Y%m%d%H%M%S", time.localtime(created_at + self.clock_offset))
            candidate = f"cgt-{stamp}-{_new_id(string.ascii_lowercase + string.digits, 5)}"
            if candidate not in self.tasks and candidate not in self.known_files:
                return candidate

    def _store(self, task: FakeTask) -> None:
        self._seq += 1
        task.seq = self._seq
        self.tasks[task.id] = task
        self.known_files.add(task.id)
        self._file_tasks[task.id] = task

    def _create(self, body: dict[str, Any]) -> FakeTask:
        now = time.time()
        seed = body.get("seed")
        frames = body.get("frames")
        task = FakeTask(
            id=self._task_id(now),
            model=str(body["model"]),
            created_at=now,
            body=body,
            service_tier=str(body.get("service_tier") or "default"),
            safety_identifier=body.get("safety_identifier"),
            resolution=str(body.get("resolution") or "720p"),
            ratio="16:9" if body.get("ratio") in (None, "adaptive") else str(body["ratio"]),
            duration=None
            if frames is not None
            else (int(body.get("duration", 5)) if body.get("duration") != -1 else 5),
            frames=None if frames is None else int(frames),
            seed=random.randint(0, 2**32 - 1) if seed is None or int(seed) == -1 else int(seed),
            return_last_frame=bool(body.get("return_last_frame", False)),
        )
        task.held = self._holds.pop(self.created_count + 1, None)
        self._store(task)
        self.created_count += 1
        if self.foreign_task_on_create is not None:
            foreign: dict[str, Any] = {"created_at": now, **self.foreign_task_on_create}
            self.add_foreign_task(**foreign)
        return task

    def _updated_at(self, task: FakeTask, status: str) -> float:
        if status == "cancelled" and task.cancelled_at is not None:
            return task.cancelled_at
        if status == "queued":
            return task.created_at
        if status == "running":
            return task.created_at + self.queue_seconds
        ends = task.created_at + self.queue_seconds + self.render_seconds
        return min(time.time(), max(ends, task.released_at or 0.0))

    def task_object(self, task: FakeTask, fault: Fault | None = None, key: str = "") -> dict[str, Any]:
        """The Ark task object (protocol.md §4.1), as the fake would answer it now (with an answer-level fault)."""
        status = self.status_of(task)
        kind = fault.kind if fault else None
        where = fault.extra.get("where") if fault else None
        if kind == "no_video_url":
            status = "succeeded"
        obj: dict[str, Any] = {
            "id": task.id,
            "model": task.model,
            "status": status,
            "error": None,
            "created_at": int(task.created_at + self.clock_offset),
            "updated_at": int(self._updated_at(task, status) + self.clock_offset),
            "seed": task.seed,
            "resolution": task.resolution,
            "ratio": task.ratio,
            "framespersecond": 24,
            "service_tier": task.service_tier,
            "execution_expires_after": int(task.body.get("execution_expires_after") or 172800),
        }
        if task.frames is not None:
            obj["frames"] = task.frames
        else:
            obj["duration"] = task.duration
        if task.safety_identifier is not None:
            obj["safety_identifier"] = task.safety_identifier
        for echoed in ("generate_audio", "draft", "priority", "tools"):
            if task.body.get(echoed) is not None:
                obj[echoed] = task.body[echoed]
        if status == "succeeded":
            content: dict[str, Any] = {}
            if kind != "no_video_url":
                content["video_url"] = f"{self.url}/files/{task.id}.mp4?X-Tos-Expires=86400"
            if task.return_last_frame:
                content["last_frame_url"] = f"{self.url}/files/{task.id}.png?X-Tos-Expires=86400"
            obj["content"] = content
            width, height = _SIZES_16_9.get(task.resolution, (1280, 720))
            frame_count = task.frames if task.frames is not None else 24 * (task.duration or 5) + 1
            tokens = width * height * frame_count // 1024
            obj["usage"] = {"completion_tokens": tokens, "total_tokens": tokens}
        elif status == "failed":
            obj["error"] = task.error or {
                "code": "InternalServiceError",
                "message": "The service encountered an unexpected internal error.",
            }
        if kind == "echo_key" and where == "task_error":
            obj["status"] = "failed"
            obj.pop("content", None)
            obj["error"] = {"code": "InvalidParameter", "message": "x" * 400 + f" the key {key} was refused"}
        elif kind == "echo_key" and where == "bad_status":
            obj["status"] = key
        return obj

    # ---- HTTP ---------------------------------------------------------------------------------------------------

    def _error(
        self, status: int, code: str | None = None, message: str | None = None, type_: str | None = None
    ) -> _Response:
        default_code, default_type = _ERROR_DEFAULTS.get(status, ("InternalServiceError", "InternalServiceError"))
        rid = request_id()
        text = message or HTTPStatus(status).phrase
        envelope = {
            "error": {
                "code": code or default_code,
                "message": f"{text} Request id: {rid}",
                "param": "",
                "type": type_ or default_type,
            }
        }
        return _json_response(status, envelope, request_id=rid)

    def _take_fault(self, route: str, task_id: str | None, query: dict[str, list[str]]) -> Fault | None:
        for fault in self.faults:
            if fault.route != route or fault.times == 0:
                continue
            if fault.task_id is not None:
                ids = query.get("filter.task_ids", []) if route == "list" else [task_id]
                if fault.task_id not in ids:
                    continue
            if fault.times > 0:
                fault.times -= 1
                if fault.times == 0:
                    self.faults.remove(fault)
            return fault
        return None

    def _authorized(self, headers: dict[str, str]) -> bool:
        if self.required_key is None:
            return True
        return headers.get("authorization", "") == f"Bearer {self.required_key}"

    async def handle_connection(self, socket_stream: SocketStream) -> None:
        """Serve requests on one connection until either side closes it."""
        self._connections += 1
        connection = self._connections
        try:
            async with socket_stream:
                stream = socket_stream
                if self.tls is not None:
                    # Served through the same code: only `send` and `receive` are used on it.
                    tls = await TLSStream.wrap(
                        socket_stream, server_side=True, ssl_context=self.tls, standard_compatible=False
                    )
                    stream = cast("SocketStream", tls)
                reader = BufferedByteReceiveStream(stream)
                while await self._serve_one(reader, stream, connection):
                    pass
        except (anyio.BrokenResourceError, ConnectionResetError):
            # A reset, not a clean close: the client closed with our last answer unread (it had given up on it).
            last = next((r for r in reversed(self.requests) if r.connection == connection), None)
            if last is not None and last.status is not None:
                last.abandoned = True
        except (ssl.SSLError, OSError):
            pass  # a client that refuses the certificate, or hangs up mid-handshake
        except (
            anyio.EndOfStream,
            anyio.IncompleteRead,
            anyio.ClosedResourceError,
            anyio.DelimiterNotFound,
            ConnectionError,
        ):
            pass
        except Exception as exc:  # the fake must never take the listener down; tests check this list
            self.handler_errors.append(f"{type(exc).__name__}: {exc}")

    async def _serve_one(self, reader: BufferedByteReceiveStream, stream: SocketStream, connection: int) -> bool:
        """Read and answer one request; False when the connection must close."""
        head = await reader.receive_until(b"\r\n\r\n", _MAX_HEADER_BYTES)
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        body = b""
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = await _read_chunked(reader)
        elif int(headers.get("content-length", "0") or 0) > 0:
            body = await reader.receive_exactly(int(headers["content-length"]))
        parts = urlsplit(target)
        query = parse_qs(parts.query, keep_blank_values=True)
        record = Recorded(method.upper(), parts.path, query, headers, body, time.time(), connection=connection)
        self.requests.append(record)
        client_close = headers.get("connection", "").lower() == "close"

        route, task_id = _route_of(record.method, record.path)
        if route in _FILES and "_loop" in query:
            response = _Response(302, b"", None, [("Location", target)])
            return await self._send(stream, record, response, None, client_close)
        fault = self._take_fault(route, task_id, query) if route else None
        kind = fault.kind if fault else None
        record.fault = kind
        key = headers.get("authorization", "").removeprefix("Bearer ").strip()

        if fault is not None and kind == "drop_before":
            return False
        if fault is not None and kind == "slow":
            await anyio.sleep(float(fault.extra.get("delay", 1.0)))
        if fault is not None and kind == "hold":
            await fault.extra["release"].wait()
        if fault is not None and kind == "http_status":
            status = int(fault.extra.get("status", 500))
            response = self._error(status, fault.extra.get("code"), fault.extra.get("message"), fault.extra.get("type"))
            if "retry_after" in fault.extra:
                response.headers.append(("Retry-After", str(fault.extra["retry_after"])))
        elif fault is not None and kind == "echo_key" and fault.extra.get("where") == "error_code":
            response = self._error(400, key, "The parameter is invalid.", "BadRequest")
        elif fault is not None and kind == "redirect_loop":
            sep = "&" if parts.query else "?"
            response = _Response(302, b"", None, [("Location", f"{target}{sep}_loop=1")])
        elif fault is not None and kind == "expired_url":
            response = _Response(
                403,
                b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
                b"<Message>Request has expired</Message><RequestId>" + request_id().encode() + b"</RequestId></Error>",
                "application/xml",
            )
        else:
            if route in _FILES and self.real_clips and task_id in self._file_tasks:
                await self.clip_of(task_id or "")
            response = self._route(record, route, task_id, fault, key)
            if fault is not None and kind == "echo_key" and fault.extra.get("where") == "request_id":
                response.request_id = key
            elif fault is not None and kind == "bad_encoding" and response.status == 200:
                response.headers.append(("Content-Encoding", "gzip"))
            elif fault is not None and kind == "not_video" and response.status == 200:
                response.body = b"<!doctype html><html><body>Access portal</body></html>"
            elif fault is not None and kind == "oversize" and response.status == 200:
                size = int(fault.extra.get("size", 64 * 1024 * 1024))
                response.body = response.body[:size]
                response.pad_zeros = size - len(response.body)
        if fault is not None and kind == "drop_after":
            return False
        if fault is not None and kind == "hold_answer":
            await fault.extra["release"].wait()
        record.abandoned = _client_hung_up(stream)
        return await self._send(stream, record, response, fault, client_close)

    def _route(
        self, record: Recorded, route: str | None, task_id: str | None, fault: Fault | None, key: str
    ) -> _Response:
        if route is None:
            return self._error(404, "NotFound", f"No route for {record.method} {record.path}.")
        if route in _FILES:
            return self._file(record, route, task_id or "")
        if not self._authorized(record.headers):
            return self._error(401, "AuthenticationError", "The API key in the request is missing or invalid.")
        if route == "create":
            return self._handle_create(record, fault, key)
        if route == "list":
            return self._handle_list(record, fault, key)
        task = self.tasks.get(task_id or "")
        if task is None:
            return self._error(404, "NotFound", f"The specified task {task_id} is not found.")
        if route == "status":
            return _json_response(200, self.task_object(task, fault, key))
        return self._handle_cancel(task)

    def _handle_create(self, record: Recorded, fault: Fault | None, key: str) -> _Response:
        try:
            parsed = json.loads(record.body or b"null")
        except ValueError:
            return self._error(400, "InvalidParameter", "The request body is not valid JSON.")
        if not isinstance(parsed, dict):
            return self._error(400, "InvalidParameter", "The request body must be a JSON object.")
        body: dict[str, Any] = {k: v for k, v in parsed.items() if v is not None}
        if not body.get("model"):
            return self._error(400, "MissingParameter.model", "The required parameter model is missing.")
        if not isinstance(body.get("content"), list) or not body["content"]:
            return self._error(400, "MissingParameter.content", "The required parameter content is missing.")
        if body.get("service_tier", "default") not in ("default", "flex"):
            return self._error(400, "InvalidParameter.service_tier", "The parameter service_tier is invalid.")
        try:
            task = self._create(body)
        except (TypeError, ValueError) as exc:
            return self._error(400, "InvalidParameter", f"A parameter has the wrong type: {exc}.")
        if fault is not None and fault.kind == "echo_key" and fault.extra.get("where") == "create_without_id":
            return _json_response(200, {"message": key})
        answer: dict[str, Any] = {"id": task.id}
        if task.safety_identifier is not None:
            answer["safety_identifier"] = task.safety_identifier
        return _json_response(200, answer)

    def _handle_list(self, record: Recorded, fault: Fault | None, key: str) -> _Response:
        query = record.query

        def one(name: str) -> str | None:
            values = query.get(name)
            return values[-1] if values else None

        if self.require_filter_model and not one("filter.model"):
            return self._error(
                400, "MissingParameter.filter.model", "The request failed because it is missing filter.model."
            )
        try:
            page_num = int(one("page_num") or 1)
            page_size = int(one("page_size") or 10)
        except ValueError:
            return self._error(400, "InvalidParameter", "page_num and page_size must be integers.")
        if page_num < 1 or not 1 <= page_size <= 500:
            return self._error(400, "InvalidParameter", "page_num must be >= 1 and page_size in [1, 500].")
        tier = one("filter.service_tier") or "default"
        if tier not in ("default", "flex"):
            return self._error(400, "InvalidParameter.filter.service_tier", "The parameter is invalid.")
        wanted_ids = set(query.get("filter.task_ids", []))
        model = one("filter.model")
        status = one("filter.status")
        now = time.time()
        matching = [
            task
            for task in self.tasks.values()
            if task.service_tier == tier
            and (not wanted_ids or task.id in wanted_ids)
            and (model is None or task.model == model)
            and (status is None or self.status_of(task, now) == status)
        ]
        matching.sort(key=lambda t: (t.created_at, t.seq), reverse=True)
        size = min(page_size, self.list_page_cap)
        page = matching[(page_num - 1) * size : page_num * size]
        return _json_response(200, {"items": [self.task_object(t, fault, key) for t in page], "total": len(matching)})

    def _handle_cancel(self, task: FakeTask) -> _Response:
        status = self.status_of(task)
        if status == "queued":
            task.cancelled = True
            task.cancelled_at = time.time()
            return _Response(200, b"", None)
        if status in ("running", "cancelled"):
            return self._error(
                400, "InvalidAction", f"The task {task.id} is {status} and cannot be cancelled.", "BadRequest"
            )
        del self.tasks[task.id]
        return _Response(200, b"", None)

    def _file(self, record: Recorded, route: str, task_id: str) -> _Response:
        if task_id not in self.known_files:
            body = b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code></Error>'
            return _Response(404, body, "application/xml")
        clip = self.clips.get(task_id) if self.real_clips else None
        if route == "download":
            data, content_type = (clip.mp4 if clip else mp4_bytes()), "video/mp4"
        else:
            data, content_type = (clip.last_frame_png if clip else png_bytes()), "image/png"
        response = _Response(200, data, content_type, [("Accept-Ranges", "bytes")])
        spec = record.headers.get("range", "")
        if spec.startswith("bytes=") and "," not in spec:
            first_text, _, last_text = spec.removeprefix("bytes=").partition("-")
            if first_text.isdigit() and int(first_text) < len(data):
                first = int(first_text)
                last = min(int(last_text), len(data) - 1) if last_text.isdigit() else len(data) - 1
                response.status = 206
                response.body = data[first : last + 1]
                response.headers.append(("Content-Range", f"bytes {first}-{last}/{len(data)}"))
        return response

    async def _send(
        self, stream: SocketStream, record: Recorded, response: _Response, fault: Fault | None, client_close: bool
    ) -> bool:
        record.answered = time.time()
        kind = fault.kind if fault else None
        extra = fault.extra if fault else {}
        close = client_close or kind in ("half_body", "truncate_unsized", "lie_length")
        head: list[tuple[str, str]] = [
            ("Date", formatdate(time.time() + self.clock_offset, usegmt=True)),
            ("Server", "fake-ark"),
            ("X-Request-Id", response.request_id or request_id()),
        ]
        if response.content_type:
            head.append(("Content-Type", response.content_type))
        size = response.size
        to_send = size
        if kind == "truncate_unsized":
            to_send = int(size * float(extra.get("fraction", 0.5)))
        elif kind == "half_body":
            to_send = size // 2
            head.append(("Content-Length", str(size)))
        elif kind == "lie_length":
            head.append(("Content-Length", str(int(extra.get("declared", 2 * size)))))
        else:
            head.append(("Content-Length", str(size)))
        if close:
            head.append(("Connection", "close"))
        head.extend(response.headers)
        if record.method == "HEAD":
            to_send = 0
        status_line = f"HTTP/1.1 {response.status} {HTTPStatus(response.status).phrase}\r\n"
        raw_head = status_line + "".join(f"{name}: {value}\r\n" for name, value in head) + "\r\n"
        record.status = response.status
        if kind == "drip":
            whole = raw_head.encode("latin-1") + response.body[:to_send] + bytes(max(0, to_send - len(response.body)))
            interval = float(extra.get("interval", 1.0))
            for index in range(len(whole)):
                await stream.send(whole[index : index + 1])
                record.sent_body_bytes = max(0, index + 1 - len(raw_head))
                await anyio.sleep(interval)
            return not close
        await stream.send(raw_head.encode("latin-1"))
        sent = 0
        body_part = response.body[:to_send]
        if body_part:
            await stream.send(body_part)
            sent += len(body_part)
        zero_chunk = bytes(64 * 1024)
        while sent < to_send:
            piece = zero_chunk[: to_send - sent]
            await stream.send(piece)
            sent += len(piece)
            record.sent_body_bytes = sent
        record.sent_body_bytes = sent
        return not close


def _render_clip(task: FakeTask, first_png: bytes | None) -> Clip:
    """A task's own clip: its length and ratio as asked (adaptive: its first frame's shape), sound if asked."""
    frames = task.frames or FPS * (task.duration if task.duration and task.duration > 0 else 5)
    ratio = str(task.body.get("ratio") or "adaptive")
    if ratio not in SMALL_SIZES:
        ratio = "16:9"
        if first_png is not None:
            from PIL import Image

            with Image.open(io.BytesIO(first_png)) as picture:
                ratio = nearest_ratio(*picture.size)
    return make_clip(task.id, frames, ratio, bool(task.body.get("generate_audio")), first_png)


def _client_hung_up(stream: SocketStream) -> bool:
    """Whether the client has closed its end already (it gave up waiting): its socket reads as at its end."""
    raw = stream.extra(SocketAttribute.raw_socket, None)
    if raw is None:
        return False
    try:
        # asyncio lends out a socket without recv(); a duplicate of its descriptor peeks at the same connection.
        with raw.dup() as peek:
            return peek.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def _route_of(method: str, path: str) -> tuple[str | None, str | None]:
    if path.startswith("/files/"):
        name = path.removeprefix("/files/")
        if method in ("GET", "HEAD") and "/" not in name:
            if name.endswith(".mp4"):
                return "download", name.removesuffix(".mp4")
            if name.endswith(".png"):
                return "frame", name.removesuffix(".png")
        return None, None
    stripped = path.rstrip("/")
    if stripped == TASKS:
        return {"POST": "create", "GET": "list"}.get(method), None
    if stripped.startswith(f"{TASKS}/"):
        task_id = stripped.removeprefix(f"{TASKS}/")
        if "/" not in task_id:
            return {"GET": "status", "DELETE": "cancel"}.get(method), task_id
    return None, None


async def _read_chunked(reader: BufferedByteReceiveStream) -> bytes:
    chunks: list[bytes] = []
    while True:
        size_line = await reader.receive_until(b"\r\n", 1024)
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while await reader.receive_until(b"\r\n", _MAX_HEADER_BYTES):  # trailers end with an empty line
                pass
            return b"".join(chunks)
        chunks.append(await reader.receive_exactly(size))
        await reader.receive_exactly(2)


@contextlib.asynccontextmanager
async def running_fake_ark(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    name: str | None = None,
    tls: ssl.SSLContext | None = None,
    **settings: Any,
) -> AsyncGenerator[FakeArk]:
    """A FakeArk serving for the duration of the block (settings: FakeArk fields): on `host` (default 127.0.0.1) at
    `port` (default a fresh one), calling itself `name` in its URLs (default the address), over HTTPS with `tls`."""
    fake = FakeArk(tls=tls, **settings)
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
    port = listener.extra(SocketAttribute.local_port)
    shown = name or (f"[{host}]" if ":" in host else host)
    fake.url = f"{'https' if tls else 'http'}://{shown}:{port}"
    async with listener, anyio.create_task_group() as task_group:
        task_group.start_soon(listener.serve, fake.handle_connection)
        try:
            yield fake
        finally:
            task_group.cancel_scope.cancel()
