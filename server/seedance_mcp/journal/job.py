"""The journal's row: one video job, from before its create request until its files are on disk; its states."""

from __future__ import annotations

import time
import uuid
from typing import Any, get_args

from pydantic import BaseModel, Field

from seedance_mcp.models import JobStatus

STATUSES: tuple[JobStatus, ...] = get_args(JobStatus)
"""Every state a job can be in; both journals refuse any other status (a CHECK constraint, migration 0007)."""
TERMINAL: frozenset[JobStatus] = frozenset({"succeeded", "failed", "cancelled", "expired", "not_submitted"})
"""The task ended (its files may still be on their way: `Job.settled`)."""
DEAD_STATUSES: tuple[JobStatus, ...] = ("failed", "cancelled", "expired", "not_submitted")
"""Jobs in these states cost nothing and never block an identical new call."""


class Job(BaseModel):
    """One video job, from before its create request until its files are on disk."""

    job_id: str
    provider: str
    model: str
    model_key: str
    prompt: str
    status: JobStatus
    fingerprint: str
    created_at: float
    updated_at: float
    version: int = 0
    """Bumped by every write; a write that expects an older version loses (compare-and-set)."""
    task_id: str | None = None
    submitted_at: float | None = None
    finished_at: float | None = None
    expected_render_seconds: float = 60.0
    progress: float | None = None
    poll_count: int = 0
    video_url: str | None = None
    video_url_expires_at: float | None = None
    video_needs_auth: bool = False
    last_frame_url: str | None = None
    want_last_frame: bool = False
    video_path: str | None = None
    last_frame_path: str | None = None
    download_error: str | None = None
    """Why the last try to save the video failed (kept for the caller to read while the next try waits)."""
    download_permanent: bool = False
    """Saving stopped for good: the file is no video, or the provider no longer serves it."""
    download_attempts: int = 0
    """Failed tries to save the video since it was ready (or since a caller asked for another go)."""
    download_retry_at: float | None = None
    """When (the journal's clock) the worker tries the download again after a failure."""
    download_cap_bytes: int | None = None
    """The size cap (SEEDANCE_MAX_DOWNLOAD_MB, in bytes) the video was over: it waits for a caller to ask again once
    the cap is raised, rather than fetching gigabytes again on a timer."""
    resolution: str | None = None
    ratio: str | None = None
    duration: float | None = None
    frames: int | None = None
    seed: int | None = None
    service_tier: str | None = None
    identity: dict[str, str] = Field(default_factory=dict[str, str])
    """The settings the caller chose, as the provider's task list shows them: how a lost task is recognised."""
    marker: str | None = None
    """The per-job `safety_identifier` sent with the create request, which Ark echoes on the task."""
    estimated_tokens: int | None = None
    usage_tokens: int | None = None
    cost_rate: float | None = None
    """Price per million output tokens that applies to this job, fixed when it was submitted."""
    currency: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    request_id: str | None = None
    last_poll_error: str | None = None
    simulated: bool = False
    """Made by the sandbox: no money, a sample clip."""
    principal: str = ""
    """Whose job this is: the authenticated caller over HTTP, `""` for the one local user on stdio."""
    approval_id: str | None = None
    """The approval id that paid for this job: the journal keeps one live job per approval id (one video each)."""
    search_done: bool = False
    """For an `unknown` job: the look for its task in the provider's list is over (found, or a person must check)."""
    task_secret: str | None = None
    """128 random bits that make the job's MCP task id (`tools/task_extension.py`) a handle nobody can guess; None
    for jobs journaled before tasks existed (they are never answered as tasks)."""

    def clone(self, **changes: Any) -> Job:
        """An independent copy, with `changes` applied: `identity` is the one mutable field, so copying it gives
        what a deep copy would, for a fraction of the CPU (a job is copied on every write)."""
        return self.model_copy(update={"identity": dict(self.identity), **changes})

    @property
    def handle(self) -> str:
        """The id a caller uses: the provider's task id once known, else the job id."""
        return self.task_id or self.job_id

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def download_stopped(self) -> bool:
        """Saving the video stopped until someone acts: the file is no video, the provider no longer serves it, or
        it is over the size cap. Any other failure is tried again by the worker by itself."""
        return self.download_error is not None and (self.download_permanent or self.download_cap_bytes is not None)

    @property
    def needs_download(self) -> bool:
        wants_frame = self.want_last_frame and self.last_frame_url is not None and self.last_frame_path is None
        return self.status == "succeeded" and (self.video_path is None or wants_frame) and not self.download_stopped

    @property
    def settled(self) -> bool:
        """Nothing more will happen to this job: it ended, and its files are saved (or could not be)."""
        return self.is_terminal and not self.needs_download

    @property
    def spend(self) -> float:
        """What this job counts against a budget: its bill once known, its estimate while it may still be billed,
        nothing once it ended unbilled (failed, cancelled, expired: only successful tasks are billed)."""
        if self.cost_rate is None:
            return 0.0
        if self.usage_tokens is not None:
            tokens = self.usage_tokens
        elif self.status in DEAD_STATUSES:
            tokens = 0
        else:
            tokens = self.estimated_tokens or 0
        return tokens * self.cost_rate / 1_000_000

    @property
    def has_work(self) -> bool:
        """A worker has something to do for this job: create it, poll it, download it, or look for its task."""
        if self.status == "unknown":
            return not self.search_done
        return not self.settled


def new_job_id() -> str:
    return f"job-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"
