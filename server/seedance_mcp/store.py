"""The task journal: every job is written here before its create request leaves, and kept up to date.

`TaskStore` is the seam (a shared database can stand in for multi-replica deployments); `SqliteTaskStore` is the
default: one file in SEEDANCE_STATE_DIR, WAL mode, stdlib sqlite3 run in a worker thread so the event loop never
blocks. Finished jobs are also cached in memory, so a status call for one is a dictionary look-up.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

import anyio
import anyio.to_thread
from pydantic import BaseModel

from seedance_mcp.models import TERMINAL, JobStatus


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
    resolution: str | None = None
    ratio: str | None = None
    duration: float | None = None
    frames: int | None = None
    seed: int | None = None
    estimated_tokens: int | None = None
    usage_tokens: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    request_id: str | None = None
    last_poll_error: str | None = None

    @property
    def handle(self) -> str:
        """The id a caller uses: the provider's task id once known, else the job id."""
        return self.task_id or self.job_id

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def needs_download(self) -> bool:
        wants_frame = self.want_last_frame and self.last_frame_url is not None and self.last_frame_path is None
        return self.status == "succeeded" and (self.video_path is None or wants_frame) and not self.download_error

    @property
    def settled(self) -> bool:
        """Nothing more will happen to this job: it ended, and its files are saved (or could not be)."""
        return self.is_terminal and not self.needs_download


def new_job_id() -> str:
    return f"job-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"


class TaskStore(Protocol):
    """Where jobs are kept. Every method is safe to call from the event loop."""

    async def add(self, job: Job) -> None: ...

    async def save(self, job: Job) -> None: ...

    async def get(self, key: str) -> Job | None:
        """A job by its job id or its provider task id."""
        ...

    async def unsettled(self) -> list[Job]:
        """Jobs that still need polling or downloading: what the worker resumes on start-up."""
        ...

    async def recent(self, status: str | None, limit: int) -> tuple[list[Job], int]:
        """Newest first, optionally of one status; and how many matched in all."""
        ...

    async def find_duplicate(self, fingerprint: str, since: float) -> Job | None:
        """The newest job with this fingerprint created after `since` that may have cost money."""
        ...

    async def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    task_id TEXT,
    status TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at REAL NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_task_id ON jobs (task_id);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status);
CREATE INDEX IF NOT EXISTS jobs_fingerprint ON jobs (fingerprint, created_at);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at);
"""

_UNSETTLED = ("submitting", "queued", "running", "succeeded")


class SqliteTaskStore:
    """The default journal: `<state_dir>/jobs.sqlite3`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None
        # One worker thread at a time: the sqlite3 connection is shared, and this keeps its use serial.
        self._limiter = anyio.CapacityLimiter(1)
        self._settled: dict[str, Job] = {}

    @classmethod
    async def open(cls, path: Path) -> SqliteTaskStore:
        store = cls(path)
        await anyio.to_thread.run_sync(store._open_sync)
        return store

    def _open_sync(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.executescript(_SCHEMA)
        self._connection = connection

    async def _run(self, sql: str, parameters: Iterable[object] = ()) -> list[tuple[object, ...]]:
        def work() -> list[tuple[object, ...]]:
            assert self._connection is not None, "the store is closed"
            return self._connection.execute(sql, tuple(parameters)).fetchall()

        return await anyio.to_thread.run_sync(work, limiter=self._limiter)

    def _remember(self, job: Job) -> None:
        if job.settled:
            self._settled[job.job_id] = job
            if job.task_id:
                self._settled[job.task_id] = job

    async def add(self, job: Job) -> None:
        await self._run(
            "INSERT INTO jobs (job_id, task_id, status, fingerprint, created_at, data) VALUES (?, ?, ?, ?, ?, ?)",
            (job.job_id, job.task_id, job.status, job.fingerprint, job.created_at, job.model_dump_json()),
        )

    async def save(self, job: Job) -> None:
        job.updated_at = time.time()
        await self._run(
            "UPDATE jobs SET task_id = ?, status = ?, data = ? WHERE job_id = ?",
            (job.task_id, job.status, job.model_dump_json(), job.job_id),
        )
        self._remember(job.model_copy())

    async def get(self, key: str) -> Job | None:
        cached = self._settled.get(key)
        if cached is not None:
            return cached.model_copy()
        rows = await self._run(
            "SELECT data FROM jobs WHERE job_id = ? OR task_id = ? ORDER BY created_at DESC LIMIT 1", (key, key)
        )
        if not rows:
            return None
        job = Job.model_validate_json(str(rows[0][0]))
        self._remember(job)
        return job

    async def unsettled(self) -> list[Job]:
        marks = ", ".join("?" for _ in _UNSETTLED)
        rows = await self._run(f"SELECT data FROM jobs WHERE status IN ({marks}) ORDER BY created_at", _UNSETTLED)
        jobs = [Job.model_validate_json(str(row[0])) for row in rows]
        return [job for job in jobs if not job.settled]

    async def recent(self, status: str | None, limit: int) -> tuple[list[Job], int]:
        where, parameters = ("WHERE status = ?", [status]) if status else ("", [])
        rows = await self._run(f"SELECT data FROM jobs {where} ORDER BY created_at DESC LIMIT ?", [*parameters, limit])
        count = await self._run(f"SELECT COUNT(*) FROM jobs {where}", parameters)
        total = count[0][0]
        return [Job.model_validate_json(str(row[0])) for row in rows], int(total) if isinstance(total, int) else 0

    async def find_duplicate(self, fingerprint: str, since: float) -> Job | None:
        rows = await self._run(
            "SELECT data FROM jobs WHERE fingerprint = ? AND created_at >= ? "
            "AND status NOT IN ('failed', 'cancelled', 'expired', 'not_submitted') ORDER BY created_at DESC LIMIT 1",
            (fingerprint, since),
        )
        return Job.model_validate_json(str(rows[0][0])) if rows else None

    async def close(self) -> None:
        def work() -> None:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

        await anyio.to_thread.run_sync(work, limiter=self._limiter)
