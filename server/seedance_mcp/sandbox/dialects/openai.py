"""OpenAI-compatible `/v1/videos` (OpenAI itself, new-api, and the gateways with extensions): create as JSON or, as
the `openai` SDK sends it, multipart/form-data; status, the cursor list, delete and `/content`; OpenAI's error
envelope. `[[shape=metadata|toplevel|items]]` in the prompt answers in another gateway's shape."""

from __future__ import annotations

import base64
import json
from typing import Any, cast

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from seedance_mcp.sandbox.checks import ArkRejection, check_ark, size_settings, without_nulls
from seedance_mcp.sandbox.dialects.common import (
    ark_task,
    base_of,
    configure_task,
    create_task,
    query_int,
    read_json,
    read_task,
)
from seedance_mcp.sandbox.http import auth_error, sandbox_of
from seedance_mcp.sandbox.media import serve_video, task_clip
from seedance_mcp.sandbox.state import SandboxState, SandboxTask, output_size


def openai_error(status: int, message: str, code: str | None = None, param: str | None = None) -> JSONResponse:
    """OpenAI's error envelope, which the `openai` SDK reads into its APIStatusError."""
    body = {"error": {"message": message, "type": "invalid_request_error", "param": param or None, "code": code}}
    return JSONResponse(body, status_code=status)


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


async def make_openai_task(state: SandboxState, request: Request) -> SandboxTask:
    return openai_create_task(state, await read_openai_body(request))


def video_not_found() -> Response:
    """OpenAI's 404, in its own envelope (the `openai` SDK reads it)."""
    return openai_error(404, "Video not found", "not_found", "video_id")


async def openai_create(request: Request) -> Response:
    try:
        early, task = await create_task(request, make_openai_task)
    except ArkRejection as exc:
        # OpenAI answers an unknown model with 404; other refusals are 400s.
        status = exc.status if exc.status in (404,) or exc.status >= 500 else 400
        return openai_error(status, exc.message, exc.code, exc.param)
    if early is not None:
        return early
    assert task is not None
    return JSONResponse(openai_video(task, sandbox_of(request), base_of(request)))


async def openai_get(request: Request) -> Response:
    early, task = await read_task(request, video_not_found)
    if early is not None:
        return early
    assert task is not None
    return JSONResponse(openai_video(task, sandbox_of(request), base_of(request)))


async def openai_list(request: Request) -> Response:
    """`GET /v1/videos?after=&limit=&order=`: a cursor page of the videos made on `/v1/videos`."""
    state = sandbox_of(request)
    if (denied := auth_error(request)) is not None:
        return denied
    query = request.query_params
    limit = query_int(query.get("limit"), 20)
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
    data = [openai_video(t, state, base_of(request)) for t in page]
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
    state = sandbox_of(request)
    if (denied := auth_error(request)) is not None:
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
    state = sandbox_of(request)
    if (denied := auth_error(request)) is not None:
        return denied
    variant = request.query_params.get("variant") or "video"
    if variant not in ("video", "thumbnail", "spritesheet"):
        return openai_error(400, f"Unknown variant '{variant}'", "invalid_value", "variant")
    task = state.task(request.path_params["task_id"])
    if task is None or task.status(state.clock()) != "succeeded":
        return openai_error(404, "no content yet", "not_found", "video_id")
    if variant != "video":
        return Response((await task_clip(state, task)).last_frame_png, media_type="image/png")
    return await serve_video(state, task)


_OPENAI_MODES = ("t2v", "i2v", "i2v_first_last", "reference_images", "reference_material")


def openai_create_task(state: SandboxState, body: dict[str, Any]) -> SandboxTask:
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
    first = image_url(body.get("input_reference"), "input_reference") or text_of(body.get("image_url"))
    last = text_of(body.get("end_image_url")) or text_of(body.get("last_image_url"))
    images = url_list(body.get("image_urls")) + url_list(body.get("images"))
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
    content += [media("video_url", url, "reference_video") for url in url_list(body.get("video_urls"))]
    content += [media("audio_url", url, "reference_audio") for url in url_list(body.get("audio_urls"))]
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
    check_ark(state, ark, strict_fields=False)
    task = state.new_task("openai", spec, str(model), prompt, ark, logged=_loggable(body))
    configure_task(task, ark)
    return task


def text_of(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def image_url(value: Any, name: str) -> str | None:
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


def url_list(value: Any) -> list[str]:
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


def openai_video(task: SandboxTask, state: SandboxState, base: str) -> dict[str, Any]:
    """The OpenAI video object (every field of `openai.types.Video`), or another gateway's shape when the prompt
    asks with `[[shape=metadata|toplevel|items]]`."""
    now = state.clock()
    ark = ark_task(task, state, base)
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
