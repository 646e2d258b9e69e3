"""The Ark dialect (Volcengine, BytePlus ModelArk, kkiai): `POST /contents/generations/tasks` with body fields.

protocol.md §3 and §4. The content items and the task parser are shared with the gateways that wrap Ark.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from seedance_mcp.errors import UnexpectedResponse
from seedance_mcp.providers._parse import (
    as_epoch_seconds,
    as_float,
    as_int,
    dig,
    normalize_status,
    quote,
    require_task_id,
    signed_url_expiry,
)
from seedance_mcp.wire import HttpRequest, TaskSnapshot, VideoRequest

TASKS_PATH = "/contents/generations/tasks"
VIDEO_URL_LIFETIME = 24 * 3600.0

# The optional body fields, in the order the create page lists them; None means "not sent".
_BODY_FIELDS = (
    "resolution",
    "ratio",
    "duration",
    "frames",
    "seed",
    "camera_fixed",
    "watermark",
    "generate_audio",
    "draft",
    "return_last_frame",
    "service_tier",
    "output_format",
    "omni_reference_task_type",
    "execution_expires_after",
    "priority",
)


def build_content(request: VideoRequest) -> list[dict[str, Any]]:
    """Ark `content[]`: the text item, then the media items with their roles (protocol.md §3.2); or, to finalise a
    draft, only the draft task (its prompt and media are the draft's)."""
    if request.draft_task_id is not None:
        return [{"type": "draft_task", "draft_task": {"id": request.draft_task_id}}]
    content: list[dict[str, Any]] = [{"type": "text", "text": request.prompt}]

    def image(url: str, role: str) -> dict[str, Any]:
        return {"type": "image_url", "image_url": {"url": url}, "role": role}

    if request.first_frame is not None:
        content.append(image(request.first_frame, "first_frame"))
    if request.last_frame is not None:
        content.append(image(request.last_frame, "last_frame"))
    content.extend(image(url, "reference_image") for url in request.reference_images)
    content.extend(
        {"type": "video_url", "video_url": {"url": url}, "role": "reference_video"} for url in request.reference_videos
    )
    content.extend(
        {"type": "audio_url", "audio_url": {"url": url}, "role": "reference_audio"} for url in request.reference_audios
    )
    return content


def build_body(request: VideoRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"model": request.model_id, "content": build_content(request)}
    for name in _BODY_FIELDS:
        value = getattr(request, name)
        if value is not None:
            body[name] = value
    if request.web_search:
        body["tools"] = [{"type": "web_search"}]
    return body


def parse_ark_task(body: Any, task_id: str, provider: str) -> TaskSnapshot:
    """An Ark task object (GET …/tasks/{id}), as returned by Ark itself and by the gateways that relay it."""
    if not isinstance(body, dict):
        raise UnexpectedResponse(provider, "the task is not a JSON object", quote(body))
    status = normalize_status(dig(body, "status"), provider, body)
    video_url = dig(body, "content", "video_url") or dig(body, "video_url")
    updated_at = as_epoch_seconds(dig(body, "updated_at"))
    expires = None
    if isinstance(video_url, str):
        expires = signed_url_expiry(video_url) or ((updated_at + VIDEO_URL_LIFETIME) if updated_at else None)
    error = dig(body, "error")
    return TaskSnapshot(
        task_id=str(dig(body, "id") or task_id),
        status=status,
        raw_status=str(dig(body, "status")),
        model=dig(body, "model") if isinstance(dig(body, "model"), str) else None,
        progress=as_float(dig(body, "progress")),
        video_url=video_url if isinstance(video_url, str) else None,
        video_url_expires_at=expires,
        last_frame_url=dig(body, "content", "last_frame_url") or dig(body, "last_frame_url"),
        error_code=str(dig(error, "code")) if dig(error, "code") is not None else None,
        error_message=str(dig(error, "message")) if dig(error, "message") is not None else None,
        usage_tokens=as_int(dig(body, "usage", "completion_tokens")) or as_int(dig(body, "usage", "total_tokens")),
        resolution=dig(body, "resolution"),
        ratio=dig(body, "ratio"),
        duration=as_float(dig(body, "duration")),
        frames=as_int(dig(body, "frames")),
        seed=as_int(dig(body, "seed")),
        service_tier=_text(dig(body, "service_tier")),
        safety_identifier=_text(dig(body, "safety_identifier")),
        created_at=as_epoch_seconds(dig(body, "created_at")),
        updated_at=updated_at,
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class ArkDialect:
    name = "ark"

    def create_request(self, request: VideoRequest, base_url: str) -> HttpRequest:
        return HttpRequest(method="POST", url=base_url + TASKS_PATH, json_body=build_body(request))

    def parse_created(self, body: Any) -> str:
        return require_task_id(body, "Ark")

    def status_request(self, task_id: str, base_url: str) -> HttpRequest:
        return HttpRequest(method="GET", url=f"{base_url}{TASKS_PATH}/{task_id}")

    def parse_task(self, body: Any, task_id: str) -> TaskSnapshot:
        return parse_ark_task(body, task_id, "Ark")

    def cancel_request(self, task_id: str, base_url: str) -> HttpRequest | None:
        return HttpRequest(method="DELETE", url=f"{base_url}{TASKS_PATH}/{task_id}")

    def batch_status_request(self, task_ids: Sequence[str], base_url: str) -> HttpRequest | None:
        """`GET …/tasks?page_size=N&filter.task_ids=a&filter.task_ids=b` (protocol.md §4.2)."""
        query = urlencode([("page_size", str(len(task_ids)))] + [("filter.task_ids", t) for t in task_ids])
        return HttpRequest(method="GET", url=f"{base_url}{TASKS_PATH}?{query}")

    def task_page_request(
        self, base_url: str, *, page_num: int, page_size: int, model: str | None, service_tier: str | None
    ) -> HttpRequest | None:
        """One page of the key's tasks, newest first (`GET …/tasks?page_num=&page_size=&filter.…`, §4.2, §11.2).

        The list shows only default-tier tasks unless `filter.service_tier=flex` is sent; some keys must send
        `filter.model`."""
        query = [("page_num", str(page_num)), ("page_size", str(page_size))]
        if model is not None:
            query.append(("filter.model", model))
        if service_tier is not None:
            query.append(("filter.service_tier", service_tier))
        return HttpRequest(method="GET", url=f"{base_url}{TASKS_PATH}?{urlencode(query)}")

    def task_list_items(self, body: Any) -> list[Any]:
        items = dig(body, "items")
        if not isinstance(items, list):
            raise UnexpectedResponse("Ark", "a task list without `items`", quote(body))
        return items  # pyright: ignore[reportUnknownVariableType]
