"""The journal on PostgreSQL: the same `TaskStore` contract as `SqliteTaskStore`, for replicas on many machines.

Chosen by `SEEDANCE_DATABASE_URL=postgresql://…`; `open_postgres_store(url)` applies the schema and returns the store.
Each rule of the contract (see `journal/__init__.py`) is kept by the database itself, in one transaction, never by a
read-modify-write in Python:

- **Dedupe and insert are one step.** `insert` first takes a transaction-scoped advisory lock on the fingerprint
  (`pg_advisory_xact_lock`), then looks for a live job with it and inserts only if there is none. Everyone inserting
  the same fingerprint queues on that lock, and under READ COMMITTED the look, a statement that starts after the
  lock is granted, sees whatever the previous holder committed. (A unique index cannot say "live and within the
  window", and SERIALIZABLE would make callers retry; the lock serialises only identical calls.)
- **Every change is a compare-and-set**: `UPDATE … WHERE job_id = … AND version = …`, and the row count says who won.
  A provider task id is unique by a partial unique index; a violation of it becomes `TaskIdTaken`.
- **Leases**: `claim` picks jobs with work left (a partial index on `has_work`) whose lease is free (no owner, or
  expired) with `SELECT … FOR UPDATE SKIP LOCKED`, so replicas claiming at once skip each other's rows instead of
  waiting or double-claiming, and raises each job's `lease_token`; `renew`, `release` and the worker's writes
  match owner and token, so a replica that lost a lease cannot renew it or write over the new holder.
- **One clock, the database's**: lease times are epoch seconds read from `statement_timestamp()`; a job's
  `created_at` (hence the dedupe window and a budget's day) is the insert transaction's `now()`. Replicas whose
  clocks disagree still agree on every one of these. A store given a `clock` (tests) uses that instead.
- **Outages**: the pool checks each connection before handing it out and reconnects with backoff by itself; a
  statement that fails because the server is gone or unreachable (psycopg's `OperationalError`, the pool's
  time-out among them) raises `JournalUnavailable`, which callers wait out: nothing has to be reopened.

The job is stored whole as JSONB (`data`) beside the columns the rules query; a CHECK constraint keeps its status
to a job's states. Migrations are plain SQL files in `migrations/postgres/` (`schema.py`: one scheme with SQLite's),
applied once each in name order and recorded in `schema_migrations`, under a session advisory lock so replicas
starting together do not race. psycopg is imported only here, and only when a
PostgreSQL store is opened, so the stdio start-up never loads it. psycopg's async API needs asyncio (anyio's
default backend), not trio.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncGenerator, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, LiteralString

from seedance_mcp.errors import JournalUnavailable
from seedance_mcp.journal import (
    FIRST_TOKEN,
    BudgetExceeded,
    Lease,
    LeaseLost,
    PlanNotRunning,
    PlanRecord,
    PlanShot,
    PlanState,
    SpendLimit,
    SpendRow,
    TaskIdTaken,
    schema,
    start_of_day,
)
from seedance_mcp.journal.cache import SettledJobs
from seedance_mcp.journal.job import DEAD_STATUSES, Job
from seedance_mcp.journal.plans import needs_reserve as _needs_reserve
from seedance_mcp.journal.plans import plan_reserved, plan_takes, take_of

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

logger = logging.getLogger(__name__)

MIGRATION_LOCK_KEY = 0x5EEDA_0C0DE
"""The session advisory lock (one bigint key) held while migrations run."""
DEDUPE_LOCK_CLASS = 0x5EED
"""The first half of the two-int advisory lock taken per fingerprint (a space of its own, apart from other apps)."""

_NOW: LiteralString = "coalesce(%(now)s::float8, extract(epoch FROM statement_timestamp())::float8)"
"""The lease clock: the store's own clock when it has one, else the database's (one value per statement)."""
_TRANSACTION_NOW: LiteralString = "coalesce(%(now)s::float8, extract(epoch FROM now())::float8)"
"""The insert's clock: the store's own, else the moment the database began the insert's transaction."""

_INSERT: LiteralString = f"""
INSERT INTO jobs (job_id, task_id, status, fingerprint, created_at, version, has_work, lease_owner, lease_expires,
                  lease_token, data, spend, principal, model, currency, billed_tokens, approval_id)
VALUES (%(job_id)s, %(task_id)s, %(status)s, %(fingerprint)s, %(created_at)s, %(version)s, %(has_work)s,
        %(owner)s, CASE WHEN %(owner)s::text IS NULL THEN 0 ELSE {_NOW} + %(lease)s END,
        CASE WHEN %(owner)s::text IS NULL THEN 0 ELSE %(first_token)s END, %(data)s::jsonb, %(spend)s,
        %(principal)s, %(model)s, %(currency)s, %(billed_tokens)s, %(approval_id)s)
"""
"""The lease runs from the insert statement itself (the transaction may have waited on the dedupe lock)."""
_CLOCK: LiteralString = f"SELECT {_TRANSACTION_NOW}"
_NOW_AND_EARLIER_LIVE: LiteralString = f"""
WITH clock AS (SELECT {_TRANSACTION_NOW} AS now)
SELECT clock.now, (
    SELECT data::text FROM jobs
    WHERE fingerprint = %(fingerprint)s AND created_at >= clock.now - %(window)s AND status <> ALL(%(dead)s)
    ORDER BY created_at DESC LIMIT 1
) FROM clock
"""
_LIVE_OF_APPROVAL: LiteralString = """
SELECT data::text FROM jobs WHERE approval_id = %(approval_id)s AND status <> ALL(%(dead)s) LIMIT 1
"""
_UPDATE: LiteralString = """
UPDATE jobs SET task_id = %(task_id)s, status = %(status)s, data = %(data)s::jsonb, version = %(version)s,
    has_work = %(has_work)s, spend = %(spend)s, currency = %(currency)s, billed_tokens = %(billed_tokens)s,
    lease_owner = CASE WHEN %(has_work)s THEN lease_owner END,
    lease_expires = CASE WHEN %(has_work)s THEN lease_expires ELSE 0 END
WHERE job_id = %(job_id)s AND version = %(expected)s
  AND (%(owner)s::text IS NULL OR (lease_owner = %(owner)s AND lease_token = %(token)s))
"""
_HOLDS: LiteralString = """
SELECT 1 FROM jobs WHERE job_id = %(job_id)s AND lease_owner = %(owner)s AND lease_token = %(token)s
"""
_CLAIM_ANY: LiteralString = f"""
WITH picked AS (
    SELECT job_id FROM jobs
    WHERE has_work AND (lease_owner IS NULL OR lease_expires < {_NOW})
    ORDER BY lease_expires
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE jobs SET lease_owner = %(owner)s, lease_expires = {_NOW} + %(lease)s, lease_token = jobs.lease_token + 1
FROM picked WHERE jobs.job_id = picked.job_id
RETURNING jobs.data::text, jobs.lease_token
"""
_CLAIM_ONE: LiteralString = f"""
UPDATE jobs SET lease_owner = %(owner)s, lease_expires = {_NOW} + %(lease)s, lease_token = lease_token + 1
WHERE job_id = %(job_id)s AND has_work
  AND (lease_owner IS NULL OR lease_owner = %(owner)s OR lease_expires < {_NOW})
RETURNING data::text, lease_token
"""
_RENEW: LiteralString = f"""
UPDATE jobs SET lease_expires = {_NOW} + %(lease)s
FROM unnest(%(ids)s::text[], %(tokens)s::bigint[]) AS held(job_id, token)
WHERE jobs.job_id = held.job_id AND jobs.lease_token = held.token AND jobs.lease_owner = %(owner)s
RETURNING jobs.job_id
"""
_RELEASE: LiteralString = """
UPDATE jobs SET lease_owner = NULL, lease_expires = 0
FROM unnest(%(ids)s::text[], %(tokens)s::bigint[]) AS held(job_id, token)
WHERE jobs.job_id = held.job_id AND jobs.lease_token = held.token AND jobs.lease_owner = %(owner)s
"""
_SPENT: LiteralString = """
SELECT (
    SELECT COALESCE(SUM(spend), 0) FROM jobs
    WHERE created_at >= %(since)s AND currency = %(currency)s
      AND (%(principal)s::text IS NULL OR principal = %(principal)s)
) + (
    SELECT COALESCE(SUM(s.reserve), 0) FROM plan_shots s JOIN plans p ON p.plan_id = s.plan_id
    WHERE s.job_id IS NULL AND p.state = 'running' AND p.currency = %(currency)s
      AND (%(principal)s::text IS NULL OR p.principal = %(principal)s)
)
"""
"""What counts against a budget: the jobs' spend and the reservations of running plans' shots without a job."""
_LINK: LiteralString = """
INSERT INTO plan_shots (plan_id, shot, take, job_id) VALUES (%(plan_id)s, %(shot)s, %(take)s, %(job_id)s)
ON CONFLICT (plan_id, shot, take) DO UPDATE SET job_id = excluded.job_id, reserve = 0
"""
"""A job becomes a plan's shot's, in the transaction that inserts or finds it: its reservation stops counting."""
_PLAN_SHOTS: LiteralString = """
SELECT s.shot, s.take, s.job_id, j.status IS NOT NULL AND j.status <> ALL(%(dead)s)
FROM plan_shots s LEFT JOIN jobs j ON j.job_id = s.job_id WHERE s.plan_id = %(plan_id)s
"""
_CLAIM_PLANS: LiteralString = f"""
WITH picked AS (
    SELECT plan_id FROM plans
    WHERE state = 'running' AND (lease_owner IS NULL OR lease_expires < {_NOW})
      AND (%(plan_id)s::text IS NULL OR plan_id = %(plan_id)s)
    ORDER BY lease_expires
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE plans SET lease_owner = %(owner)s, lease_expires = {_NOW} + %(lease)s, lease_token = plans.lease_token + 1
FROM picked WHERE plans.plan_id = picked.plan_id
RETURNING plans.plan_id, plans.lease_token
"""
_RENEW_PLANS: LiteralString = f"""
UPDATE plans SET lease_expires = {_NOW} + %(lease)s
FROM unnest(%(ids)s::text[], %(tokens)s::bigint[]) AS held(plan_id, token)
WHERE plans.plan_id = held.plan_id AND plans.lease_token = held.token AND plans.lease_owner = %(owner)s
  AND plans.state = 'running'
RETURNING plans.plan_id
"""
_RELEASE_PLANS: LiteralString = """
UPDATE plans SET lease_owner = NULL, lease_expires = 0
FROM unnest(%(ids)s::text[], %(tokens)s::bigint[]) AS held(plan_id, token)
WHERE plans.plan_id = held.plan_id AND plans.lease_token = held.token AND plans.lease_owner = %(owner)s
"""
_SPEND: LiteralString = """
SELECT model, currency, count(*), COALESCE(SUM(billed_tokens), 0), SUM(spend)
FROM jobs WHERE created_at >= %(since)s AND (status <> ALL(%(dead)s) OR spend > 0)
  AND (%(principal)s::text IS NULL OR principal = %(principal)s)
GROUP BY 1, 2 ORDER BY 5 DESC
"""
BUDGET_LOCK_CLASS = DEDUPE_LOCK_CLASS + 1
"""The advisory lock every budgeted insert takes, so two replicas cannot both spend the last of a budget."""
_GET: LiteralString = """
SELECT version, CASE WHEN version = %(known)s THEN NULL ELSE data::text END FROM jobs WHERE job_id = %(key)s
UNION ALL
SELECT version, CASE WHEN version = %(known)s THEN NULL ELSE data::text END FROM jobs WHERE task_id = %(key)s
LIMIT 1
"""
"""A job's version, and the job itself only when that is not the version the cache holds (`known`)."""
_RECENT: LiteralString = """
SELECT data::text FROM jobs
WHERE (%(status)s::text IS NULL OR status = %(status)s) AND (%(principal)s::text IS NULL OR principal = %(principal)s)
ORDER BY created_at DESC LIMIT %(limit)s
"""
RECONNECT_SECONDS = 10.0
"""How long one of the pool's reconnection attempts (with backoff) lasts before the next starts afresh."""
POOL_TIMEOUT = 10.0
"""Seconds a statement waits for a pooled connection before the journal counts as unavailable."""


class PostgresTaskStore:
    """The journal in a PostgreSQL database, shared safely by every replica that opens it."""

    def __init__(
        self, pool: AsyncConnectionPool[AsyncConnection[tuple[Any, ...]]], *, clock: Callable[[], float] | None = None
    ) -> None:
        self._pool = pool
        self._clock = clock
        self._settled = SettledJobs()

    @property
    def describe(self) -> str:
        return "the PostgreSQL journal"

    def _now(self) -> float | None:
        """The lease clock's reading to send, or None for the database's clock."""
        return self._clock() if self._clock is not None else None

    @asynccontextmanager
    async def _connection(self) -> AsyncGenerator[AsyncConnection[tuple[Any, ...]]]:
        """A pooled connection; a server that is gone or unreachable becomes JournalUnavailable."""
        from psycopg import OperationalError

        try:
            async with self._pool.connection() as db:
                yield db
        except OperationalError as exc:  # the pool's time-out, a cut connection, a server shutting down
            raise JournalUnavailable(self.describe, _reason(exc)) from exc

    async def now(self) -> float:
        if self._clock is not None:
            return self._clock()
        async with self._connection() as db:
            row = await (await db.execute("SELECT extract(epoch FROM clock_timestamp())::float8")).fetchone()
        assert row is not None
        return float(row[0])

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
        link = (
            dict(zip(("plan_id", "shot", "take"), take_of(plan_shot), strict=True)) if plan_shot is not None else None
        )
        async with self._connection() as db, db.transaction():
            clock = {"now": self._now()}
            if dedupe_window is not None or job.approval_id is not None:
                # Queue behind anyone inserting this fingerprint; what they wrote is committed once we hold it. (An
                # approval id is for one fingerprint: its jobs queue here too.)
                await db.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (DEDUPE_LOCK_CLASS, job.fingerprint))
            if job.approval_id is not None:
                paid = {"approval_id": job.approval_id, "dead": list(DEAD_STATUSES)}
                found = await (await db.execute(_LIVE_OF_APPROVAL, paid)).fetchone()
                if found is not None:
                    return Job.model_validate_json(found[0])
            if dedupe_window is not None:
                cursor = await db.execute(
                    _NOW_AND_EARLIER_LIVE,
                    {**clock, "fingerprint": job.fingerprint, "window": dedupe_window, "dead": list(DEAD_STATUSES)},
                )
                found = await cursor.fetchone()
                assert found is not None
                now = float(found[0])
                if found[1] is not None:
                    earlier = Job.model_validate_json(found[1])
                    if link is not None:
                        # No new job, nothing sent: a plain read of the state will do (no wait on the plan's row).
                        await _check_running(db, str(link["plan_id"]), lock=False)
                        await db.execute(_LINK, {**link, "job_id": earlier.job_id})
                    return earlier
            else:
                found = await (await db.execute(_CLOCK, clock)).fetchone()
                assert found is not None
                now = float(found[0])
            if limits:
                await db.execute("SELECT pg_advisory_xact_lock(%s, 0)", (BUDGET_LOCK_CLASS,))
            if link is not None:  # first: the shot's reservation stops counting as the job starts to
                await _check_running(db, str(link["plan_id"]), lock=True)
                await db.execute(_LINK, {**link, "job_id": job.job_id})
            for limit in limits:
                values = {"since": start_of_day(now), "currency": limit.currency, "principal": limit.principal}
                spent_row = await (await db.execute(_SPENT, values)).fetchone()
                spent = float(spent_row[0]) if spent_row else 0.0
                if spent + job.spend > limit.limit:
                    raise BudgetExceeded(limit, spent, job.spend)
            written = job.model_copy(update={"created_at": now, "updated_at": now})
            row = _insert_row(written, now, self._now(), lease_owner, lease_seconds)
            await db.execute(_INSERT, row)
        job.created_at = job.updated_at = now
        return None

    async def insert_all(
        self,
        jobs: Sequence[Job],
        *,
        dedupe_window: float | None,
        lease_owner: str | None,
        lease_seconds: float,
        limits: Sequence[SpendLimit] = (),
    ) -> list[Job | None]:
        async with self._connection() as db, db.transaction():
            clock = {"now": self._now()}
            found = await (await db.execute(_CLOCK, clock)).fetchone()
            assert found is not None
            now = float(found[0])
            earlier: list[Job | None] = []
            if dedupe_window is not None:
                # The same locks as `insert`, taken in one order, so two batches sharing fingerprints cannot deadlock.
                for fingerprint in sorted({job.fingerprint for job in jobs}):
                    await db.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (DEDUPE_LOCK_CLASS, fingerprint))
            for job in jobs:
                row = None
                if dedupe_window is not None:
                    cursor = await db.execute(
                        _NOW_AND_EARLIER_LIVE,
                        {**clock, "fingerprint": job.fingerprint, "window": dedupe_window, "dead": list(DEAD_STATUSES)},
                    )
                    row = await cursor.fetchone()
                earlier.append(Job.model_validate_json(row[1]) if row is not None and row[1] is not None else None)
            new = [job for job, found_job in zip(jobs, earlier, strict=True) if found_job is None]
            cost = sum(job.spend for job in new)
            if limits and new:
                await db.execute("SELECT pg_advisory_xact_lock(%s, 0)", (BUDGET_LOCK_CLASS,))
                for limit in limits:
                    spent_row = await (
                        await db.execute(
                            _SPENT,
                            {"since": start_of_day(now), "currency": limit.currency, "principal": limit.principal},
                        )
                    ).fetchone()
                    spent = float(spent_row[0]) if spent_row else 0.0
                    if spent + cost > limit.limit:
                        raise BudgetExceeded(limit, spent, cost)
            for job in new:
                written = job.model_copy(update={"created_at": now, "updated_at": now})
                await db.execute(_INSERT, _insert_row(written, now, self._now(), lease_owner, lease_seconds))
        for job in new:
            job.created_at = job.updated_at = now
        return earlier

    async def spend(self, since: float, principal: str | None = None) -> list[SpendRow]:
        values = {"since": since, "dead": list(DEAD_STATUSES), "principal": principal}
        async with self._connection() as db:
            rows = await (await db.execute(_SPEND, values)).fetchall()
        return [SpendRow(str(m), c if isinstance(c, str) else None, int(n), int(t), float(x)) for m, c, n, t, x in rows]

    async def update(self, job: Job, *, lease: Lease | None = None) -> bool:
        from psycopg import errors

        expected = job.version
        written = job.model_copy(update={"version": expected + 1, "updated_at": (self._clock or time.time)()})
        fence = {"owner": lease.owner if lease else None, "token": lease.token if lease else None}
        values = {
            "task_id": written.task_id,
            "status": written.status,
            "data": _json(written),
            "version": written.version,
            "has_work": written.has_work,
            "spend": written.spend,
            "currency": written.currency,
            "billed_tokens": written.usage_tokens or 0,
            "job_id": written.job_id,
            "expected": expected,
            **fence,
        }
        async with self._connection() as db:
            try:
                cursor = await db.execute(_UPDATE, values)
            except errors.UniqueViolation as exc:
                if exc.diag.constraint_name == "jobs_task_id_unique":
                    raise TaskIdTaken(written.task_id or "") from exc
                raise
            won = cursor.rowcount == 1
            # A lost compare-and-set is either another write (read again and retry) or a lost lease (stop).
            if not won and lease is not None:
                held = await (await db.execute(_HOLDS, {"job_id": written.job_id, **fence})).fetchone()
                if held is None:
                    raise LeaseLost(written.job_id)
        if won:
            job.version, job.updated_at = written.version, written.updated_at
            self._settled.remember(written)
        else:
            self._settled.forget(job)
        return won

    async def get(self, key: str) -> Job | None:
        known = self._settled.version_of(key)
        async with self._connection() as db:
            row = await (await db.execute(_GET, {"key": key, "known": known})).fetchone()
            if row is not None and row[1] is None:
                cached = self._settled.get(key, int(row[0]))
                if cached is not None:
                    return cached
                # The cached copy went away meanwhile: read the job whole.
                row = await (await db.execute(_GET, {"key": key, "known": -1})).fetchone()
        if row is None:
            return None
        job = Job.model_validate_json(row[1])
        self._settled.remember(job)
        return job

    async def recent(self, status: str | None, limit: int, principal: str | None = None) -> tuple[list[Job], bool]:
        # One row past the limit says whether more match, without counting them all.
        values = {"status": status, "limit": limit + 1, "principal": principal}
        async with self._connection() as db:
            rows = await (await db.execute(_RECENT, values)).fetchall()
        return [Job.model_validate_json(row[0]) for row in rows[:limit]], len(rows) > limit

    async def count_by_status(self) -> dict[str, int]:
        async with self._connection() as db:
            rows = await (await db.execute("SELECT status, count(*) FROM jobs GROUP BY 1")).fetchall()
        return {str(status): int(n) for status, n in rows}

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
        async with self._connection() as db, db.transaction():
            # The budget lock first, whether or not there are limits: two calls recording one plan queue here too,
            # so a shot is never reserved twice.
            await db.execute("SELECT pg_advisory_xact_lock(%s, 0)", (BUDGET_LOCK_CLASS,))
            found = await (await db.execute(_CLOCK, {"now": self._now()})).fetchone()
            assert found is not None
            now = float(found[0])
            today = start_of_day(now)
            record = await _plan(db, plan_id)
            if record is not None and record.state in ("cancelled", "done"):
                return record
            cursor = await db.execute(_PLAN_SHOTS, {"plan_id": plan_id, "dead": list(DEAD_STATUSES)})
            rows = {
                (int(shot), int(take)): (job_id, bool(live)) for shot, take, job_id, live in await cursor.fetchall()
            }
            running = record is not None and record.state == "running"
            needed = [
                (shot, take, reserve)
                for shot, take, reserve in plan_takes(reserves, takes)
                if _needs_reserve(rows.get((shot, take)), running=running)
            ]
            cost = sum(reserve for _, _, reserve in needed)
            for limit in limits if cost > 0 else ():
                values = {"since": today, "currency": limit.currency, "principal": limit.principal}
                spent_row = await (await db.execute(_SPENT, values)).fetchone()
                spent = float(spent_row[0]) if spent_row else 0.0
                if spent + cost > limit.limit:
                    raise BudgetExceeded(limit, spent, cost)
            values = {"plan_id": plan_id, "principal": principal, "data": data, "now": now, "currency": currency}
            if record is None:
                await db.execute(
                    "INSERT INTO plans (plan_id, principal, created_at, data, state, currency) "
                    "VALUES (%(plan_id)s, %(principal)s, %(now)s, %(data)s, 'running', %(currency)s)",
                    values,
                )
            else:
                await db.execute(
                    "UPDATE plans SET state = 'running', currency = %(currency)s WHERE plan_id = %(plan_id)s", values
                )
            async with db.cursor() as many:
                await many.executemany(
                    "INSERT INTO plan_shots (plan_id, shot, take, job_id, reserve, reserved_at) "
                    "VALUES (%(plan_id)s, %(shot)s, %(take)s, NULL, %(reserve)s, %(now)s) "
                    "ON CONFLICT (plan_id, shot, take) DO UPDATE SET job_id = NULL, reserve = excluded.reserve, "
                    "reserved_at = excluded.reserved_at "
                    # Only the link read above is replaced: an insert links a shot without the budget lock (a dedupe
                    # reuse, no limits), and a job linked since then is the shot's (its spend counts, not a reserve).
                    "WHERE plan_shots.job_id IS NOT DISTINCT FROM %(seen)s::text",
                    [
                        {
                            "plan_id": plan_id,
                            "shot": shot,
                            "take": take,
                            "reserve": reserve,
                            "now": now,
                            "seen": _seen(rows, (shot, take)),
                        }
                        for shot, take, reserve in needed
                    ],
                )
            if lease_owner is not None:
                await db.execute(
                    "UPDATE plans SET lease_owner = %(owner)s, lease_expires = %(now)s + %(lease)s, "
                    "lease_token = lease_token + 1 "
                    "WHERE plan_id = %(plan_id)s AND (lease_owner IS NULL OR lease_expires < %(now)s)",
                    {"owner": lease_owner, "now": now, "lease": float(lease_seconds), "plan_id": plan_id},
                )
            stored = await _plan(db, plan_id)
        assert stored is not None
        return stored

    async def get_plan(self, plan_id: str) -> PlanRecord | None:
        async with self._connection() as db:
            return await _plan(db, plan_id)

    async def reserved(self, since: float, principal: str | None = None) -> dict[str, tuple[str, float]]:
        async with self._connection() as db:
            rows = await (
                await db.execute(
                    "SELECT p.plan_id, p.currency, SUM(s.reserve) FROM plan_shots s "
                    "JOIN plans p ON p.plan_id = s.plan_id WHERE s.job_id IS NULL AND p.state = 'running' "
                    "AND (%(principal)s::text IS NULL OR p.principal = %(principal)s) GROUP BY 1, 2",
                    {"principal": principal},
                )
            ).fetchall()
        return {str(plan_id): (str(currency), float(amount)) for plan_id, currency, amount in rows}

    async def set_plan_state(self, plan_id: str, state: PlanState, *, allowed: Collection[PlanState]) -> bool:
        values = {"plan_id": plan_id, "state": state, "allowed": list(allowed), "now": self._now_value()}
        async with self._connection() as db:
            cursor = await db.execute(
                "UPDATE plans SET state = %(state)s, "
                "lease_owner = CASE WHEN %(state)s = 'running' THEN lease_owner END, "
                "lease_expires = CASE WHEN %(state)s = 'running' THEN lease_expires ELSE 0 END, "
                "cancelled_at = CASE WHEN %(state)s = 'cancelled' THEN COALESCE(cancelled_at, "
                "%(now)s::float8, extract(epoch FROM clock_timestamp())) ELSE cancelled_at END "
                "WHERE plan_id = %(plan_id)s AND state = ANY(%(allowed)s::text[])",
                values,
            )
            return cursor.rowcount == 1

    async def cancel_plan(self, plan_id: str) -> PlanRecord | None:
        async with self._connection() as db:
            await db.execute(
                "UPDATE plans SET state = 'cancelled', lease_owner = NULL, lease_expires = 0, "
                "cancelled_at = COALESCE(%(now)s::float8, extract(epoch FROM clock_timestamp())) "
                "WHERE plan_id = %(plan_id)s AND state IN ('running', 'stopped')",
                {"plan_id": plan_id, "now": self._now_value()},
            )
            return await _plan(db, plan_id)

    async def claim_plans(
        self, owner: str, lease_seconds: float, *, limit: int, plan_id: str | None = None
    ) -> list[tuple[PlanRecord, int]]:
        values = {"owner": owner, "lease": float(lease_seconds), "now": self._now(), "limit": limit, "plan_id": plan_id}
        claimed: list[tuple[PlanRecord, int]] = []
        async with self._connection() as db:
            rows = await (await db.execute(_CLAIM_PLANS, values)).fetchall()
            for found, token in rows:
                record = await _plan(db, str(found))
                if record is not None:
                    claimed.append((record, int(token)))
        return claimed

    async def renew_plans(self, owner: str, leases: Mapping[str, int], lease_seconds: float) -> set[str]:
        return await self._renew(_RENEW_PLANS, owner, leases, lease_seconds)

    async def release_plans(self, owner: str, leases: Mapping[str, int]) -> None:
        await self._release(_RELEASE_PLANS, owner, leases)

    def _now_value(self) -> float | None:
        """This store's own clock when it was given one (tests), else None: the database's clock decides."""
        return self._clock() if self._clock is not None else None

    async def owner_of(self, task_ids: Sequence[str]) -> dict[str, str]:
        if not task_ids:
            return {}
        async with self._connection() as db:
            cursor = await db.execute("SELECT task_id, job_id FROM jobs WHERE task_id = ANY(%s)", (list(task_ids),))
            rows = await cursor.fetchall()
        return {str(task_id): str(job_id) for task_id, job_id in rows}

    async def claim(
        self, owner: str, lease_seconds: float, *, limit: int, job_id: str | None = None
    ) -> list[tuple[Job, int]]:
        values = {"owner": owner, "lease": float(lease_seconds), "now": self._now(), "limit": limit, "job_id": job_id}
        async with self._connection() as db:
            cursor = await db.execute(_CLAIM_ANY if job_id is None else _CLAIM_ONE, values)
            rows = await cursor.fetchall()
        return [(Job.model_validate_json(row[0]), int(row[1])) for row in rows]

    async def renew(self, owner: str, leases: Mapping[str, int], lease_seconds: float) -> set[str]:
        return await self._renew(_RENEW, owner, leases, lease_seconds)

    async def release(self, owner: str, leases: Mapping[str, int]) -> None:
        await self._release(_RELEASE, owner, leases)

    async def _renew(
        self, statement: LiteralString, owner: str, leases: Mapping[str, int], lease_seconds: float
    ) -> set[str]:
        """Extend the leases (id → token) `owner` still holds, jobs' or plans' by `statement`; the ids kept."""
        if not leases:
            return set()
        values = {
            "owner": owner,
            "ids": list(leases),
            "tokens": list(leases.values()),
            "lease": float(lease_seconds),
            "now": self._now(),
        }
        async with self._connection() as db:
            rows = await (await db.execute(statement, values)).fetchall()
        return {str(row[0]) for row in rows}

    async def _release(self, statement: LiteralString, owner: str, leases: Mapping[str, int]) -> None:
        if not leases:
            return
        async with self._connection() as db:
            await db.execute(statement, {"owner": owner, "ids": list(leases), "tokens": list(leases.values())})

    async def close(self) -> None:
        await self._pool.close()


def _reason(exc: BaseException) -> str:
    """psycopg's message on one line, without the statement it may quote (`LINE 2: …` and its caret)."""
    lines = [line.strip() for line in str(exc).strip().splitlines()]
    kept = [line for line in lines if line and not line.startswith("LINE ") and set(line) != {"^"}]
    return f"{type(exc).__name__}: {' '.join(kept) or 'no message'}"


def _seen(rows: Mapping[tuple[int, int], tuple[str | None, bool]], take: tuple[int, int]) -> str | None:
    """The job a shot's take was linked to when record_plan read it (None: none, or no row yet)."""
    row = rows.get(take)
    return None if row is None else row[0]


async def _check_running(db: AsyncConnection[tuple[Any, ...]], plan_id: str, *, lock: bool) -> None:
    """PlanNotRunning unless the plan is running. With `lock`, its row is held (FOR SHARE, taken after the budget
    lock as record_plan takes them) until the insert commits: a cancel either lands first and is seen here, or waits
    and then finds the shot's job linked."""
    query: LiteralString = "SELECT state FROM plans WHERE plan_id = %(plan_id)s"
    row = await (await db.execute(query + " FOR SHARE" if lock else query, {"plan_id": plan_id})).fetchone()
    if row is None or row[0] != "running":
        raise PlanNotRunning(plan_id, None if row is None else str(row[0]))


async def _plan(db: AsyncConnection[tuple[Any, ...]], plan_id: str) -> PlanRecord | None:
    row = await (
        await db.execute(
            "SELECT principal, created_at, cancelled_at, data, state, currency, lease_owner, lease_token FROM plans "
            "WHERE plan_id = %(plan_id)s",
            {"plan_id": plan_id},
        )
    ).fetchone()
    if row is None:
        return None
    shots = await (
        await db.execute(
            "SELECT shot, take, job_id, reserve FROM plan_shots WHERE plan_id = %(plan_id)s", {"plan_id": plan_id}
        )
    ).fetchall()
    return PlanRecord(
        plan_id,
        str(row[0]),
        float(row[1]),
        None if row[2] is None else float(row[2]),
        str(row[3]),
        {int(n): str(j) for n, t, j, _ in shots if j is not None and t == 1},
        state=row[4],
        currency=str(row[5]),
        reserved=plan_reserved(shots),
        takes={(int(n), int(t)): str(j) for n, t, j, _ in shots if j is not None},
        lease_owner=row[6],
        lease_token=int(row[7]),
    )


_NUL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")
"""A JSON NUL escape, backslash-u-0000, unless its backslash is itself escaped (an odd run of backslashes)."""


def _json(job: Job) -> str:
    """The job as JSON for the `data` column.

    PostgreSQL text and JSONB cannot hold U+0000, so a NUL (from a pasted prompt, or a provider's error message)
    is written as U+FFFD instead of failing the write: a journal write must not fail on one meaningless character.
    """
    text = job.model_dump_json()
    return _NUL_ESCAPE.sub(r"\1\\ufffd", text) if "\\u0000" in text else text


def migrations() -> list[tuple[str, str]]:
    """The PostgreSQL schema's SQL files, `(version, sql)` in the order they apply (`schema.migrations`)."""
    return schema.migrations("postgres")


async def migrate(db: AsyncConnection[tuple[Any, ...]]) -> list[str]:
    """Apply the migrations this database lacks, one transaction each, under a session advisory lock.

    Replicas starting together queue on the lock; the first applies, the others find nothing left to do.
    `db` must be in autocommit mode. Returns the versions applied now.
    """
    applied_now: list[str] = []
    await db.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
    try:
        await db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        rows = await (await db.execute("SELECT version FROM schema_migrations")).fetchall()
        applied = {str(row[0]) for row in rows}
        for version, sql in migrations():
            if version in applied:
                continue
            async with db.transaction():
                # bytes: a file's text is not a literal, and several statements go in one simple query.
                await db.execute(sql.encode())
                await db.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
            applied_now.append(version)
            logger.info("journal schema: applied migration %s", version)
    finally:
        await db.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    return applied_now


async def open_postgres_store(
    url: str, *, clock: Callable[[], float] | None = None, min_size: int = 1, max_size: int = 10
) -> PostgresTaskStore:
    """Connect to the database at `url` (a libpq URL or conninfo), bring its schema up to date, return the store.

    An unreachable server raises JournalUnavailable (the caller tries again later); a bad URL raises psycopg's
    own error (`psycopg.ProgrammingError`), which waiting does not cure.
    """
    from psycopg import AsyncConnection, OperationalError
    from psycopg_pool import AsyncConnectionPool

    try:
        async with await AsyncConnection.connect(url, autocommit=True, connect_timeout=10) as db:
            await migrate(db)
    except OperationalError as exc:
        raise JournalUnavailable("the PostgreSQL journal", _reason(exc)) from exc
    pool: AsyncConnectionPool[AsyncConnection[tuple[Any, ...]]] = AsyncConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        kwargs={"autocommit": True, "connect_timeout": 10},
        # A pooled connection may have died (a server restart, an idle timeout): check it before handing it out,
        # so a write after a paid create never fails for that reason.
        check=AsyncConnectionPool.check_connection,
        timeout=POOL_TIMEOUT,
        # Lost connections are replaced in the background with backoff (1, 2, 4 s…). The pool's backoff has no
        # ceiling, so each attempt gives up after RECONNECT_SECONDS and the next statement that waits starts a fresh
        # one: a returning server is reached within seconds, however long it was away.
        reconnect_timeout=RECONNECT_SECONDS,
        name="seedance-journal",
        open=False,
    )
    try:
        await pool.open(wait=True, timeout=30.0)
    except OperationalError as exc:  # the server went away between the migration and now
        await pool.close()
        raise JournalUnavailable("the PostgreSQL journal", _reason(exc)) from exc
    except BaseException:
        await pool.close()
        raise
    return PostgresTaskStore(pool, clock=clock)


def _insert_row(
    written: Job, now: float, clock_now: float | None, lease_owner: str | None, lease_seconds: float
) -> dict[str, Any]:
    """The parameters of `_INSERT` for a job stamped `now` by the journal's clock."""
    return {
        "job_id": written.job_id,
        "task_id": written.task_id,
        "status": written.status,
        "fingerprint": written.fingerprint,
        "created_at": now,
        "version": written.version,
        "has_work": written.has_work,
        "owner": lease_owner,
        "now": clock_now,
        "lease": float(lease_seconds),
        "first_token": FIRST_TOKEN,
        "data": _json(written),
        "spend": written.spend,
        "principal": written.principal,
        "model": written.model,
        "currency": written.currency,
        "billed_tokens": written.usage_tokens or 0,
        "approval_id": written.approval_id,
    }
