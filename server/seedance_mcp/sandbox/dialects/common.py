"""What every dialect's handlers share: the key check, the planned faults, the create and status flows, Ark's error
envelope, and the Ark task object every dialect's status answer is built from."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import Response

from seedance_mcp.catalog import FIXED_RATIOS, estimate_tokens
from seedance_mcp.sandbox.checks import ArkRejection
from seedance_mcp.sandbox.clips import first_frame_source, first_frame_url
from seedance_mcp.sandbox.http import DropResponse, apply_fault, ark_error, auth_error, delay_if_slow, sandbox_of, take
from seedance_mcp.sandbox.media import task_video
from seedance_mcp.sandbox.state import SandboxState, SandboxTask, output_size

TaskMaker = Callable[[SandboxState, Request], Awaitable[SandboxTask]]
"""Reads a dialect's create body, checks it and makes the task (or raises ArkRejection)."""


async def create_task(request: Request, make: TaskMaker) -> tuple[Response | None, SandboxTask | None]:
    """The create flow of every dialect: the key, a planned fault, the task `make` reads from the body (an
    ArkRejection propagates, for the dialect's own envelope), then a planned slow or dropped answer. The answer to
    send instead of the dialect's, if any, and the task, if one was made."""
    state = sandbox_of(request)
    state.create_attempts += 1
    if (denied := auth_error(request)) is not None:
        return denied, None
    if (faulted := await apply_fault(state, "create")) is not None:
        return faulted, None
    task = await make(state, request)
    state.save_task(task)
    await delay_if_slow(state, "create")
    if take(state, "create", "drop_after"):
        return DropResponse(), task
    return None, task


def task_not_found() -> Response:
    return ark_error(404, "NotFound.TaskId", "The specified task does not exist.")


async def read_task(
    request: Request, not_found: Callable[[], Response] = task_not_found
) -> tuple[Response | None, SandboxTask | None]:
    """The status flow of every dialect: the key, a planned fault or slowness, the task of the path's `task_id`
    (`not_found()` when there is none). The answer to send instead of the dialect's, if any, and the task."""
    state = sandbox_of(request)
    state.status_polls += 1
    if (denied := auth_error(request)) is not None:
        return denied, None
    if (faulted := await apply_fault(state, "status")) is not None:
        return faulted, None
    await delay_if_slow(state, "status")
    task = state.task(request.path_params["task_id"])
    if task is None:
        return not_found(), None
    task.polls += 1
    state.statuses_read += 1
    return None, task


async def read_json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body: Any = json.loads(raw)
    except ValueError:
        raise ArkRejection(400, "InvalidParameter", "The request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ArkRejection(400, "InvalidParameter", "The request body is not a JSON object")
    return cast("dict[str, Any]", body)


def query_int(value: str | None, default: int) -> int | None:
    """A query parameter as an integer (`default` when absent), None when it is not one."""
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        return None


# Create fields a task echoes back as they were sent (protocol.md §4.1).
_ECHOED = ("safety_identifier", "priority", "draft", "output_format", "tools")


def ark_task(task: SandboxTask, state: SandboxState, base: str, *, queued_word: str = "queued") -> dict[str, Any]:
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
        content = {"video_url": media_url(base, task, task.body.get("output_format") or "mp4")}
        if task.return_last_frame:
            content["last_frame_url"] = media_url(base, task, "png")
        body["content"] = content
        seconds = task.frames / 24 if task.frames else float(body["duration"])
        width, height = output_size(task)
        # `usage` is what Ark would bill for the video asked for (the simulated cost); nothing is billed.
        tokens = estimate_tokens(width, height, seconds)
        body["usage"] = {"completion_tokens": tokens, "total_tokens": tokens}
        body["sandbox_video"] = sandbox_video(state, task)
    elif status == "failed":
        body["error"] = {
            "code": task.fail_code,
            "message": "The request failed because the output video may contain sensitive information.",
        }
    return body


def sandbox_video(state: SandboxState, task: SandboxTask) -> dict[str, Any]:
    """What a finished sandbox task really serves (a sandbox-only field of its answers, beside the Ark fields,
    which describe the video asked for and what Ark would bill for it): its length, at a small size."""
    width, height, seconds = task_video(state, task)
    return {
        "width": width,
        "height": height,
        "seconds": round(seconds, 3),
        "simulated": True,
        "note": (
            f"the sandbox serves a {seconds:g} s {width}x{height} clip of the asked length and shape; "
            "`usage` is what the video asked for would bill, and nothing is billed"
        ),
    }


def media_url(base: str, task: SandboxTask, suffix: str) -> str:
    date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(task.finished_at()))
    return (
        f"{base}/media/{task.id}.{suffix}?X-Tos-Algorithm=TOS4-HMAC-SHA256&X-Tos-Date={date}"
        f"&X-Tos-Expires=86400&X-Tos-Signature={secrets.token_hex(8)}&v={task.url_version}"
    )


def base_of(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def configure_task(task: SandboxTask, settings: dict[str, Any]) -> None:
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
    task.first_frame, task.clip_ratio = first_frame_source(first_frame_url(settings), task.ratio)


def render_draft(task: SandboxTask, draft: SandboxTask, body: dict[str, Any]) -> None:
    """A `draft_task` create: the draft's picture (ratio, length, seed, audio) at the requested resolution."""
    task.draft_task_id = draft.id
    task.ratio, task.duration, task.frames, task.seed = draft.ratio, draft.duration, draft.frames, draft.seed
    task.generate_audio = draft.generate_audio
    task.first_frame, task.clip_ratio = draft.first_frame, draft.clip_ratio
    resolution = body.get("resolution")
    finals = task.spec.draft_final_resolutions or (task.spec.default_resolution,)
    task.resolution = resolution if resolution in task.spec.resolutions else finals[0]
    task.return_last_frame = bool(body.get("return_last_frame"))
