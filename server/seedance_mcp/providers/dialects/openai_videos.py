"""The OpenAI-compatible video dialect: `POST /v1/videos`, `GET /v1/videos/{id}` (protocol.md §9.4, §11.6).

Two field sets, chosen per preset with `OpenAIVideosDialect(extended=…)`:

- **strict** (the default): what the official `openai` SDK sends and a strict OpenAI-shaped gateway accepts:
  `prompt`, `model`, `seconds` (a string), `size` (`"WxH"`, from the catalog's output sizes) and a first frame as
  `input_reference: {"image_url": "<URL or data: URL>"}` (the JSON form of the SDK's file part). Whatever else a
  request asks for has no field here: the dialect refuses it (`STRICT_UNSUPPORTED`), it never drops it.
- **extended**: the `aiid` field set (`mode`, `seconds`, `aspect_ratio`, `resolution`, `image_url`/`image_urls`,
  `end_image_url`, `video_urls`, `audio_urls`, `generate_audio`, `watermark`), with the Ark fields that have no
  top-level name (`seed`, `camera_fixed`, `frames`, `draft`, `return_last_frame`) in `metadata`, which new-api
  gateways merge into the Ark body. Only for gateways that document these fields.

Answers are read wherever the gateways put things: the OpenAI video object, an Ark-like task, or `items[]`.
A base URL may be given with or without its trailing `/v1`.
"""

from __future__ import annotations

from typing import Any

from seedance_mcp.catalog import FIXED_RATIOS, ModelSpec, Ratio, Resolution, builtin_catalog
from seedance_mcp.errors import InvalidArgument, UnexpectedResponse
from seedance_mcp.providers._parse import (
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
from seedance_mcp.providers.base import WithoutTaskList
from seedance_mcp.wire import HttpRequest, TaskSnapshot, VideoRequest

_MODES = {
    "text": "t2v",
    "first_frame": "i2v",
    "first_last_frame": "i2v_first_last",
    "reference_images": "reference_images",
    "multimodal_reference": "reference_material",
}
_METADATA_FIELDS = ("seed", "camera_fixed", "frames", "draft", "return_last_frame")

STRICT_UNSUPPORTED: tuple[str, ...] = (
    "last_frame",
    "reference_images",
    "reference_videos",
    "reference_audios",
    "frames",
    "seed",
    "camera_fixed",
    "watermark",
    "generate_audio",
    "draft",
    "return_last_frame",
    "service_tier",
)
"""The generate_video arguments the strict field set (what the official `openai` SDK sends: prompt, model, seconds,
size and a first frame) has no way to carry; the `openai-compatible` preset refuses them first (its catalog entry
lists them). Besides these, two values cannot be said: `ratio="adaptive"` (a size names a width and a height) and
`duration=-1` (`seconds` is a number of seconds)."""


def build_body(request: VideoRequest) -> dict[str, Any]:
    """The strict body: only the fields the official `openai` SDK sends (protocol.md §11.6)."""
    for name in STRICT_UNSUPPORTED:
        value = getattr(request, name)
        if value is not None and value != ():
            raise InvalidArgument(
                name,
                "an OpenAI-style /v1/videos gateway takes only prompt, model, seconds, size and a first frame",
                hint="Leave it out (the gateway's default applies), or use a provider whose API carries it.",
            )
    body: dict[str, Any] = {"model": request.model_id, "prompt": request.prompt}
    if request.duration is not None:
        if request.duration < 1:
            raise InvalidArgument(
                "duration",
                "an OpenAI-style /v1/videos gateway takes a number of seconds, not -1 (the model chooses)",
                allowed="a whole number of seconds",
            )
        body["seconds"] = str(request.duration)
    if request.resolution is not None or request.ratio is not None:
        body["size"] = size_of(request)
    if request.first_frame is not None:
        body["input_reference"] = {"image_url": request.first_frame}
    return body


def size_of(request: VideoRequest) -> str:
    """`"WxH"`: the catalog's output size for the request's resolution and (fixed) ratio."""
    ratio = request.ratio or request.effective_ratio
    fixed: Ratio | None = next((r for r in FIXED_RATIOS if r == ratio), None)
    if fixed is None:
        raise InvalidArgument(
            "ratio",
            f"an OpenAI-style /v1/videos gateway takes a size (width x height), which cannot say {ratio!r}",
            allowed=", ".join(FIXED_RATIOS),
            hint="Pass a fixed ratio with the resolution, or leave out both for the gateway's default size.",
        )
    if request.output_size is None:
        raise InvalidArgument("resolution", "the output size of this request is not known", hint="Pass a resolution.")
    width, height = request.output_size
    return f"{width}x{height}"


def build_extended_body(request: VideoRequest) -> dict[str, Any]:
    """The aiid / new-api body (protocol.md §9.4): every argument has a field or a `metadata` entry."""
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


def resolution_and_ratio(size: str, model: str | None = None) -> tuple[Resolution, Ratio] | None:
    """A `"WxH"` size read back as the catalog's resolution and ratio (the model's own table first)."""
    wanted = size.strip().lower().replace("×", "x")
    models = tuple(builtin_catalog().models.values())
    specs: list[ModelSpec] = [s for s in models if model and model.lower() in s.names()]
    for spec in (*specs, *models):
        for resolution, cells in spec.sizes.items():
            for ratio, (width, height) in zip(FIXED_RATIOS, cells, strict=True):
                if wanted == f"{width}x{height}":
                    return resolution, ratio
    return None


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
    model = pick(("model",))
    from_size = resolution_and_ratio(size, model if isinstance(model, str) else None) if isinstance(size, str) else None
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
        resolution=pick(("resolution",)) or (from_size[0] if from_size else None),
        ratio=pick(("ratio",), ("aspect_ratio",)) or (from_size[1] if from_size else None),
        duration=as_float(pick(("seconds",), ("duration",))),
        seed=as_int(pick(("seed",))),
        created_at=as_epoch_seconds(pick(("created_at",))),
        updated_at=as_epoch_seconds(pick(("completed_at",), ("updated_at",))),
    )


def _root(base_url: str) -> str:
    """The base URL without a trailing `/v1` (users paste `https://gw.example/v1` as often as the bare host)."""
    base = base_url.rstrip("/")
    return base.removesuffix("/v1")


class OpenAIVideosDialect(WithoutTaskList):
    """`extended=False` (the default) speaks the official `openai` SDK's field set; `extended=True` the aiid /
    new-api set, for gateways that document it."""

    name = "openai"

    def __init__(self, *, extended: bool = False) -> None:
        self.extended = extended

    def create_request(self, request: VideoRequest, base_url: str) -> HttpRequest:
        body = build_extended_body(request) if self.extended else build_body(request)
        # A local image travels as a file part, as the official SDK sends it; a URL in the JSON form.
        upload = not self.extended and (request.first_frame or "").startswith("data:")
        return HttpRequest(method="POST", url=f"{_root(base_url)}/v1/videos", json_body=body, multipart=upload)

    def parse_created(self, body: Any) -> str:
        return require_task_id(body, "the video gateway")

    def status_request(self, task_id: str, base_url: str) -> HttpRequest:
        return HttpRequest(method="GET", url=f"{_root(base_url)}/v1/videos/{task_id}")

    def parse_task(self, body: Any, task_id: str) -> TaskSnapshot:
        return parse_video(body, task_id)

    def cancel_request(self, task_id: str, base_url: str) -> HttpRequest | None:
        return HttpRequest(method="DELETE", url=f"{_root(base_url)}/v1/videos/{task_id}")

    def content_url(self, task_id: str, base_url: str) -> str:
        """Where the OpenAI original and new-api serve the bytes when the object names no URL."""
        return f"{_root(base_url)}/v1/videos/{task_id}/content"
