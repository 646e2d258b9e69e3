"""Saving a finished job's video (and last frame) once, and trying again after a failure.

A download starts only while this process certainly holds the job's lease (`Worker.confirm_lease`), and the write
that records the files is fenced by it, so a process that lost the job never fetches the video a second time nor
records it. A failure is recorded with the time of its next try (backoff), or stops for good when the file is no
video, the provider no longer has it, or it is over the size cap (then it waits for a caller to ask again).
"""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path

import anyio
import anyio.to_thread
import httpx

from seedance_mcp import metrics
from seedance_mcp.errors import DownloadFailed, SeedanceError, TaskNotFound
from seedance_mcp.jobs.transitions import Download, download_retried, downloaded
from seedance_mcp.jobs.worker import Live, Worker, or_current
from seedance_mcp.journal.job import Job

logger = logging.getLogger(__name__)

SWEEP_INTERVAL = 300.0
"""How often partial downloads left by dead processes are swept (besides at start-up)."""
DOWNLOAD_TRIES_PER_URL = 2
"""Failed tries of one URL before a fresh one is asked for (an expired or refused URL asks at once)."""
DOWNLOAD_RECHECK_SECONDS = 2.0
"""While a download waits for its next try, how often the journal is asked whether a caller wants it now."""


def video_filename(job: Job, suffix: str) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(job.created_at))
    safe_id = re.sub(r"[^A-Za-z0-9_-]", "_", job.handle)[:64]
    return f"seedance-{stamp}-{safe_id}{suffix}"


def sweep_partial_downloads(worker: Worker) -> None:
    """Downloads cut off by a process that died leave `.part` files; nobody will finish them."""
    from seedance_mcp.providers.partial_files import sweep_partial_files

    if worker.settings.output_dir.is_dir():
        removed = sweep_partial_files(worker.settings.output_dir)
        if removed:
            logger.info("removed %d partial downloads left by stopped processes", removed)


async def download(worker: Worker, live: Live, job: Job) -> Job:
    """Save the video (and last frame); one write records the files and the status answer that said they were
    ready (`live.unwritten`, re-applied if another writer changed the job meanwhile).

    The download starts only while the lease is certainly this process's (`Worker.confirm_lease`), and its write is
    fenced by the lease: a process that lost the job never fetches the video a second time, nor records it. A
    complete video already at the destination of a job taken over (saved by its earlier holder, whose write did
    not land) is taken as it is. A failure is recorded with the time of the next try."""
    await worker.confirm_lease(job.job_id)
    directory = worker.settings.output_dir
    if not worker.output_dir_made:
        await anyio.to_thread.run_sync(lambda: directory.mkdir(parents=True, exist_ok=True))
        worker.output_dir_made = True
    video_path = frame_path = None
    error: DownloadFailed | None = None
    frame_error: DownloadFailed | None = None
    url = job.video_url
    answer = live.unwritten
    # The journal write after the files holds no download slot.
    async with worker.download_limiter:
        if job.video_path is None and job.video_url:
            target = directory / video_filename(job, ".mp4")
            started = anyio.current_time()
            try:
                if live.taken_over and await anyio.to_thread.run_sync(_saved_whole, target):
                    logger.info("%s is already saved at %s (by an earlier holder of the job)", job.handle, target)
                else:
                    url = await _download_url(worker, job)
                    size = await _download_one(worker, job, url, target, authenticated=job.video_needs_auth)
                    seconds = anyio.current_time() - started
                    metrics.observe_download(seconds)
                    logger.info("saved %s: %d bytes in %.3f s to %s", job.handle, size, seconds, target)
                video_path = str(target)
            except DownloadFailed as exc:
                error = exc
                logger.warning("download of %s failed: %s", job.handle, exc)
        if job.want_last_frame and job.last_frame_url and job.last_frame_path is None:
            target = directory / video_filename(job, "-last-frame.png")
            try:
                await _download_one(worker, job, job.last_frame_url, target, authenticated=False)
                frame_path = str(target)
            except DownloadFailed as exc:
                logger.warning("download of the last frame of %s failed: %s", job.handle, exc)
                frame_error = exc
    outcome = Download(
        answer=answer,
        url=url,
        video_path=video_path,
        frame_path=frame_path,
        frame_error=frame_error,
        error=error,
        retry_first=worker.settings.download_retry_first,
        retry_cap=worker.settings.download_retry_cap,
    )
    job = await or_current(worker.record(job, downloaded(outcome, worker.now())))
    live.unwritten = None
    return job


async def download_due(worker: Worker, live: Live, job: Job) -> bool:
    """After a failed download: wait for its next try, or for a caller to ask for it now (in this process, or
    through the journal from another). True when it is due; False when the journal's job changed (`live.job`
    is the new state)."""
    due = job.download_retry_at or 0.0
    while worker.now() < due:
        with anyio.move_on_after(min(DOWNLOAD_RECHECK_SECONDS, due - worker.now())):
            await live.wake.wait()
        live.wake = anyio.Event()
        fresh = await worker.store.get(job.job_id)
        if fresh is not None and fresh.version != job.version:
            live.publish(fresh)
            return False
    return True


async def retry_download(worker: Worker, job: Job) -> Job:
    """Try a failed download again now (the worker otherwise waits for its next try; one that stopped trying is
    tried once more: a person asking), unless it was over the size cap and the cap has not been raised since."""
    if job.status != "succeeded" or job.video_path is not None or job.download_error is None:
        return job
    if job.video_url is None:
        return job
    if job.download_cap_bytes is not None and worker.provider.download_limits.max_bytes <= job.download_cap_bytes:
        return job
    job = await or_current(worker.change(job, download_retried()))
    live = worker.live.get(job.job_id)
    if live is not None:
        live.wake.set()
    worker.nudge.set()
    return job


async def _download_url(worker: Worker, job: Job) -> str:
    """The URL to try: the one known, or a fresh one from the provider when it has expired or failed
    `DOWNLOAD_TRIES_PER_URL` times. A provider that no longer has the task makes the failure permanent."""
    url = job.video_url
    assert url is not None
    assert job.task_id is not None
    expired = job.video_url_expires_at is not None and job.video_url_expires_at < worker.now()
    if not expired and (job.download_attempts == 0 or job.download_attempts % DOWNLOAD_TRIES_PER_URL):
        return url
    try:
        snapshot = await worker.provider.fetch(job.task_id, job.model_key)
    except TaskNotFound as exc:
        raise DownloadFailed(f"the provider no longer has task {job.task_id}: {exc}", permanent=True) from exc
    except SeedanceError as exc:
        raise DownloadFailed(f"asking {worker.provider.display_name} for a fresh URL failed: {exc}") from exc
    return snapshot.video_url or url


async def _download_one(worker: Worker, job: Job, url: str, target: Path, *, authenticated: bool) -> int:
    try:
        return await worker.provider.download(url, target, authenticated=authenticated)
    except DownloadFailed as exc:
        # A refused connection: the URL's host is gone (e.g. a restarted sandbox's old port).
        refused = isinstance(exc.__cause__, httpx.ConnectError)
        if not (exc.expired or refused):
            raise
        # A signed URL expires (Ark keeps them 24 h): ask the provider for a fresh one, once.
        assert job.task_id is not None
        new_url, needs_auth = await worker.provider.fresh_media_url(
            job.task_id, job.model_key, last_frame=target.suffix == ".png"
        )
        if not new_url or new_url == url:
            raise
        return await worker.provider.download(new_url, target, authenticated=needs_auth and authenticated)


def _saved_whole(path: Path) -> bool:
    """Whether a complete video is at `path` (renamed there only after a whole, checked download)."""
    from seedance_mcp.media.mp4 import video_structure_problem

    try:
        with path.open("rb") as handle:
            return video_structure_problem(handle, os.fstat(handle.fileno()).st_size) is None
    except OSError:
        return False
