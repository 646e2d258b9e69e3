"""The journal's schema: one numbered scheme for SQLite and PostgreSQL, a status column the databases themselves keep
to a job's states, and SQLite journals written by earlier releases upgraded in place with their jobs.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from seedance_mcp.journal import FIRST_TOKEN
from seedance_mcp.journal.job import STATUSES
from seedance_mcp.journal.schema import migrations
from seedance_mcp.journal.sqlite import SqliteTaskStore, statements
from tests.conftest import make_job

if TYPE_CHECKING:
    from tests.fakes.postgres_server import PostgresServer

pytestmark = pytest.mark.anyio
pytest_plugins = ["tests.fakes.postgres_server"]  # the session's PostgreSQL server fixture, `postgres_server`

T0 = 1_750_000_000.0


def test_both_databases_have_the_same_versions() -> None:
    """A schema change is one version, written for each database: neither journal may fall behind the other."""
    sqlite_versions = [version for version, _ in migrations("sqlite")]
    assert sqlite_versions == [version for version, _ in migrations("postgres")]
    assert sqlite_versions == sorted(sqlite_versions) and sqlite_versions[-1] == "0011_plan_takes"


def test_a_migration_is_split_into_its_statements_but_not_inside_a_string() -> None:
    sql = "-- a note; with a semicolon\nCREATE TABLE t (a TEXT DEFAULT ';');\n\nINSERT INTO t VALUES ('x;y');\n-- end\n"
    assert statements(sql) == [
        "-- a note; with a semicolon\nCREATE TABLE t (a TEXT DEFAULT ';');",
        "INSERT INTO t VALUES ('x;y');",
    ]
    with pytest.raises(ValueError, match="incomplete statement"):
        statements("CREATE TABLE t (a TEXT")


# -- the status column takes a job's states only, whoever writes it -----------------------------------------------


async def test_sqlite_refuses_a_status_outside_the_vocabulary_however_it_is_written(tmp_path: Path) -> None:
    """Every state a job can be in is written; any other text is refused by SQLite itself: by a statement of
    anyone's, and by the store (as the database's error, not mistaken for a taken task id)."""
    path = tmp_path / "jobs.sqlite3"
    store = await SqliteTaskStore.open(path)
    try:
        for status in STATUSES:
            assert (
                await store.insert(make_job(status=status), dedupe_window=None, lease_owner=None, lease_seconds=30)
                is None
            )
        job = make_job()
        assert await store.insert(job, dedupe_window=None, lease_owner=None, lease_seconds=30) is None
        with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed: jobs_status_known"):
            await store.update(job.model_copy(update={"status": "done"}))  # model_copy does not validate
        assert (await store.count_by_status()) == {status: 2 if status == "queued" else 1 for status in STATUSES}
    finally:
        await store.close()
    with sqlite3.connect(path) as db, pytest.raises(sqlite3.IntegrityError, match="jobs_status_known"):
        db.execute("UPDATE jobs SET status = 'downloading' WHERE job_id = ?", (job.job_id,))


@pytest.mark.postgres
async def test_postgresql_refuses_a_status_outside_the_vocabulary_however_it_is_written(
    postgres_server: PostgresServer,
) -> None:
    import psycopg
    from psycopg import errors

    from seedance_mcp.journal.postgres import open_postgres_store
    from tests.fakes.postgres_server import fresh_database

    url = await fresh_database(postgres_server)
    store = await open_postgres_store(url)
    try:
        for status in STATUSES:
            assert (
                await store.insert(make_job(status=status), dedupe_window=None, lease_owner=None, lease_seconds=30)
                is None
            )
        job = make_job()
        assert await store.insert(job, dedupe_window=None, lease_owner=None, lease_seconds=30) is None
        with pytest.raises(errors.CheckViolation, match="jobs_status_known"):
            await store.update(job.model_copy(update={"status": "done"}))
        assert (await store.count_by_status()) == {status: 2 if status == "queued" else 1 for status in STATUSES}
    finally:
        await store.close()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as db:
        with pytest.raises(errors.CheckViolation, match="jobs_status_known"):
            await db.execute("UPDATE jobs SET status = 'downloading' WHERE job_id = %s", (job.job_id,))


@pytest.mark.postgres
async def test_a_postgresql_journal_of_the_previous_release_gets_the_check_with_its_jobs(
    postgres_server: PostgresServer,
) -> None:
    """A database migrated by the previous release (versions up to 0006) takes 0007 over its existing jobs."""
    import psycopg

    from seedance_mcp.journal.postgres import open_postgres_store
    from tests.fakes.postgres_server import fresh_database

    url = await fresh_database(postgres_server)
    job = make_job(status="succeeded", task_id="cgt-old", video_path="/videos/old.mp4")
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as db:
        await db.execute(
            "CREATE TABLE schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for version, sql in migrations("postgres")[:6]:
            await db.execute(sql.encode())
            await db.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
        await db.execute(
            "INSERT INTO jobs (job_id, task_id, status, fingerprint, created_at, version, has_work, data) "
            "VALUES (%s, %s, %s, %s, %s, 3, false, %s::jsonb)",
            (job.job_id, job.task_id, job.status, job.fingerprint, job.created_at, job.model_dump_json()),
        )
    store = await open_postgres_store(url)
    try:
        assert await store.get("cgt-old") == job
    finally:
        await store.close()
    async with await psycopg.AsyncConnection.connect(url) as db:
        rows = await (await db.execute("SELECT version FROM schema_migrations ORDER BY version")).fetchall()
        assert [row[0] for row in rows] == [version for version, _ in migrations("postgres")]


# -- SQLite journals written by earlier releases --------------------------------------------------------------

FIRST_RELEASE = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    task_id TEXT,
    status TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at REAL NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_task_id ON jobs (task_id);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status);
CREATE INDEX IF NOT EXISTS jobs_fingerprint ON jobs (fingerprint, created_at);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at);
"""
"""`git show b7278a5:server/seedance_mcp/store.py` `_SCHEMA`: the first release, a table and four indexes."""

_LATER_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    task_id TEXT,
    status TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at REAL NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, created_at);
CREATE INDEX IF NOT EXISTS jobs_fingerprint ON jobs (fingerprint, created_at);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at);
"""
_LATER_COLUMNS = """
ALTER TABLE jobs ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN has_work INTEGER NOT NULL DEFAULT 1;
ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_expires REAL NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN spend REAL NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN principal TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN model TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN currency TEXT;
ALTER TABLE jobs ADD COLUMN billed_tokens INTEGER NOT NULL DEFAULT 0;
"""
SPEND_RELEASE = (
    _LATER_SCHEMA
    + _LATER_COLUMNS
    + """
DROP INDEX IF EXISTS jobs_task_id;
CREATE UNIQUE INDEX IF NOT EXISTS jobs_task_id_unique ON jobs (task_id) WHERE task_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_with_work ON jobs (lease_expires) WHERE has_work = 1;
CREATE INDEX IF NOT EXISTS jobs_principal ON jobs (principal, created_at);
CREATE INDEX IF NOT EXISTS jobs_spend ON jobs (created_at, principal, status, spend, model, currency, billed_tokens);
"""
)
"""`git show f8e612d:server/seedance_mcp/store.py`: `_SCHEMA`, `_MIGRATIONS`, `_INDEXES` as its start-up ran them
(per-principal spend, and the indexes the next release replaced)."""
PREVIOUS_RELEASE = (
    _LATER_SCHEMA
    + _LATER_COLUMNS
    + """
DROP INDEX IF EXISTS jobs_task_id;
CREATE UNIQUE INDEX IF NOT EXISTS jobs_task_id_unique ON jobs (task_id) WHERE task_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_with_work ON jobs (lease_expires) WHERE has_work = 1;
DROP INDEX IF EXISTS jobs_principal;
DROP INDEX IF EXISTS jobs_spend;
CREATE INDEX IF NOT EXISTS jobs_principal_status ON jobs (principal, status, created_at);
CREATE INDEX IF NOT EXISTS jobs_principal_spend
    ON jobs (principal, created_at, status, spend, model, currency, billed_tokens);
"""
)
"""`git show 1c2cbf3:server/seedance_mcp/store.py`: `_SCHEMA`, `_MIGRATIONS`, `_INDEXES` as its start-up ran them."""
LEASE_TOKEN_RELEASE = PREVIOUS_RELEASE + "ALTER TABLE jobs ADD COLUMN lease_token INTEGER NOT NULL DEFAULT 0;\n"
"""`git show 3174475:server/seedance_mcp/store.py` (issue 15): the previous release's and the lease token."""

RELEASES = {
    "first release (b7278a5)": (FIRST_RELEASE, None),
    "per-principal spend (f8e612d)": (SPEND_RELEASE, "0004_spend_columns"),
    "previous release (1c2cbf3)": (PREVIOUS_RELEASE, "0005_principal_indexes"),
    "lease tokens (3174475)": (LEASE_TOKEN_RELEASE, "0006_lease_token"),
}
"""Each earlier release's schema, and the last version it already had (None: not even the first)."""


def old_row(job_id: str, status: str, task_id: str | None, **fields: Any) -> dict[str, Any]:
    """A job as the earlier releases wrote it: the JSON of the fields every release's Job had, and a few more."""
    data = {
        "job_id": job_id,
        "provider": "ark",
        "model": "seedance-1-0-pro-250528",
        "model_key": "pro",
        "prompt": "a red kite over the sea",
        "status": status,
        "fingerprint": f"fp-{job_id}",
        "created_at": T0,
        "updated_at": T0,
        "task_id": task_id,
        **fields,
    }
    return {"job_id": job_id, "task_id": task_id, "status": status, "created_at": T0, "data": json.dumps(data)}


OLD_JOBS = [
    old_row("job-1", "succeeded", "cgt-1", video_path="/videos/1.mp4", usage_tokens=108900, currency="CNY"),
    old_row("job-2", "running", "cgt-2"),
    old_row("job-3", "unknown", None, error_message="the create answer was lost"),
    old_row("job-4", "failed", "cgt-4", error_code="OutputVideoSensitive"),
]


@pytest.mark.parametrize("release", RELEASES)
async def test_a_sqlite_journal_of_an_earlier_release_is_upgraded_in_place_with_its_jobs(
    release: str, tmp_path: Path
) -> None:
    """The file an earlier release left (its schema, its jobs) opens: the versions it had are recorded as such, the
    rest applied, every job reads back as it was, and the upgraded file keeps the contract (and the CHECK)."""
    statements_of_release, had = RELEASES[release]
    path = tmp_path / "jobs.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(statements_of_release)
        for row in OLD_JOBS:
            db.execute(
                "INSERT INTO jobs (job_id, task_id, status, fingerprint, created_at, data) "
                "VALUES (:job_id, :task_id, :status, 'fp', :created_at, :data)",
                row,
            )
        if had is None:  # the first release did not keep task ids unique: a second job with cgt-1
            db.execute(
                "INSERT INTO jobs (job_id, task_id, status, fingerprint, created_at, data) "
                "VALUES ('job-5', 'cgt-1', 'queued', 'fp', ?, ?)",
                (T0 + 1, old_row("job-5", "queued", "cgt-1")["data"]),
            )
    db.close()
    store = await SqliteTaskStore.open(path)
    try:
        for row in OLD_JOBS:
            job = await store.get(row["job_id"])
            assert job is not None and (job.status, job.task_id) == (row["status"], row["task_id"])
            if row["task_id"] is not None:
                assert await store.get(row["task_id"]) == job
        first = await store.get("job-1")
        assert first is not None and first.video_path == "/videos/1.mp4" and first.usage_tokens == 108900
        if had is None:
            assert await store.owner_of(["cgt-1"]) == {"cgt-1": "job-1"}  # the first job keeps the shared id
        listed, _ = await store.recent(None, 10)
        assert {job.job_id for job in listed} >= {row["job_id"] for row in OLD_JOBS}
        fresh = make_job()
        assert await store.insert(fresh, dedupe_window=60, lease_owner="me", lease_seconds=30) is None
        claimed = await store.claim("me", 30, limit=10, job_id=fresh.job_id)
        assert [(job.job_id, token) for job, token in claimed] == [(fresh.job_id, FIRST_TOKEN + 1)]
        fresh.status = "running"
        assert await store.update(fresh)
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        versions = [str(row[0]) for row in db.execute("SELECT version FROM schema_migrations ORDER BY version")]
        assert versions == [version for version, _ in migrations("sqlite")]
        totals = dict(db.execute("SELECT job_id, billed_tokens FROM jobs").fetchall())
        assert totals["job-1"] == (108900 if had is None else 0)  # filled in by 0004 from the job's JSON
        indexes = {str(row[0]) for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"jobs_status", "jobs_task_id_unique", "jobs_with_work", "jobs_principal_spend"} <= indexes
        assert not {"jobs_task_id", "jobs_principal", "jobs_spend"} & indexes
        with pytest.raises(sqlite3.IntegrityError, match="jobs_status_known"):
            db.execute("UPDATE jobs SET status = 'downloading' WHERE job_id = 'job-2'")
    db.close()


async def test_a_journal_already_at_the_current_schema_gets_no_migration(tmp_path: Path) -> None:
    from seedance_mcp.journal.sqlite import migrate

    store = await SqliteTaskStore.open(tmp_path / "jobs.sqlite3")
    await store.close()
    with sqlite3.connect(tmp_path / "jobs.sqlite3", isolation_level=None) as db:
        assert migrate(db) == []
    db.close()


# -- storyboard plans recorded before 0010 ------------------------------------------------------------------------


async def test_plans_of_a_sqlite_journal_at_0009_become_stopped_or_cancelled_with_their_shots(tmp_path: Path) -> None:
    """0010 builds plan_shots again (a shot may now have no job, only a reservation): the shots' jobs are kept, a
    cancelled plan is `cancelled`, any other `stopped` (a storyboard call continues it; no worker starts it alone),
    and neither reserves anything."""
    path = tmp_path / "jobs.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE schema_migrations (version TEXT PRIMARY KEY, applied_at TEXT)")
    for version, sql in migrations("sqlite")[:9]:
        for statement in statements(sql):
            db.execute(statement)
        db.execute("INSERT INTO schema_migrations (version) VALUES (?)", (version,))
    db.execute("INSERT INTO plans (plan_id, principal, created_at, data) VALUES ('sb-old', '', ?, '{}')", (T0,))
    db.execute(
        "INSERT INTO plans (plan_id, principal, created_at, cancelled_at, data) VALUES ('sb-gone', '', ?, ?, '')",
        (T0, T0 + 1),
    )
    db.execute("INSERT INTO plan_shots (plan_id, shot, job_id) VALUES ('sb-old', 0, 'job-a'), ('sb-old', 1, 'job-b')")
    db.close()
    store = await SqliteTaskStore.open(path)
    try:
        old, gone = await store.get_plan("sb-old"), await store.get_plan("sb-gone")
        assert old is not None and (old.state, old.shots, old.reserved) == ("stopped", {0: "job-a", 1: "job-b"}, {})
        assert old.takes == {(0, 1): "job-a", (1, 1): "job-b"}  # 0011: the rows from before are take 1
        assert gone is not None and gone.state == "cancelled"
        assert await store.claim_plans("me", 30.0, limit=10) == []
    finally:
        await store.close()


@pytest.mark.postgres
async def test_plans_of_a_postgresql_journal_at_0009_become_stopped_or_cancelled_with_their_shots(
    postgres_server: PostgresServer,
) -> None:
    import psycopg

    from seedance_mcp.journal.postgres import open_postgres_store
    from tests.fakes.postgres_server import fresh_database

    url = await fresh_database(postgres_server)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as db:
        await db.execute(
            "CREATE TABLE schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for version, sql in migrations("postgres")[:9]:
            await db.execute(sql.encode())
            await db.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
        await db.execute(
            "INSERT INTO plans (plan_id, principal, created_at, data) VALUES ('sb-old', '', %s, '{}')", (T0,)
        )
        await db.execute(
            "INSERT INTO plans (plan_id, principal, created_at, cancelled_at, data) VALUES ('sb-gone', '', %s, %s, '')",
            (T0, T0 + 1),
        )
        await db.execute("INSERT INTO plan_shots (plan_id, shot, job_id) VALUES ('sb-old', 0, 'job-a')")
    store = await open_postgres_store(url)
    try:
        old, gone = await store.get_plan("sb-old"), await store.get_plan("sb-gone")
        assert old is not None and (old.state, old.shots, old.reserved) == ("stopped", {0: "job-a"}, {})
        assert old.takes == {(0, 1): "job-a"}  # 0011: the rows from before are take 1
        assert gone is not None and gone.state == "cancelled"
        assert await store.claim_plans("me", 30.0, limit=10) == []
    finally:
        await store.close()
