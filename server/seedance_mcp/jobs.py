"""JobManager: submit once, follow every job in the background until its video is on disk, let callers wait.

The rules that keep money safe live here:
- a job is in the journal before its create request leaves, and the request runs shielded from cancellation,
  so a task id the provider hands back is always recorded;
- an identical call within the dedupe window returns the earlier job instead of paying again;
- a create whose answer was lost is kept as `unknown` and never re-sent by us;
- following and downloading belong to the server's lifespan, not to any tool call: a caller that gives up,
  or a server that is killed and started again, still gets the video on disk, once.

Nothing here knows about MCP: progress goes out through a plain callback.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import anyio.abc
import anyio.to_thread

from seedance_mcp.errors import (
    AuthenticationFailed,
    CreateAnswerLost,
    DownloadFailed,
    DuplicateSubmission,
    PollFailed,
    ProviderError,
    ProviderUnreachable,
    RateLimited,
    SeedanceError,
    SubmitOutcomeUnknown,
    TaskNotFound,
    UnexpectedResponse,
    UnsupportedOperation,
)
from seedance_mcp.polling import PollPolicy, ProgressMeter
from seedance_mcp.providers.client import ProviderClient
from seedance_mcp.status_batcher import StatusBatcher
from seedance_mcp.store import Job, TaskStore, new_job_id
from seedance_mcp.wire import HttpRequest, TaskSnapshot, VideoRequest

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[float, str], Awaitable[None]]

HEARTBEAT_SECONDS = 2.5
MAX_FOLLOW_SECONDS = 3 * 24 * 3600.0
"""Ark keeps a task for at most 72 h before it expires (execution_expires_after ≤ 259200 s)."""
POLL_ERROR_BACKOFF_CAP = 300.0


@dataclass(eq=False)
class _Live:
    """A followed job's latest state, and a broadcast event for whoever is waiting on it."""

    job: Job
    changed: anyio.Event = field(default_factory=anyio.Event)
    poll_error: SeedanceError | None = None
    poll_error_at: float = 0.0

    def publish(self, job: Job, poll_error: SeedanceError | None = None) -> None:
        self.job = job
        self.poll_error = poll_error
        self.poll_error_at = anyio.current_time()
        self.changed.set()
        self.changed = anyio.Event()


@dataclass(frozen=True, slots=True)
class JobSettings:
    output_dir: Path
    poll: PollPolicy
    dedupe_window: float = 600.0
    reconcile_delays: tuple[float, ...] = (2.0, 10.0, 30.0)
    reconcile_window: float = 90.0
    """How long after a job was journaled its task may have been created (the create request's time-out)."""
    max_concurrent_polls: int = 8
    """Polls take milliseconds; a few at a time keep up with hundreds of jobs, and a small connection pool keeps
    httpcore's per-request scan of its connections cheap."""
    max_concurrent_downloads: int = 8


def fingerprint_of(provider: str, request: HttpRequest) -> str:
    """Identical calls (same provider, same path, same request body) share a fingerprint.

    The host is left out: the embedded sandbox gets a new port on every start.
    """
    path = urlsplit(request.url).path
    canonical = json.dumps([provider, path, request.json_body], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def video_filename(job: Job, suffix: str) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(job.created_at))
    safe_id = re.sub(r"[^A-Za-z0-9_-]", "_", job.handle)[:64]
    return f"seedance-{stamp}-{safe_id}{suffix}"


class JobManager:
    def __init__(
        self,
        *,
        store: TaskStore,
        provider: ProviderClient,
        settings: JobSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.provider = provider
        self.settings = settings
        self._clock = clock
        self._live: dict[str, _Live] = {}
        self._task_group: anyio.abc.TaskGroup | None = None
        self._batcher: StatusBatcher | None = None
        self._submit_lock = anyio.Lock()
        self._poll_limiter = anyio.CapacityLimiter(settings.max_concurrent_polls)
        self._download_limiter = anyio.CapacityLimiter(settings.max_concurrent_downloads)

    # -- lifecycle -------------------------------------------------------------------------------------------

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Follow every unsettled job in the journal, then every new one, until cancelled."""
        async with anyio.create_task_group() as task_group:
            self._task_group = task_group
            self._batcher = StatusBatcher(self.provider, task_group, self._poll_limiter)
            for job in await self.store.unsettled():
                if job.status == "submitting":
                    await self._mark_interrupted(job)
                    self._reconcile_soon(job)
                else:
                    self._follow_soon(job)
            task_status.started()
            await anyio.sleep_forever()

    async def _mark_interrupted(self, job: Job) -> None:
        """A job the last server left mid-create: whether the provider made a task is unknown."""
        job.status = "unknown"
        job.error_message = "the server stopped while this job's create request was in flight; a paid task may exist"
        await self.store.save(job)

    @property
    def batcher(self) -> StatusBatcher:
        assert self._batcher is not None, "JobManager.run() must be running"
        return self._batcher

    def _follow_soon(self, job: Job) -> None:
        if job.job_id in self._live:
            return
        self._live[job.job_id] = _Live(job)
        assert self._task_group is not None, "JobManager.run() must be running"
        self._task_group.start_soon(self._follow, job.job_id, name=f"follow {job.handle}")

    # -- submit ----------------------------------------------------------------------------------------------

    async def submit(
        self, request: VideoRequest, http_request: HttpRequest, *, expected_render: float, force_new: bool = False
    ) -> tuple[Job, bool]:
        """Journal the job, send the create request once, start following. The job, and whether it was reused."""
        provider_name = self.provider.preset.name
        fingerprint = await anyio.to_thread.run_sync(fingerprint_of, provider_name, http_request)
        async with self._submit_lock:
            if not force_new and self.settings.dedupe_window > 0:
                earlier = await self.store.find_duplicate(fingerprint, self._clock() - self.settings.dedupe_window)
                if earlier is not None:
                    if earlier.status in ("unknown", "submitting"):
                        raise DuplicateSubmission(earlier.job_id, earlier.status)
                    logger.info("identical request within the dedupe window: reusing %s", earlier.handle)
                    return await self.current(earlier), True
            now = self._clock()
            job = Job(
                job_id=new_job_id(),
                provider=provider_name,
                model=request.model_id,
                model_key=request.model_key,
                prompt=request.prompt,
                status="submitting",
                fingerprint=fingerprint,
                created_at=now,
                updated_at=now,
                expected_render_seconds=expected_render,
                want_last_frame=bool(request.return_last_frame),
                estimated_tokens=request.estimated_tokens,
                resolution=request.effective_resolution,
                ratio=request.ratio or request.effective_ratio,
                duration=request.effective_seconds,
                frames=request.frames,
                seed=request.seed,
            )
            await self.store.add(job)
        # Shielded: if the caller cancels now, the create may already be at the provider; its answer must be kept.
        with anyio.CancelScope(shield=True):
            job = await self._send_create(job, http_request)
        return job, False

    async def _send_create(self, job: Job, http_request: HttpRequest) -> Job:
        try:
            task_id = await self.provider.submit(http_request)
        except CreateAnswerLost as exc:
            job.status = "unknown"
            job.error_message = str(exc)
            await self.store.save(job)
            self._reconcile_soon(job)
            raise SubmitOutcomeUnknown(
                job.job_id, self.provider.display_name, exc.reason, searching=self._can_reconcile(job)
            ) from exc
        except ProviderError as exc:
            job.status = "failed"
            job.error_code, job.error_message, job.request_id = exc.code, exc.provider_message, exc.request_id
            job.finished_at = self._clock()
            await self.store.save(job)
            raise
        except ProviderUnreachable as exc:
            job.status = "failed"
            job.error_message = f"not submitted: {exc}"
            job.finished_at = self._clock()
            await self.store.save(job)
            raise
        except BaseException:
            # Anything else (a bug, a shutdown): whether the request left cannot be known.
            job.status = "unknown"
            job.error_message = "the create request was interrupted; a paid task may exist"
            with anyio.CancelScope(shield=True):
                await self.store.save(job)
            raise
        job.task_id = task_id
        job.status = "queued"
        job.submitted_at = self._clock()
        await self.store.save(job)
        logger.info("submitted %s as %s", job.job_id, task_id)
        self._follow_soon(job)
        return job

    # -- reconcile -------------------------------------------------------------------------------------------

    def _can_reconcile(self, job: Job) -> bool:
        return bool(self.settings.reconcile_delays) and self.provider.can_list_recent(job.model_key)

    def _reconcile_soon(self, job: Job) -> None:
        if self._can_reconcile(job):
            assert self._task_group is not None, "JobManager.run() must be running"
            self._task_group.start_soon(self._reconcile, job.job_id, name=f"reconcile {job.job_id}")

    async def _reconcile(self, job_id: str) -> None:
        """Find the task a lost create answer may have made, in the provider's own list of recent tasks.

        Exactly one unknown task of the same model, created while the request was in flight, is adopted and
        followed like any other. None at all after the last look means nothing was created, so submitting again is
        safe. Several means a person must decide; their ids are put in the job's message.
        """
        for delay in self.settings.reconcile_delays:
            await anyio.sleep(delay)
            job = await self.store.get(job_id)
            if job is None or job.status != "unknown":
                return
            try:
                recent = await self.provider.recent_tasks(job.model_key)
            except SeedanceError as exc:
                logger.info("could not list recent tasks to find job %s: %s", job_id, exc)
                continue
            window_end = job.created_at + self.settings.reconcile_window
            candidates = [
                task
                for task in recent
                if task.model in (None, job.model)
                and task.created_at is not None
                and job.created_at - 5 <= task.created_at <= window_end
                and await self.store.get(task.task_id) is None
            ]
            if len(candidates) == 1:
                await self._adopt(job, candidates[0])
                return
            if len(candidates) > 1:
                job.error_message = (
                    "the create answer was lost and the provider shows several tasks created at that moment ("
                    + ", ".join(t.task_id for t in candidates)
                    + "); check them in the provider console"
                )
                await self.store.save(job)
                return
        job = await self.store.get(job_id)
        if job is not None and job.status == "unknown":
            job.status = "failed"
            job.error_code = "NotCreated"
            job.error_message = (
                "the create answer was lost, and no such task appeared in the provider's task list: nothing was "
                "created or charged; submitting again is safe"
            )
            job.finished_at = self._clock()
            await self.store.save(job)

    async def _adopt(self, job: Job, task: TaskSnapshot) -> None:
        logger.info("found the task of job %s whose create answer was lost: %s", job.job_id, task.task_id)
        job.task_id = task.task_id
        job.status = "queued"
        job.submitted_at = task.created_at or job.created_at
        job.error_message = None
        self._apply(job, task)
        await self.store.save(job)
        self._follow_soon(job)

    # -- follow ----------------------------------------------------------------------------------------------

    async def _follow(self, job_id: str) -> None:
        live = self._live[job_id]
        try:
            await self._follow_until_settled(live)
        except Exception:  # the last line of defence for one job: never let it take the worker down
            logger.exception("following job %s failed", job_id)
        finally:
            self._live.pop(job_id, None)
            live.publish(live.job)

    async def _follow_until_settled(self, live: _Live) -> None:
        job = live.job
        if job.task_id is None:
            return
        failures = 0
        last_progress: tuple[float, float] | None = None
        while not job.is_terminal:
            elapsed = self._clock() - (job.submitted_at or job.created_at)
            if elapsed > MAX_FOLLOW_SECONDS:
                job.status = "expired"
                job.error_message = "no final status after 72 hours; the provider has dropped the task"
                job.finished_at = self._clock()
                await self.store.save(job)
                break
            if failures:
                delay = min(self.settings.poll.interval * 2**failures, POLL_ERROR_BACKOFF_CAP)
            elif job.poll_count == 0:
                delay = max(0.0, self.settings.poll.first_delay(job.expected_render_seconds) - elapsed)
            else:
                rate = None
                if last_progress is not None and job.progress is not None and elapsed > last_progress[1]:
                    rate = (job.progress - last_progress[0]) / (elapsed - last_progress[1])
                delay = self.settings.poll.next_delay(elapsed, job.progress, rate, job.expected_render_seconds)
            await anyio.sleep(delay)
            try:
                snapshot = await self.batcher.fetch(job.task_id, job.model_key)
            except RateLimited as exc:
                # Not the job's fault: wait as long as asked, and do not count it as a failure.
                live.publish(job, None)
                await anyio.sleep(exc.retry_after or self.settings.poll.interval)
                continue
            except (ProviderError, ProviderUnreachable, UnexpectedResponse) as exc:
                failures += 1
                job.last_poll_error = str(exc)
                logger.warning("polling %s failed (%d in a row): %s", job.task_id, failures, exc)
                if isinstance(exc, AuthenticationFailed):
                    await self.store.save(job)
                live.publish(job, exc)
                continue
            failures = 0
            if job.progress is not None:
                last_progress = (job.progress, elapsed)
            changed = self._apply(job, snapshot)
            job.poll_count += 1
            if changed:
                await self.store.save(job)
            live.publish(job)
        if job.needs_download:
            async with self._download_limiter:
                await self._download(job)
            live.publish(job)

    def _apply(self, job: Job, snapshot: TaskSnapshot) -> bool:
        """Copy a status answer into the job; whether anything worth journaling changed."""
        before = (job.status, job.video_url, job.error_code)
        job.status = snapshot.status
        job.progress = snapshot.progress
        job.last_poll_error = None
        if snapshot.video_url:
            job.video_url = snapshot.video_url
            job.video_url_expires_at = snapshot.video_url_expires_at
            job.video_needs_auth = snapshot.video_needs_auth
        job.last_frame_url = snapshot.last_frame_url or job.last_frame_url
        job.error_code = snapshot.error_code or job.error_code
        job.error_message = snapshot.error_message or job.error_message
        job.usage_tokens = snapshot.usage_tokens if snapshot.usage_tokens is not None else job.usage_tokens
        job.resolution = snapshot.resolution or job.resolution
        job.ratio = snapshot.ratio or job.ratio
        job.duration = snapshot.duration if snapshot.duration is not None else job.duration
        job.frames = snapshot.frames if snapshot.frames is not None else job.frames
        job.seed = snapshot.seed if snapshot.seed is not None else job.seed
        if job.is_terminal and job.finished_at is None:
            job.finished_at = self._clock()
        return (job.status, job.video_url, job.error_code) != before

    async def _download(self, job: Job) -> None:
        directory = self.settings.output_dir
        await anyio.to_thread.run_sync(lambda: directory.mkdir(parents=True, exist_ok=True))
        if job.video_path is None and job.video_url:
            target = directory / video_filename(job, ".mp4")
            started = anyio.current_time()
            try:
                size = await self._download_one(job, job.video_url, target, authenticated=job.video_needs_auth)
                job.video_path = str(target)
                seconds = anyio.current_time() - started
                logger.info("saved %s: %d bytes in %.3f s to %s", job.handle, size, seconds, target)
            except DownloadFailed as exc:
                job.download_error = str(exc)
                logger.warning("download of %s failed: %s", job.handle, exc)
        if job.want_last_frame and job.last_frame_url and job.last_frame_path is None:
            target = directory / video_filename(job, "-last-frame.png")
            try:
                await self._download_one(job, job.last_frame_url, target, authenticated=False)
                job.last_frame_path = str(target)
            except DownloadFailed as exc:
                logger.warning("download of the last frame of %s failed: %s", job.handle, exc)
                job.last_frame_url = None
        await self.store.save(job)

    async def _download_one(self, job: Job, url: str, target: Path, *, authenticated: bool) -> int:
        try:
            return await self.provider.download(url, target, authenticated=authenticated)
        except DownloadFailed:
            # A signed URL may have expired (Ark keeps them 24 h): ask the provider for a fresh one, once.
            assert job.task_id is not None
            fresh = await self.provider.fetch(job.task_id, job.model_key)
            new_url = fresh.last_frame_url if target.suffix == ".png" else fresh.video_url
            if not new_url or new_url == url:
                raise
            return await self.provider.download(new_url, target, authenticated=fresh.video_needs_auth and authenticated)

    # -- read, wait, cancel ----------------------------------------------------------------------------------

    async def find(self, key: str) -> Job:
        key = key.strip()
        for live in self._live.values():
            if key in (live.job.job_id, live.job.task_id):
                return live.job.model_copy()
        job = await self.store.get(key)
        if job is None:
            raise TaskNotFound(key)
        return job

    async def current(self, job: Job) -> Job:
        live = self._live.get(job.job_id)
        return live.job.model_copy() if live else job

    async def retry_download(self, job: Job) -> Job:
        """Give a finished job whose download failed another go, while its URL may still work."""
        if job.status == "succeeded" and job.download_error:
            job.download_error = None
            await self.store.save(job)
            self._follow_soon(job)
        return job

    async def wait(self, key: str, seconds: float, report: ProgressCallback | None = None) -> Job:
        """Wait up to `seconds` for a job to settle, reporting strictly increasing progress."""
        job = await self.find(key)
        meter = ProgressMeter(expected_seconds=job.expected_render_seconds)
        started = anyio.current_time()
        deadline = started + seconds
        while True:
            live = self._live.get(job.job_id)
            job = live.job.model_copy() if live else (await self.store.get(job.job_id) or job)
            if report is not None:
                elapsed = self._clock() - (job.submitted_at or job.created_at)
                phase = "downloading" if job.needs_download else job.status
                value = meter.advance(phase, elapsed, job.progress)
                if value is not None:
                    await report(value, progress_message(job, elapsed))
            if live is None or job.settled:
                return job
            # Only a failure seen during this wait counts: an older one may be cured by the next poll.
            error = live.poll_error
            if error is not None and live.poll_error_at >= started and not isinstance(error, ProviderUnreachable):
                raise PollFailed(job.handle, error)
            remaining = deadline - anyio.current_time()
            if remaining <= 0:
                return job
            with anyio.move_on_after(min(remaining, HEARTBEAT_SECONDS)):
                await live.changed.wait()

    async def cancel(self, key: str) -> tuple[Job, bool, str]:
        """Ask the provider to cancel a queued task. The job, whether it was cancelled, and why (not)."""
        job = await self.find(key)
        if job.is_terminal:
            return job, False, f"The task already ended as `{job.status}`; there is nothing to cancel."
        if job.task_id is None:
            return (
                job,
                False,
                (
                    "This job has no provider task id (its create answer was lost), so it cannot be cancelled from "
                    "here: look for it in the provider console."
                ),
            )
        if not self.provider.preset.cancel:
            raise UnsupportedOperation(
                f"The `{self.provider.preset.name}` provider has no cancel call; the task will run to the end "
                "and its video will still be saved."
            )
        fresh = await self.provider.fetch(job.task_id, job.model_key)
        if fresh.status == "running" and self.provider.dialect.name == "ark":
            return (
                job,
                False,
                (
                    "The task is already rendering and Ark cannot cancel a running task: it will finish, be billed, "
                    "and its video will be saved."
                ),
            )
        if fresh.status not in ("queued", "running"):
            return job, False, f"The task already ended as `{fresh.status}`; there is nothing to cancel."
        await self.provider.cancel(job.task_id, job.model_key)
        job.status = "cancelled"
        job.finished_at = self._clock()
        await self.store.save(job)
        live = self._live.get(job.job_id)
        if live is not None:
            live.job.status = "cancelled"
            live.publish(live.job)
        return job, True, "Cancelled before rendering started; nothing is billed."


def progress_message(job: Job, elapsed: float) -> str:
    """`running · 35 s · cgt-2025…`: what a person sees next to the progress bar."""
    handle = job.handle if len(job.handle) <= 18 else job.handle[:17] + "…"
    state = job.status
    if job.status == "succeeded":
        state = "saved" if job.video_path else "downloading"
    return f"{state} · {elapsed:.0f} s · {handle}"
