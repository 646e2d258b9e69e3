"""The task journal: the single arbiter of every job, shared by every server process that opens it.

Every job is written here before its create request leaves. After that, the journal, not any one process, decides
who does what, by rules a store must enforce itself (in one transaction each, never a read-modify-write
across awaits):

- **Dedupe and insert are one step.** `insert` looks for a live job with the same fingerprint and inserts the new
  one only if there is none, under the database's write lock, so two processes sending the same call at the same
  moment pay once.
- **Every change is a compare-and-set.** `update` writes a job only if its `version` is still the one the writer
  read; otherwise it reports that it lost and the writer reads again. A provider task id belongs to at most one
  job (a unique index): a second job claiming it gets `TaskIdTaken`.
- **Leases are fences.** A job with work left (polling, downloading, looking for a lost task) is worked on by the one
  process that holds its lease (`claim`), renewed while it works (`renew`), given back when done (`release`), and
  taken over by another process only once it has expired, so a killed server's jobs are finished by whoever is
  left. Each claim hands out a new token (a number that only grows); renewals and the worker's writes carry it,
  and the journal refuses them once another process has claimed the job since (`LeaseLost`), so a process that
  lost its lease can never record work over the new holder's.
- **One clock.** Every time that decides something across processes (a job's `created_at`, and so the dedupe
  window and a budget's day; lease expiry) is read from the journal's clock, never from a caller's: the
  database's `now()` for PostgreSQL, the one machine's clock for SQLite (every process sharing the file runs
  there). `now()` reads it, so a process can keep its own times on the same clock.

A journal that cannot be reached or written (its database is down, its disk is full) raises `JournalUnavailable`, a
transient state the callers wait out; every other error is a bug or a broken journal.

`TaskStore` is the seam, one contract with one implementation per database, every one run through the same contract
tests (tests/contract/test_store_contract.py): `sqlite.SqliteTaskStore`, the embedded default (one file in
SEEDANCE_STATE_DIR), and `postgres.PostgresTaskStore`, for replicas on many machines. `job.Job` is the row;
`cache.SettledJobs` the version-checked cache both keep.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from seedance_mcp.errors import SeedanceError
from seedance_mcp.journal.job import Job


@dataclass(frozen=True, slots=True, kw_only=True)
class SpendLimit:
    """A daily budget the insert of a new job must stay within: `limit` over the jobs created since the journal's
    today began (local midnight, this process's time zone, of the day the journal's clock says it is at the insert,
    so a process whose clock is wrong still counts the same day as every other)."""

    limit: float
    name: str
    """What the user calls it, e.g. `SEEDANCE_DAILY_BUDGET`."""
    currency: str
    """Count only jobs priced in this currency: amounts in CNY and USD never add up (two hosts on one state dir may
    speak to providers that bill in each)."""
    principal: str | None = None
    """Count only this principal's jobs (None: everyone's)."""


def start_of_day(instant: float) -> float:
    """Local midnight (this process's time zone) of the day `instant` falls in."""
    local = time.localtime(instant)
    return time.mktime((local.tm_year, local.tm_mon, local.tm_mday, 0, 0, 0, 0, 0, -1))


PlanState = Literal["running", "stopped", "done", "cancelled"]
"""A storyboard plan's state. `running`: its reservations count against the budgets and a worker runs it (the one
holding its lease); `stopped`: a shot failed, nothing runs, nothing is reserved (a storyboard call with the same
arguments reserves and runs it again); `done`: its film is joined; `cancelled`: no more shots are sent, ever."""

PLAN_STATES: tuple[PlanState, ...] = ("running", "stopped", "done", "cancelled")

PlanShot = tuple[str, int] | tuple[str, int, int]
"""A plan's shot (plan id, shot index[, take number: 1 when absent]): the job inserted for it is linked to it in the
insert's own transaction."""


@dataclass(frozen=True, slots=True)
class PlanRecord:
    """A storyboard's plan as the journal keeps it."""

    plan_id: str
    principal: str
    created_at: float
    cancelled_at: float | None
    data: str
    shots: dict[int, str]
    """The job id of each shot that has one (its take 1: the film's), by shot index."""
    state: PlanState = "running"
    currency: str = ""
    reserved: dict[int, float] = field(default_factory=lambda: {})
    """The estimate each shot without a job holds against the budgets (counted while the plan is `running`)."""
    takes: dict[tuple[int, int], str] = field(default_factory=lambda: {})
    """The job id of every take that has one, by (shot index, take number)."""
    lease_owner: str | None = None
    lease_token: int = 0
    """Who runs the plan (`claim_plans`, or `record_plan(lease_owner=…)`), with which claim."""


class BudgetExceeded(Exception):
    def __init__(self, limit: SpendLimit, spent: float, cost: float) -> None:
        self.limit = limit
        self.spent = spent
        self.cost = cost
        super().__init__(f"{limit.name}: {spent:.4f} spent, in flight or reserved + {cost:.4f} > {limit.limit:.4f}")


class PlanNotRunning(SeedanceError):
    """The journal refused a shot's job: its plan is no longer running (cancelled, stopped, done), so nothing of it
    may be journaled, nor sent to the provider."""

    def __init__(self, plan_id: str, state: str | None) -> None:
        self.plan_id = plan_id
        self.state = state
        super().__init__(f"not sent: the plan was {state}" if state is not None else "not sent: the plan is unknown")


@dataclass(frozen=True, slots=True)
class SpendRow:
    """Spend of one model (in one currency) since a moment: jobs that may cost money, billed tokens, money."""

    model: str
    currency: str | None
    jobs: int
    billed_tokens: int
    cost: float


class LeaseLost(Exception):
    """The journal refused a write fenced by a lease this process no longer holds: another process has the job."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"the lease of {job_id} is held by another process now")


@dataclass(frozen=True, slots=True)
class Lease:
    """A process's hold on a job: who (`owner`) and which claim (`token`, raised by every claim of the job)."""

    owner: str
    token: int


FIRST_TOKEN = 1
"""The token of the lease a job is inserted with (`insert(lease_owner=…)`); each claim raises it by one."""


class TaskIdTaken(Exception):
    """The provider task id is already owned by another job in the journal."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        super().__init__(f"task {task_id} already belongs to another job")


class TaskStore(Protocol):
    """Where jobs are kept, and the arbiter of who may change them. Every method is safe to call from the loop.

    Implementations must make `insert`, `update`, `claim`, `renew` and `release` atomic across every process
    that shares the store, and raise `JournalUnavailable` when the journal cannot be reached or written.
    """

    @property
    def describe(self) -> str:
        """What a person calls this journal in a message: `the PostgreSQL journal`, `the SQLite journal at …`."""
        ...

    async def now(self) -> float:
        """The journal's clock (epoch seconds): the one every process sharing the journal decides by."""
        ...

    async def insert(
        self,
        job: Job,
        *,
        dedupe_window: float | None,
        lease_owner: str | None,
        lease_seconds: float,
        limits: Sequence[SpendLimit] = (),
        plan_shot: PlanShot | None = None,
    ) -> Job | None:
        """Insert `job` unless a live job with its fingerprint was created within `dedupe_window` seconds, or a live
        job was paid for by its `approval_id` (at any time: an approval id pays for one video).

        The journal's clock stamps `job.created_at` and `job.updated_at` (set on `job` too) and measures the
        window. Returns that earlier job (and inserts nothing), or None once `job` is in. A live job is one that
        may have cost money: not failed, cancelled, expired or not submitted. With `lease_owner`, the new job
        starts leased to it (token `FIRST_TOKEN`), so no other process picks it up mid-create. Raises
        BudgetExceeded (and inserts nothing) when the spend of the jobs created since a limit's `since` (`Job.spend`:
        billed, or estimated while in flight) and the reservations of running plans (`record_plan`) plus this job's
        would pass the limit; the check and the insert are one step. With `plan_shot`, the job inserted (or the
        earlier one returned) becomes that shot's, in the same step: the shot's reservation stops counting as the
        job starts to, so the plan's cost is never counted twice nor missed; PlanNotRunning (and nothing written)
        when that plan is not `running` (a new job is checked in one step with a cancel: after `cancel_plan` has
        answered, none is journaled).
        """
        ...

    async def insert_all(
        self,
        jobs: Sequence[Job],
        *,
        dedupe_window: float | None,
        lease_owner: str | None,
        lease_seconds: float,
        limits: Sequence[SpendLimit] = (),
    ) -> list[Job | None]:
        """`insert` for several jobs at once (the takes of one call), in one step: for each job, the earlier live
        job with its fingerprint within `dedupe_window` (then it is not inserted), or None once it is in. The
        budget is checked once, for the new jobs together: BudgetExceeded inserts none of them."""
        ...

    async def spend(self, since: float, principal: str | None = None) -> list[SpendRow]:
        """Spend per model of the jobs created since `since` (of one principal, or everyone's)."""
        ...

    async def record_plan(
        self,
        plan_id: str,
        principal: str,
        data: str,
        *,
        currency: str = "",
        reserves: Sequence[float] = (),
        takes: Sequence[int] = (),
        limits: Sequence[SpendLimit] = (),
        lease_owner: str | None = None,
        lease_seconds: float = 0.0,
    ) -> PlanRecord:
        """Write a storyboard's plan and reserve its cost, in one step with the budget check: the plan as stored, its
        `created_at` on the journal's clock (a plan already there keeps its data and time). With `lease_owner`, the
        running plan is leased to it in the same step unless another process holds it (as `claim_plans` would).

        `reserves` is each shot's estimated cost, `takes` how many takes each shot has (1 when not given): each take
        is reserved and linked on its own, as a shot. Every take that has no live job (none yet, or one that failed,
        was cancelled or expired) reserves its estimate, and the plan is `running`; BudgetExceeded (and nothing
        written) when the spend counted against a limit plus the new reservations would pass it. A shot already
        reserved while the plan runs is not reserved twice. A cancelled or done plan is returned as it is."""
        ...

    async def get_plan(self, plan_id: str) -> PlanRecord | None: ...

    async def reserved(self, since: float, principal: str | None = None) -> dict[str, tuple[str, float]]:
        """What running plans hold against the budgets (of one principal, or everyone's): plan id → (currency,
        amount). A shot's reservation counts on every day, `since` or before, until its job is linked or the plan
        stops running: the plan's run sends it on whatever day it gets to it."""
        ...

    async def set_plan_state(self, plan_id: str, state: PlanState, *, allowed: Collection[PlanState]) -> bool:
        """Compare-and-set of a plan's state: only from a state in `allowed` (False, nothing written, otherwise).
        Leaving `running` gives up the plan's reservations and its lease."""
        ...

    async def cancel_plan(self, plan_id: str) -> PlanRecord | None:
        """Mark a plan cancelled (once: a second cancel keeps the first time; a done plan stays done); None when
        there is no such plan."""
        ...

    async def claim_plans(
        self, owner: str, lease_seconds: float, *, limit: int, plan_id: str | None = None
    ) -> list[tuple[PlanRecord, int]]:
        """Lease running plans whose lease is free or expired (or just `plan_id`), as `claim` does jobs: the plans
        now held, each with its new lease token. A plan leased to `owner` itself is not claimed again."""
        ...

    async def renew_plans(self, owner: str, leases: Mapping[str, int], lease_seconds: float) -> set[str]:
        """Extend the plan leases (plan id → token) `owner` still holds; the ids it still holds."""
        ...

    async def release_plans(self, owner: str, leases: Mapping[str, int]) -> None:
        """Give back plan leases (plan id → token)."""
        ...

    async def update(self, job: Job, *, lease: Lease | None = None) -> bool:
        """Write `job` if the stored version is still `job.version` (then bump both); False if another write won.

        With `lease`, only while that lease still holds the job (else `LeaseLost`): the worker's writes. Raises
        TaskIdTaken when `job.task_id` already belongs to another job.
        """
        ...

    async def get(self, key: str) -> Job | None:
        """A job by its job id or its provider task id, as the journal has it now."""
        ...

    async def recent(self, status: str | None, limit: int, principal: str | None = None) -> tuple[list[Job], bool]:
        """Up to `limit` jobs, newest first, optionally of one status and one principal; and whether more match."""
        ...

    async def count_by_status(self) -> dict[str, int]:
        """How many jobs the journal holds in each status (for the metrics page: it reads every row's status)."""
        ...

    async def owner_of(self, task_ids: Sequence[str]) -> dict[str, str]:
        """Which job owns each of these provider task ids (those no job owns are left out)."""
        ...

    async def claim(
        self, owner: str, lease_seconds: float, *, limit: int, job_id: str | None = None
    ) -> list[tuple[Job, int]]:
        """Lease jobs with work left whose lease is free or expired (or just `job_id`): the jobs now held, each with
        its new lease token."""
        ...

    async def renew(self, owner: str, leases: Mapping[str, int], lease_seconds: float) -> set[str]:
        """Extend the leases (job id → token) `owner` still holds with those tokens; the ids it still holds."""
        ...

    async def release(self, owner: str, leases: Mapping[str, int]) -> None:
        """Give back leases (job id → token), so another process may take the jobs at once."""
        ...

    async def close(self) -> None: ...
