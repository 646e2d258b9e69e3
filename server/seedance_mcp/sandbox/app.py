"""The sandbox's HTTP surface: each dialect on its own documented paths, with its own answer shapes.

| dialect | create | status |
|---|---|---|
| Ark (ark, byteplus, kkiai 2.0) | POST /api/v3/contents/generations/tasks | GET …/tasks/{id} (also list, DELETE) |
| kkiai 1.x | POST /volc/v1/contents/generations/tasks | GET …/tasks/{id} |
| gpt.ge | POST /task/volces/seedance | GET /task/{id} |
| YEScale | POST /seedance/generations | GET /seedance/generations/{id} |
| OpenAI-compatible | POST /v1/videos | GET /v1/videos/{id} (also list, DELETE, …/content?variant=) |
| aiid | POST /api/v3/contents/generations/tasks with a top-level `prompt` | GET /api/v3/…/tasks/{id} (`task_…` ids) |

Ark and aiid share a path: a create with a top-level `prompt`, `mode` or `function_mode` (fields Ark does not
have) is aiid's; a task answers its status in the dialect it was created in. aiid's status puts the results in
`items[]` unless the prompt says otherwise (`[[shape=toplevel|flat|bare|string]]`: top-level `content`,
`items[].video_url`, no top-level status, `items` as a JSON string). gemini-omni is accepted on aiid creates only.

Faithful enough for the vendors' own clients (tests/test_sdk_contract.py): the Ark SDK's creates carry every field,
unset ones as null, which Ark reads as absent; the `openai` SDK's creates are multipart/form-data with the first
frame as a file part `input_reference`.

Sandbox-only controls live under /_sandbox (faults, stats, the log of create bodies). Prompt markers steer one
task: `[[render=30]]` seconds to render (`[[queue=5]]` of them queued), `[[fail=CODE]]` fail with that code,
`[[sensitive]]` trip input moderation, `[[size_mb=500]]` serve a video that large,
`[[shape=items|metadata|toplevel]]` (OpenAI dialect).
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any, cast

import anyio
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from seedance_mcp.catalog import FIXED_RATIOS, estimate_tokens
from seedance_mcp.sandbox.media import last_frame_png, padded_mp4, sample_clip, sample_mp4
from seedance_mcp.sandbox.state import (
    ArkRejection,
    Fault,
    SandboxState,
    SandboxTask,
    output_size,
    read_inline_flags,
    size_settings,
    without_nulls,
)

logger = logging.getLogger(__name__)

INVALID_KEYS = frozenset({"invalid", "invalid-key", "bad-key"})


def _request_id() -> str:
    return time.strftime("%Y%m%d%H%M%S") + secrets.token_hex(8)


def ark_error(status: int, code: str, message: str, param: str = "") -> JSONResponse:
    request_id = _request_id()
    kind = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 429: "TooManyRequests"}
    body = {
        "error": {
            "code": code,
            "message": f"{message.rstrip('.')}. Request ID: {request_id}",
            "param": param,
            "type": kind.get(status, "InternalServiceError"),
        }
    }
    return JSONResponse(body, status_code=status, headers={"X-Request-Id": request_id})


def aiid_error(status: int, message: str, code: str = "invalid_request_error") -> JSONResponse:
    """aiid's error envelope (seed 002): `{"error": {"code": "invalid_request_error", "message": …}}`."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def openai_error(status: int, message: str, code: str | None = None, param: str | None = None) -> JSONResponse:
    """OpenAI's error envelope, which the `openai` SDK reads into its APIStatusError."""
    body = {"error": {"message": message, "type": "invalid_request_error", "param": param or None, "code": code}}
    return JSONResponse(body, status_code=status)


_ARK_STATUSES = frozenset({"queued", "running", "cancelled", "succeeded", "failed", "expired"})


def _query_int(value: str | None, default: int) -> int | None:
    """A query parameter as an integer (`default` when absent), None when it is not one."""
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        return None


class _DroppedConnection(Exception):
    """Raised after a response has started, so the server closes the connection mid-answer."""


class DropResponse(Response):
    """Start an answer and hang up halfway: the client sees the connection drop after its request was sent."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1000")]})
        await send({"type": "http.response.body", "body": b'{"id": "', "more_body": True})
        raise _DroppedConnection("sandbox fault: connection dropped")


# Faults that replace the whole answer; the others (slow, drop_after, expired_url) act where the answer is made.
_ANSWER_FAULTS = frozenset({"http_429", "http_500", "http_503", "malformed", "drop_before", "bad_status"})


async def _apply_fault(state: SandboxState, route: str) -> Response | None:
    """The answer a planned fault replaces the real one with, if one is due."""
    fault = state.take_fault(route, _ANSWER_FAULTS)
    if fault is None:
        return None
    if fault.delay:
        await anyio.sleep(fault.delay)
    match fault.kind:
        case "http_429":
            response = ark_error(429, "RateLimitExceeded.EndpointRPMExceeded", "Too many requests, please retry later.")
            if fault.retry_after is not None:
                response.headers["Retry-After"] = f"{fault.retry_after:g}"
            return response
        case "http_500":
            return ark_error(500, "InternalServiceError", "The service encountered an unexpected internal error.")
        case "http_503":
            return ark_error(503, "ServerOverloaded", "The service is overloaded, please retry later.")
        case "malformed":
            return Response(b'{"id": "cgt-broken', media_type="application/json")
        case "drop_before":
            return DropResponse()
        case _:
            return JSONResponse({"id": "cgt-x", "status": "levitating"})


async def _delay_if_slow(state: SandboxState, route: str) -> None:
    fault = state.take_fault(route, frozenset({"slow"}))
    if fault is not None:
        await anyio.sleep(fault.delay or 30.0)


def _auth_error(request: Request) -> Response | None:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return ark_error(401, "AuthenticationError", "The API key is missing. Pass it as a Bearer token.")
    if key.strip() in INVALID_KEYS:
        return ark_error(401, "AuthenticationError", "The API key format is incorrect or the key is invalid.")
    return None


def _take(state: SandboxState, route: str, kind: str) -> bool:
    return state.take_fault(route, frozenset({kind})) is not None


# Create fields a task echoes back as they were sent (protocol.md §4.1).
_ECHOED = ("safety_identifier", "priority", "draft", "output_format", "tools")


def _ark_task(task: SandboxTask, state: SandboxState, base: str, *, queued_word: str = "queued") -> dict[str, Any]:
    now = state.clock()
    status = task.status(now)
    body: dict[str, Any] = {
        "id": task.id,
        "model": task.model,
        "status": queued_word if status == "queued" else status,
        "error": None,
        "created_at": int(task.created_at),
        "updated_at": int(min(now, task.finished_at())),
        "seed": task.seed,
        "resolution": task.resolution,
        "ratio": task.ratio if task.ratio in FIXED_RATIOS else "16:9",
        "framespersecond": 24,
        "service_tier": task.body.get("service_tier") or "default",
        "execution_expires_after": task.body.get("execution_expires_after") or 172800,
    }
    for echoed in _ECHOED:
        if task.body.get(echoed) is not None:
            body[echoed] = task.body[echoed]
    if task.spec.draft and "draft" not in body:
        body["draft"] = False
    if task.draft_task_id is not None:
        body["draft_task_id"] = task.draft_task_id
    if task.frames is not None:
        body["frames"] = task.frames
    else:
        body["duration"] = task.duration if task.duration and task.duration > 0 else 5
    if task.generate_audio is not None:
        body["generate_audio"] = task.generate_audio
    if status == "succeeded":
        content = {"video_url": _media_url(base, task, task.body.get("output_format") or "mp4")}
        if task.return_last_frame:
            content["last_frame_url"] = _media_url(base, task, "png")
        body["content"] = content
        seconds = task.frames / 24 if task.frames else float(body["duration"])
        width, height = output_size(task)
        # `usage` is what Ark would bill for the video asked for (the simulated cost); nothing is billed.
        tokens = estimate_tokens(width, height, seconds)
        body["usage"] = {"completion_tokens": tokens, "total_tokens": tokens}
        body["sandbox_video"] = sandbox_video()
    elif status == "failed":
        body["error"] = {
            "code": task.fail_code,
            "message": "The request failed because the output video may contain sensitive information.",
        }
    return body


def sandbox_video() -> dict[str, Any]:
    """What a finished sandbox task really serves, whatever it was asked for (a sandbox-only field of its answers,
    beside the Ark fields, which describe the video asked for and what Ark would bill for it)."""
    clip = sample_clip()
    return {
        "width": clip.width,
        "height": clip.height,
        "seconds": clip.seconds,
        "simulated": True,
        "note": (
            f"the sandbox serves its {clip.seconds:g} s {clip.width}x{clip.height} sample clip for every task; "
            "`usage` is what the video asked for would bill, and nothing is billed"
        ),
    }


def _media_url(base: str, task: SandboxTask, suffix: str) -> str:
    date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(task.finished_at()))
    return (
        f"{base}/media/{task.id}.{suffix}?X-Tos-Algorithm=TOS4-HMAC-SHA256&X-Tos-Date={date}"
        f"&X-Tos-Expires=86400&X-Tos-Signature={secrets.token_hex(8)}&v={task.url_version}"
    )


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _configure_task(task: SandboxTask, settings: dict[str, Any]) -> None:
    spec = task.spec
    resolution = settings.get("resolution")
    task.resolution = resolution if resolution in spec.resolutions else spec.default_resolution
    ratio = settings.get("ratio")
    task.ratio = ratio if isinstance(ratio, str) else "16:9"
    duration = settings.get("duration")
    task.duration = duration if isinstance(duration, int) else 5
    frames = settings.get("frames")
    task.frames = frames if isinstance(frames, int) else None
    seed = settings.get("seed")
    task.seed = seed if isinstance(seed, int) and seed >= 0 else secrets.randbelow(2**32)
    task.return_last_frame = bool(settings.get("return_last_frame"))
    audio = settings.get("generate_audio")
    task.generate_audio = audio if isinstance(audio, bool) else (True if spec.audio else None)


def _render_draft(task: SandboxTask, draft: SandboxTask, body: dict[str, Any]) -> None:
    """A `draft_task` create: the draft's picture (ratio, length, seed, audio) at the requested resolution."""
    task.draft_task_id = draft.id
    task.ratio, task.duration, task.frames, task.seed = draft.ratio, draft.duration, draft.frames, draft.seed
    task.generate_audio = draft.generate_audio
    resolution = body.get("resolution")
    finals = task.spec.draft_final_resolutions or (task.spec.default_resolution,)
    task.resolution = resolution if resolution in task.spec.resolutions else finals[0]
    task.return_last_frame = bool(body.get("return_last_frame"))


def create_sandbox_app(state: SandboxState | None = None) -> Starlette:
    """The sandbox as an ASGI app. `app.state.sandbox` is its SandboxState."""
    state = state or SandboxState()

    async def read_json(request: Request) -> dict[str, Any]:
        raw = await request.body()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            raise ArkRejection(400, "InvalidParameter", "The request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise ArkRejection(400, "InvalidParameter", "The request body is not a JSON object")
        return cast("dict[str, Any]", body)

    async def create_common(request: Request, dialect: str) -> tuple[Response | None, SandboxTask | None]:
        state.create_attempts += 1
        if (denied := _auth_error(request)) is not None:
            return denied, None
        if (faulted := await _apply_fault(state, "create")) is not None:
            return faulted, None
        if dialect == "openai":
            task = _openai_create(state, await read_openai_body(request))
        elif dialect == "aiid":
            task = _aiid_create(state, await read_json(request))
        else:
            # The Ark SDK sends every create field, the unset ones as null: Ark reads null as absent.
            body = without_nulls(await read_json(request))
            strict = dialect in ("ark", "kkiai")
            checked = state.check_ark(body, strict_fields=strict)
            task = state.new_task(dialect, checked.spec, checked.model, checked.prompt, body)
            if checked.draft is not None:
                _render_draft(task, checked.draft, body)
            else:
                _configure_task(task, dict(body) if strict else {**read_inline_flags(checked.prompt), **body})
        state.save_task(task)
        await _delay_if_slow(state, "create")
        if _take(state, "create", "drop_after"):
            return DropResponse(), task
        return None, task

    async def read_openai_body(request: Request) -> dict[str, Any]:
        """A `/v1/videos` create as JSON or, as the `openai` SDK sends it, multipart/form-data; a file part
        `input_reference` becomes `{"image_url": "data:<type>;base64,…"}` (the JSON form of the same thing)."""
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in ("multipart/form-data", "application/x-www-form-urlencoded"):
            return await read_json(request)
        body: dict[str, Any] = {}
        async with request.form() as form:
            for name, value in form.multi_items():
                if isinstance(value, UploadFile):
                    data = await value.read()
                    media_type = (value.content_type or "application/octet-stream").lower()
                    url = f"data:{media_type};base64,{base64.b64encode(data).decode()}"
                    body[name] = {"image_url": url, "filename": value.filename, "bytes": len(data)}
                elif name.endswith("[]") or name in body:
                    key = name.removesuffix("[]")
                    previous = body.get(key)
                    listed: list[Any] = cast("list[Any]", previous) if isinstance(previous, list) else []
                    if isinstance(previous, str):
                        listed.append(previous)
                    body[key] = [*listed, value]
                else:
                    body[name] = value
        return body

    async def ark_create(request: Request) -> Response:
        dialect = "kkiai" if request.url.path.startswith("/volc/") else "ark"
        if dialect == "ark" and _is_aiid_create(await request.body()):
            return await aiid_create(request)
        try:
            early, task = await create_common(request, dialect)
        except ArkRejection as exc:
            return ark_error(exc.status, exc.code, exc.message, exc.param)
        if early is not None:
            return early
        assert task is not None
        body: dict[str, Any] = {"id": task.id}
        if task.body.get("safety_identifier") is not None:
            body["safety_identifier"] = task.body["safety_identifier"]
        if dialect == "kkiai":
            body["status"] = "submitted"
        return JSONResponse(body, headers={"X-Request-Id": _request_id()})

    async def aiid_create(request: Request) -> Response:
        """aiid: `{"id":"task_…","created_at":"…","items":[…]}`; refusals in its `invalid_request_error` envelope."""
        try:
            early, task = await create_common(request, "aiid")
        except ArkRejection as exc:
            return aiid_error(exc.status, exc.message, exc.code)
        if early is not None:
            return early
        assert task is not None
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(task.created_at))
        return JSONResponse({"id": task.id, "created_at": created, "items": [{"id": task.id, "status": "queued"}]})

    async def gptge_create(request: Request) -> Response:
        try:
            early, task = await create_common(request, "gptge")
        except ArkRejection as exc:
            return JSONResponse({"code": exc.code, "message": exc.message}, status_code=exc.status)
        if early is not None:
            return early
        assert task is not None
        millis = int(task.created_at * 1000)
        request_id = _request_id()
        return JSONResponse(
            {
                "code": 0,
                "message": "SUCCEED",
                "request_id": request_id,
                "data": {"task_id": task.id, "task_status": "submitted", "created_at": millis, "updated_at": millis},
            }
        )

    async def yescale_create(request: Request) -> Response:
        try:
            early, task = await create_common(request, "yescale")
        except ArkRejection as exc:
            return ark_error(exc.status, exc.code, exc.message, exc.param)
        if early is not None:
            return early
        assert task is not None
        return JSONResponse({"id": task.id, "message": "YEScale - Seedance Video Generation - Submit"})

    async def openai_create(request: Request) -> Response:
        try:
            early, task = await create_common(request, "openai")
        except ArkRejection as exc:
            # OpenAI answers an unknown model with 404; other refusals are 400s.
            status = exc.status if exc.status in (404,) or exc.status >= 500 else 400
            return openai_error(status, exc.message, exc.code, exc.param)
        if early is not None:
            return early
        assert task is not None
        return JSONResponse(_openai_video(task, state, _base(request)))

    async def status_common(request: Request, dialect: str) -> tuple[Response | None, SandboxTask | None]:
        state.status_polls += 1
        if (denied := _auth_error(request)) is not None:
            return denied, None
        if (faulted := await _apply_fault(state, "status")) is not None:
            return faulted, None
        await _delay_if_slow(state, "status")
        task = state.task(request.path_params["task_id"])
        if task is None:
            if dialect == "openai":  # in OpenAI's own envelope, which the `openai` SDK reads
                return openai_error(404, "Video not found", "not_found", "video_id"), None
            return ark_error(404, "NotFound.TaskId", "The specified task does not exist."), None
        task.polls += 1
        state.statuses_read += 1
        return None, task

    async def ark_get(request: Request) -> Response:
        early, task = await status_common(request, "ark")
        if early is not None:
            return early
        assert task is not None
        if task.dialect == "aiid":
            return JSONResponse(_aiid_task(task, state, _base(request)))
        return JSONResponse(_ark_task(task, state, _base(request)), headers={"X-Request-Id": _request_id()})

    async def gptge_get(request: Request) -> Response:
        early, task = await status_common(request, "gptge")
        if early is not None:
            return early
        assert task is not None
        return JSONResponse(_ark_task(task, state, _base(request), queued_word="submitted"))

    async def yescale_get(request: Request) -> Response:
        early, task = await status_common(request, "yescale")
        if early is not None:
            return early
        assert task is not None
        body = _ark_task(task, state, _base(request))
        body["message"] = "YEScale - Seedance Video Generation - Query"
        body["request"] = {"model": task.model, "content": task.body.get("content")}
        return JSONResponse(body)

    async def ark_delete(request: Request) -> Response:
        """Ark: queued → cancelled, running or cancelled → 400, finished → record deleted; 200 with no body."""
        if (denied := _auth_error(request)) is not None:
            return denied
        task = state.task(request.path_params["task_id"])
        if task is None:
            return ark_error(404, "NotFound.TaskId", "The specified task does not exist.", "id")
        status = task.status(state.clock())
        if status == "queued":
            task.cancelled_at = state.clock()
            state.save_task(task)
            return Response(status_code=200, headers={"X-Request-Id": _request_id()})
        if status in ("running", "cancelled"):
            return ark_error(400, "InvalidParameter.TaskStatus", f"A {status} task cannot be cancelled.", "id")
        del state.tasks[task.id]
        state.save_deleted(task.id)
        return Response(status_code=200, headers={"X-Request-Id": _request_id()})

    async def ark_list(request: Request) -> Response:
        state.list_polls += 1
        if (denied := _auth_error(request)) is not None:
            return denied
        ids = request.query_params.getlist("filter.task_ids")
        if state.tasks_file is not None and any(i not in state.tasks for i in ids):
            state.load_tasks()  # made before a restart, or by another process sharing the state dir
        if _take(state, "status", "bad_status"):
            return JSONResponse({"items": [{"id": i, "status": "levitating"} for i in ids], "total": len(ids)})
        if (faulted := await _apply_fault(state, "status")) is not None:
            return faulted
        await _delay_if_slow(state, "status")
        query = request.query_params
        wanted = query.get("filter.status")
        if wanted and wanted not in _ARK_STATUSES:
            return ark_error(400, "InvalidParameter.filter.status", f"{wanted} is not a task status", "filter.status")
        model = query.get("filter.model")
        # As Ark: flex tasks are listed only when asked for by tier, default-tier ones otherwise.
        tier = query.get("filter.service_tier") or "default"
        size = _query_int(query.get("page_size"), 10)
        page_num = _query_int(query.get("page_num"), 1)
        if size is None or not 1 <= size <= 500:
            return ark_error(400, "InvalidParameter.page_size", "page_size must be in [1, 500]", "page_size")
        if page_num is None or page_num < 1:
            return ark_error(400, "InvalidParameter.page_num", "page_num must be 1 or more", "page_num")
        start = (page_num - 1) * size
        chosen = [
            t
            for t in sorted(state.tasks.values(), key=lambda t: t.created_at, reverse=True)
            if (not ids or t.id in ids)
            and (not wanted or t.status(state.clock()) == wanted)
            and (not model or t.model == model)
            and (t.body.get("service_tier") or "default") == tier
        ]
        page = chosen[start : start + size]
        for task in page:
            task.polls += 1
        state.statuses_read += len(page)
        items = [_ark_task(t, state, _base(request)) for t in page]
        return JSONResponse({"items": items, "total": len(chosen)}, headers={"X-Request-Id": _request_id()})

    async def openai_get(request: Request) -> Response:
        early, task = await status_common(request, "openai")
        if early is not None:
            return early
        assert task is not None
        return JSONResponse(_openai_video(task, state, _base(request)))

    async def openai_list(request: Request) -> Response:
        """`GET /v1/videos?after=&limit=&order=`: a cursor page of the videos made on `/v1/videos`."""
        if (denied := _auth_error(request)) is not None:
            return denied
        query = request.query_params
        limit = _query_int(query.get("limit"), 20)
        order = query.get("order") or "desc"
        if limit is None or not 1 <= limit <= 100:
            return openai_error(400, "limit must be between 1 and 100", "invalid_value", "limit")
        if order not in ("asc", "desc"):
            return openai_error(400, "order must be asc or desc", "invalid_value", "order")
        videos = sorted(
            (t for t in state.tasks.values() if t.dialect == "openai"),
            key=lambda t: t.created_at,
            reverse=order == "desc",
        )
        after = query.get("after")
        if after:
            position = next((i for i, t in enumerate(videos) if t.id == after), None)
            if position is None:
                return openai_error(400, f"No video found with id '{after}'", "invalid_value", "after")
            videos = videos[position + 1 :]
        page = videos[:limit]
        data = [_openai_video(t, state, _base(request)) for t in page]
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "first_id": page[0].id if page else None,
                "last_id": page[-1].id if page else None,
                "has_more": len(videos) > limit,
            }
        )

    async def openai_delete(request: Request) -> Response:
        """OpenAI deletes a finished (completed or failed) video; it does not stop a render."""
        if (denied := _auth_error(request)) is not None:
            return denied
        task = state.task(request.path_params["task_id"])
        if task is None:
            return openai_error(404, "Video not found", "not_found", "video_id")
        if task.status(state.clock()) in ("queued", "running"):
            return openai_error(
                400, "The video is still being generated; only a finished video can be deleted.", "invalid_state"
            )
        del state.tasks[task.id]
        state.save_deleted(task.id)
        return JSONResponse({"id": task.id, "object": "video.deleted", "deleted": True})

    async def openai_content(request: Request) -> Response:
        """The video's bytes, or (`variant=thumbnail|spritesheet`) a PNG still."""
        if (denied := _auth_error(request)) is not None:
            return denied
        variant = request.query_params.get("variant") or "video"
        if variant not in ("video", "thumbnail", "spritesheet"):
            return openai_error(400, f"Unknown variant '{variant}'", "invalid_value", "variant")
        task = state.task(request.path_params["task_id"])
        if task is None or task.status(state.clock()) != "succeeded":
            return openai_error(404, "no content yet", "not_found", "video_id")
        if variant != "video":
            return Response(last_frame_png(), media_type="image/png")
        return await _serve_video(task)

    async def _serve_video(task: SandboxTask, media_type: str = "video/mp4") -> Response:
        state.downloads += 1
        if task.video_bytes > len(sample_mp4()):
            return StreamingResponse(
                _iterate(padded_mp4(task.video_bytes)),
                media_type=media_type,
                headers={"Content-Length": str(task.video_bytes)},
            )
        return Response(sample_mp4(), media_type=media_type)

    async def media(request: Request) -> Response:
        name = request.path_params["name"]
        task_id, _, suffix = name.rpartition(".")
        task = state.task(task_id)
        if (faulted := await _apply_fault(state, "download")) is not None:
            return faulted
        if task is None or task.status(state.clock()) != "succeeded":
            return Response("NoSuchKey", status_code=404)
        if _take(state, "download", "expired_url") or request.query_params.get("v") != str(task.url_version):
            # The signature has expired: a fresh status answer carries a new URL.
            task.url_version += 1
            state.save_task(task)
            return Response("AccessDenied: Request has expired", status_code=403)
        if suffix == "png":
            return Response(last_frame_png(), media_type="image/png")
        return await _serve_video(task, "video/quicktime" if suffix == "mov" else "video/mp4")

    async def put_faults(request: Request) -> Response:
        body = await request.json()
        for item in body.get("faults", []):
            state.faults.append(Fault(**item))
        return JSONResponse({"faults": len(state.faults)})

    async def clear_faults(request: Request) -> Response:
        state.faults.clear()
        return JSONResponse({"faults": 0})

    async def stats(request: Request) -> Response:
        now = state.clock()
        by_status: dict[str, int] = {}
        for task in state.tasks.values():
            by_status[task.status(now)] = by_status.get(task.status(now), 0) + 1
        return JSONResponse(
            {
                "speaks": state.speaks,
                "model_map": state.model_map,
                "creates": state.creates,
                "create_attempts": state.create_attempts,
                "creates_by_dialect": state.creates_by_dialect,
                "status_polls": state.status_polls,
                "list_polls": state.list_polls,
                "statuses_read": state.statuses_read,
                "downloads": state.downloads,
                "tasks": len(state.tasks),
                "by_status": by_status,
                "polls_by_task": {t.id: t.polls for t in state.tasks.values()},
                "finished_at": {t.id: t.finished_at() for t in state.tasks.values()},
            }
        )

    async def requests_log(request: Request) -> Response:
        return JSONResponse({"requests": state.requests})

    async def configure(request: Request) -> Response:
        body = await request.json()
        if "render_seconds" in body:
            state.render_seconds = float(body["render_seconds"])
        if "inactive_models" in body:  # catalog keys this account has not activated (404 ModelNotOpen)
            state.inactive_models = {str(key) for key in body["inactive_models"]}
        return JSONResponse({"render_seconds": state.render_seconds, "inactive_models": sorted(state.inactive_models)})

    routes = [
        Route("/api/v3/contents/generations/tasks", ark_create, methods=["POST"]),
        Route("/api/v3/contents/generations/tasks", ark_list, methods=["GET"]),
        Route("/api/v3/contents/generations/tasks/{task_id}", ark_get, methods=["GET"]),
        Route("/api/v3/contents/generations/tasks/{task_id}", ark_delete, methods=["DELETE"]),
        Route("/volc/v1/contents/generations/tasks", ark_create, methods=["POST"]),
        Route("/volc/v1/contents/generations/tasks", ark_list, methods=["GET"]),
        Route("/volc/v1/contents/generations/tasks/{task_id}", ark_get, methods=["GET"]),
        Route("/task/volces/seedance", gptge_create, methods=["POST"]),
        Route("/task/{task_id}", gptge_get, methods=["GET"]),
        Route("/seedance/generations", yescale_create, methods=["POST"]),
        Route("/seedance/generations/{task_id}", yescale_get, methods=["GET"]),
        Route("/v1/videos", openai_create, methods=["POST"]),
        Route("/v1/videos", openai_list, methods=["GET"]),
        Route("/v1/videos/{task_id}", openai_get, methods=["GET"]),
        Route("/v1/videos/{task_id}", openai_delete, methods=["DELETE"]),
        Route("/v1/videos/{task_id}/content", openai_content, methods=["GET"]),
        Route("/media/{name}", media, methods=["GET"]),
        Route("/_sandbox/faults", put_faults, methods=["POST"]),
        Route("/_sandbox/faults", clear_faults, methods=["DELETE"]),
        Route("/_sandbox/stats", stats, methods=["GET"]),
        Route("/_sandbox/requests", requests_log, methods=["GET"]),
        Route("/_sandbox/config", configure, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.sandbox = state
    return app


async def _iterate(chunks: Any) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


_OPENAI_MODES = ("t2v", "i2v", "i2v_first_last", "reference_images", "reference_material")


def _openai_create(state: SandboxState, body: dict[str, Any]) -> SandboxTask:
    """A `/v1/videos` create: the OpenAI fields (`prompt`, `model`, `seconds`, `size`, `input_reference`) and the
    aiid / new-api extensions (`mode`, `aspect_ratio`, `resolution`, image and media URL lists, `metadata`),
    checked as the Ark body a gateway would forward."""
    model = body.get("model")
    prompt = body.get("prompt")
    spec = state.spec_for(str(model))
    if spec is None:
        raise ArkRejection(400, "invalid_value", f"model {model} is not available", "model")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ArkRejection(400, "missing_required_parameter", "prompt is required", "prompt")
    mode = body.get("mode")
    if mode is not None and mode not in _OPENAI_MODES:
        raise ArkRejection(400, "invalid_value", f"mode {mode} is not one of {', '.join(_OPENAI_MODES)}", "mode")
    first = _image_url(body.get("input_reference"), "input_reference") or _text_of(body.get("image_url"))
    last = _text_of(body.get("end_image_url")) or _text_of(body.get("last_image_url"))
    images = _url_list(body.get("image_urls")) + _url_list(body.get("images"))
    if mode in ("i2v", "i2v_first_last") and first is None and images:
        first, images = images[0], images[1:]
        if mode == "i2v_first_last" and last is None and images:
            last, images = images[0], images[1:]
    if mode in ("i2v", "i2v_first_last") and first is None:
        raise ArkRejection(400, "invalid_request_error", "requires at least one image in `images`", "images")
    content: list[dict[str, Any]] = [{"type": "text", "text": prompt}]

    def media(kind: str, url: str, role: str) -> dict[str, Any]:
        return {"type": kind, kind: {"url": url}, "role": role}

    if first is not None:
        content.append(media("image_url", first, "first_frame"))
    if last is not None:
        content.append(media("image_url", last, "last_frame"))
    content += [media("image_url", url, "reference_image") for url in images]
    content += [media("video_url", url, "reference_video") for url in _url_list(body.get("video_urls"))]
    content += [media("audio_url", url, "reference_audio") for url in _url_list(body.get("audio_urls"))]
    ark: dict[str, Any] = {"model": model, "content": content}
    size = body.get("size")
    if size is not None:
        settings = size_settings(spec, str(size))
        if settings is None:
            allowed = ", ".join(f"{w}x{h}" for cells in spec.sizes.values() for w, h in cells)
            raise ArkRejection(400, "invalid_value", f"size {size} is not one of {allowed}", "size")
        ark["resolution"], ark["ratio"] = settings
    for name, aliases in (("resolution", ("resolution", "quality")), ("ratio", ("aspect_ratio", "ratio"))):
        for alias in aliases:
            if body.get(alias) is not None:
                ark[name] = body[alias]
    seconds = body.get("seconds", body.get("duration"))
    if seconds is not None:
        if not str(seconds).lstrip("-").isdigit():
            raise ArkRejection(400, "invalid_value", f"seconds {seconds!r} is not a whole number", "seconds")
        ark["duration"] = int(seconds)
    for name in ("generate_audio", "watermark", "seed"):
        if body.get(name) is not None:
            ark[name] = _form_value(body[name])
    metadata: Any = body.get("metadata")
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except ValueError:
            raise ArkRejection(400, "invalid_value", "metadata is not a JSON object", "metadata") from None
    if isinstance(metadata, dict):
        # new-api merges `metadata` into the Ark body it forwards.
        ark.update({k: v for k, v in cast("dict[str, Any]", metadata).items() if k not in ("model", "content")})
    ark = without_nulls(ark)
    state.check_ark(ark, strict_fields=False)
    task = state.new_task("openai", spec, str(model), prompt, ark, logged=_loggable(body))
    _configure_task(task, ark)
    return task


def _text_of(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _image_url(value: Any, name: str) -> str | None:
    """`input_reference` as `{"image_url": …}` (JSON, or a file part read as a data URL); a `file_id` is refused."""
    if value is None:
        return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, dict):
        reference = cast("dict[str, Any]", value)
        if isinstance(reference.get("image_url"), str):
            return str(reference["image_url"])
        if reference.get("file_id") is not None:
            raise ArkRejection(400, "invalid_value", "the sandbox keeps no uploaded files: send image_url", name)
    raise ArkRejection(400, "invalid_value", f'{name} must be an image file or {{"image_url": …}}', name)


def _url_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list):
        return [str(v) for v in cast("list[Any]", value) if isinstance(v, str) and v]
    return []


def _form_value(value: Any) -> Any:
    """A multipart form sends every value as text: read `true`/`false` and whole numbers back."""
    if isinstance(value, str):
        if value.lower() in ("true", "false"):
            return value.lower() == "true"
        if value.lstrip("-").isdigit():
            return int(value)
    return value


def _loggable(body: dict[str, Any]) -> dict[str, Any]:
    """The create as received, for the request log; an uploaded file is noted by name and size."""
    logged = dict(body)
    reference: Any = logged.get("input_reference")
    if isinstance(reference, dict) and "filename" in reference:
        file = cast("dict[str, Any]", reference)
        logged["input_reference"] = {"file": file.get("filename"), "bytes": file.get("bytes")}
    return logged


def _openai_video(task: SandboxTask, state: SandboxState, base: str) -> dict[str, Any]:
    """The OpenAI video object (every field of `openai.types.Video`), or another gateway's shape when the prompt
    asks with `[[shape=metadata|toplevel|items]]`."""
    now = state.clock()
    ark = _ark_task(task, state, base)
    word = {"queued": "queued", "running": "in_progress", "succeeded": "completed"}.get(ark["status"], ark["status"])
    span = max(task.queued_seconds + task.render_seconds, 0.001)
    progress = 100 if word == "completed" else min(99, int(100 * (now - task.created_at) / span))
    width, height = output_size(task)
    done = word in ("completed", "failed")
    video: dict[str, Any] = {
        "id": task.id,
        "object": "video",
        "model": task.model,
        "status": word,
        "progress": progress,
        "created_at": int(task.created_at),
        "completed_at": int(task.finished_at()) if done else None,
        "expires_at": int(task.finished_at() + 86400) if word == "completed" else None,
        "error": None,
        "prompt": task.prompt,
        "remixed_from_video_id": None,
        "seconds": str(ark.get("duration", 5)),
        "size": f"{width}x{height}",
    }
    if word == "completed" and "usage" in ark:
        video["usage"] = ark["usage"]
        video["sandbox_video"] = ark["sandbox_video"]
    if ark.get("error"):
        video["error"] = ark["error"]
    shape = task.markers.get("shape", "object")
    content: dict[str, Any] = ark.get("content") or {}
    url = content.get("video_url")
    if shape == "metadata" and url:
        video["metadata"] = {"url": url}
    elif shape == "toplevel" and url:
        video["video_url"] = url
    elif shape == "items":
        item: dict[str, Any] = {"status": ark["status"], "progress": progress}
        if url:
            item["content"] = {"video_url": url}
        if ark.get("error"):
            item["error"] = ark["error"]
        return {"id": task.id, "model": task.model, "created_at": int(task.created_at), "items": [item]}
    return video


# aiid (protocol.md §9.4, seed 002): Ark's path, a required `prompt`, `mode`, `function_mode` and alias fields.
AIID_MODES = ("t2v", "i2v", "i2v_first_last", "reference_images", "reference_material")
GEMINI_MODES = ("t2v", "r2v", "edit")
GEMINI_LENGTHS = (4, 6, 8, 10)
AIID_FIELDS = frozenset(
    {
        "model", "prompt", "content", "function_mode", "mode", "image_url", "image_urls", "input_reference",
        "reference_images", "end_image_url", "last_image_url", "video_urls", "audio_urls", "seconds", "duration",
        "aspect_ratio", "ratio", "size", "quality", "resolution", "fps", "generate_audio", "watermark",
    }
)  # fmt: skip
_AIID_MARKS = ("prompt", "mode", "function_mode")


def _is_aiid_create(raw: bytes) -> bool:
    """Whether a create on Ark's path is aiid's: it has a top-level field Ark does not (`prompt`, `mode`, …)."""
    try:
        body: Any = json.loads(raw)
    except ValueError:
        return False
    return isinstance(body, dict) and any(name in body for name in _AIID_MARKS)


def _aiid_invalid(message: str, status: int = 400) -> ArkRejection:
    return ArkRejection(status, "invalid_request_error", message)


def _aiid_media(body: dict[str, Any], mode: str | None) -> list[dict[str, Any]]:
    """The media of an aiid create as Ark content items: `content[]`'s own, then the alias fields', each with the
    role its mode gives it (the first image of an `i2v` is the first frame, of `r2v` a reference)."""
    media: list[dict[str, Any]] = []
    content: Any = body.get("content")
    if content is not None and not isinstance(content, list):
        raise _aiid_invalid("`content` must be an array")
    for raw in cast("list[Any]", content or []):
        if not isinstance(raw, dict):
            raise _aiid_invalid("every `content` item must be an object")
        item = cast("dict[str, Any]", raw)
        if item.get("type") in ("image_url", "video_url", "audio_url"):
            media.append(item)
        elif item.get("type") != "text":
            raise _aiid_invalid(f"unknown content type {item.get('type')!r}")
    images = [*_url_list(body.get("image_url")), *_url_list(body.get("image_urls"))]
    images += [
        *_url_list(_image_url(body.get("input_reference"), "input_reference")),
        *_url_list(body.get("reference_images")),
    ]
    last = _text_of(body.get("end_image_url")) or _text_of(body.get("last_image_url"))

    def item_of(kind: str, url: str, role: str) -> dict[str, Any]:
        return {"type": kind, kind: {"url": url}, "role": role}

    # Without a mode, a lone image is a first frame (as Ark reads one image); with one, the mode decides.
    as_frame = mode in ("i2v", "i2v_first_last") or (
        mode is None and len(images) == 1 and not body.get("function_mode")
    )
    if as_frame and images:
        media.append(item_of("image_url", images.pop(0), "first_frame"))
    if last is not None:
        media.append(item_of("image_url", last, "last_frame"))
    media += [item_of("image_url", url, "reference_image") for url in images]
    media += [item_of("video_url", url, "reference_video") for url in _url_list(body.get("video_urls"))]
    media += [item_of("audio_url", url, "reference_audio") for url in _url_list(body.get("audio_urls"))]
    return media


def _aiid_settings(body: dict[str, Any], spec: Any) -> dict[str, Any]:
    """`resolution`, `ratio` and `duration` from their aliases (`quality`, `aspect_ratio`, `size`, `seconds`)."""
    settings: dict[str, Any] = {}
    size = body.get("size")
    if size is not None:
        found = size_settings(spec, str(size))
        if found is None:
            raise _aiid_invalid(f"size {size} is not an output size of {body.get('model')}")
        settings["resolution"], settings["ratio"] = found
    for name, aliases in (("resolution", ("quality", "resolution")), ("ratio", ("aspect_ratio", "ratio"))):
        for alias in aliases:
            if body.get(alias) is not None:
                settings[name] = body[alias]
    seconds = body.get("duration", body.get("seconds"))
    if seconds is not None:
        if isinstance(seconds, bool) or not str(seconds).lstrip("-").isdigit():
            raise _aiid_invalid(f"duration {seconds!r} is not a whole number of seconds")
        settings["duration"] = int(seconds)
    for name in ("generate_audio", "watermark"):
        if body.get(name) is not None:
            settings[name] = body[name]
    return settings


def _aiid_create(state: SandboxState, raw_body: dict[str, Any]) -> SandboxTask:
    """An aiid create, checked as the gateway would (Seedance models as the Ark body it forwards; gemini-omni
    by its modes, lengths snapped to 4/6/8/10 s as the gateway does)."""
    body = without_nulls(raw_body)
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise _aiid_invalid("`model` is required")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise _aiid_invalid("`prompt` is required and cannot be empty")
    unknown = sorted(set(body) - AIID_FIELDS)
    if unknown:
        raise _aiid_invalid(f"unknown parameter `{unknown[0]}`")
    spec = state.spec_for(model, families=("seedance", "gemini"))
    if spec is None:
        raise _aiid_invalid(f"model {model} is not available", 404)
    gemini = spec.family == "gemini"
    mode = body.get("mode")
    modes = GEMINI_MODES if gemini else AIID_MODES
    if mode is not None and mode not in modes:
        raise _aiid_invalid(f"mode {mode} is not one of {', '.join(modes)} for {model}")
    function_mode = body.get("function_mode")
    if function_mode is not None and (function_mode != "omni_reference" or gemini):
        raise _aiid_invalid(f"function_mode {function_mode} is not supported for {model}")
    media = _aiid_media(body, mode)
    settings = _aiid_settings(body, spec)
    roles = [str(item.get("role") or "") for item in media]
    kinds = [str(item.get("type")) for item in media]
    references = [r for r in roles if r.startswith("reference_")]
    if mode in ("i2v", "i2v_first_last") and "first_frame" not in roles:
        raise _aiid_invalid("requires at least one image in `images`")
    if mode == "i2v_first_last" and "last_frame" not in roles:
        raise _aiid_invalid("i2v_first_last requires a last frame (`end_image_url`)")
    if (mode in ("reference_images", "reference_material", "r2v") or function_mode) and not references:
        raise _aiid_invalid(f"{mode or function_mode} requires reference materials in `content`")
    if mode == "t2v" and media:
        raise _aiid_invalid("t2v takes no images, videos or audio")
    content = [{"type": "text", "text": prompt}, *media]
    if gemini:
        ark = _gemini_body(spec, model, mode or ("r2v" if media else "t2v"), content, kinds, settings)
    else:
        ark = {"model": model, "content": content, **settings}
        state.check_ark(ark, strict_fields=False)
    task = state.new_task("aiid", spec, model, prompt, ark, logged=body, id_prefix="task_")
    _configure_task(task, ark)
    return task


def _gemini_body(
    spec: Any, model: str, mode: str, content: list[dict[str, Any]], kinds: list[str], settings: dict[str, Any]
) -> dict[str, Any]:
    """gemini-omni's checks (t2v, r2v with images, edit of one video) and its task body; a length is snapped to
    the nearest of 4/6/8/10 s as the gateway documents (an edit keeps its video's, served as 8 s here)."""
    if mode == "edit" and kinds.count("video_url") != 1:
        raise _aiid_invalid("edit requires exactly one video in `video_urls`")
    if kinds.count("image_url") > spec.max_reference_images:
        raise _aiid_invalid(f"at most {spec.max_reference_images} reference images")
    if "audio_url" in kinds:
        raise _aiid_invalid(f"{model} takes no reference audio")
    resolution = settings.get("resolution")
    if resolution is not None and resolution not in spec.resolutions:
        raise _aiid_invalid(f"resolution {resolution} is not one of {', '.join(spec.resolutions)}")
    ratio = settings.get("ratio")
    if ratio is not None and ratio not in spec.t2v_ratios:
        raise _aiid_invalid(f"aspect_ratio {ratio} is not one of {', '.join(spec.t2v_ratios)}")
    asked: int | None = settings.get("duration")
    body: dict[str, Any] = {"model": model, "content": content, "mode": mode, **settings}
    body["duration"] = 8 if asked is None else min(GEMINI_LENGTHS, key=lambda n: (abs(n - asked), -n))
    return body


def _aiid_task(task: SandboxTask, state: SandboxState, base: str) -> dict[str, Any]:
    """aiid's task: `id, model, status, error, created_at, updated_at, usage, items`, with the results (status,
    `content.video_url`, error, progress) in `items[]`; `[[shape=…]]` in the prompt moves them (see the module)."""
    ark = _ark_task(task, state, base)
    now = state.clock()
    span = max(task.queued_seconds + task.render_seconds, 0.001)
    progress = 100 if ark["status"] == "succeeded" else min(99, int(100 * (now - task.created_at) / span))
    url = cast("dict[str, Any]", ark.get("content") or {}).get("video_url")
    shape = task.markers.get("shape", "items")
    item: dict[str, Any] = {"id": task.id, "status": ark["status"], "progress": progress}
    if url and shape == "flat":
        item["video_url"] = url
    elif url:
        item["content"] = {"video_url": url}
    if ark.get("error"):
        item["error"] = ark["error"]
    answer: dict[str, Any] = {
        "id": task.id,
        "model": task.model,
        "status": ark["status"],
        "error": ark.get("error"),
        "created_at": ark["created_at"],
        "updated_at": ark["updated_at"],
        "mode": task.body.get("mode"),
        "items": [item],
    }
    if "usage" in ark:
        answer["usage"] = ark["usage"]
        answer["sandbox_video"] = ark["sandbox_video"]
    if shape == "toplevel":
        answer["items"] = []
        if "content" in ark:
            answer["content"] = ark["content"]
    elif shape == "bare":
        del answer["status"], answer["error"]
    elif shape == "string":
        answer["items"] = json.dumps(answer["items"])
    return answer
