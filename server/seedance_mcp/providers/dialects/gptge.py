"""The gpt.ge (V-API) task dialect: `POST /task/volces/seedance`, `GET /task/{id}` (protocol.md §9.1).

Ark `content[]` with the parameters as inline flags (the short aliases gpt.ge documents: `--rs`, `--dur`, `--cf`),
`generate_audio` and `draft` as body fields. Its document's roles are `first_frame` and `last_frame` only, "required
for first/last-frame videos", and its image-to-video example is "text + image_url": a lone first frame goes
without a role (reference images cannot be said there; the preset refuses them). The create answer is an envelope
(`data.task_id`) or a bare id.
"""

from __future__ import annotations

from typing import Any

from seedance_mcp.errors import ProviderError
from seedance_mcp.providers._parse import dig, require_task_id
from seedance_mcp.providers.base import WithoutTaskList
from seedance_mcp.providers.dialects.ark import build_content, parse_ark_task
from seedance_mcp.providers.dialects.inline_flags import prompt_with_flags
from seedance_mcp.wire import HttpRequest, TaskSnapshot, VideoRequest

FLAGS = {
    "resolution": "--rs",
    "ratio": "--ratio",
    "duration": "--dur",
    "frames": "--frames",
    "seed": "--seed",
    "camera_fixed": "--cf",
    "watermark": "--wm",
}


def build_body(request: VideoRequest) -> dict[str, Any]:
    content = build_content(request)
    content[0] = {"type": "text", "text": prompt_with_flags(request, FLAGS)}
    if request.last_frame is None:
        content = [{k: v for k, v in item.items() if k != "role"} for item in content]
    body: dict[str, Any] = {"model": request.model_id, "content": content}
    for name in ("generate_audio", "draft"):
        value = getattr(request, name)
        if value is not None:
            body[name] = value
    return body


class GptgeDialect(WithoutTaskList):
    name = "gptge"

    def create_request(self, request: VideoRequest, base_url: str) -> HttpRequest:
        return HttpRequest(method="POST", url=f"{base_url}/task/volces/seedance", json_body=build_body(request))

    def parse_created(self, body: Any) -> str:
        code = dig(body, "code")
        if code not in (None, 0, "0", 200, "success", "SUCCEED"):
            raise ProviderError("gpt.ge", str(dig(body, "message") or "create refused"), code=str(code))
        return require_task_id(body, "gpt.ge")

    def status_request(self, task_id: str, base_url: str) -> HttpRequest:
        return HttpRequest(method="GET", url=f"{base_url}/task/{task_id}")

    def parse_task(self, body: Any, task_id: str) -> TaskSnapshot:
        # Documented as the raw Ark task; an envelope around it (`{"code":0,"data":{…}}`) is read too.
        inner = dig(body, "data")
        if isinstance(inner, dict) and "status" not in body and ("status" in inner or "task_status" in inner):
            inner_task: dict[str, Any] = dict(inner)  # pyright: ignore[reportUnknownArgumentType]
            inner_task.setdefault("status", inner_task.get("task_status"))
            inner_task.setdefault("id", inner_task.get("task_id"))
            return parse_ark_task(inner_task, task_id, "gpt.ge")
        return parse_ark_task(body, task_id, "gpt.ge")

    def cancel_request(self, task_id: str, base_url: str) -> HttpRequest | None:
        return None
