"""aiid (protocol.md §9.4, seed 002): Ark's path with a required top-level `prompt`, `mode`, `function_mode` and
alias fields, `task_…` ids, and the results of a status answer in `items[]` unless the prompt says otherwise
(`[[shape=toplevel|flat|bare|string]]`). gemini-omni is accepted on aiid creates only."""

from __future__ import annotations

import json
import time
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from seedance_mcp.sandbox.checks import ArkRejection, check_ark, size_settings, without_nulls
from seedance_mcp.sandbox.dialects.common import ark_task, configure_task, create_task, read_json
from seedance_mcp.sandbox.dialects.openai import image_url, text_of, url_list
from seedance_mcp.sandbox.state import SandboxState, SandboxTask

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


def aiid_error(status: int, message: str, code: str = "invalid_request_error") -> JSONResponse:
    """aiid's error envelope (seed 002): `{"error": {"code": "invalid_request_error", "message": …}}`."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


async def aiid_create(request: Request) -> Response:
    """aiid: `{"id":"task_…","created_at":"…","items":[…]}`; refusals in its `invalid_request_error` envelope."""
    try:
        early, task = await create_task(request, make_aiid_task)
    except ArkRejection as exc:
        return aiid_error(exc.status, exc.message, exc.code)
    if early is not None:
        return early
    assert task is not None
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(task.created_at))
    return JSONResponse({"id": task.id, "created_at": created, "items": [{"id": task.id, "status": "queued"}]})


async def make_aiid_task(state: SandboxState, request: Request) -> SandboxTask:
    return aiid_create_task(state, await read_json(request))


def is_aiid_create(raw: bytes) -> bool:
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
    images = [*url_list(body.get("image_url")), *url_list(body.get("image_urls"))]
    images += [
        *url_list(image_url(body.get("input_reference"), "input_reference")),
        *url_list(body.get("reference_images")),
    ]
    last = text_of(body.get("end_image_url")) or text_of(body.get("last_image_url"))

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
    media += [item_of("video_url", url, "reference_video") for url in url_list(body.get("video_urls"))]
    media += [item_of("audio_url", url, "reference_audio") for url in url_list(body.get("audio_urls"))]
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


def aiid_create_task(state: SandboxState, raw_body: dict[str, Any]) -> SandboxTask:
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
        check_ark(state, ark, strict_fields=False)
    task = state.new_task("aiid", spec, model, prompt, ark, logged=body, id_prefix="task_")
    configure_task(task, ark)
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


def aiid_task(task: SandboxTask, state: SandboxState, base: str) -> dict[str, Any]:
    """aiid's task: `id, model, status, error, created_at, updated_at, usage, items`, with the results (status,
    `content.video_url`, error, progress) in `items[]`; `[[shape=…]]` in the prompt moves them (see the module)."""
    ark = ark_task(task, state, base)
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
