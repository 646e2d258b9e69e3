"""The OpenAI-compatible video dialect: `POST /v1/videos`, `GET /v1/videos/{id}` (protocol.md §9.4).

The body follows the `aiid` field set (`model`, `prompt`, `mode`, `seconds`, `aspect_ratio`, `resolution`,
`image_url`/`image_urls`, `end_image_url`, `video_urls`, `audio_urls`, `generate_audio`, `watermark`); the Ark
fields that have no top-level name (`seed`, `camera_fixed`, `frames`, `draft`, `return_last_frame`) travel in
`metadata`, which new-api gateways merge into the Ark body. Answers are read wherever the gateways put things:
the OpenAI video object, an Ark-like task, or `items[]`.
"""

from __future__ import annotations

from typing import Any

from seedance_mcp.errors import UnexpectedResponse
from seedance_mcp.providers.base import (
    WithoutTaskList,
    as_epoch_seconds,
    as_float,
    as_int,
    dig,
    first_of,
    normalize_status,
    quote,
    require_task_id,
    signed_url_expiry,
)
from seedance_mcp.wire import HttpRequest, TaskSnapshot, VideoRequest

_MODES = {
    "text": "t2v",
    "first_frame": "i2v",
    "first_last_frame": "i2v_first_last",
    "reference_images": "reference_images",
    "multimodal_reference": "reference_material",
}
_METADATA_FIELDS = ("seed", "camera_fixed", "frames", "draft", "return_last_frame")


def build_body(request: VideoRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"model": request.model_id, "prompt": request.prompt, "mode": _MODES[request.mode]}
    if request.duration is not None:
        body["seconds"] = str(request.duration)
    if request.ratio is not None:
        body["aspect_ratio"] = request.ratio
    if request.resolution is not None:
        body["resolution"] = request.resolution
    if request.first_frame is not None:
        body["image_url"] = request.first_frame
    if request.last_frame is not None:
        body["end_image_url"] = request.last_frame
    if request.reference_images:
        body["image_urls"] = list(request.reference_images)
    if request.reference_videos:
        body["video_urls"] = list(request.reference_videos)
    if request.reference_audios:
        body["audio_urls"] = list(request.reference_audios)
    for name in ("generate_audio", "watermark"):
        value = getattr(request, name)
        if value is not None:
            body[name] = value
    metadata = {name: getattr(request, name) for name in _METADATA_FIELDS if getattr(request, name) is not None}
    if metadata:
        body["metadata"] = metadata
    return body


def parse_video(body: Any, task_id: str) -> TaskSnapshot:
    """An OpenAI video object, a new-api task, or an aiid task whose results may sit in `items[]`."""
    if not isinstance(body, dict):
        raise UnexpectedResponse("the video gateway", "the video is not a JSON object", quote(body))
    first_item = dig(body, "items", 0)
    item: dict[str, Any] = first_item if isinstance(first_item, dict) else {}  # pyright: ignore[reportUnknownVariableType]

    def pick(*paths: tuple[str | int, ...]) -> Any:
        value = first_of(body, *paths)
        return value if value is not None else first_of(item, *paths)

    raw_status = pick(("status",), ("task_status",), ("data", "status"))
    status = normalize_status(raw_status, "the video gateway", body)
    video_url = pick(("content", "video_url"), ("video_url",), ("metadata", "url"), ("url",), ("output", "video_url"))
    expires = as_epoch_seconds(pick(("expires_at",)))
    if isinstance(video_url, str) and expires is None:
        expires = signed_url_expiry(video_url)
    error = pick(("error",))
    size = pick(("size",))
    return TaskSnapshot(
        task_id=str(first_of(body, ("id",), ("task_id",)) or task_id),
        status=status,
        raw_status=str(raw_status),
        progress=as_float(pick(("progress",))),
        video_url=video_url if isinstance(video_url, str) else None,
        video_url_expires_at=expires,
        last_frame_url=pick(("content", "last_frame_url"), ("last_frame_url",)),
        error_code=str(dig(error, "code")) if dig(error, "code") is not None else None,
        error_message=str(dig(error, "message") or (error if isinstance(error, str) else "")) or None,
        usage_tokens=as_int(pick(("usage", "completion_tokens"), ("usage", "total_tokens"))),
        resolution=pick(("resolution",)) or (size if isinstance(size, str) else None),
        ratio=pick(("ratio",), ("aspect_ratio",)),
        duration=as_float(pick(("seconds",), ("duration",))),
        seed=as_int(pick(("seed",))),
        created_at=as_epoch_seconds(pick(("created_at",))),
        updated_at=as_epoch_seconds(pick(("completed_at",), ("updated_at",))),
    )


class OpenAIVideosDialect(WithoutTaskList):
    name = "openai"

    def create_request(self, request: VideoRequest, base_url: str) -> HttpRequest:
        return HttpRequest(method="POST", url=f"{base_url}/v1/videos", json_body=build_body(request))

    def parse_created(self, body: Any) -> str:
        return require_task_id(body, "the video gateway")

    def status_request(self, task_id: str, base_url: str) -> HttpRequest:
        return HttpRequest(method="GET", url=f"{base_url}/v1/videos/{task_id}")

    def parse_task(self, body: Any, task_id: str) -> TaskSnapshot:
        return parse_video(body, task_id)

    def cancel_request(self, task_id: str, base_url: str) -> HttpRequest | None:
        return HttpRequest(method="DELETE", url=f"{base_url}/v1/videos/{task_id}")

    def content_url(self, task_id: str, base_url: str) -> str:
        """Where the OpenAI original and new-api serve the bytes when the object names no URL."""
        return f"{base_url}/v1/videos/{task_id}/content"
