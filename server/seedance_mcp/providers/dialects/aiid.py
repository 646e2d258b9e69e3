"""The aiid dialect: `POST {base}/api/v3/contents/generations/tasks`, `GET …/tasks/{id}` (protocol.md §9.4, seed 002).

aiid's Seedance task API takes a required `prompt` beside the Ark `content[]`, a compatibility `mode`
(`t2v|i2v|i2v_first_last|reference_images|reference_material`; gemini-omni `t2v|r2v|edit`) and `function_mode`
(`omni_reference`). The body carries each argument once, in the field its document names as the one that
"affects the final generation configuration": media as `content[]` items with their `role` (reference items
also `name`d `"1"`, `"2"`, … in order, as the document's example names them, so a prompt can cite them),
`duration`, `ratio`, `resolution`,
`generate_audio`, `watermark`. Nothing else has a field there: the preset refuses it before a body is built.

Results may sit at the top level or in `items[]` (`items[].status`, `items[].content.video_url` or
`items[].video_url`, `items[].error`, `items[].progress`); `items` is read as a list or, should the gateway send
it as its document's example suggests, a JSON string. No task list, no cancel call.
"""

from __future__ import annotations

import json
from typing import Any

from seedance_mcp.errors import InvalidArgument
from seedance_mcp.providers._parse import require_task_id
from seedance_mcp.providers.base import WithoutTaskList
from seedance_mcp.providers.dialects.openai_videos import parse_video
from seedance_mcp.wire import HttpRequest, TaskSnapshot, VideoRequest

TASKS_PATH = "/api/v3/contents/generations/tasks"

SEEDANCE_MODES = {
    "text": "t2v",
    "first_frame": "i2v",
    "first_last_frame": "i2v_first_last",
    "reference_images": "reference_images",
    "multimodal_reference": "reference_material",
}
GEMINI_MODES = {"text": "t2v", "multimodal_reference": "r2v"}

# The arguments the aiid body has a field for; validation has refused the others for this preset.
_CARRIED = ("duration", "ratio", "resolution", "generate_audio", "watermark")
_NOT_CARRIED = (
    "frames", "seed", "camera_fixed", "draft", "return_last_frame", "service_tier", "output_format", "web_search",
    "execution_expires_after", "priority", "draft_task_id",
)  # fmt: skip


def aiid_mode(request: VideoRequest) -> str:
    """The compatibility `mode` for a checked request: gemini-omni's t2v / r2v / edit, or Seedance's five."""
    if request.family == "gemini":
        if request.omni_reference_task_type == "edit":
            return "edit"
        return GEMINI_MODES[request.mode]
    return SEEDANCE_MODES[request.mode]


def build_content(request: VideoRequest) -> list[dict[str, Any]]:
    """Ark `content[]`: the prompt as the text item, then each medium with its role; references are named `"1"`,
    `"2"`, … across images, videos and audios in that order (the names a prompt can refer to them by)."""
    content: list[dict[str, Any]] = [{"type": "text", "text": request.prompt}]

    def item(kind: str, url: str, role: str, name: str | None = None) -> dict[str, Any]:
        entry: dict[str, Any] = {"type": kind, kind: {"url": url}, "role": role}
        if name is not None:
            entry["name"] = name
        return entry

    if request.first_frame is not None:
        content.append(item("image_url", request.first_frame, "first_frame"))
    if request.last_frame is not None:
        content.append(item("image_url", request.last_frame, "last_frame"))
    references = [
        (kind, url, role)
        for kind, role, urls in (
            ("image_url", "reference_image", request.reference_images),
            ("video_url", "reference_video", request.reference_videos),
            ("audio_url", "reference_audio", request.reference_audios),
        )
        for url in urls
    ]
    content.extend(item(kind, url, role, str(n)) for n, (kind, url, role) in enumerate(references, start=1))
    return content


def build_body(request: VideoRequest) -> dict[str, Any]:
    """The create body. Text-only requests send the prompt alone; others add `content[]` (text item first)."""
    for name in _NOT_CARRIED:  # validation refuses these for the preset first; never drop one silently
        if getattr(request, name) is not None:
            raise InvalidArgument(name, "the aiid task API has no field for it", hint="Leave it out.")
    mode = aiid_mode(request)
    body: dict[str, Any] = {"model": request.model_id, "prompt": request.prompt, "mode": mode}
    if request.mode != "text":
        body["content"] = build_content(request)
    if request.mode == "multimodal_reference" and request.family == "seedance":
        body["function_mode"] = "omni_reference"
    for name in _CARRIED:
        value = getattr(request, name)
        if value is not None:
            body[name] = value
    return body


def parse_task(body: Any, task_id: str) -> TaskSnapshot:
    """A task whose status and results sit at the top level or in `items[]` (a list, or a JSON string of one)."""
    if isinstance(body, dict) and isinstance(body.get("items"), str):  # pyright: ignore[reportUnknownMemberType]
        task: dict[str, Any] = dict(body)  # pyright: ignore[reportUnknownArgumentType]
        try:
            task["items"] = json.loads(task["items"])
        except ValueError:
            task["items"] = []
        body = task
    return parse_video(body, task_id)


def _root(base_url: str) -> str:
    """The base URL without a pasted `/api/v3` (the documented base is the bare host)."""
    return base_url.rstrip("/").removesuffix("/api/v3")


class AiidDialect(WithoutTaskList):
    name = "aiid"

    def create_request(self, request: VideoRequest, base_url: str) -> HttpRequest:
        return HttpRequest(method="POST", url=f"{_root(base_url)}{TASKS_PATH}", json_body=build_body(request))

    def parse_created(self, body: Any) -> str:
        return require_task_id(body, "aiid")

    def status_request(self, task_id: str, base_url: str) -> HttpRequest:
        return HttpRequest(method="GET", url=f"{_root(base_url)}{TASKS_PATH}/{task_id}")

    def parse_task(self, body: Any, task_id: str) -> TaskSnapshot:
        return parse_task(body, task_id)

    def cancel_request(self, task_id: str, base_url: str) -> HttpRequest | None:
        return None
