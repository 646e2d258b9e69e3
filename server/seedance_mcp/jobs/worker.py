"""What every room of the job worker shares: this process's place in the journal and the one way it writes a job.

`Worker` holds it: the store, the provider and the settings; who this process is (`owner`) and which leases it holds
(with the token of each, and when the journal last confirmed it); its reading of the journal's clock; the jobs it
follows (`live`); the limits on creates, polls and downloads. The rooms (submit, follow, reconcile, downloads,
leases) are functions of a `Worker`; the `JobManager` facade owns one.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import anyio.abc

from seedance_mcp.errors import JournalUnavailable, SeedanceError, TaskNotFound
from seedance_mcp.jobs.polling import PollPolicy
from seedance_mcp.jobs.status_batcher import StatusBatcher
from seedance_mcp.jobs.transitions import Refused, Transition
from seedance_mcp.journal import Lease, LeaseLost, TaskStore
from seedance_mcp.journal.job import Job
from seedance_mcp.providers.client import ProviderClient
from seedance_mcp.wire import TaskSnapshot

logger = logging.getLogger(__name__)

JOURNAL_RETRY_FIRST = 0.5
JOURNAL_RETRY_CAP = 10.0
"""Backoff (seconds) between tries of a write the journal could not take, for as long as it stays unavailable."""
STORE_WAIT_INTERVAL = 0.5
"""How often a caller waiting on a job another process follows re-reads the journal."""
CLOCK_WARN_SECONDS = 5.0
"""An offset beyond this is logged once: this machine's clock is wrong (the journal's is used)."""


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


@dataclass(frozen=True, slots=True)
class Unrecorded:
    """A write the journal could not take when it was made: the transition, and the job it was made to (as the
    journal still has it), so that it is written later as what it was."""

    job: Job
    transition: Transition


@dataclass(eq=False)
class Live:
    """A job this process follows: its latest state, a broadcast event for waiters, and the scope to stop it."""

    job: Job
    changed: anyio.Event = field(default_factory=anyio.Event)
    poll_error: SeedanceError | None = None
    poll_error_at: float = 0.0
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    unrecorded: Unrecorded | None = None
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


def process_owner_id() -> str:
    """Who holds a lease: unique per process, readable in the journal."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    """This process as a worker on the journal: the state the rooms share, and how they write a job."""

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
        self.offset = 0.0
        """The journal's clock minus this process's (`now`), measured by `sync_clock`."""
        self._offset_warned = False
        self.outage: JournalUnavailable | None = None
        """What the claim or renew loop met when it last found the journal unavailable, until it reaches it again
        (logged once): while it is set, a tool call is refused at once rather than after the pool's time-out."""
        self.live: dict[str, Live] = {}
        """The jobs this process follows, by job id."""
        self.held: dict[str, int] = {}
        """Every job whose lease this process holds, with the lease's token: those it follows, and those it is
        creating right now."""
        self.confirmed: dict[str, float] = {}
        """When (this process's monotonic clock) the journal last confirmed each lease: the moment the statement
        that took or renewed it was sent. Nobody else can claim the job until a lease's length after that."""
        self.task_group: anyio.abc.TaskGroup | None = None
        """Where the jobs this process follows run: set while `JobManager.run` runs."""
        self._batcher: StatusBatcher | None = None
        self.nudge = anyio.Event()
        """Set to make the claim loop look for work now rather than at its next round."""
        self.output_dir_made = False
        self.create_limiter = anyio.CapacityLimiter(settings.max_concurrent_creates)
        self.poll_limiter = anyio.CapacityLimiter(settings.max_concurrent_polls)
        self.download_limiter = anyio.CapacityLimiter(settings.max_concurrent_downloads)
        self.markers_echoed = False
        """Seen: this provider echoes a job's marker on its task (then an unmarked task is never a job's own)."""

    # -- the journal's clock ---------------------------------------------------------------------------------

    def now(self) -> float:
        """The journal's clock, read from this process's: every time this process records or decides by."""
        return self._clock() + self.offset

    async def sync_clock(self) -> None:
        """Measure how far this process's clock is from the journal's (the midpoint of one read of it)."""
        before = self._clock()
        journal = await self.store.now()
        after = self._clock()
        self.offset = journal - (before + after) / 2
        if abs(self.offset) > CLOCK_WARN_SECONDS and not self._offset_warned:
            self._offset_warned = True
            logger.warning(
                "this machine's clock is %.1f s %s the journal's; every time this server records or decides by is "
                "taken from the journal's clock",
                abs(self.offset),
                "behind" if self.offset > 0 else "ahead of",
            )

    # -- the running worker ----------------------------------------------------------------------------------

    def begin(self, task_group: anyio.abc.TaskGroup) -> None:
        """`JobManager.run` has started: followed jobs run in `task_group`, their polls share one batcher."""
        self.task_group = task_group
        self._batcher = StatusBatcher(self.provider, task_group, self.poll_limiter)

    @property
    def batcher(self) -> StatusBatcher:
        assert self._batcher is not None, "JobManager.run() must be running"
        return self._batcher

    def journal_trouble(self, what: str, exc: JournalUnavailable) -> None:
        """Log an outage once, as the loops that run every second or two meet it, not on every round."""
        down, self.outage = self.outage is not None, exc
        if down:
            logger.debug("%s: %s", what, exc)
            return
        logger.warning("%s: %s (work in hand carries on and waits for it)", what, exc)

    def journal_answers(self) -> None:
        if self.outage is not None:
            self.outage = None
            logger.warning("the journal answers again")

    # -- leases: the fence on every write this process makes as a job's worker --------------------------------

    def hold(self, job_id: str, token: int, *, confirmed: float | None = None) -> None:
        """This process holds the job's lease with `token`, confirmed by the journal at `confirmed` (monotonic)."""
        self.held[job_id] = token
        if confirmed is not None:
            self.confirmed[job_id] = confirmed

    def let_go(self, job_id: str) -> int | None:
        """Forget a lease (given back, lost or run out); its token, if this process held it."""
        self.confirmed.pop(job_id, None)
        return self.held.pop(job_id, None)

    def lease(self, job_id: str) -> Lease:
        """This process's lease on a job, for a write fenced by it; LeaseLost once it no longer holds one."""
        token = self.held.get(job_id)
        if token is None:
            raise LeaseLost(job_id)
        return Lease(self.owner, token)

    async def confirm_lease(self, job_id: str) -> None:
        """Before work that must happen once (a download): make sure this process still holds the job. A lease
        the journal confirmed less than half a lease ago is certainly still ours (nobody may claim it before a
        whole lease has passed); an older one (this process was frozen, or cut off from the journal) is renewed
        first, and LeaseLost if another process has claimed the job since."""
        sent = anyio.current_time()
        if sent - self.confirmed.get(job_id, float("-inf")) < self.settings.lease_seconds / 2:
            return
        token = self.lease(job_id).token
        if job_id not in await self.store.renew(self.owner, {job_id: token}, self.settings.lease_seconds):
            raise LeaseLost(job_id)
        if self.held.get(job_id) == token:
            self.confirmed[job_id] = sent

    # -- reading and writing a job ---------------------------------------------------------------------------

    async def find(self, key: str, principal: str | None = None) -> Job:
        """A job by its job id or task id; with `principal`, only that principal's (another's is "not found")."""
        key = key.strip()
        job: Job | None = None
        for live in self.live.values():
            if key in (live.job.job_id, live.job.task_id):
                job = live.job.model_copy()
                break
        else:
            job = await self.store.get(key)
        if job is None or (principal is not None and job.principal != principal):
            raise TaskNotFound(key)
        return job

    def current(self, job: Job) -> Job:
        """The job as this process knows it now: its live copy when it follows it, else `job` as given."""
        live = self.live.get(job.job_id)
        return live.job.model_copy() if live else job

    async def change(self, job: Job, transition: Transition, *, lease: Lease | None = None) -> Job:
        """Write `transition` to the job, compare-and-set; if another writer won, apply it to theirs (Refused when
        their job is in a state the transition does not start from). With `lease`, the write is fenced by it
        (LeaseLost once another process has claimed the job)."""
        for _ in range(20):
            candidate = transition.apply(job)
            if await self.store.update(candidate, lease=lease):
                return candidate
            fresh = await self.store.get(job.job_id)
            if fresh is None:
                raise TaskNotFound(job.job_id)
            job = fresh
        raise RuntimeError(f"job {job.job_id} keeps changing under this process")

    async def record(self, job: Job, transition: Transition) -> Job:
        """The worker's write: fenced by this process's lease, and tried again while the journal is unavailable
        (with backoff, for as long as it takes), so what a paid task did is never dropped on the floor."""
        delay = JOURNAL_RETRY_FIRST
        warned = False
        while True:
            try:
                return await self.change(job, transition, lease=self.lease(job.job_id))
            except JournalUnavailable as exc:
                if not warned:
                    logger.warning("could not record %s (%s); trying again until the journal takes it", job.handle, exc)
                    warned = True
                await anyio.sleep(delay)
                delay = min(delay * 2, JOURNAL_RETRY_CAP)

    def heard(self, job: Job, snapshot: TaskSnapshot) -> None:
        """Note what a status answer of the job's task says about the provider: whether it echoes markers."""
        if job.marker and snapshot.safety_identifier == job.marker:
            self.markers_echoed = True


async def or_current(write: Awaitable[Job]) -> Job:
    """The job `write` wrote, or, when its transition was refused because another writer moved the job on (a
    cancel, a found task, a caller's write), the job as the journal has it: the work carries on from there."""
    try:
        return await write
    except Refused as refused:
        logger.info("%s", refused)
        return refused.job
