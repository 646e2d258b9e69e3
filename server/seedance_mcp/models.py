"""The shapes that cross the package: a validated video request, a task snapshot, and the tool results."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

TaskStatus = Literal["queued", "running", "succeeded", "failed", "cancelled", "expired"]
"""A provider task's state, the same words whatever the provider says."""

JobStatus = Literal[
    "submitting", "unknown", "not_submitted", "queued", "running", "succeeded", "failed", "cancelled", "expired"
]
"""A job's state in the journal: a task's, plus the moments around the create request (journal/job.py says more)."""


class ProviderRequestPreview(BaseModel):
    """The exact request a dry run would have sent; the key is masked."""

    method: str
    url: str
    headers: dict[str, str]
    body: dict[str, Any] | None


class Take(BaseModel):
    """One take of a generate_video call that asked for several."""

    task_id: str
    status: str
    """A JobStatus (kept a plain string: the enum is in VideoTask's schema already, and tools/list is paid for)."""
    video_path: str | None = None
    cost: float | None = None
    """Billed, or estimated while not yet billed."""


class VideoTask(BaseModel):
    """A Seedance video job as this server knows it."""

    task_id: str = Field(description="The id to pass to get_task_status / cancel_task (provider task id, or job id).")
    job_id: str = Field(description="This server's own id for the job (stable even if the provider id is unknown).")
    provider: str
    model: str
    status: JobStatus = Field(
        description="queued | running | succeeded | failed | cancelled | expired; `unknown` when a create request's "
        "answer was lost; `not_submitted` for a dry run."
    )
    prompt: str | None = None
    progress_percent: float | None = Field(default=None, description="Estimated or reported percent done.")
    video_path: str | None = Field(default=None, description="The MP4 on the local disk, once downloaded.")
    video_url: str | None = Field(default=None, description="Provider URL of the MP4 (signed; expires).")
    video_url_expires_at: str | None = Field(default=None, description="When video_url stops working (UTC, ISO 8601).")
    last_frame_url: str | None = None
    last_frame_path: str | None = None
    resolution: str | None = None
    ratio: str | None = None
    duration: float | None = None
    frames: int | None = None
    seed: int | None = None
    estimated_tokens: int | None = Field(default=None, description="Output tokens this job is expected to bill.")
    usage_tokens: int | None = Field(default=None, description="Output tokens the provider actually billed.")
    estimated_cost: float | None = Field(default=None, description="estimated_tokens at the list price.")
    cost: float | None = Field(default=None, description="usage_tokens at the list price: what this video cost.")
    currency: str | None = Field(default=None, description="CNY or USD; prices are list prices (list_models).")
    simulated: bool = Field(default=False, description="Made by the sandbox: nothing billed, a sample clip.")
    error_code: str | None = None
    error_message: str | None = None
    request_id: str | None = None
    created_at: str | None = None
    elapsed_seconds: float | None = None
    reused_existing: bool = Field(
        default=False, description="True when an identical recent job was returned instead of paying again."
    )
    dry_run_request: ProviderRequestPreview | None = None
    continue_with: str | None = Field(default=None, description="The call that continues this clip.")
    takes: list[Take] | None = Field(default=None, description="Every take of this call (the fields above: take 1).")
    contact_sheet_path: str | None = Field(default=None, description="PNG: first/middle/last frame of each take.")
    next_step: str = Field(description="What to do next, in one sentence.")


class ModelSpend(BaseModel):
    model: str
    jobs: int
    billed_tokens: int
    cost: float


class Spend(BaseModel):
    """Money spent or in flight (jobs not yet billed count at their estimate), at list prices."""

    currency: str | None = None
    today: float
    today_billed_tokens: int
    this_week: float
    this_week_billed_tokens: int
    this_week_by_model: list[ModelSpend]
    daily_budget: float | None = Field(
        default=None,
        description="Your own daily budget (SEEDANCE_DAILY_BUDGET_PER_PERSON or your tokens-file entry), when set.",
    )
    team_daily_budget: float | None = Field(
        default=None, description="SEEDANCE_DAILY_BUDGET, for everyone's spend together, when set."
    )
    team_today: float | None = Field(default=None, description="Everyone's spend today, when that budget is set.")


class TaskLine(BaseModel):
    """One job in list_tasks: enough to pick it up again; get_task_status(task_id) gives the rest."""

    task_id: str
    status: JobStatus
    model: str = Field(description="The model's key (list_models).")
    prompt: str = Field(description="The prompt's beginning.")
    created_at: str | None = Field(default=None, description="UTC, to the minute.")
    saved: bool = Field(default=False, description="The MP4 is on disk (get_task_status has its path).")
    error_code: str | None = None


class TaskList(BaseModel):
    tasks: list[TaskLine]
    more: bool = Field(description="Older jobs match too: raise limit to see them.")
    spend: Spend


class ModelLifecycle(BaseModel):
    """A model's standing on this provider's region, with the source that says so."""

    status: Literal["retiring", "retired"]
    date: str | None = Field(default=None, description="The day it retires or retired.")
    replacement: str | None = Field(default=None, description="The model id the provider names instead.")
    source: str | None = Field(default=None, description="Who says so (list_models(model=...) gives it).")
    note: str | None = None


class ModelLine(BaseModel):
    """One model in list_models' default answer: what a call needs to pick it."""

    key: str
    model_id: str
    is_default: bool = False
    modes: list[str] = Field(description="text, first_frame, first_last_frame, reference_images, multimodal_reference.")
    resolutions: list[str]
    duration_seconds: str = Field(description="Allowed duration values, e.g. `2-12` or `4-15 or -1 (auto)`.")
    generate_audio: bool = False
    price: str | None = Field(default=None, description="List price per million output tokens, when known.")
    lifecycle: ModelLifecycle | None = Field(default=None, description="Retiring or retired here.")


class ModelInfo(BaseModel):
    """One model's capabilities on the configured provider: list_models(model=...)'s answer; the fields of
    ModelLine keep their types (modes in words here)."""

    key: str
    model_id: str
    name: str
    is_default: bool
    modes: list[str]
    resolutions: list[str]
    default_resolution: str
    ratios_text_to_video: list[str]
    ratios_image_to_video: list[str]
    default_ratio_text_to_video: str
    default_ratio_image_to_video: str
    duration_seconds: str = Field(description="Allowed duration values, e.g. `2-12` or `4-15 or -1 (auto)`.")
    frames: str | None = Field(default=None, description="Allowed `frames` values, or null when the model takes none.")
    generate_audio: bool
    draft: bool
    camera_fixed: bool
    max_reference_images: int
    max_reference_videos: int
    max_reference_audios: int
    typical_render_seconds: float
    estimated_tokens_5s_default: int = Field(description="Tokens billed for a 5 s clip at the default resolution.")
    options: list[str] = Field(description="Further arguments this model takes, with their values.")
    price: str | None = Field(default=None, description="List price per million output tokens, or null when unknown.")
    price_source: str | None = Field(default=None, description="Where the price comes from, with its date.")
    lifecycle: ModelLifecycle | None = Field(default=None, description="Retiring or retired here; null when on sale.")
    declared_ids: list[str] = Field(description="Ids and endpoints declared in SEEDANCE_MODEL_MAP as this model.")
    notes: list[str]


class ModelList(BaseModel):
    """list_models: a line per model by default; with `model`, that model's (or every model's) full ModelInfo and
    the catalog's sources."""

    provider: str
    default_model: str
    models: list[ModelLine]
    gateway_limits: list[str] = Field(default_factory=list, description="What this provider narrows.")
    catalog_date: str = Field(description="The day the catalog's facts were last checked.")
    provider_title: str | None = None
    price_source: str | None = None
    catalog: str | None = Field(default=None, description="`built-in`, or the files merged into it.")


class CancelResult(BaseModel):
    task_id: str
    cancelled: bool
    status: str
    message: str
