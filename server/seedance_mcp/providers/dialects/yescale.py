"""The YEScale dialect: `POST /seedance/generations`, `GET /seedance/generations/{id}` (protocol.md §9.2).

Ark `content[]` with the four inline flags YEScale documents (`--duration`, `--resolution`, `--ratio`,
`--camerafixed`); validation has already refused everything else for this preset and enforced its
`--duration 5|10` and `--resolution 480p|1080p`. Its content objects have `type`, `text` and `image_url` only: the
one image (a first frame) goes without a role.
"""

from __future__ import annotations

from typing import Any

from seedance_mcp.providers._parse import require_task_id
from seedance_mcp.providers.base import WithoutTaskList
from seedance_mcp.providers.dialects.ark import build_content, parse_ark_task
from seedance_mcp.providers.dialects.inline_flags import LONG_NAMES, prompt_with_flags
from seedance_mcp.wire import HttpRequest, TaskSnapshot, VideoRequest

FLAGS = {name: LONG_NAMES[name] for name in ("resolution", "duration", "ratio", "camera_fixed")}


def build_body(request: VideoRequest) -> dict[str, Any]:
    content = [{k: v for k, v in item.items() if k != "role"} for item in build_content(request)]
    content[0] = {"type": "text", "text": prompt_with_flags(request, FLAGS)}
    return {"model": request.model_id, "content": content}


class YescaleDialect(WithoutTaskList):
    name = "yescale"

    def create_request(self, request: VideoRequest, base_url: str) -> HttpRequest:
        return HttpRequest(method="POST", url=f"{base_url}/seedance/generations", json_body=build_body(request))

    def parse_created(self, body: Any) -> str:
        return require_task_id(body, "YEScale")

    def status_request(self, task_id: str, base_url: str) -> HttpRequest:
        return HttpRequest(method="GET", url=f"{base_url}/seedance/generations/{task_id}")

    def parse_task(self, body: Any, task_id: str) -> TaskSnapshot:
        return parse_ark_task(body, task_id, "YEScale")

    def cancel_request(self, task_id: str, base_url: str) -> HttpRequest | None:
        return None
