"""JobManager: submit once, follow every job in the background until its video is on disk, let callers wait.

The rules that keep money safe live here, and the journal (`store.py`) enforces them across processes:
- a job is in the journal before its create request leaves, and the request runs shielded from cancellation,
  so a task id the provider hands back is always recorded;
- an identical call within the dedupe window returns the earlier job instead of paying again (the check and the
  insert are one step in the journal, so two servers sharing it pay once);
- a create whose answer was lost is kept as `unknown` and never re-sent by us; where the provider lists tasks,
  a worker looks for it (`lost_creates.py` judges what it sees) and adopts it, or proves nothing was created;
- following and downloading belong to whichever server process holds the job's lease, not to any tool call:
  a caller that gives up, or a server that is killed, still gets the video on disk, once.

Nothing here knows about MCP: progress goes out through a plain callback.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import anyio.abc
import anyio.to_thread
import httpx

from seedance_mcp import metrics
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
    SpendRefused,
    SubmitOutcomeUnknown,
    TaskNotFound,
    UnexpectedResponse,
    UnsupportedOperation,
)
from seedance_mcp.lost_creates import Verdict, identity_of, judge
from seedance_mcp.polling import PollPolicy, ProgressMeter
from seedance_mcp.providers.client import ProviderClient
from seedance_mcp.status_batcher import StatusBatcher
from seedance_mcp.store import BudgetExceeded, Job, SpendLimit, TaskIdTaken, TaskStore, new_job_id
from seedance_mcp.wire import HttpRequest, TaskSnapshot, VideoRequest

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[float, str], Awaitable[None]]

HEARTBEAT_SECONDS = 2.5
MAX_FOLLOW_SECONDS = 3 * 24 * 3600.0
"""Ark keeps a task for at most 72 h before it expires (execution_expires_after ≤ 259200 s)."""
POLL_ERROR_BACKOFF_CAP = 300.0
MISSING_URL_PATIENCE = 3600.0
"""How long a task reported `succeeded` without a video URL keeps being asked for one."""
SWEEP_INTERVAL = 300.0
"""How often partial downloads left by dead processes are swept (besides at start-up)."""
STORE_WAIT_INTERVAL = 0.5
"""How often a caller waiting on a job another process follows re-reads the journal."""


@dataclass(eq=False)
class _Live:
    """A job this process follows: its latest state, a broadcast event for waiters, and the scope to stop it."""

    job: Job
    changed: anyio.Event = field(default_factory=anyio.Event)
    poll_error: SeedanceError | None = None
    poll_error_at: float = 0.0
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)

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
    """When to look for a lost create's task in the provider's list (seconds after the previous look)."""
    reconcile_window: float = 90.0
    """How long after a job was journaled its task may still appear (the create request's time-out and more):
    an empty look counts as proof only once this much time has passed."""
    reconcile_patience: float = 1800.0
    """How long to keep looking while looks fail or stay inconclusive, before a person is asked to check."""
    clock_margin: float = 600.0
    """Seconds of doubt about the provider's clock when it sends no Date header."""
    lease_seconds: float = 30.0
    """How long a process's hold on a job lasts without renewal: the take-over delay after a crash."""
    claim_interval: float = 2.0
    """How often a process looks for jobs nobody follows (new ones, or a dead process's)."""
    safety_identifier: str | None = None
    """The user's own `safety_identifier`; without one, each job sends a marker of its own in that field."""
    simulated: bool = False
    """The provider is the sandbox: jobs cost nothing and make a sample clip."""
    max_concurrent_polls: int = 8
    """Polls take milliseconds; a few at a time keep up with hundreds of jobs, and a small connection pool keeps
    httpcore's per-request scan of its connections cheap."""
    max_concurrent_downloads: int = 64
    """Jobs downloading at once. A small file costs a millisecond of CPU, a big one is bound by the network; the
    journal write after the files holds no slot."""
    max_concurrent_creates: int = 12
    """Creates beyond this wait their turn before the request leaves (at most the HTTP pool's connections): a
    thousand creates queued inside the HTTP client cost more CPU than they save time."""


def fingerprint_of(provider: str, request: HttpRequest, principal: str = "") -> str:
    """Identical calls (same caller, same provider, same path, same request body) share a fingerprint.

    The host is left out: the embedded sandbox gets a new port on every start. The principal is in, so one
    person's call never returns another's job.
    """
    path = urlsplit(request.url).path
    parts: list[object] = [provider, path, request.json_body]
    if principal:
        parts.append(principal)
    canonical = json.dumps(parts, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def video_filename(job: Job, suffix: str) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(job.created_at))
    safe_id = re.sub(r"[^A-Za-z0-9_-]", "_", job.handle)[:64]
    return f"seedance-{stamp}-{safe_id}{suffix}"


def process_owner_id() -> str:
    """Who holds a lease: unique per process, readable in the journal."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


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
        self.owner = process_owner_id()
        self._clock = clock
        self._live: dict[str, _Live] = {}
        self._held: set[str] = set()
        """Every job whose lease this process holds: those it follows, and those it is creating right now."""
        self._task_group: anyio.abc.TaskGroup | None = None
        self._batcher: StatusBatcher | None = None
        self._nudge = anyio.Event()
        self._output_dir_made = False
        self._create_limiter = anyio.CapacityLimiter(settings.max_concurrent_creates)
        self._markers_echoed = False
        """Seen: this provider echoes a job's marker on its task (then an unmarked task is never a job's own)."""
        self._poll_limiter = anyio.CapacityLimiter(settings.max_concurrent_polls)
        self._download_limiter = anyio.CapacityLimiter(settings.max_concurrent_downloads)

    # -- lifecycle -------------------------------------------------------------------------------------------

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Follow every job with work left that no live process holds, now and as they appear, until cancelled."""
        try:
            async with anyio.create_task_group() as task_group:
                self._task_group = task_group
                self._batcher = StatusBatcher(self.provider, task_group, self._poll_limiter)
                await anyio.to_thread.run_sync(self._sweep_partial_files)
                await self._claim()
                task_group.start_soon(self._claim_loop, name="claim jobs")
                task_group.start_soon(self._renew_loop, name="renew leases")
                task_status.started()
                await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                held = list(self._held)
                self._held.clear()
                await self.store.release(self.owner, held)

    def _sweep_partial_files(self) -> None:
        """Downloads cut off by a process that died leave `.part` files; nobody will finish them."""
        from seedance_mcp.providers.partial_files import sweep_partial_files

        if self.settings.output_dir.is_dir():
            removed = sweep_partial_files(self.settings.output_dir)
            if removed:
                logger.info("removed %d partial downloads left by stopped processes", removed)

    @property
    def batcher(self) -> StatusBatcher:
        assert self._batcher is not None, "JobManager.run() must be running"
        return self._batcher

    async def _claim(self) -> None:
        while True:
            jobs = await self.store.claim(self.owner, self.settings.lease_seconds, limit=500)
            for job in jobs:
                if job.status == "submitting":
                    # Its creating process died mid-create (its lease ran out): a paid task may exist.
                    job = await self._change(job, _interrupted)
                self._start(job)
            if len(jobs) < 500:
                return

    async def _claim_loop(self) -> None:
        swept_at = anyio.current_time()
        while True:
            with anyio.move_on_after(self.settings.claim_interval):
                await self._nudge.wait()
            self._nudge = anyio.Event()
            if anyio.current_time() - swept_at > SWEEP_INTERVAL:
                # A process that died mid-download left a part file; whoever took its job over saved its own.
                swept_at = anyio.current_time()
                await anyio.to_thread.run_sync(self._sweep_partial_files)
            try:
                await self._claim()
            except Exception:  # a busy or broken journal must not stop the worker; the next round tries again
                logger.exception("claiming jobs from the journal failed")

    async def _renew_loop(self) -> None:
        while True:
            await anyio.sleep(self.settings.lease_seconds / 3)
            held = list(self._held)
            try:
                kept = await self.store.renew(self.owner, held, self.settings.lease_seconds)
            except Exception:  # the next renewal tries again well before the leases run out
                logger.exception("renewing leases failed")
                continue
            for job_id in set(held) - kept:
                live = self._live.get(job_id)
                # A job that just finished gave its lease back with its last write: nothing was lost.
                if live is not None and job_id in self._held and live.job.has_work:
                    logger.warning("lost the lease of %s to another process; leaving it to that one", job_id)
                    live.scope.cancel()

    def _start(self, job: Job) -> None:
        """Work on a job whose lease this process holds."""
        self._held.add(job.job_id)
        if job.job_id in self._live:
            return
        live = self._live[job.job_id] = _Live(job)
        assert self._task_group is not None, "JobManager.run() must be running"
        self._task_group.start_soon(self._work, live, name=f"follow {job.handle}")

    async def _work(self, live: _Live) -> None:
        try:
            with live.scope:
                if live.job.status == "unknown":
                    await self._search(live)
                if live.job.task_id is not None and live.job.has_work:
                    await self._follow_until_settled(live)
        except Exception:  # the last line of defence for one job: never let it take the worker down
            logger.exception("working on job %s failed", live.job.job_id)
        finally:
            job_id = live.job.job_id
            self._live.pop(job_id, None)
            if job_id in self._held:
                self._held.discard(job_id)
                # A write that leaves a job without work clears its lease in the same statement.
                if live.job.has_work:
                    with anyio.CancelScope(shield=True):
                        await self.store.release(self.owner, [job_id])
            live.publish(live.job)

    async def _change(self, job: Job, mutate: Callable[[Job], None]) -> Job:
        """Apply `mutate` to the job and write it, compare-and-set; if another writer won, apply it to theirs."""
        for _ in range(20):
            candidate = job.clone()
            mutate(candidate)
            if await self.store.update(candidate):
                return candidate
            fresh = await self.store.get(job.job_id)
            if fresh is None:
                raise TaskNotFound(job.job_id)
            job = fresh
        raise RuntimeError(f"job {job.job_id} keeps changing under this process")

    # -- submit ----------------------------------------------------------------------------------------------

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
        dedupe_since: float | None = None,
    ) -> tuple[Job, bool]:
        """Journal the job, send the create request once, start following. The job, and whether it was reused.

        `dedupe_since` widens the look for an identical live job back to that moment, `force_new` or not (an
        approval that pays for one video: an identical job made since it was given is that video)."""
        provider_name = self.provider.preset.name
        fingerprint = fingerprint_of(provider_name, http_request, principal)  # a hash of a small body: no thread
        now = self._clock()
        job_id = new_job_id()
        marker = None
        if self.provider.can_mark(request.model_key) and self.settings.safety_identifier is None:
            marker = f"seedance-mcp-{job_id.rsplit('-', 1)[-1]}{uuid.uuid4().hex[:8]}"
        job = Job(
            job_id=job_id,
            provider=provider_name,
            model=request.model_id,
            model_key=request.model_key,
            prompt=request.prompt,
            status="submitting",
            fingerprint=fingerprint,
            created_at=now,
            updated_at=now,
            expected_render_seconds=expected_render,
            want_last_frame=request.save_last_frame,
            estimated_tokens=request.estimated_tokens,
            cost_rate=price[0] if price else None,
            currency=price[1] if price else None,
            resolution=request.effective_resolution,
            ratio=request.ratio or request.effective_ratio,
            duration=request.effective_seconds,
            frames=request.frames,
            seed=request.seed,
            service_tier=request.service_tier,
            marker=marker,
            simulated=self.settings.simulated,
            principal=principal,
            identity=identity_of(
                resolution=request.resolution,
                ratio=request.ratio,
                duration=request.duration,
                frames=request.frames,
                seed=request.seed,
                service_tier=request.service_tier,
            ),
        )
        window = self.settings.dedupe_window
        since = None if force_new or window <= 0 else now - window
        if dedupe_since is not None:
            since = dedupe_since if since is None else min(since, dedupe_since)
        for _ in range(3):
            self._held.add(job.job_id)
            try:
                earlier = await self.store.insert(
                    job,
                    dedupe_since=since,
                    lease_owner=self.owner,
                    lease_seconds=self.settings.lease_seconds,
                    limits=limits,
                )
            except BudgetExceeded as exc:
                self._held.discard(job.job_id)
                currency = price[1] if price else ""
                raise SpendRefused(
                    f"This video (about {exc.cost:.2f} {currency}) would take the spend counted against "
                    f"{exc.limit.name} ({exc.spent:.2f} {currency} billed or in flight) past its limit of "
                    f"{exc.limit.limit:.2f} {currency}. Tell the user; they can raise {exc.limit.name} in the "
                    "server's environment, or wait."
                ) from exc
            except BaseException:
                self._held.discard(job.job_id)
                raise
            if earlier is None:
                break
            self._held.discard(job.job_id)
            if earlier.status == "submitting":
                # The same call is being created right now (by this or another process): wait for its answer.
                earlier = await self._create_outcome(earlier)
            if earlier.status in ("unknown", "submitting"):
                raise DuplicateSubmission(earlier.job_id, earlier.status)
            if earlier.status in ("failed", "not_submitted") and not earlier.task_id:
                continue  # that create was refused or never sent: this call may go ahead
            logger.info("identical request within the dedupe window: reusing %s", earlier.handle)
            if request.save_last_frame and not earlier.want_last_frame:
                earlier = await self._want_last_frame(earlier)
            return await self.current(earlier), True
        else:
            raise DuplicateSubmission(job.job_id, "submitting")
        safety_identifier = marker or self.settings.safety_identifier
        if safety_identifier is not None:
            http_request = self.provider.with_safety_identifier(http_request, safety_identifier)
        # Shielded: if the caller cancels now, the create may already be at the provider; its answer must be kept.
        with anyio.CancelScope(shield=True):
            job = await self._send_create(job, http_request)
        return job, False

    async def _want_last_frame(self, job: Job) -> Job:
        """An identical call asked for the last frame the first one did not: the job saves it too (a job already
        settled has work again, and a worker fetches it)."""

        def want(j: Job) -> None:
            j.want_last_frame = True

        job = await self._change(job, want)
        self._nudge.set()
        return job

    async def _create_outcome(self, job: Job) -> Job:
        """An identical job's state once its create request has been answered (bounded by the HTTP time-out)."""
        with anyio.move_on_after(self.settings.reconcile_window):
            while job.status == "submitting":
                await anyio.sleep(STORE_WAIT_INTERVAL / 5)
                job = await self.find(job.job_id)
        return job

    async def _send_create(self, job: Job, http_request: HttpRequest) -> Job:
        try:
            async with self._create_limiter:
                task_id = await self.provider.submit(http_request)
        except CreateAnswerLost as exc:

            def lost(j: Job, reason: str = str(exc)) -> None:
                j.status = "unknown"
                j.error_message = reason

            job = await self._change(job, lost)
            searching = self._can_search(job)
            if not searching:
                job = await self._change(job, _search_impossible)
            self._start(job)
            raise SubmitOutcomeUnknown(job.job_id, self.provider.display_name, exc.reason, searching=searching) from exc
        except ProviderError as exc:

            def refused(j: Job, exc: ProviderError = exc) -> None:
                j.status = "failed"
                j.error_code, j.error_message, j.request_id = exc.code, exc.provider_message, exc.request_id
                j.finished_at = self._clock()

            await self._end_submit(job, refused)
            raise
        except ProviderUnreachable as exc:

            def unreachable(j: Job, reason: str = str(exc)) -> None:
                j.status = "failed"
                j.error_message = f"not submitted: {reason}"
                j.finished_at = self._clock()

            await self._end_submit(job, unreachable)
            raise
        except BaseException:
            # Anything else (a bug, a shutdown): whether the request left cannot be known.
            def interrupted(j: Job) -> None:
                j.status = "unknown"
                j.error_message = "the create request was interrupted; a paid task may exist"

            with anyio.CancelScope(shield=True):
                await self._end_submit(job, interrupted)
            raise

        def created(j: Job) -> None:
            j.task_id = task_id
            j.status = "queued"
            j.submitted_at = self._clock()

        try:
            job = await self._change(job, created)
        except TaskIdTaken:
            # The provider handed back an id the journal already gives another job: never follow one task twice.
            def clash(j: Job) -> None:
                j.status = "unknown"
                j.error_message = f"the provider answered with task id {task_id}, which another job already has"
                j.search_done = True

            job = await self._change(job, clash)
            self._held.discard(job.job_id)
            return job
        logger.info("submitted %s as %s", job.job_id, task_id)
        self._start(job)
        return job

    async def _end_submit(self, job: Job, mutate: Callable[[Job], None]) -> None:
        await self._change(job, mutate)
        self._held.discard(job.job_id)

    # -- lost create answers ---------------------------------------------------------------------------------

    def _can_search(self, job: Job) -> bool:
        return bool(self.settings.reconcile_delays) and self.provider.can_search(job.model_key)

    async def _search(self, live: _Live) -> None:
        """Look for the task a lost create answer may have made, until it is found or proven not made.

        Looks come at `reconcile_delays`, then every minute while they fail or stay inconclusive, for at most
        `reconcile_patience`; an empty look counts only after `reconcile_window`. What each look means is
        decided by `lost_creates.judge`.
        """
        from seedance_mcp.providers.task_search import search_tasks

        settings = self.settings
        if not self._can_search(live.job):
            live.publish(await self._change(live.job, _search_impossible))
            return
        settle_after = live.job.created_at + settings.reconcile_window
        give_up_at = live.job.created_at + max(settings.reconcile_patience, settings.reconcile_window)
        delays = list(settings.reconcile_delays)
        while True:
            if delays:
                delay = delays.pop(0)
            else:
                now = self._clock()
                due = settle_after if now < settle_after else give_up_at
                delay = max(0.0, min(60.0, due - now)) if due > now else 60.0
            await anyio.sleep(delay)
            job = await self.store.get(live.job.job_id)
            if job is None or job.status != "unknown":
                if job is not None:
                    live.publish(job)
                return
            live.job = job
            try:
                search = await search_tasks(
                    self.provider,
                    job.model_key,
                    model=job.model,
                    service_tier=job.service_tier,
                    since=job.created_at,
                    margin=settings.clock_margin,
                )
            except SeedanceError as exc:
                logger.info("could not list the provider's tasks to find job %s: %s", job.job_id, exc)
                verdict = Verdict("wait", reason=f"the provider's task list could not be read ({exc})")
            else:
                owners = await self.store.owner_of([task.task_id for task in search.tasks])
                # Jobs whose answer was lost, and jobs whose create is still in flight (here or in another
                # process), may each own a task that fits: none of them is taken on settings alone.
                lost, _ = await self.store.recent("unknown", 500)
                in_flight, _ = await self.store.recent("submitting", 500)
                rivals = [*lost, *in_flight]
                verdict = judge(
                    job,
                    search,
                    owners=owners,
                    rivals=rivals,
                    settle_after=settle_after,
                    margin=settings.clock_margin,
                    markers_echoed=self._markers_echoed,
                )
            if verdict.kind == "found" and verdict.task is not None:
                if await self._adopt(live, verdict.task):
                    return
                continue
            if verdict.kind == "not_created":
                live.publish(await self._change(job, _not_created))
                return
            out_of_time = self._clock() >= give_up_at and not delays
            message = _search_message(verdict, final=out_of_time)
            if out_of_time or (verdict.kind == "ambiguous" and not delays and self._clock() >= settle_after):

                def stop(j: Job, message: str = message) -> None:
                    j.error_message = message
                    j.search_done = True

                live.publish(await self._change(job, stop))
                return
            if message != job.error_message:

                def note(j: Job, message: str = message) -> None:
                    j.error_message = message

                live.publish(await self._change(job, note))

    async def _adopt(self, live: _Live, task: TaskSnapshot) -> bool:
        """Make the found task the job's own; False when another job took it first."""
        logger.info("found the task of job %s whose create answer was lost: %s", live.job.job_id, task.task_id)

        def adopt(job: Job) -> None:
            if job.status != "unknown":
                return
            job.task_id = task.task_id
            job.status = "queued"
            job.submitted_at = task.created_at or job.created_at
            job.error_message = None
            self._apply(job, task)

        try:
            live.publish(await self._change(live.job, adopt))
        except TaskIdTaken:
            return False
        return True

    # -- follow ----------------------------------------------------------------------------------------------

    async def _follow_until_settled(self, live: _Live) -> None:
        job = live.job
        task_id = job.task_id
        assert task_id is not None
        failures = 0
        last_progress: tuple[float, float] | None = None
        unwritten: TaskSnapshot | None = None
        while not job.is_terminal or self._waiting_for_url(job):
            elapsed = self._clock() - (job.submitted_at or job.created_at)
            if elapsed > MAX_FOLLOW_SECONDS or (self._waiting_for_url(job) and self._url_overdue(job)):
                job = await self._change(job, self._give_up)
                live.publish(job)
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
            polled = anyio.current_time()
            try:
                snapshot = await self.batcher.fetch(task_id, job.model_key)
                metrics.observe_poll(anyio.current_time() - polled)
            except RateLimited as exc:
                # Not the job's fault: wait as long as asked, and do not count it as a failure.
                live.publish(job, None)
                await anyio.sleep(exc.retry_after or self.settings.poll.interval)
                continue
            except (ProviderError, ProviderUnreachable, UnexpectedResponse) as exc:
                failures += 1
                logger.warning("polling %s failed (%d in a row): %s", job.task_id, failures, exc)
                message = str(exc)
                if isinstance(exc, AuthenticationFailed) or failures == 3:

                    def note(j: Job, message: str = message) -> None:
                        j.last_poll_error = message

                    job = await self._change(job, note)
                else:
                    job.last_poll_error = message
                live.publish(job, exc)
                continue
            failures = 0
            if job.progress is not None:
                last_progress = (job.progress, elapsed)
            downloads_next = snapshot.status == "succeeded" and snapshot.video_url is not None
            if _differs(job, snapshot) and not downloads_next:
                job = await self._change(job, lambda j, answer=snapshot: self._apply(j, answer))
            else:
                # Unchanged, or about to be downloaded: the download's own write records it (if this process dies
                # first, whoever takes the job over polls again and sees the same answer).
                self._apply(job, snapshot)
                unwritten = snapshot if downloads_next else None
            job.poll_count += 1
            live.publish(job)
        if job.needs_download:
            job = await self._download(job, unwritten)
            live.publish(job)

    @staticmethod
    def _waiting_for_url(job: Job) -> bool:
        """Succeeded, but the provider has not given the video's address yet (seen in list answers)."""
        return job.status == "succeeded" and job.video_url is None and job.video_path is None

    def _url_overdue(self, job: Job) -> bool:
        return self._clock() - (job.finished_at or job.updated_at) > MISSING_URL_PATIENCE

    def _give_up(self, job: Job) -> None:
        if job.status == "succeeded":
            job.download_error = "the provider reported success but never gave the video's URL"
            job.download_permanent = True
            return
        if not job.is_terminal:
            job.status = "expired"
            job.error_message = "no final status after 72 hours; the provider has dropped the task"
            job.finished_at = self._clock()

    def _apply(self, job: Job, snapshot: TaskSnapshot) -> None:
        """Copy a status answer into the job. A job that ended stays ended (a cancel may have got there first)."""
        if job.is_terminal and snapshot.status != job.status and job.status != "succeeded":
            return
        if job.marker and snapshot.safety_identifier == job.marker:
            self._markers_echoed = True
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

    async def _download(self, job: Job, answer: TaskSnapshot | None = None) -> Job:
        """Save the video (and last frame); one write records the files and `answer`, the status answer that
        said they were ready (re-applied if another writer changed the job meanwhile)."""
        directory = self.settings.output_dir
        if not self._output_dir_made:
            await anyio.to_thread.run_sync(lambda: directory.mkdir(parents=True, exist_ok=True))
            self._output_dir_made = True
        video_path = error = frame_path = None
        permanent = frame_failed = False
        # The journal write after the files holds no download slot.
        async with self._download_limiter:
            if job.video_path is None and job.video_url:
                target = directory / video_filename(job, ".mp4")
                started = anyio.current_time()
                try:
                    size = await self._download_one(job, job.video_url, target, authenticated=job.video_needs_auth)
                    video_path = str(target)
                    seconds = anyio.current_time() - started
                    metrics.observe_download(seconds)
                    logger.info("saved %s: %d bytes in %.3f s to %s", job.handle, size, seconds, target)
                except DownloadFailed as exc:
                    error, permanent = str(exc), exc.permanent
                    logger.warning("download of %s failed: %s", job.handle, exc)
            if job.want_last_frame and job.last_frame_url and job.last_frame_path is None:
                target = directory / video_filename(job, "-last-frame.png")
                try:
                    await self._download_one(job, job.last_frame_url, target, authenticated=False)
                    frame_path = str(target)
                except DownloadFailed as exc:
                    logger.warning("download of the last frame of %s failed: %s", job.handle, exc)
                    frame_failed = True

        def saved(j: Job) -> None:
            if answer is not None:
                self._apply(j, answer)
            if video_path is not None:
                j.video_path = video_path
            if error is not None and j.video_path is None:
                j.download_error, j.download_permanent = error, permanent
            if frame_path is not None:
                j.last_frame_path = frame_path
            if frame_failed:
                j.last_frame_url = None

        return await self._change(job, saved)

    async def _download_one(self, job: Job, url: str, target: Path, *, authenticated: bool) -> int:
        try:
            return await self.provider.download(url, target, authenticated=authenticated)
        except DownloadFailed as exc:
            # A refused connection: the URL's host is gone (e.g. a restarted sandbox's old port).
            refused = isinstance(exc.__cause__, httpx.ConnectError)
            if not (exc.expired or refused):
                raise
            # A signed URL expires (Ark keeps them 24 h): ask the provider for a fresh one, once.
            assert job.task_id is not None
            new_url, needs_auth = await self.provider.fresh_media_url(
                job.task_id, job.model_key, last_frame=target.suffix == ".png"
            )
            if not new_url or new_url == url:
                raise
            return await self.provider.download(new_url, target, authenticated=needs_auth and authenticated)

    # -- read, wait, cancel ----------------------------------------------------------------------------------

    async def find(self, key: str, principal: str | None = None) -> Job:
        """A job by its job id or task id; with `principal`, only that principal's (another's is "not found")."""
        key = key.strip()
        job: Job | None = None
        for live in self._live.values():
            if key in (live.job.job_id, live.job.task_id):
                job = live.job.model_copy()
                break
        else:
            job = await self.store.get(key)
        if job is None or (principal is not None and job.principal != principal):
            raise TaskNotFound(key)
        return job

    async def current(self, job: Job) -> Job:
        live = self._live.get(job.job_id)
        return live.job.model_copy() if live else job

    async def retry_download(self, job: Job) -> Job:
        """Give a finished job whose download failed another go, unless the failure was permanent."""
        if job.status == "succeeded" and job.download_error and not job.download_permanent:

            def retry(j: Job) -> None:
                if not j.download_permanent:
                    j.download_error = None

            job = await self._change(job, retry)
            self._nudge.set()
        return job

    async def wait(
        self, key: str, seconds: float, report: ProgressCallback | None = None, principal: str | None = None
    ) -> Job:
        """Wait up to `seconds` for a job to settle, reporting strictly increasing progress."""
        job = await self.find(key, principal)
        meter = ProgressMeter(expected_seconds=job.expected_render_seconds)
        started = anyio.current_time()
        deadline = started + seconds
        while True:
            live = self._live.get(job.job_id)
            job = live.job.model_copy() if live is not None else (await self.store.get(job.job_id) or job)
            if report is not None:
                elapsed = self._clock() - (job.submitted_at or job.created_at)
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
        job = await self.find(key, principal)
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
        if fresh.status not in ("queued", "running"):
            job = await self._change(job, lambda j: self._apply(j, fresh)) if _differs(job, fresh) else job
            return job, False, f"The task already ended as `{fresh.status}`; there is nothing to cancel."
        if fresh.status == "running" or self.provider.dialect.name != "ark":
            job = await self._change(job, lambda j: self._apply(j, fresh)) if _differs(job, fresh) else job
            if self.provider.dialect.name == "ark":
                why = "The task is already rendering and Ark cannot cancel a running task"
            else:
                why = (
                    "This gateway's delete call removes a finished video; it cannot stop a render, so nothing was sent"
                )
            return job, False, f"{why}: it will finish, may be billed, and its video will be saved."
        await self.provider.cancel(job.task_id, job.model_key)

        def cancelled(j: Job) -> None:
            j.status = "cancelled"
            j.finished_at = self._clock()

        job = await self._change(job, cancelled)
        live = self._live.get(job.job_id)
        if live is not None:
            live.job = job
            live.publish(job)
        return job, True, "Cancelled before rendering started; Ark bills only tasks that succeed."


def _differs(job: Job, snapshot: TaskSnapshot) -> bool:
    """Whether a status answer changes what the journal must know (progress alone is kept in memory)."""
    return (
        job.status != snapshot.status
        or (snapshot.video_url is not None and snapshot.video_url != job.video_url)
        or (snapshot.error_code is not None and snapshot.error_code != job.error_code)
        or (snapshot.usage_tokens is not None and snapshot.usage_tokens != job.usage_tokens)
    )


def _interrupted(job: Job) -> None:
    if job.status == "submitting":
        job.status = "unknown"
        job.error_message = "the server stopped while this job's create request was in flight; a paid task may exist"


def _search_impossible(job: Job) -> None:
    job.search_done = True
    job.error_message = (
        job.error_message or "the create answer was lost"
    ) + "; this provider has no task list to look in, so check its console for a task created at that moment"


def _not_created(job: Job) -> None:
    if job.status != "unknown":
        return
    job.status = "failed"
    job.error_code = "NotCreated"
    job.error_message = (
        "the create answer was lost, and a complete look at the provider's task list (every task since the request "
        "left, with this job's model and tier) found no such task: nothing was created or charged; submitting "
        "again is safe"
    )
    job.finished_at = time.time()


def _search_message(verdict: Verdict, *, final: bool) -> str:
    head = "the create answer was lost and a paid task may exist"
    if verdict.kind == "ambiguous":
        ids = ", ".join(task.task_id for task in verdict.candidates[:10])
        what = f"; the provider shows tasks that could be this job's ({ids}): check them in the provider console"
    else:
        what = f"; {verdict.reason}"
    tail = "; the server has stopped looking, so check the provider console" if final else "; still looking"
    return head + what + (tail if verdict.kind != "ambiguous" or final else "")


def progress_message(job: Job, elapsed: float) -> str:
    """`running · 35 s · cgt-2025…`: what a person sees next to the progress bar."""
    handle = job.handle if len(job.handle) <= 18 else job.handle[:17] + "…"
    state = job.status
    if job.status == "succeeded":
        state = "saved" if job.video_path else "downloading"
    return f"{state} · {elapsed:.0f} s · {handle}"
