"""What only the PostgreSQL journal has: its migrations, the database's lease clock, its connection pool.

The contract itself (dedupe, compare-and-set, leases, reads) is in test_store_contract.py, run on every store.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import pytest

from seedance_mcp.journal import FIRST_TOKEN
from tests.conftest import make_job

if TYPE_CHECKING:
    from tests.fakes.postgres_server import PostgresServer

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]
pytest_plugins = ["tests.fakes.postgres_server"]  # the session's PostgreSQL server fixture, `postgres_server`

SERVER_ROOT = Path(__file__).resolve().parents[2] / "server"


@pytest.fixture
async def database_url(postgres_server: PostgresServer) -> str:
    """The URL of a new, empty database on the session's server."""
    from tests.fakes.postgres_server import fresh_database

    return await fresh_database(postgres_server)


async def test_replicas_opening_an_empty_database_together_apply_each_migration_once(database_url: str) -> None:
    """Replicas starting at the same moment queue on the migration lock: every migration runs once, all open."""
    import psycopg

    from seedance_mcp.journal.postgres import PostgresTaskStore, migrations, open_postgres_store

    stores: list[PostgresTaskStore] = []

    async def start() -> None:
        stores.append(await open_postgres_store(database_url, max_size=2))

    try:
        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                for _ in range(6):
                    tg.start_soon(start)
        job = make_job()
        assert await stores[0].insert(job, dedupe_window=None, lease_owner=None, lease_seconds=30) is None
        assert await stores[-1].get(job.job_id) == job
    finally:
        for store in stores:
            await store.close()
    async with await psycopg.AsyncConnection.connect(database_url) as db:
        rows = await (await db.execute("SELECT version FROM schema_migrations ORDER BY version")).fetchall()
    assert [row[0] for row in rows] == [version for version, _ in migrations()]


async def test_a_database_already_up_to_date_gets_no_migration(database_url: str) -> None:
    """`migrate` on a database at the current schema applies nothing."""
    import psycopg

    from seedance_mcp.journal.postgres import migrate, migrations

    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as db:
        assert await migrate(db) == [version for version, _ in migrations()]
        assert await migrate(db) == []


async def test_leases_run_on_the_database_clock_when_the_store_has_none(database_url: str) -> None:
    """Without a clock of its own the store times leases by the database: a live lease holds, a lapsed one frees."""
    from seedance_mcp.journal.postgres import open_postgres_store

    store = await open_postgres_store(database_url)
    try:
        job = make_job()
        assert await store.insert(job, dedupe_window=None, lease_owner="a", lease_seconds=60) is None
        assert await store.claim("b", 60, limit=10) == []
        assert await store.renew("a", {job.job_id: FIRST_TOKEN}, -1) == {job.job_id}  # lapsed a second ago
        assert [j.job_id for j, _ in await store.claim("b", 60, limit=10)] == [job.job_id]
        assert await store.claim("a", 60, limit=10) == []
    finally:
        await store.close()


async def test_the_indexed_columns_agree_with_the_stored_job(database_url: str) -> None:
    """Each write keeps the queried columns (status, task id, version, has_work, lease) in step with the JSONB job."""
    import psycopg

    from seedance_mcp.journal.postgres import open_postgres_store

    store = await open_postgres_store(database_url)
    try:
        job = make_job()
        assert await store.insert(job, dedupe_window=None, lease_owner="a", lease_seconds=60) is None
        job.status, job.task_id = "succeeded", "cgt-1"
        job.video_url, job.video_path = "https://cdn.example/v.mp4", "/videos/v.mp4"
        assert await store.update(job)
    finally:
        await store.close()
    async with await psycopg.AsyncConnection.connect(database_url) as db:
        cursor = await db.execute(
            "SELECT status, task_id, version, has_work, lease_owner, lease_expires, data->>'status', "
            "(data->>'version')::int FROM jobs"
        )
        assert await cursor.fetchall() == [("succeeded", "cgt-1", 1, False, None, 0.0, "succeeded", 1)]


async def test_a_nul_character_in_a_jobs_text_is_kept_as_a_replacement_character(database_url: str) -> None:
    """PostgreSQL cannot store U+0000: a job's NUL is written as U+FFFD rather than failing the write."""
    from seedance_mcp.journal.postgres import open_postgres_store

    store = await open_postgres_store(database_url)
    try:
        job = make_job(prompt="a\x00b \\u0000", error_message="\x00")
        assert await store.insert(job, dedupe_window=None, lease_owner=None, lease_seconds=30) is None
        job.status = "running"
        assert await store.update(job)
        stored = await store.get(job.job_id)
        assert stored is not None
        assert (stored.prompt, stored.error_message, stored.status) == ("a\ufffdb \\u0000", "\ufffd", "running")
    finally:
        await store.close()


async def test_connections_the_server_dropped_are_replaced_before_the_next_write(database_url: str) -> None:
    """After the server ends every pooled connection (a restart, an idle timeout), the next calls still succeed."""
    import psycopg

    from seedance_mcp.journal.postgres import open_postgres_store

    store = await open_postgres_store(database_url, min_size=2, max_size=2)
    try:
        job = make_job()
        assert await store.insert(job, dedupe_window=None, lease_owner=None, lease_seconds=30) is None
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as admin:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        with anyio.fail_after(10):
            job.status = "running"
            assert await store.update(job)
            assert [j.job_id for j, _ in await store.claim("a", 30, limit=10)] == [job.job_id]
    finally:
        await store.close()


async def test_a_database_that_cannot_be_reached_fails_at_open(postgres_server: PostgresServer) -> None:
    """A URL naming no server fails at once as JournalUnavailable (the runtime tries again later), with psycopg's
    own reason, not after a pool time-out."""
    from seedance_mcp.errors import JournalUnavailable
    from seedance_mcp.journal.postgres import open_postgres_store

    url = postgres_server.url("postgres").replace("port=5432", "port=1")
    with anyio.fail_after(15), pytest.raises(JournalUnavailable) as caught:
        await open_postgres_store(url)
    assert "PostgreSQL journal" in str(caught.value) and "OperationalError" in caught.value.reason


async def test_created_at_is_the_databases_clock_when_the_store_has_none(database_url: str) -> None:
    """Without a clock of its own the store stamps a job with the database's time, whatever the caller put in it."""
    import psycopg

    from seedance_mcp.journal.postgres import open_postgres_store

    async def database_now() -> float:
        async with await psycopg.AsyncConnection.connect(database_url) as db:
            row = await (await db.execute("SELECT extract(epoch FROM clock_timestamp())::float8")).fetchone()
        assert row is not None
        return float(row[0])

    store = await open_postgres_store(database_url)
    try:
        before = await database_now()
        job = make_job(created_at=before - 660, updated_at=before - 660)  # a caller 11 minutes behind
        assert await store.insert(job, dedupe_window=600, lease_owner="a", lease_seconds=60) is None
        after = await database_now()
        stored = await store.get(job.job_id)
        assert stored is not None and before <= stored.created_at <= after and stored.created_at == job.created_at
        assert before <= await store.now() - 0 and await store.now() <= await database_now()
    finally:
        await store.close()


async def test_a_store_outlives_a_database_outage_without_being_reopened(own_postgres_server: PostgresServer) -> None:
    """The server stops under an open store: its calls raise JournalUnavailable (naming the journal) within the
    pool's time-out instead of hanging or crashing; once the server is back, the same store works again."""
    from seedance_mcp.errors import JournalUnavailable
    from seedance_mcp.journal.postgres import POOL_TIMEOUT, open_postgres_store
    from tests.fakes.postgres_server import fresh_database

    url = await fresh_database(own_postgres_server)
    store = await open_postgres_store(url, max_size=2)
    try:
        job = make_job()
        assert await store.insert(job, dedupe_window=600, lease_owner="a", lease_seconds=60) is None
        await anyio.to_thread.run_sync(own_postgres_server.stop)
        try:
            with anyio.fail_after(2 * POOL_TIMEOUT + 10):  # two calls, each bounded by the pool's time-out
                with pytest.raises(JournalUnavailable) as during:
                    await store.insert(make_job(), dedupe_window=600, lease_owner="a", lease_seconds=60)
                with pytest.raises(JournalUnavailable):
                    await store.get(job.job_id)
        finally:
            await anyio.to_thread.run_sync(own_postgres_server.start)
        with anyio.fail_after(30):
            while True:
                try:
                    stored = await store.get(job.job_id)
                    break
                except JournalUnavailable:
                    await anyio.sleep(0.2)
            job.status = "running"
            assert await store.update(job)
        assert stored is not None and stored.job_id == job.job_id
    finally:
        await store.close()
    assert "the PostgreSQL journal" in str(during.value)


@pytest.mark.subprocess
def test_importing_the_postgres_store_does_not_load_psycopg() -> None:
    """psycopg loads only when a PostgreSQL journal is opened, never at import (the stdio start-up stays lean)."""
    code = (
        "import sys, seedance_mcp.journal.postgres, seedance_mcp.app; "
        "sys.exit(1 if any(m.split('.')[0] in ('psycopg', 'psycopg_pool') for m in sys.modules) else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=SERVER_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


async def test_the_server_keeps_its_journal_in_postgresql_when_given_a_database_url(
    tmp_path: Path, database_url: str
) -> None:
    """SEEDANCE_DATABASE_URL: a video made through the real server is journaled in PostgreSQL, not SQLite."""
    from mcp import Client

    from seedance_mcp.app import create_app
    from seedance_mcp.journal.postgres import open_postgres_store
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, database_url=database_url)
    with anyio.fail_after(30):
        async with Client(create_app(settings)) as client:
            made = await client.call_tool("generate_video", {"prompt": "journaled in postgres"})
        store = await open_postgres_store(database_url)
        try:
            job = await store.get((made.structured_content or {})["task_id"])
        finally:
            await store.close()
    assert (made.structured_content or {})["status"] == "succeeded"
    assert job is not None and job.video_path is not None and Path(job.video_path).is_file()
    assert not (settings.state_dir / "jobs.sqlite3").exists()
