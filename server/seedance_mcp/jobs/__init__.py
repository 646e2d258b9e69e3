"""JobManager: submit once, follow every job in the background until its video is on disk, let callers wait.

The rules that keep money safe live in this package, and the journal (`seedance_mcp.journal`) enforces them across
processes:
- a job is in the journal before its create request leaves, and the request runs shielded from cancellation,
  so a task id the provider hands back is always recorded (`submit.py`);
- an identical call within the dedupe window returns the earlier job instead of paying again (the check and the
  insert are one step in the journal, so two servers sharing it pay once);
- a create whose answer was lost is kept as `unknown` and never re-sent by us; where the provider lists tasks,
  a worker looks for it (`reconcile.py`; `lost_creates.py` judges what it sees) and adopts it, or proves nothing
  was created;
- following and downloading belong to whichever server process holds the job's lease, not to any tool call
  (`leases.py`, `follow.py`, `downloads.py`): a caller that gives up, or a server that is killed, still gets the
  video on disk, once. The lease is a fence: a download starts only after the journal confirms the lease, and the
  worker's writes carry its token, so a process that lost the job (killed, frozen, cut off) can neither start a
  second download nor record one;
- a journal that is unavailable (database down, disk full) stops nothing for good: the worker keeps every write it
  owes in memory and retries it until the journal is back, and a new call is refused before anything is sent;
- every time that decides something across processes comes from the journal's clock (`TaskStore.now`): this
  process keeps its own times on that clock by measuring how far its own clock is from it (`Worker.now`).

The rooms are functions of one `Worker` (worker.py), the state they share; `JobManager` composes them for the tools
and the HTTP server. Nothing here knows about MCP: progress goes out through a plain callback.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence

import anyio
import anyio.abc
import anyio.to_thread

from seedance_mcp.errors import JournalUnavailable, PollFailed, ProviderUnreachable, UnsupportedOperation
from seedance_mcp.jobs import downloads, leases
from seedance_mcp.jobs.downloads import video_filename
from seedance_mcp.jobs.follow import differs
from seedance_mcp.jobs.polling import ProgressMeter, progress_message
from seedance_mcp.jobs.submit import fingerprint_of, submit_takes, submit_video
from seedance_mcp.jobs.transitions import cancelled, polled
from seedance_mcp.jobs.worker import STORE_WAIT_INTERVAL, JobSettings, Worker, or_current
from seedance_mcp.journal import PlanShot, SpendLimit, TaskStore
from seedance_mcp.journal.job import Job
from seedance_mcp.providers.client import ProviderClient
from seedance_mcp.wire import HttpRequest, VideoRequest

__all__ = ["JobManager", "JobSettings", "ProgressCallback", "fingerprint_of", "progress_message", "video_filename"]

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[float, str], Awaitable[None]]

HEARTBEAT_SECONDS = 2.5
"""How often a waiting caller hears progress while the job it waits on does not change."""


class JobManager:
    """The job worker of this process, as the tools and the HTTP server use it."""

    def __init__(
        self,
        *,
        store: TaskStore,
        provider: ProviderClient,
        settings: JobSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._worker = Worker(store=store, provider=provider, settings=settings, clock=clock)

    @property
    def store(self) -> TaskStore:
        return self._worker.store

    @property
    def provider(self) -> ProviderClient:
        return self._worker.provider

    @property
    def settings(self) -> JobSettings:
        return self._worker.settings

    @property
    def owner(self) -> str:
        """Who this process is in the journal's leases."""
        return self._worker.owner

    @property
    def journal_outage(self) -> JournalUnavailable | None:
        """The journal unavailable, as this process's worker last met it and has not reached it since (None while
        it answers): a tool call refuses at once on it instead of waiting for the journal's own time-out."""
        return self._worker.outage

    def now(self) -> float:
        """The journal's clock (epoch seconds), as this process keeps it: for times other processes decide by."""
        return self._worker.now()

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Follow every job with work left that no live process holds, now and as they appear, until cancelled."""
        worker = self._worker
        try:
            async with anyio.create_task_group() as task_group:
                worker.begin(task_group)
                await anyio.to_thread.run_sync(downloads.sweep_partial_downloads, worker)
                try:
                    await worker.sync_clock()
                    await leases.claim(worker)
                except JournalUnavailable as exc:  # the loops below try again until it is back
                    logger.warning("%s", exc)
                task_group.start_soon(leases.claim_loop, worker, name="claim jobs")
                task_group.start_soon(leases.renew_loop, worker, name="renew leases")
                task_status.started()
                await anyio.sleep_forever()
        finally:
            await leases.release_all(worker)

    async def submit(
        self,
        request: VideoRequest,
        http_request: HttpRequest,
        *,
        expected_render: float,
        force_new: bool = False,
        price: tuple[float, str] | None = None,
        limits: Sequence[SpendLimit] = (),
        principal: str = "",
        approval_id: str | None = None,
        wait: float | None = None,
        dedupe_since: float | None = None,
        plan_shot: PlanShot | None = None,
        take: tuple[int, int] = (1, 1),
        repeat: int = 0,
    ) -> tuple[Job, bool]:
        """Journal the job, send the create request once, start following. The job, and whether it was reused.

        `approval_id` is recorded on the job and pays for one video: while a job it paid for is live, the journal
        returns that job instead, `force_new` or not. `wait` bounds the call (not the provider's request): a create
        that takes longer goes on, and the job is returned `submitting`. `dedupe_since` (the journal's clock) widens
        the dedupe window back to that moment: a plan's shots made since it was recorded are found again; the job
        inserted or found becomes `plan_shot`'s in the same step (`TaskStore.insert`). `take`: (k, of n) for take k of
        n takes of one request, `repeat`: the n-th identical shot of a storyboard (each its own fingerprint)."""
        return await submit_video(
            self._worker,
            request,
            http_request,
            expected_render=expected_render,
            force_new=force_new,
            price=price,
            limits=limits,
            principal=principal,
            approval_id=approval_id,
            wait=wait,
            dedupe_since=dedupe_since,
            plan_shot=plan_shot,
            take=take,
            repeat=repeat,
        )

    async def submit_takes(
        self,
        request: VideoRequest,
        http_request: HttpRequest,
        takes: int,
        *,
        expected_render: float,
        force_new: bool = False,
        price: tuple[float, str] | None = None,
        limits: Sequence[SpendLimit] = (),
        principal: str = "",
        dedupe_since: float | None = None,
    ) -> list[tuple[Job, bool]]:
        """`takes` jobs of one request, journaled in one step under one budget check, sent in parallel
        (`submit.submit_takes`). Each take, and whether it was reused."""
        return await submit_takes(
            self._worker,
            request,
            http_request,
            takes,
            expected_render=expected_render,
            force_new=force_new,
            price=price,
            limits=limits,
            principal=principal,
            dedupe_since=dedupe_since,
        )

    async def find(self, key: str, principal: str | None = None) -> Job:
        """A job by its job id or task id; with `principal`, only that principal's (another's is "not found")."""
        return await self._worker.find(key, principal)

    async def current(self, job: Job) -> Job:
        """The job as this process knows it now (its live copy when this process follows it)."""
        return self._worker.current(job)

    async def retry_download(self, job: Job) -> Job:
        """Try a failed download again now (the worker otherwise waits for its next try), unless the file is no
        video, or it was over the size cap and the cap has not been raised since."""
        return await downloads.retry_download(self._worker, job)

    async def wait(
        self, key: str, seconds: float, report: ProgressCallback | None = None, principal: str | None = None
    ) -> Job:
        """Wait up to `seconds` for a job to settle, reporting strictly increasing progress."""
        worker = self._worker
        job = await worker.find(key, principal)
        meter = ProgressMeter(expected_seconds=job.expected_render_seconds)
        started = anyio.current_time()
        deadline = started + seconds
        while True:
            live = worker.live.get(job.job_id)
            job = live.job.model_copy() if live is not None else (await worker.store.get(job.job_id) or job)
            if report is not None:
                elapsed = worker.now() - (job.submitted_at or job.created_at)
                phase = "downloading" if job.needs_download else job.status
                value = meter.advance(phase, elapsed, job.progress)
                if value is not None:
                    await report(value, progress_message(job, elapsed))
            if not job.has_work or job.settled:
                return job
            if live is not None:
                # Only a failure seen during this wait counts: an older one may be cured by the next poll.
                error = live.poll_error
                if error is not None and live.poll_error_at >= started and not isinstance(error, ProviderUnreachable):
                    raise PollFailed(job.handle, error)
            remaining = deadline - anyio.current_time()
            if remaining <= 0:
                return job
            if live is not None:
                with anyio.move_on_after(min(remaining, HEARTBEAT_SECONDS)):
                    await live.changed.wait()
            else:
                # Another process follows this job (or none yet: ours will claim it): its progress is in the journal.
                await anyio.sleep(min(remaining, STORE_WAIT_INTERVAL))

    async def cancel(self, key: str, principal: str | None = None) -> tuple[Job, bool, str]:
        """Ask the provider to cancel a queued task. The job, whether it was cancelled, and why (not)."""
        worker = self._worker
        provider = worker.provider
        job = await worker.find(key, principal)
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
        if not provider.preset.cancel:
            raise UnsupportedOperation(
                f"The `{provider.preset.name}` provider has no cancel call; the task will run to the end "
                "and its video will still be saved."
            )
        fresh = await provider.fetch(job.task_id, job.model_key)
        worker.heard(job, fresh)
        if fresh.status not in ("queued", "running"):
            job = await or_current(worker.change(job, polled(fresh, worker.now()))) if differs(job, fresh) else job
            return job, False, f"The task already ended as `{fresh.status}`; there is nothing to cancel."
        if fresh.status == "running" or provider.dialect.name != "ark":
            job = await or_current(worker.change(job, polled(fresh, worker.now()))) if differs(job, fresh) else job
            if provider.dialect.name == "ark":
                why = "The task is already rendering and Ark cannot cancel a running task"
            else:
                why = (
                    "This gateway's delete call removes a finished video; it cannot stop a render, so nothing was sent"
                )
            return job, False, f"{why}: it will finish, may be billed, and its video will be saved."
        await provider.cancel(job.task_id, job.model_key)
        job = await or_current(worker.change(job, cancelled(worker.now())))
        live = worker.live.get(job.job_id)
        if live is not None:
            live.job = job
            live.publish(job)
        return job, True, "Cancelled before rendering started; Ark bills only tasks that succeed."
