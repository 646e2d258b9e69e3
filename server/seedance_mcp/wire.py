"""The shapes on the provider side of the wire: a checked request, one HTTP request, one status answer.

Not needed to list tools, so imported only once a tool runs.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from seedance_mcp.catalog import Mode, Ratio, Resolution
from seedance_mcp.models import TaskStatus
from seedance_mcp.requests import VideoArguments


class VideoRequest(VideoArguments):
    """A generate_video call after validation: the arguments (requests.py) as the provider will accept them,
    checked against the model's limits, and what validation worked out.

    `None` means "not given": the provider's default applies and nothing is sent for it. `model` is the model as
    the call named it; `model_key` and `model_id` are the catalog's model and the id sent. The `effective_*` values
    are what the provider will use, for the cost estimate and the progress estimate.
    """

    model_key: str
    model_id: str
    mode: Mode
    save_last_frame: bool = False
    """The caller asked for the last frame (`return_last_frame=true`): save it as a PNG beside the video. Otherwise
    its URL, when the provider gives one, is only in the result."""
    family: Literal["seedance", "gemini"] = "seedance"
    """Seedance proper, or a model a gateway sells through its Seedance API (aiid's gemini-omni)."""
    output_size: tuple[int, int] | None = None
    """Width and height of the output at the effective resolution and ratio (`adaptive` estimated as 16:9)."""
    effective_resolution: Resolution
    effective_ratio: Ratio
    effective_seconds: float
    estimated_tokens: int


class HttpRequest(BaseModel):
    """One HTTP request to a provider, built by a pure dialect function. The key is added at send time only."""

    model_config = ConfigDict(frozen=True)

    method: Literal["GET", "POST", "DELETE"]
    url: str
    json_body: dict[str, Any] | None = None
    multipart: bool = False
    """Send `json_body` as multipart/form-data (as the `openai` SDK does): strings as fields, and a `data:` URL
    under `input_reference` as a file part."""


class TaskSnapshot(BaseModel):
    """What one status answer said, in our words."""

    task_id: str
    status: TaskStatus
    raw_status: str
    model: str | None = None
    progress: float | None = None
    """Percent done, only when the provider reports one."""
    video_url: str | None = None
    video_url_expires_at: float | None = None
    video_needs_auth: bool = False
    """The video is served by the provider's own API (OpenAI `/content`), so the download sends the key."""
    last_frame_url: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    usage_tokens: int | None = None
    resolution: str | None = None
    ratio: str | None = None
    duration: float | None = None
    frames: int | None = None
    seed: int | None = None
    service_tier: str | None = None
    safety_identifier: str | None = None
    created_at: float | None = None
    updated_at: float | None = None
