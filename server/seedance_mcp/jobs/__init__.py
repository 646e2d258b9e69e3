"""JobManager: submit once, follow every job in the background until its video is on disk, let callers wait.

The rules that keep money safe live here, and the journal (`store.py`) enforces them across processes:
- a job is in the journal before its create request leaves, and the request runs shielded from cancellation,
  so a task id the provider hands back is always recorded;
- an identical call within the dedupe window returns the earlier job instead of paying again (the check and the
  insert are one step in the journal, so two servers sharing it pay once);
- a create whose answer was lost is kept as `unknown` and never re-sent by us; where the provider lists tasks,
  a worker looks for it (`lost_creates.py` judges what it sees) and adopts it, or proves nothing was created;
- following and downloading belong to whichever server process holds the job's lease, not to any tool call:
  a caller that gives up, or a server that is killed, still gets the video on disk, once. The lease is a fence:
  a download starts only after the journal confirms the lease, and the worker's writes carry its token, so a
  process that lost the job (killed, frozen, cut off) can neither start a second download nor record one;
- a journal that is unavailable (database down, disk full) stops nothing for good: the worker keeps every write it
  owes in memory and retries it until the journal is back, and a new call is refused before anything is sent;
- every time that decides something across processes comes from the journal's clock (`TaskStore.now`): this
  process keeps its own times on that clock by measuring how far its own clock is from it.

Nothing here knows about MCP: progress goes out through a plain callback.
"""

from __future__ import annotations

import contextlib
import dataclasses
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
from typing import Literal
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
    JournalUnavailable,
    PollFailed,
    ProviderError,
    ProviderUnreachable,
    RateLimited,
    SeedanceError,
    SpendRefused,
    SubmitOutcomeUnknown,
    TaskNotFound,
    TaskNotRecorded,
    UnexpectedResponse,
    UnsupportedOperation,
)
from seedance_mcp.jobs.lost_creates import TaskSearch, Verdict, identity_of, judge
from seedance_mcp.jobs.polling import PollPolicy, ProgressMeter
from seedance_mcp.jobs.status_batcher import StatusBatcher
from seedance_mcp.journal import (
    FIRST_TOKEN,
    BudgetExceeded,
    Lease,
    LeaseLost,
    SpendLimit,
    TaskIdTaken,
    TaskStore,
)
from seedance_mcp.journal.job import Job, new_job_id
from seedance_mcp.providers.client import ProviderClient
from seedance_mcp.wire import HttpRequest, TaskSnapshot, VideoRequest

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[float, str], Awaitable[None]]
Recorded = Literal["recorded", "kept", "taken over"]
"""What became of a change after a create: in the journal; kept in memory and retried; another process's now."""

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
JOURNAL_RETRY_FIRST = 0.5
JOURNAL_RETRY_CAP = 10.0
"""Backoff (seconds) between tries of a write the journal could not take, for as long as it stays unavailable."""
RELEASE_SECONDS = 5.0
"""How long giving a lease back may take; past that it is left to run out by itself."""
CLOCK_SYNC_SECONDS = 60.0
"""How often the offset between this process's clock and the journal's is measured again."""
CLOCK_WARN_SECONDS = 5.0
"""An offset beyond this is logged once: this machine's clock is wrong (the journal's is used)."""
DOWNLOAD_TRIES_PER_URL = 2
"""Failed tries of one URL before a fresh one is asked for (an expired or refused URL asks at once)."""
DOWNLOAD_RECHECK_SECONDS = 2.0
"""While a download waits for its next try, how often the journal is asked whether a caller wants it now."""


@dataclass(eq=False)
class _Live:
    """A job this process follows: its latest state, a broadcast event for waiters, and the scope to stop it."""

    job: Job
    changed: anyio.Event = field(default_factory=anyio.Event)
    poll_error: SeedanceError | None = None
    poll_error_at: float = 0.0
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    unrecorded: Callable[[Job], None] | None = None
    """A change `job` shows that the journal has not taken yet (it was unavailable): written first, retried."""
    unwritten: TaskSnapshot | None = None
    """The status answer that said the video is ready, applied to `job` but written only with the download."""
    wake: anyio.Event = field(default_factory=anyio.Event)
    """Set when a caller asks for a failed download to be tried now."""
    taken_over: bool = False
    """Claimed from the journal (not created here): an earlier holder may have saved its video already."""

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
    download_retry_first: float = 5.0
    download_retry_cap: float = 600.0
    """Backoff (seconds) between the worker's tries of a download that failed for a reason that may pass."""
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
        self._offset = 0.0
        """The journal's clock minus this process's (`_now`), measured by `_sync_clock`."""
        self._offset_warned = False
        self._journal_down = False
        """The claim or renew loop found the journal unavailable and has not reached it since (logged once)."""
        self._live: dict[str, _Live] = {}
        self._held: dict[str, int] = {}
        """Every job whose lease this process holds, with the lease's token: those it follows, and those it is
        creating right now."""
        self._confirmed: dict[str, float] = {}
        """When (this process's monotonic clock) the journal last confirmed each lease: the moment the statement
        that took or renewed it was sent. Nobody else can claim the job until a lease's length after that."""
        self._task_group: anyio.abc.TaskGroup | None = None
        self._batcher: StatusBatcher | None = None
        self._nudge = anyio.Event()
        self._output_dir_made = False
        self._create_limiter = anyio.CapacityLimiter(settings.max_concurrent_creates)
        self._markers_echoed = False
        """Seen: this provider echoes a job's marker on its task (then an unmarked task is never a job's own)."""
        self._poll_limiter = anyio.CapacityLimiter(settings.max_concurrent_polls)
        self._download_limiter = anyio.CapacityLimiter(settings.max_concurrent_downloads)

    def _now(self) -> float:
        """The journal's clock, read from this process's: every time this process records or decides by."""
        return self._clock() + self._offset

    def now(self) -> float:
        """The journal's clock (epoch seconds), as this process keeps it: for times other processes decide by."""
        return self._now()

    async def _sync_clock(self) -> None:
        """Measure how far this process's clock is from the journal's (the midpoint of one read of it)."""
        before = self._clock()
        journal = await self.store.now()
        after = self._clock()
        self._offset = journal - (before + after) / 2
        if abs(self._offset) > CLOCK_WARN_SECONDS and not self._offset_warned:
            self._offset_warned = True
            logger.warning(
                "this machine's clock is %.1f s %s the journal's; every time this server records or decides by is "
                "taken from the journal's clock",
                abs(self._offset),
                "behind" if self._offset > 0 else "ahead of",
            )

    def _let_go(self, job_id: str) -> int | None:
        """Forget a lease (given back, lost or run out); its token, if this process held it."""
        self._confirmed.pop(job_id, None)
        return self._held.pop(job_id, None)

    async def _confirm_lease(self, job_id: str) -> None:
        """Before work that must happen once (a download): make sure this process still holds the job. A lease
        the journal confirmed less than half a lease ago is certainly still ours (nobody may claim it before a
        whole lease has passed); an older one (this process was frozen, or cut off from the journal) is renewed
        first, and LeaseLost if another process has claimed the job since."""
        sent = anyio.current_time()
        if sent - self._confirmed.get(job_id, float("-inf")) < self.settings.lease_seconds / 2:
            return
        token = self._lease(job_id).token
        if job_id not in await self.store.renew(self.owner, {job_id: token}, self.settings.lease_seconds):
            raise LeaseLost(job_id)
        if self._held.get(job_id) == token:
            self._confirmed[job_id] = sent

    def _journal_trouble(self, what: str, exc: JournalUnavailable) -> None:
        """Log an outage once, as the loops that run every second or two meet it, not on every round."""
        if self._journal_down:
            logger.debug("%s: %s", what, exc)
            return
        self._journal_down = True
        logger.warning("%s: %s (work in hand carries on and waits for it)", what, exc)

    def _journal_answers(self) -> None:
        if self._journal_down:
            self._journal_down = False
            logger.warning("the journal answers again")

    def _lease(self, job_id: str) -> Lease:
        """This process's lease on a job, for a write fenced by it; LeaseLost once it no longer holds one."""
        token = self._held.get(job_id)
        if token is None:
            raise LeaseLost(job_id)
        return Lease(self.owner, token)

    # -- lifecycle -------------------------------------------------------------------------------------------

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Follow every job with work left that no live process holds, now and as they appear, until cancelled."""
        try:
            async with anyio.create_task_group() as task_group:
                self._task_group = task_group
                self._batcher = StatusBatcher(self.provider, task_group, self._poll_limiter)
                await anyio.to_thread.run_sync(self._sweep_partial_files)
                try:
                    await self._sync_clock()
                    await self._claim()
                except JournalUnavailable as exc:  # the loops below try again until it is back
                    logger.warning("%s", exc)
                task_group.start_soon(self._claim_loop, name="claim jobs")
                task_group.start_soon(self._renew_loop, name="renew leases")
                task_status.started()
                await anyio.sleep_forever()
        finally:
            with anyio.move_on_after(RELEASE_SECONDS, shield=True):
                held = dict(self._held)
                self._held.clear()
                self._confirmed.clear()
                try:
                    await self.store.release(self.owner, held)
                except JournalUnavailable as exc:
                    logger.warning("could not give back %d leases (%s); they run out by themselves", len(held), exc)

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
            sent = anyio.current_time()
            claimed = await self.store.claim(self.owner, self.settings.lease_seconds, limit=500)
            for job, token in claimed:
                if job.status == "submitting":
                    # Its creating process died mid-create (its lease ran out): a paid task may exist. Said at once
                    # where the journal takes it, else by the worker as its first write.
                    with contextlib.suppress(JournalUnavailable):
                        job = await self._change(job, _interrupted, lease=Lease(self.owner, token))
                self._start(job, token, confirmed=sent, taken_over=True)
            if len(claimed) < 500:
                return

    async def _claim_loop(self) -> None:
        swept_at = synced_at = anyio.current_time()
        while True:
            with anyio.move_on_after(self.settings.claim_interval):
                await self._nudge.wait()
            self._nudge = anyio.Event()
            if anyio.current_time() - swept_at > SWEEP_INTERVAL:
                # A process that died mid-download left a part file; whoever took its job over saved its own.
                swept_at = anyio.current_time()
                await anyio.to_thread.run_sync(self._sweep_partial_files)
            try:
                if anyio.current_time() - synced_at > CLOCK_SYNC_SECONDS:
                    await self._sync_clock()
                    synced_at = anyio.current_time()
                await self._claim()
                self._journal_answers()
            except JournalUnavailable as exc:  # the next round tries again; work in hand carries on meanwhile
                self._journal_trouble("claiming jobs", exc)
            except Exception:  # a broken journal must not stop the worker; the next round tries again
                logger.exception("claiming jobs from the journal failed")

    async def _renew_loop(self) -> None:
        while True:
            await anyio.sleep(self.settings.lease_seconds / 3)
            held = dict(self._held)
            sent = anyio.current_time()
            try:
                kept = await self.store.renew(self.owner, held, self.settings.lease_seconds)
            except JournalUnavailable as exc:  # nobody can claim our jobs while it is down either
                self._journal_trouble("renewing leases", exc)
                continue
            except Exception:  # the next renewal tries again well before the leases run out
                logger.exception("renewing leases failed")
                continue
            if held:
                self._journal_answers()
            for job_id, token in held.items():
                if self._held.get(job_id) != token:
                    continue  # given back (or claimed again) meanwhile
                if job_id in kept:
                    self._confirmed[job_id] = sent
                    continue
                self._let_go(job_id)
                live = self._live.get(job_id)
                # A job that just finished gave its lease back with its last write: nothing was lost.
                if live is not None and live.job.has_work:
                    logger.warning("lost the lease of %s to another process; leaving it to that one", job_id)
                    live.scope.cancel()

    def _start(
        self,
        job: Job,
        token: int,
        *,
        confirmed: float | None = None,
        taken_over: bool = False,
        unrecorded: Callable[[Job], None] | None = None,
    ) -> None:
        """Work on a job whose lease this process holds with `token`, confirmed by the journal at `confirmed` (the
        work under way, if any, carries on with it: this process claimed the job again)."""
        self._held[job.job_id] = token
        if confirmed is not None:
            self._confirmed[job.job_id] = confirmed
        if job.job_id in self._live:
            return
        live = self._live[job.job_id] = _Live(job, unrecorded=unrecorded, taken_over=taken_over)
        assert self._task_group is not None, "JobManager.run() must be running"
        self._task_group.start_soon(self._work, live, name=f"follow {job.handle}")

    async def _work(self, live: _Live) -> None:
        try:
            with live.scope:
                await self._work_through_outages(live)
        except LeaseLost:
            logger.info("another process holds the lease of %s now; leaving it to that one", live.job.job_id)
        except Exception:  # the last line of defence for one job: never let it take the worker down
            logger.exception("working on job %s failed", live.job.job_id)
        finally:
            job_id = live.job.job_id
            self._live.pop(job_id, None)
            token = self._let_go(job_id)
            # A write that leaves a job without work clears its lease in the same statement.
            if token is not None and live.job.has_work:
                with anyio.move_on_after(RELEASE_SECONDS, shield=True):
                    try:
                        await self.store.release(self.owner, {job_id: token})
                    except Exception as exc:  # it runs out by itself; never let cleaning up take the worker down
                        logger.warning("could not give back the lease of %s (%s); it runs out by itself", job_id, exc)
            live.publish(live.job)

    async def _work_through_outages(self, live: _Live) -> None:
        """A job's work; when the journal becomes unavailable it waits, then takes the work up where it stood.
        Writes wait in place (`_record`); a read that failed starts the step again from the job in memory."""
        delay = JOURNAL_RETRY_FIRST
        while True:
            try:
                if live.unrecorded is not None:
                    live.publish(await self._record(live.job, live.unrecorded))
                    live.unrecorded = None
                    logger.info("the journal has recorded %s now", live.job.handle)
                if live.job.status == "submitting":
                    # Its creating process died mid-create (its lease ran out): a paid task may exist.
                    live.publish(await self._record(live.job, _interrupted))
                if live.job.status == "unknown":
                    await self._search(live)
                if live.job.task_id is not None and live.job.has_work:
                    await self._follow_until_settled(live)
                return
            except JournalUnavailable as exc:
                level = logging.WARNING if delay == JOURNAL_RETRY_FIRST else logging.DEBUG
                logger.log(level, "working on %s: %s", live.job.handle, exc)
                await anyio.sleep(delay)
                delay = min(delay * 2, JOURNAL_RETRY_CAP)

    async def _change(self, job: Job, mutate: Callable[[Job], None], *, lease: Lease | None = None) -> Job:
        """Apply `mutate` to the job and write it, compare-and-set; if another writer won, apply it to theirs.
        With `lease`, the write is fenced by it (LeaseLost once another process has claimed the job)."""
        for _ in range(20):
            candidate = job.clone()
            mutate(candidate)
            if await self.store.update(candidate, lease=lease):
                return candidate
            fresh = await self.store.get(job.job_id)
            if fresh is None:
                raise TaskNotFound(job.job_id)
            job = fresh
        raise RuntimeError(f"job {job.job_id} keeps changing under this process")

    async def _record(self, job: Job, mutate: Callable[[Job], None]) -> Job:
        """The worker's write: fenced by this process's lease, and tried again while the journal is unavailable
        (with backoff, for as long as it takes), so what a paid task did is never dropped on the floor."""
        delay = JOURNAL_RETRY_FIRST
        warned = False
        while True:
            try:
                return await self._change(job, mutate, lease=self._lease(job.job_id))
            except JournalUnavailable as exc:
                if not warned:
                    logger.warning("could not record %s (%s); trying again until the journal takes it", job.handle, exc)
                    warned = True
                await anyio.sleep(delay)
                delay = min(delay * 2, JOURNAL_RETRY_CAP)

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

        `dedupe_since` widens the look for an identical live job back to that moment (on the journal's clock:
        `now()`), `force_new` or not (an approval that pays for one video: an identical job made since it was given
        is that video)."""
        provider_name = self.provider.preset.name
        fingerprint = fingerprint_of(provider_name, http_request, principal)  # a hash of a small body: no thread
        now = self._now()  # provisional: the journal stamps the job with its own clock as it takes it
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
        dedupe_window = None if force_new or window <= 0 else window
        if dedupe_since is not None:
            # A moment on the journal's clock (`now()`) becomes a window the journal measures from its own now.
            dedupe_window = max(dedupe_window or 0.0, self._now() - dedupe_since)
        for _ in range(3):
            sent = anyio.current_time()
            try:
                earlier = await self.store.insert(
                    job,
                    dedupe_window=dedupe_window,
                    lease_owner=self.owner,
                    lease_seconds=self.settings.lease_seconds,
                    limits=limits,
                )
            except BudgetExceeded as exc:
                currency = price[1] if price else ""
                raise SpendRefused(
                    f"This video (about {exc.cost:.2f} {currency}) would take the spend counted against "
                    f"{exc.limit.name} ({exc.spent:.2f} {currency} billed or in flight) past its limit of "
                    f"{exc.limit.limit:.2f} {currency}. Tell the user; they can raise {exc.limit.name} in the "
                    "server's environment, or wait."
                ) from exc
            except JournalUnavailable as exc:
                raise exc.refusing_a_video() from exc
            if earlier is None:
                self._held[job.job_id] = FIRST_TOKEN
                self._confirmed[job.job_id] = sent
                break
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
                if not self._can_search(j):
                    _search_impossible(j)

            searching = self._can_search(job)
            await self._after_create(job, lost, follow=True)
            raise SubmitOutcomeUnknown(job.job_id, self.provider.display_name, exc.reason, searching=searching) from exc
        except ProviderError as exc:

            def refused(j: Job, exc: ProviderError = exc) -> None:
                j.status = "failed"
                j.error_code, j.error_message, j.request_id = exc.code, exc.provider_message, exc.request_id
                j.finished_at = self._now()

            await self._after_create(job, refused)
            raise
        except ProviderUnreachable as exc:

            def unreachable(j: Job, reason: str = str(exc)) -> None:
                j.status = "failed"
                j.error_message = f"not submitted: {reason}"
                j.finished_at = self._now()

            await self._after_create(job, unreachable)
            raise
        except BaseException:
            # Anything else (a bug, a shutdown): whether the request left cannot be known.
            def interrupted(j: Job) -> None:
                j.status = "unknown"
                j.error_message = "the create request was interrupted; a paid task may exist"

            with anyio.CancelScope(shield=True):
                await self._after_create(job, interrupted)
            raise

        def created(j: Job) -> None:
            j.task_id = task_id
            j.status = "queued"
            j.submitted_at = j.submitted_at or self._now()

        try:
            job, recorded, why = await self._after_create(job, created, follow=True)
        except TaskIdTaken:
            # The provider handed back an id the journal already gives another job: never follow one task twice.
            def clash(j: Job) -> None:
                j.status = "unknown"
                j.error_message = f"the provider answered with task id {task_id}, which another job already has"
                j.search_done = True

            job, _, _ = await self._after_create(job, clash)
            return job
        if recorded != "recorded":
            raise TaskNotRecorded(job, self.store.describe, why, kept=recorded == "kept")
        logger.info("submitted %s as %s", job.job_id, task_id)
        return job

    async def _after_create(
        self, job: Job, mutate: Callable[[Job], None], *, follow: bool = False
    ) -> tuple[Job, Recorded, str]:
        """Record what the create request came to (fenced by the lease the job was inserted with), and follow the
        job from here when `follow`. The job as it now is, whether the journal has it, and why not: when the journal
        is unavailable the change is kept in memory and the worker writes it (retried) before anything else, so a
        paid task's id is never lost while this process lives."""
        pending = job.clone()
        mutate(pending)
        try:
            written = await self._change(job, mutate, lease=self._lease(job.job_id))
        except JournalUnavailable as exc:
            token = self._held.get(job.job_id)
            logger.warning(
                "the journal did not take the outcome of %s's create (task %s): %s; %s",
                job.job_id,
                pending.task_id or "unknown",
                exc,
                "kept in memory and retried until it does" if token is not None else "its lease has run out",
            )
            if token is None:
                return pending, "taken over", exc.reason
            self._start(pending, token, unrecorded=mutate)
            return pending, "kept", exc.reason
        except LeaseLost:
            # The create outlived the lease and another process took the job over (and will look for its task).
            logger.warning(
                "%s (task %s) was taken over by another process while its create was in flight",
                job.job_id,
                pending.task_id or "unknown",
            )
            return pending, "taken over", "its lease ran out while the request was in flight"
        token = self._held.get(job.job_id)
        if follow and written.has_work and token is not None:
            self._start(written, token)
        else:
            self._let_go(job.job_id)
        return written, "recorded", ""

    # -- lost create answers ---------------------------------------------------------------------------------

    def _can_search(self, job: Job) -> bool:
        return bool(self.settings.reconcile_delays) and self.provider.can_search(job.model_key)

    async def _search(self, live: _Live) -> None:
        """Look for the task a lost create answer may have made, until it is found or proven not made.

        Looks come at `reconcile_delays`, then every minute while they fail or stay inconclusive, for at most
        `reconcile_patience`; an empty look counts only after `reconcile_window`. What each look means is
        decided by `lost_creates.judge`.
        """
        from seedance_mcp.jobs.task_search import search_tasks

        settings = self.settings
        if not self._can_search(live.job):
            live.publish(await self._record(live.job, _search_impossible))
            return
        settle_after = live.job.created_at + settings.reconcile_window
        give_up_at = live.job.created_at + max(settings.reconcile_patience, settings.reconcile_window)
        delays = list(settings.reconcile_delays)
        while True:
            if delays:
                delay = delays.pop(0)
            else:
                now = self._now()
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
                    since=job.created_at - self._offset,  # the search reads times on this process's clock
                    margin=settings.clock_margin,
                )
                search = _on_journal_clock(search, self._offset)
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
                live.publish(await self._record(job, lambda j: _not_created(j, self._now())))
                return
            out_of_time = self._now() >= give_up_at and not delays
            message = _search_message(verdict, final=out_of_time)
            if out_of_time or (verdict.kind == "ambiguous" and not delays and self._now() >= settle_after):

                def stop(j: Job, message: str = message) -> None:
                    j.error_message = message
                    j.search_done = True

                live.publish(await self._record(job, stop))
                return
            if message != job.error_message:

                def note(j: Job, message: str = message) -> None:
                    j.error_message = message

                live.publish(await self._record(job, note))

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
            live.publish(await self._record(live.job, adopt))
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
        while not job.is_terminal or self._waiting_for_url(job):
            elapsed = self._now() - (job.submitted_at or job.created_at)
            if elapsed > MAX_FOLLOW_SECONDS or (self._waiting_for_url(job) and self._url_overdue(job)):
                job = await self._record(job, self._give_up)
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

                    job = await self._record(job, note)
                else:
                    job.last_poll_error = message
                live.publish(job, exc)
                continue
            failures = 0
            if job.progress is not None:
                last_progress = (job.progress, elapsed)
            downloads_next = snapshot.status == "succeeded" and snapshot.video_url is not None
            if _differs(job, snapshot) and not downloads_next:
                job = await self._record(job, lambda j, answer=snapshot: self._apply(j, answer))
            else:
                # Unchanged, or about to be downloaded: the download's own write records it (if this process dies
                # first, whoever takes the job over polls again and sees the same answer).
                self._apply(job, snapshot)
                if downloads_next:
                    live.unwritten = snapshot
            job.poll_count += 1
            live.publish(job)
        while job.needs_download:
            if job.download_error is not None and not await self._download_due(live, job):
                job = live.job
                continue
            job = await self._download(live, live.job)
            live.publish(job)

    async def _download_due(self, live: _Live, job: Job) -> bool:
        """After a failed download: wait for its next try, or for a caller to ask for it now (in this process, or
        through the journal from another). True when it is due; False when the journal's job changed (`live.job`
        is the new state)."""
        due = job.download_retry_at or 0.0
        while self._now() < due:
            with anyio.move_on_after(min(DOWNLOAD_RECHECK_SECONDS, due - self._now())):
                await live.wake.wait()
            live.wake = anyio.Event()
            fresh = await self.store.get(job.job_id)
            if fresh is not None and fresh.version != job.version:
                live.publish(fresh)
                return False
        return True

    @staticmethod
    def _waiting_for_url(job: Job) -> bool:
        """Succeeded, but the provider has not given the video's address yet (seen in list answers)."""
        return job.status == "succeeded" and job.video_url is None and job.video_path is None

    def _url_overdue(self, job: Job) -> bool:
        return self._now() - (job.finished_at or job.updated_at) > MISSING_URL_PATIENCE

    def _give_up(self, job: Job) -> None:
        if job.status == "succeeded":
            job.download_error = "the provider reported success but never gave the video's URL"
            job.download_permanent = True
            return
        if not job.is_terminal:
            job.status = "expired"
            job.error_message = "no final status after 72 hours; the provider has dropped the task"
            job.finished_at = self._now()

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
            job.finished_at = self._now()

    async def _download(self, live: _Live, job: Job) -> Job:
        """Save the video (and last frame); one write records the files and the status answer that said they were
        ready (`live.unwritten`, re-applied if another writer changed the job meanwhile).

        The download starts only while the lease is certainly this process's (`_confirm_lease`), and its write is
        fenced by the lease: a process that lost the job never fetches the video a second time, nor records it. A
        complete video already at the destination of a job taken over (saved by its earlier holder, whose write did
        not land) is taken as it is. A failure is recorded with the time of the next try."""
        await self._confirm_lease(job.job_id)
        directory = self.settings.output_dir
        if not self._output_dir_made:
            await anyio.to_thread.run_sync(lambda: directory.mkdir(parents=True, exist_ok=True))
            self._output_dir_made = True
        video_path = frame_path = None
        error: DownloadFailed | None = None
        frame_failed = False
        url = job.video_url
        answer = live.unwritten
        # The journal write after the files holds no download slot.
        async with self._download_limiter:
            if job.video_path is None and job.video_url:
                target = directory / video_filename(job, ".mp4")
                started = anyio.current_time()
                try:
                    if live.taken_over and await anyio.to_thread.run_sync(_saved_whole, target):
                        logger.info("%s is already saved at %s (by an earlier holder of the job)", job.handle, target)
                    else:
                        url = await self._download_url(job)
                        size = await self._download_one(job, url, target, authenticated=job.video_needs_auth)
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
                    await self._download_one(job, job.last_frame_url, target, authenticated=False)
                    frame_path = str(target)
                except DownloadFailed as exc:
                    logger.warning("download of the last frame of %s failed: %s", job.handle, exc)
                    frame_failed = True
        now = self._now()

        def saved(j: Job) -> None:
            if answer is not None:
                self._apply(j, answer)
            if url and url != j.video_url:
                j.video_url = url  # a fresh URL the provider gave for this try
            if video_path is not None:
                j.video_path = video_path
                j.download_error, j.download_retry_at, j.download_cap_bytes = None, None, None
            elif error is not None and j.video_path is None:
                _record_download_failure(j, error, now, self.settings)
            if frame_path is not None:
                j.last_frame_path = frame_path
            if frame_failed:
                j.last_frame_url = None

        job = await self._record(job, saved)
        live.unwritten = None
        return job

    async def _download_url(self, job: Job) -> str:
        """The URL to try: the one known, or a fresh one from the provider when it has expired or failed
        `DOWNLOAD_TRIES_PER_URL` times. A provider that no longer has the task makes the failure permanent."""
        url = job.video_url
        assert url is not None
        assert job.task_id is not None
        expired = job.video_url_expires_at is not None and job.video_url_expires_at < self._now()
        if not expired and (job.download_attempts == 0 or job.download_attempts % DOWNLOAD_TRIES_PER_URL):
            return url
        try:
            snapshot = await self.provider.fetch(job.task_id, job.model_key)
        except TaskNotFound as exc:
            raise DownloadFailed(f"the provider no longer has task {job.task_id}: {exc}", permanent=True) from exc
        except SeedanceError as exc:
            raise DownloadFailed(f"asking {self.provider.display_name} for a fresh URL failed: {exc}") from exc
        return snapshot.video_url or url

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
        """Try a failed download again now (the worker otherwise waits for its next try), unless the file is no
        video, or it was over the size cap and the cap has not been raised since."""
        if job.status != "succeeded" or job.video_path is not None or job.download_error is None:
            return job
        if job.download_permanent:
            return job
        if job.download_cap_bytes is not None and self.provider.download_limits.max_bytes <= job.download_cap_bytes:
            return job

        def retry(j: Job) -> None:
            if j.download_error is not None and not j.download_permanent and j.video_path is None:
                j.download_error = j.download_retry_at = j.download_cap_bytes = None

        job = await self._change(job, retry)
        live = self._live.get(job.job_id)
        if live is not None:
            live.wake.set()
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
                elapsed = self._now() - (job.submitted_at or job.created_at)
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
            j.finished_at = self._now()

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


def _saved_whole(path: Path) -> bool:
    """Whether a complete video is at `path` (renamed there only after a whole, checked download)."""
    from seedance_mcp.providers.client import video_structure_problem

    try:
        with path.open("rb") as handle:
            return video_structure_problem(handle, os.fstat(handle.fileno()).st_size) is None
    except OSError:
        return False


def _record_download_failure(job: Job, error: DownloadFailed, now: float, settings: JobSettings) -> None:
    """Note a failed download and when to try it next: never again for a file that is no video, once a caller
    asks (with a raised cap) for one over the size cap, else with backoff, for as long as the task is followed."""
    job.download_error = str(error)
    job.download_attempts += 1
    job.download_retry_at = None
    if error.permanent:
        job.download_permanent = True
    elif error.over_cap is not None:
        job.download_cap_bytes = error.over_cap
    elif now - (job.finished_at or now) > MAX_FOLLOW_SECONDS:
        job.download_permanent = True
        job.download_error = f"gave up after {MAX_FOLLOW_SECONDS / 3600:.0f} h of failed tries; the last: {error}"
    else:
        backoff = settings.download_retry_first * 2 ** (job.download_attempts - 1)
        job.download_retry_at = now + min(backoff, settings.download_retry_cap)


def _interrupted(job: Job) -> None:
    if job.status == "submitting":
        job.status = "unknown"
        job.error_message = "the server stopped while this job's create request was in flight; a paid task may exist"


def _search_impossible(job: Job) -> None:
    job.search_done = True
    job.error_message = (
        job.error_message or "the create answer was lost"
    ) + "; this provider has no task list to look in, so check its console for a task created at that moment"


def _not_created(job: Job, now: float) -> None:
    if job.status != "unknown":
        return
    job.status = "failed"
    job.error_code = "NotCreated"
    job.error_message = (
        "the create answer was lost, and a complete look at the provider's task list (every task since the request "
        "left, with this job's model and tier) found no such task: nothing was created or charged; submitting "
        "again is safe"
    )
    job.finished_at = now


def _on_journal_clock(search: TaskSearch, offset: float) -> TaskSearch:
    """A look at the provider's list, its times moved from this process's clock to the journal's (`offset`)."""
    clock_offset = None if search.clock_offset is None else search.clock_offset - offset
    return dataclasses.replace(search, looked_at=search.looked_at + offset, clock_offset=clock_offset)


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
