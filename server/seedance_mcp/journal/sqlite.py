"""The embedded journal: `SqliteTaskStore`, one SQLite file in SEEDANCE_STATE_DIR (WAL mode), shared safely by every
process that opens it, run by stdlib sqlite3 in a worker thread so the event loop never blocks. The contract it keeps
is `TaskStore`'s (journal/__init__.py). Its schema is `migrations/sqlite/` (`schema.py`), applied by `migrate` as the
file is opened; a CHECK constraint keeps the status column to a job's states."""

from __future__ import annotations

import errno
import logging
import sqlite3
import time
from collections.abc import Callable, Collection, Generator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread

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
from seedance_mcp.journal.thread_batches import BatchedThread, Call, run_each

_T = TypeVar("_T")

logger = logging.getLogger(__name__)

LEGACY_BASELINE: tuple[tuple[str, str], ...] = (
    ("0001_jobs", "SELECT 1 FROM pragma_table_info('jobs') WHERE name = 'version'"),
    ("0002_spend", "SELECT 1 FROM pragma_table_info('jobs') WHERE name = 'spend'"),
    ("0003_principal", "SELECT 1 FROM pragma_table_info('jobs') WHERE name = 'principal'"),
    ("0004_spend_columns", "SELECT 1 FROM pragma_table_info('jobs') WHERE name = 'model'"),
    ("0005_principal_indexes", "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'jobs_principal_status'"),
    ("0006_lease_token", "SELECT 1 FROM pragma_table_info('jobs') WHERE name = 'lease_token'"),
)
"""How a journal written before versions were recorded shows how far its schema got: the query that finds what each
migration made. Every earlier release applied all it knew at each start, so the last one found is where it stands."""


_SQLITE_UNAVAILABLE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO})
"""Disk errors that a person fixes without restarting the server (space freed, the volume back)."""


class SqliteTaskStore:
    """The default journal: `<state_dir>/jobs.sqlite3`, shared safely by every process that opens it.

    Its clock is this machine's (`clock`): every process sharing the file runs on it."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        self._connection: sqlite3.Connection | None = None
        # One worker thread at a time: the sqlite3 connection is shared, and this keeps its use serial.
        self._thread = BatchedThread(self._run_batch)
        self._settled = SettledJobs()

    @property
    def describe(self) -> str:
        return f"the SQLite journal {self.path}"

    @classmethod
    async def open(cls, path: Path, *, clock: Callable[[], float] = time.time) -> SqliteTaskStore:
        """Open (and create or migrate) the journal. A full disk or a failing volume raises JournalUnavailable;
        a path that cannot hold a journal (a file where a directory must be, no permission) raises OSError."""
        store = cls(path, clock=clock)
        # Two servers starting together race to create the file and switch it to WAL; that switch takes a lock
        # SQLite's busy timeout does not wait for, so the loser tries again.
        for attempt in range(40):
            try:
                await anyio.to_thread.run_sync(store._open_sync)
                return store
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 39:
                    raise store._unavailable(exc) from exc
                await anyio.sleep(0.05 + 0.05 * attempt)
            except OSError as exc:
                if exc.errno in _SQLITE_UNAVAILABLE_ERRNOS:
                    raise store._unavailable(exc) from exc
                raise
        raise AssertionError("unreachable: the loop returns or raises")

    def _unavailable(self, exc: BaseException) -> JournalUnavailable:
        return JournalUnavailable(self.describe, f"{type(exc).__name__}: {exc}")

    def _open_sync(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            migrate(connection)
        except BaseException:
            connection.close()
            raise
        self._connection = connection

    async def _in_thread(self, work: Callable[[sqlite3.Connection], _T], *, writes: bool = True) -> _T:
        """Run `work` on the connection in the worker thread, batched with whatever else is waiting: under load
        (thousands of jobs writing at once) one trip carries hundreds of operations, so the journal keeps up with
        the event loop rather than queueing every submit behind every poll's write. A write whose caller gave up
        before any trip took it is never made. SQLite's operational errors (a full disk, an I/O error, a lock held
        past the busy timeout) become JournalUnavailable."""

        def on_connection() -> _T:
            if self._connection is None:
                raise RuntimeError("the store is closed")
            return work(self._connection)

        try:
            return await self._thread.run(on_connection, writes=writes)
        except sqlite3.OperationalError as exc:
            raise self._unavailable(exc) from exc

    def _run_batch(self, batch: list[Call[Any]]) -> None:
        """All the operations in one transaction: one commit for the batch instead of one each. Each operation is
        still all-or-nothing (a statement fails alone; several statements go in `_write_transaction`, a savepoint
        here); if the commit fails, every operation that looked done is told so. Few statements matter as much as
        few commits: each one hands the GIL back to a busy event loop and waits to get it again."""
        db = self._connection
        if db is None or len(batch) == 1 or not any(call.writes for call in batch):
            run_each(batch)  # reads alone take no write lock (WAL answers them while another process writes)
            return
        done: list[Call[Any]] = []
        try:
            db.execute("BEGIN IMMEDIATE")
            for index, call in enumerate(batch):
                call.run()
                done.append(call)
                if not db.in_transaction:
                    # SQLite rolled the whole transaction back (a full disk, an I/O error): what ran before is
                    # undone, so it failed too; what is left runs on its own.
                    lost = call.error or sqlite3.OperationalError("the journal's transaction was rolled back")
                    for earlier in done:
                        if earlier.error is None:
                            earlier.value, earlier.error = None, lost
                    run_each(batch[index + 1 :])
                    return
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            for call in done:
                if call.error is None:
                    call.value, call.error = None, exc

    async def now(self) -> float:
        return self._clock()

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
        dead = ", ".join("?" for _ in DEAD_STATUSES)

        def work(db: sqlite3.Connection) -> Job | None:
            with _write_transaction(db):
                now = self._clock()  # under the write lock: the order of inserts is the order of their times
                if plan_shot is not None:
                    state = db.execute("SELECT state FROM plans WHERE plan_id = ?", (plan_shot[0],)).fetchone()
                    if state is None or state[0] != "running":
                        raise PlanNotRunning(plan_shot[0], None if state is None else str(state[0]))
                if job.approval_id is not None:
                    row = db.execute(
                        f"SELECT data FROM jobs WHERE approval_id = ? AND status NOT IN ({dead})",
                        (job.approval_id, *DEAD_STATUSES),
                    ).fetchone()
                    if row is not None:
                        return Job.model_validate_json(str(row[0]))
                if dedupe_window is not None:
                    row = db.execute(
                        f"SELECT data FROM jobs WHERE fingerprint = ? AND created_at >= ? AND status NOT IN ({dead}) "
                        "ORDER BY created_at DESC LIMIT 1",
                        (job.fingerprint, now - dedupe_window, *DEAD_STATUSES),
                    ).fetchone()
                    if row is not None:
                        earlier = Job.model_validate_json(str(row[0]))
                        _link(db, plan_shot, earlier.job_id)
                        return earlier
                _link(db, plan_shot, job.job_id)  # first: the shot's reservation stops counting as the job starts
                for limit in limits:
                    spent = _spent(db, start_of_day(now), limit)
                    if spent + job.spend > limit.limit:
                        raise BudgetExceeded(limit, spent, job.spend)
                _insert_row(db, job, now, lease_owner, lease_seconds)
                job.created_at = job.updated_at = now
                return None

        return await self._in_thread(work)

    async def insert_all(
        self,
        jobs: Sequence[Job],
        *,
        dedupe_window: float | None,
        lease_owner: str | None,
        lease_seconds: float,
        limits: Sequence[SpendLimit] = (),
    ) -> list[Job | None]:
        dead = ", ".join("?" for _ in DEAD_STATUSES)

        def work(db: sqlite3.Connection) -> list[Job | None]:
            with _write_transaction(db):
                now = self._clock()
                found: list[Job | None] = []
                for job in jobs:
                    row = None
                    if dedupe_window is not None:
                        row = db.execute(
                            f"SELECT data FROM jobs WHERE fingerprint = ? AND created_at >= ? "
                            f"AND status NOT IN ({dead}) ORDER BY created_at DESC LIMIT 1",
                            (job.fingerprint, now - dedupe_window, *DEAD_STATUSES),
                        ).fetchone()
                    found.append(Job.model_validate_json(str(row[0])) if row is not None else None)
                new = [job for job, earlier in zip(jobs, found, strict=True) if earlier is None]
                cost = sum(job.spend for job in new)
                for limit in limits if new else ():
                    spent = _spent(db, start_of_day(now), limit)
                    if spent + cost > limit.limit:
                        raise BudgetExceeded(limit, spent, cost)
                for job in new:
                    _insert_row(db, job, now, lease_owner, lease_seconds)
                    job.created_at = job.updated_at = now
                return found

        return await self._in_thread(work)

    async def update(self, job: Job, *, lease: Lease | None = None) -> bool:
        expected = job.version
        written = job.model_copy(update={"version": expected + 1, "updated_at": self._clock()})
        data = written.model_dump_json()  # here, not in the thread: the caller may change `job` meanwhile
        owner, token = (lease.owner, lease.token) if lease is not None else (None, None)

        def work(db: sqlite3.Connection) -> bool:
            try:
                cursor = db.execute(
                    "UPDATE jobs SET task_id = ?, status = ?, data = ?, version = ?, has_work = ?, spend = ?, "
                    "currency = ?, billed_tokens = ?, "
                    "lease_owner = CASE WHEN ? THEN lease_owner ELSE NULL END, "
                    "lease_expires = CASE WHEN ? THEN lease_expires ELSE 0 END "
                    "WHERE job_id = ? AND version = ? AND (? IS NULL OR (lease_owner = ? AND lease_token = ?))",
                    (
                        written.task_id,
                        written.status,
                        data,
                        written.version,
                        int(written.has_work),
                        written.spend,
                        written.currency,
                        written.usage_tokens or 0,
                        written.has_work,
                        written.has_work,
                        written.job_id,
                        expected,
                        owner,
                        owner,
                        token,
                    ),
                )
            except sqlite3.IntegrityError as exc:
                if "jobs.task_id" not in str(exc):  # the unique task id; anything else (the status CHECK) is a bug
                    raise
                raise TaskIdTaken(written.task_id or "") from exc
            if cursor.rowcount == 1:
                return True
            if owner is not None:
                held = db.execute(
                    "SELECT 1 FROM jobs WHERE job_id = ? AND lease_owner = ? AND lease_token = ?",
                    (written.job_id, owner, token),
                ).fetchone()
                if held is None:
                    raise LeaseLost(written.job_id)
            return False

        won = await self._in_thread(work)
        if won:
            job.version, job.updated_at = written.version, written.updated_at
            self._settled.remember(written)
        else:
            self._settled.forget(job)
        return won

    async def get(self, key: str) -> Job | None:
        known = self._settled.version_of(key)

        def work(db: sqlite3.Connection) -> list[tuple[int, str | None]]:
            # The whole job only when its version is not the cached one.
            return db.execute(
                "SELECT version, CASE WHEN version = ? THEN NULL ELSE data END FROM jobs WHERE job_id = ? "
                "UNION ALL SELECT version, CASE WHEN version = ? THEN NULL ELSE data END FROM jobs WHERE task_id = ? "
                "LIMIT 1",
                (known, key, known, key),
            ).fetchall()

        rows = await self._in_thread(work, writes=False)
        if not rows:
            return None
        version, data = rows[0]
        if data is None:
            cached = self._settled.get(key, version)
            if cached is not None:
                return cached
            return await self._read_whole(key)
        job = Job.model_validate_json(data)
        self._settled.remember(job)
        return job

    async def _read_whole(self, key: str) -> Job | None:
        """The job read whole (the cached copy went away between the version read and now)."""

        def work(db: sqlite3.Connection) -> list[tuple[object, ...]]:
            return db.execute(
                "SELECT data FROM jobs WHERE job_id = ? UNION ALL SELECT data FROM jobs WHERE task_id = ? LIMIT 1",
                (key, key),
            ).fetchall()

        rows = await self._in_thread(work, writes=False)
        return Job.model_validate_json(str(rows[0][0])) if rows else None

    async def recent(self, status: str | None, limit: int, principal: str | None = None) -> tuple[list[Job], bool]:
        clauses = [c for c in ("status = ?" if status else "", "principal = ?" if principal is not None else "") if c]
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        parameters = tuple(v for v in (status, principal) if v is not None)

        def work(db: sqlite3.Connection) -> list[tuple[object, ...]]:
            # One row past the limit says whether more match, without counting them all.
            return db.execute(
                f"SELECT data FROM jobs {where} ORDER BY created_at DESC LIMIT ?", (*parameters, limit + 1)
            ).fetchall()

        rows = await self._in_thread(work, writes=False)
        return [Job.model_validate_json(str(row[0])) for row in rows[:limit]], len(rows) > limit

    async def count_by_status(self) -> dict[str, int]:
        def work(db: sqlite3.Connection) -> dict[str, int]:
            return {str(status): int(n) for status, n in db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY 1")}

        return await self._in_thread(work, writes=False)

    async def spend(self, since: float, principal: str | None = None) -> list[SpendRow]:
        dead = ", ".join("?" for _ in DEAD_STATUSES)
        scope, values = _scope(principal)

        def work(db: sqlite3.Connection) -> list[SpendRow]:
            rows = db.execute(
                "SELECT model, currency, COUNT(*), SUM(billed_tokens), SUM(spend) FROM jobs "
                f"WHERE created_at >= ? AND (status NOT IN ({dead}) OR spend > 0) {scope} GROUP BY 1, 2 "
                "ORDER BY 5 DESC",
                (since, *DEAD_STATUSES, *values),
            ).fetchall()
            return [
                SpendRow(str(m), c if isinstance(c, str) else None, int(n), int(t), float(x)) for m, c, n, t, x in rows
            ]

        return await self._in_thread(work, writes=False)

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
        dead = ", ".join("?" for _ in DEAD_STATUSES)

        def work(db: sqlite3.Connection) -> PlanRecord:
            with _write_transaction(db):
                now = self._clock()
                today = start_of_day(now)
                record = _plan(db, plan_id)
                if record is not None and record.state in ("cancelled", "done"):
                    return record
                rows = {
                    (int(shot), int(take)): (job_id, bool(live))
                    for shot, take, job_id, live in db.execute(
                        f"SELECT s.shot, s.take, s.job_id, j.status IS NOT NULL AND j.status NOT IN ({dead}) "
                        "FROM plan_shots s LEFT JOIN jobs j ON j.job_id = s.job_id WHERE s.plan_id = ?",
                        (*DEAD_STATUSES, plan_id),
                    )
                }
                running = record is not None and record.state == "running"
                needed = [
                    (shot, take, reserve)
                    for shot, take, reserve in plan_takes(reserves, takes)
                    if _needs_reserve(rows.get((shot, take)), running=running)
                ]
                cost = sum(reserve for _, _, reserve in needed)
                for limit in limits if cost > 0 else ():
                    spent = _spent(db, today, limit)
                    if spent + cost > limit.limit:
                        raise BudgetExceeded(limit, spent, cost)
                if record is None:
                    db.execute(
                        "INSERT INTO plans (plan_id, principal, created_at, data, state, currency) "
                        "VALUES (?, ?, ?, ?, 'running', ?)",
                        (plan_id, principal, now, data, currency),
                    )
                else:
                    db.execute(
                        "UPDATE plans SET state = 'running', currency = ? WHERE plan_id = ?", (currency, plan_id)
                    )
                db.executemany(
                    "INSERT INTO plan_shots (plan_id, shot, take, job_id, reserve, reserved_at) "
                    "VALUES (?, ?, ?, NULL, ?, ?) "
                    "ON CONFLICT (plan_id, shot, take) DO UPDATE SET job_id = NULL, reserve = excluded.reserve, "
                    "reserved_at = excluded.reserved_at",
                    [(plan_id, shot, take, reserve, now) for shot, take, reserve in needed],
                )
                if lease_owner is not None:
                    db.execute(
                        "UPDATE plans SET lease_owner = ?, lease_expires = ?, lease_token = lease_token + 1 "
                        "WHERE plan_id = ? AND (lease_owner IS NULL OR lease_expires < ?)",
                        (lease_owner, now + lease_seconds, plan_id, now),
                    )
                stored = _plan(db, plan_id)
            assert stored is not None
            return stored

        return await self._in_thread(work)

    async def get_plan(self, plan_id: str) -> PlanRecord | None:
        return await self._in_thread(lambda db: _plan(db, plan_id), writes=False)

    async def reserved(self, since: float, principal: str | None = None) -> dict[str, tuple[str, float]]:
        scope, values = _scope(principal)
        scope = scope.replace("principal", "p.principal")

        def work(db: sqlite3.Connection) -> dict[str, tuple[str, float]]:
            rows = db.execute(
                "SELECT p.plan_id, p.currency, SUM(s.reserve) FROM plan_shots s JOIN plans p ON p.plan_id = s.plan_id "
                f"WHERE s.job_id IS NULL AND p.state = 'running' {scope} GROUP BY 1, 2",
                values,
            ).fetchall()
            return {str(plan_id): (str(currency), float(amount)) for plan_id, currency, amount in rows}

        return await self._in_thread(work, writes=False)

    async def set_plan_state(self, plan_id: str, state: PlanState, *, allowed: Collection[PlanState]) -> bool:
        if not allowed:
            return False
        marks = ", ".join("?" for _ in allowed)

        def work(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "UPDATE plans SET state = ?, "
                "lease_owner = CASE WHEN ? = 'running' THEN lease_owner END, "
                "lease_expires = CASE WHEN ? = 'running' THEN lease_expires ELSE 0 END, "
                "cancelled_at = CASE WHEN ? = 'cancelled' THEN COALESCE(cancelled_at, ?) ELSE cancelled_at END "
                f"WHERE plan_id = ? AND state IN ({marks})",
                (state, state, state, state, self._clock(), plan_id, *allowed),
            )
            return cursor.rowcount == 1

        return await self._in_thread(work)

    async def cancel_plan(self, plan_id: str) -> PlanRecord | None:
        def work(db: sqlite3.Connection) -> PlanRecord | None:
            with _write_transaction(db):
                db.execute(
                    "UPDATE plans SET state = 'cancelled', cancelled_at = ?, lease_owner = NULL, lease_expires = 0 "
                    "WHERE plan_id = ? AND state IN ('running', 'stopped')",
                    (self._clock(), plan_id),
                )
                return _plan(db, plan_id)

        return await self._in_thread(work)

    async def claim_plans(
        self, owner: str, lease_seconds: float, *, limit: int, plan_id: str | None = None
    ) -> list[tuple[PlanRecord, int]]:
        def any_free(db: sqlite3.Connection) -> bool:
            row = db.execute(
                "SELECT 1 FROM plans WHERE state = 'running' AND (lease_owner IS NULL OR lease_expires < ?) "
                "AND (? IS NULL OR plan_id = ?) LIMIT 1",
                (self._clock(), plan_id, plan_id),
            ).fetchone()
            return row is not None

        # Every process looks every claim interval, and almost always finds nothing: a read (which WAL answers
        # beside a writer) before taking the write lock.
        if not await self._in_thread(any_free, writes=False):
            return []

        def work(db: sqlite3.Connection) -> list[tuple[PlanRecord, int]]:
            with _write_transaction(db):
                now = self._clock()
                rows = db.execute(
                    "SELECT plan_id FROM plans WHERE state = 'running' AND (lease_owner IS NULL OR lease_expires < ?) "
                    "AND (? IS NULL OR plan_id = ?) ORDER BY lease_expires LIMIT ?",
                    (now, plan_id, plan_id, limit),
                ).fetchall()
                claimed: list[tuple[PlanRecord, int]] = []
                for (found,) in rows:
                    db.execute(
                        "UPDATE plans SET lease_owner = ?, lease_expires = ?, lease_token = lease_token + 1 "
                        "WHERE plan_id = ?",
                        (owner, now + lease_seconds, found),
                    )
                    (token,) = db.execute("SELECT lease_token FROM plans WHERE plan_id = ?", (found,)).fetchone()
                    record = _plan(db, str(found))
                    assert record is not None
                    claimed.append((record, int(token)))
                return claimed

        return await self._in_thread(work)

    async def renew_plans(self, owner: str, leases: Mapping[str, int], lease_seconds: float) -> set[str]:
        def work(db: sqlite3.Connection) -> set[str]:
            with _write_transaction(db):
                until = self._clock() + lease_seconds
                kept: set[str] = set()
                for plan_id, token in leases.items():
                    cursor = db.execute(
                        "UPDATE plans SET lease_expires = ? WHERE plan_id = ? AND lease_owner = ? AND lease_token = ? "
                        "AND state = 'running'",
                        (until, plan_id, owner, token),
                    )
                    if cursor.rowcount == 1:
                        kept.add(plan_id)
                return kept

        return await self._in_thread(work) if leases else set()

    async def release_plans(self, owner: str, leases: Mapping[str, int]) -> None:
        def work(db: sqlite3.Connection) -> None:
            db.executemany(
                "UPDATE plans SET lease_owner = NULL, lease_expires = 0 "
                "WHERE plan_id = ? AND lease_owner = ? AND lease_token = ?",
                [(plan_id, owner, token) for plan_id, token in leases.items()],
            )

        if leases:
            await self._in_thread(work)

    async def owner_of(self, task_ids: Sequence[str]) -> dict[str, str]:
        if not task_ids:
            return {}
        marks = ", ".join("?" for _ in task_ids)

        def work(db: sqlite3.Connection) -> dict[str, str]:
            rows = db.execute(f"SELECT task_id, job_id FROM jobs WHERE task_id IN ({marks})", tuple(task_ids))
            return {str(task_id): str(job_id) for task_id, job_id in rows}

        return await self._in_thread(work, writes=False)

    async def claim(
        self, owner: str, lease_seconds: float, *, limit: int, job_id: str | None = None
    ) -> list[tuple[Job, int]]:
        def work(db: sqlite3.Connection) -> list[tuple[Job, int]]:
            with _write_transaction(db):
                now = self._clock()
                if job_id is not None:
                    rows = db.execute(
                        "SELECT job_id FROM jobs WHERE job_id = ? AND has_work = 1 "
                        "AND (lease_owner IS NULL OR lease_owner = ? OR lease_expires < ?)",
                        (job_id, owner, now),
                    ).fetchall()
                else:
                    rows = db.execute(
                        "SELECT job_id FROM jobs WHERE has_work = 1 AND (lease_owner IS NULL OR lease_expires < ?) "
                        "ORDER BY lease_expires LIMIT ?",
                        (now, limit),
                    ).fetchall()
                ids = [str(row[0]) for row in rows]
                if not ids:
                    return []
                marks = ", ".join("?" for _ in ids)
                db.execute(
                    f"UPDATE jobs SET lease_owner = ?, lease_expires = ?, lease_token = lease_token + 1 "
                    f"WHERE job_id IN ({marks})",
                    (owner, now + lease_seconds, *ids),
                )
                data = db.execute(f"SELECT data, lease_token FROM jobs WHERE job_id IN ({marks})", tuple(ids))
                return [(Job.model_validate_json(str(row[0])), int(row[1])) for row in data]

        return await self._in_thread(work)

    async def renew(self, owner: str, leases: Mapping[str, int], lease_seconds: float) -> set[str]:
        if not leases:
            return set()
        pairs = ", ".join("(?, ?)" for _ in leases)
        values = tuple(value for pair in leases.items() for value in pair)

        def work(db: sqlite3.Connection) -> set[str]:
            with _write_transaction(db):
                db.execute(
                    f"WITH held(job_id, token) AS (VALUES {pairs}) UPDATE jobs SET lease_expires = ? "
                    "WHERE lease_owner = ? AND (job_id, lease_token) IN (SELECT job_id, token FROM held)",
                    (*values, self._clock() + lease_seconds, owner),
                )
                rows = db.execute(
                    f"WITH held(job_id, token) AS (VALUES {pairs}) SELECT job_id FROM jobs "
                    "WHERE lease_owner = ? AND (job_id, lease_token) IN (SELECT job_id, token FROM held)",
                    (*values, owner),
                ).fetchall()
            return {str(row[0]) for row in rows}

        return await self._in_thread(work)

    async def release(self, owner: str, leases: Mapping[str, int]) -> None:
        if not leases:
            return
        pairs = ", ".join("(?, ?)" for _ in leases)
        values = tuple(value for pair in leases.items() for value in pair)

        def work(db: sqlite3.Connection) -> None:
            db.execute(
                f"WITH held(job_id, token) AS (VALUES {pairs}) UPDATE jobs SET lease_owner = NULL, lease_expires = 0 "
                "WHERE lease_owner = ? AND (job_id, lease_token) IN (SELECT job_id, token FROM held)",
                (*values, owner),
            )

        await self._in_thread(work)

    async def close(self) -> None:
        def work() -> None:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

        await anyio.to_thread.run_sync(work, limiter=self._thread.limiter)


def _plan(db: sqlite3.Connection, plan_id: str) -> PlanRecord | None:
    row = db.execute(
        "SELECT principal, created_at, cancelled_at, data, state, currency, lease_owner, lease_token FROM plans "
        "WHERE plan_id = ?",
        (plan_id,),
    ).fetchone()
    if row is None:
        return None
    shots = db.execute("SELECT shot, take, job_id, reserve FROM plan_shots WHERE plan_id = ?", (plan_id,)).fetchall()
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


def _spent(db: sqlite3.Connection, since: float, limit: SpendLimit) -> float:
    """What counts against `limit` since `since`: the jobs' spend and the reservations of running plans."""
    scope, values = _scope(limit.principal)
    (spent,) = db.execute(
        f"SELECT (SELECT COALESCE(SUM(spend), 0) FROM jobs WHERE created_at >= ? AND currency = ? {scope}) + "
        "(SELECT COALESCE(SUM(s.reserve), 0) FROM plan_shots s JOIN plans p ON p.plan_id = s.plan_id "
        "WHERE s.job_id IS NULL AND p.state = 'running' AND p.currency = ? "
        f"{scope.replace('principal', 'p.principal')})",
        (since, limit.currency, *values, limit.currency, *values),
    ).fetchone()
    return float(spent)


def _link(db: sqlite3.Connection, plan_shot: PlanShot | None, job_id: str) -> None:
    """Make `job_id` the job of a plan's shot (its reservation no longer counts: the job's spend does)."""
    if plan_shot is not None:
        db.execute(
            "INSERT INTO plan_shots (plan_id, shot, take, job_id) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (plan_id, shot, take) DO UPDATE SET job_id = excluded.job_id, reserve = 0",
            (*take_of(plan_shot), job_id),
        )


def _scope(principal: str | None) -> tuple[str, tuple[str, ...]]:
    """The SQL that narrows a query to one principal's jobs (nothing for everyone's)."""
    return ("AND principal = ?", (principal,)) if principal is not None else ("", ())


@contextmanager
def _write_transaction(db: sqlite3.Connection) -> Generator[None]:
    """`BEGIN IMMEDIATE … COMMIT`: takes SQLite's write lock first, so what is read inside cannot change under us.
    Inside a batch's transaction (which began IMMEDIATE, so the lock is held) it is a savepoint of that one."""
    if db.in_transaction:
        db.execute("SAVEPOINT operation")
        try:
            yield
        except BaseException:
            if db.in_transaction:  # else SQLite already rolled everything back; the caller's error stands
                db.execute("ROLLBACK TO operation")
                db.execute("RELEASE operation")
            raise
        db.execute("RELEASE operation")
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def migrate(db: sqlite3.Connection) -> list[str]:
    """Apply the migrations this journal lacks (`schema.migrations("sqlite")`), in one transaction under SQLite's
    write lock: a process opening the file meanwhile waits, then finds nothing left to do. Returns the versions
    applied now.

    A journal written before versions were recorded (no `schema_migrations`, a `jobs` table) is first given the
    versions it already has (`LEGACY_BASELINE`), so it is upgraded in place, its jobs kept."""
    applied_now: list[str] = []
    with _write_transaction(db):
        db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version TEXT PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
        )
        applied = {str(row[0]) for row in db.execute("SELECT version FROM schema_migrations")}
        legacy = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'jobs'").fetchone()
        if not applied and legacy is not None:
            applied = _legacy_baseline(db)
            for version in sorted(applied):
                db.execute("INSERT INTO schema_migrations (version) VALUES (?)", (version,))
            logger.info("journal schema: a journal from an earlier release, at %s", max(applied, default="0000"))
        for version, sql in schema.migrations("sqlite"):
            if version in applied:
                continue
            for statement in statements(sql):
                db.execute(statement)
            db.execute("INSERT INTO schema_migrations (version) VALUES (?)", (version,))
            applied_now.append(version)
            logger.info("journal schema: applied migration %s", version)
    return applied_now


def _legacy_baseline(db: sqlite3.Connection) -> set[str]:
    """The versions a journal written before versions were recorded already has: every one up to the last whose
    work is found in it."""
    found = [index for index, (_, probe) in enumerate(LEGACY_BASELINE) if db.execute(probe).fetchone() is not None]
    last = max(found, default=-1)
    return {version for version, _ in LEGACY_BASELINE[: last + 1]}


def statements(sql: str) -> list[str]:
    """A migration file's statements, one by one: `executescript` would commit the migration's transaction."""
    found: list[str] = []
    pending = ""
    for line in sql.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            found.append(pending.strip())
            pending = ""
    leftover = "\n".join(line for line in pending.splitlines() if line.strip() and not line.strip().startswith("--"))
    if leftover:
        raise ValueError(f"a migration ends in an incomplete statement: {leftover[:80]!r}")
    return found


def _insert_row(db: sqlite3.Connection, job: Job, now: float, lease_owner: str | None, lease_seconds: float) -> None:
    written = job.model_copy(update={"created_at": now, "updated_at": now})
    db.execute(
        "INSERT INTO jobs (job_id, task_id, status, fingerprint, created_at, data, version, has_work, "
        "lease_owner, lease_expires, lease_token, spend, principal, model, currency, billed_tokens, approval_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            written.job_id,
            written.task_id,
            written.status,
            written.fingerprint,
            now,
            written.model_dump_json(),
            written.version,
            int(written.has_work),
            lease_owner,
            now + lease_seconds if lease_owner else 0.0,
            FIRST_TOKEN if lease_owner else 0,
            written.spend,
            written.principal,
            written.model,
            written.currency,
            written.usage_tokens or 0,
            written.approval_id,
        ),
    )
