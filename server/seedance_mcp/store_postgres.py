"""The journal on PostgreSQL: the same `TaskStore` contract as `SqliteTaskStore`, for replicas on many machines.

Chosen by `SEEDANCE_DATABASE_URL=postgresql://…`; `open_postgres_store(url)` applies the schema and returns the store.
Each rule of the contract (see `store.py`) is kept by the database itself, in one transaction, never by a
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
  waiting or double-claiming; `renew` and `release` touch only the caller's own leases. Lease times are epoch
  seconds, as in SQLite, read from the database's clock (`statement_timestamp()`), so replicas whose clocks
  disagree still agree on when a lease runs out. A store given a `clock` (tests) uses that instead.

The job is stored whole as JSONB (`data`) beside the columns the rules query. Migrations are plain SQL files in
`migrations/postgres/`, applied once each in name order and recorded in `schema_migrations`, under a session
advisory lock so replicas starting together do not race. psycopg is imported only here, and only when a
PostgreSQL store is opened, so the stdio start-up never loads it. psycopg's async API needs asyncio (anyio's
default backend), not trio.
"""

from __future__ import annotations

import importlib.resources
import logging
import re
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, LiteralString

from seedance_mcp.store import DEAD_STATUSES, BudgetExceeded, Job, SettledJobs, SpendLimit, SpendRow, TaskIdTaken

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

logger = logging.getLogger(__name__)

MIGRATIONS_PACKAGE = "seedance_mcp"
MIGRATIONS_DIR = ("migrations", "postgres")
MIGRATION_LOCK_KEY = 0x5EEDA_0C0DE
"""The session advisory lock (one bigint key) held while migrations run."""
DEDUPE_LOCK_CLASS = 0x5EED
"""The first half of the two-int advisory lock taken per fingerprint (a space of its own, apart from other apps)."""

_NOW: LiteralString = "coalesce(%(now)s::float8, extract(epoch FROM statement_timestamp())::float8)"
"""The lease clock: the store's own clock when it has one, else the database's (one value per statement)."""

_INSERT: LiteralString = f"""
INSERT INTO jobs (job_id, task_id, status, fingerprint, created_at, version, has_work, lease_owner, lease_expires,
                  data, spend, principal, model, currency, billed_tokens)
VALUES (%(job_id)s, %(task_id)s, %(status)s, %(fingerprint)s, %(created_at)s, %(version)s, %(has_work)s,
        %(owner)s, CASE WHEN %(owner)s::text IS NULL THEN 0 ELSE {_NOW} + %(lease)s END, %(data)s::jsonb, %(spend)s,
        %(principal)s, %(model)s, %(currency)s, %(billed_tokens)s)
"""
_EARLIER_LIVE: LiteralString = """
SELECT data::text FROM jobs
WHERE fingerprint = %(fingerprint)s AND created_at >= %(since)s AND status <> ALL(%(dead)s)
ORDER BY created_at DESC LIMIT 1
"""
_UPDATE: LiteralString = """
UPDATE jobs SET task_id = %(task_id)s, status = %(status)s, data = %(data)s::jsonb, version = %(version)s,
    has_work = %(has_work)s, spend = %(spend)s, currency = %(currency)s, billed_tokens = %(billed_tokens)s,
    lease_owner = CASE WHEN %(has_work)s THEN lease_owner END,
    lease_expires = CASE WHEN %(has_work)s THEN lease_expires ELSE 0 END
WHERE job_id = %(job_id)s AND version = %(expected)s
"""
_CLAIM_ANY: LiteralString = f"""
WITH picked AS (
    SELECT job_id FROM jobs
    WHERE has_work AND (lease_owner IS NULL OR lease_expires < {_NOW})
    ORDER BY lease_expires
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE jobs SET lease_owner = %(owner)s, lease_expires = {_NOW} + %(lease)s
FROM picked WHERE jobs.job_id = picked.job_id
RETURNING jobs.data::text
"""
_CLAIM_ONE: LiteralString = f"""
UPDATE jobs SET lease_owner = %(owner)s, lease_expires = {_NOW} + %(lease)s
WHERE job_id = %(job_id)s AND has_work
  AND (lease_owner IS NULL OR lease_owner = %(owner)s OR lease_expires < {_NOW})
RETURNING data::text
"""
_RENEW: LiteralString = f"""
UPDATE jobs SET lease_expires = {_NOW} + %(lease)s
WHERE lease_owner = %(owner)s AND job_id = ANY(%(ids)s)
RETURNING job_id
"""
_RELEASE: LiteralString = """
UPDATE jobs SET lease_owner = NULL, lease_expires = 0 WHERE lease_owner = %(owner)s AND job_id = ANY(%(ids)s)
"""
_SPENT: LiteralString = """
SELECT COALESCE(SUM(spend), 0) FROM jobs
WHERE created_at >= %(since)s AND (%(principal)s::text IS NULL OR principal = %(principal)s)
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
SELECT data::text FROM jobs WHERE job_id = %(key)s
UNION ALL SELECT data::text FROM jobs WHERE task_id = %(key)s
LIMIT 1
"""


class PostgresTaskStore:
    """The journal in a PostgreSQL database, shared safely by every replica that opens it."""

    def __init__(
        self, pool: AsyncConnectionPool[AsyncConnection[tuple[Any, ...]]], *, clock: Callable[[], float] | None = None
    ) -> None:
        self._pool = pool
        self._clock = clock
        self._settled = SettledJobs()

    def _now(self) -> float | None:
        """The lease clock's reading to send, or None for the database's clock."""
        return self._clock() if self._clock is not None else None

    async def insert(
        self,
        job: Job,
        *,
        dedupe_since: float | None,
        lease_owner: str | None,
        lease_seconds: float,
        limits: Sequence[SpendLimit] = (),
    ) -> Job | None:
        row = {
            "job_id": job.job_id,
            "task_id": job.task_id,
            "status": job.status,
            "fingerprint": job.fingerprint,
            "created_at": job.created_at,
            "version": job.version,
            "has_work": job.has_work,
            "owner": lease_owner,
            "now": self._now(),
            "lease": float(lease_seconds),
            "data": _json(job),
            "spend": job.spend,
            "principal": job.principal,
            "model": job.model,
            "currency": job.currency,
            "billed_tokens": job.usage_tokens or 0,
        }
        async with self._pool.connection() as db, db.transaction():
            if dedupe_since is not None:
                # Queue behind anyone inserting this fingerprint; what they wrote is committed once we hold it.
                await db.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (DEDUPE_LOCK_CLASS, job.fingerprint))
                cursor = await db.execute(
                    _EARLIER_LIVE, {"fingerprint": job.fingerprint, "since": dedupe_since, "dead": list(DEAD_STATUSES)}
                )
                earlier = await cursor.fetchone()
                if earlier is not None:
                    return Job.model_validate_json(earlier[0])
            if limits:
                await db.execute("SELECT pg_advisory_xact_lock(%s, 0)", (BUDGET_LOCK_CLASS,))
            for limit in limits:
                spent_row = await (
                    await db.execute(_SPENT, {"since": limit.since, "principal": limit.principal})
                ).fetchone()
                spent = float(spent_row[0]) if spent_row else 0.0
                if spent + job.spend > limit.limit:
                    raise BudgetExceeded(limit, spent, job.spend)
            await db.execute(_INSERT, row)
            return None

    async def spend(self, since: float, principal: str | None = None) -> list[SpendRow]:
        values = {"since": since, "dead": list(DEAD_STATUSES), "principal": principal}
        async with self._pool.connection() as db:
            rows = await (await db.execute(_SPEND, values)).fetchall()
        return [SpendRow(str(m), c if isinstance(c, str) else None, int(n), int(t), float(x)) for m, c, n, t, x in rows]

    async def update(self, job: Job) -> bool:
        from psycopg import errors

        expected = job.version
        written = job.model_copy(update={"version": expected + 1, "updated_at": (self._clock or time.time)()})
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
        }
        async with self._pool.connection() as db:
            try:
                cursor = await db.execute(_UPDATE, values)
            except errors.UniqueViolation as exc:
                if exc.diag.constraint_name == "jobs_task_id_unique":
                    raise TaskIdTaken(written.task_id or "") from exc
                raise
            won = cursor.rowcount == 1
        if won:
            job.version, job.updated_at = written.version, written.updated_at
            self._settled.remember(written)
        else:
            self._settled.forget(job)
        return won

    async def get(self, key: str) -> Job | None:
        cached = self._settled.get(key)
        if cached is not None:
            return cached
        async with self._pool.connection() as db:
            row = await (await db.execute(_GET, {"key": key})).fetchone()
        if row is None:
            return None
        job = Job.model_validate_json(row[0])
        self._settled.remember(job)
        return job

    async def recent(self, status: str | None, limit: int, principal: str | None = None) -> tuple[list[Job], int]:
        where: LiteralString = (
            "WHERE (%(status)s::text IS NULL OR status = %(status)s) "
            "AND (%(principal)s::text IS NULL OR principal = %(principal)s)"
        )
        values = {"status": status, "limit": limit, "principal": principal}
        async with self._pool.connection() as db:
            cursor = await db.execute(
                f"SELECT data::text FROM jobs {where} ORDER BY created_at DESC LIMIT %(limit)s", values
            )
            rows = await cursor.fetchall()
            total = await (await db.execute(f"SELECT count(*) FROM jobs {where}", values)).fetchone()
        return [Job.model_validate_json(row[0]) for row in rows], int(total[0]) if total else 0

    async def owner_of(self, task_ids: Sequence[str]) -> dict[str, str]:
        if not task_ids:
            return {}
        async with self._pool.connection() as db:
            cursor = await db.execute("SELECT task_id, job_id FROM jobs WHERE task_id = ANY(%s)", (list(task_ids),))
            rows = await cursor.fetchall()
        return {str(task_id): str(job_id) for task_id, job_id in rows}

    async def claim(self, owner: str, lease_seconds: float, *, limit: int, job_id: str | None = None) -> list[Job]:
        values = {"owner": owner, "lease": float(lease_seconds), "now": self._now(), "limit": limit, "job_id": job_id}
        async with self._pool.connection() as db:
            cursor = await db.execute(_CLAIM_ANY if job_id is None else _CLAIM_ONE, values)
            rows = await cursor.fetchall()
        return [Job.model_validate_json(row[0]) for row in rows]

    async def renew(self, owner: str, job_ids: Sequence[str], lease_seconds: float) -> set[str]:
        if not job_ids:
            return set()
        values = {"owner": owner, "ids": list(job_ids), "lease": float(lease_seconds), "now": self._now()}
        async with self._pool.connection() as db:
            rows = await (await db.execute(_RENEW, values)).fetchall()
        return {str(row[0]) for row in rows}

    async def release(self, owner: str, job_ids: Sequence[str]) -> None:
        if not job_ids:
            return
        async with self._pool.connection() as db:
            await db.execute(_RELEASE, {"owner": owner, "ids": list(job_ids)})

    async def close(self) -> None:
        await self._pool.close()


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
    """The schema's SQL files, `(version, sql)` in the order they apply: `0001_jobs.sql` is version `0001_jobs`."""
    folder = importlib.resources.files(MIGRATIONS_PACKAGE).joinpath(*MIGRATIONS_DIR)
    files = sorted((entry for entry in folder.iterdir() if entry.name.endswith(".sql")), key=lambda entry: entry.name)
    return [(entry.name.removesuffix(".sql"), entry.read_text(encoding="utf-8")) for entry in files]


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

    A bad URL or an unreachable server fails here at once with psycopg's own message (`psycopg.OperationalError`).
    """
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

    async with await AsyncConnection.connect(url, autocommit=True) as db:
        await migrate(db)
    pool: AsyncConnectionPool[AsyncConnection[tuple[Any, ...]]] = AsyncConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        kwargs={"autocommit": True},
        # A pooled connection may have died (a server restart, an idle timeout): check it before handing it out,
        # so a write after a paid create never fails for that reason.
        check=AsyncConnectionPool.check_connection,
        name="seedance-journal",
        open=False,
    )
    try:
        await pool.open(wait=True, timeout=30.0)
    except BaseException:
        await pool.close()
        raise
    return PostgresTaskStore(pool, clock=clock)
