"""A journal outage must not take the service down: real PostgreSQL servers stopped and started under real replicas.

Each test runs a PostgreSQL server of its own (tests/fakes/postgres_server.py, `own_postgres_server`), which it
stops with `pg_ctl stop -m fast` (every connection cut, new ones refused) and starts again on the same socket, under
real `serve --http` replicas (tests/fakes/replicas.py) following real renders of the socket-level fake Ark
(tests/fakes/fake_ark.py).
Nothing is restarted by the test: the same processes must take their work up again by themselves.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import subprocess
import sys
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import pytest
from mcp import Client

from tests.conftest import text_of
from tests.fakes.fake_ark import FakeArk, mp4_bytes, running_fake_ark
from tests.fakes.replicas import (
    Cluster,
    JournalRow,
    large_mp4_bytes,
    mcp_client,
    running_cluster,
    running_stalling_fake_ark,
    start_replica,
    until,
    until_journal,
)

if TYPE_CHECKING:
    from tests.fakes.postgres_server import PostgresServer

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.subprocess,
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="runs PostgreSQL servers and replicas"),
]
pytest_plugins = ["tests.fakes.postgres_server"]


OUTAGE_SECONDS = 20.0


def _data(result: Any) -> dict[str, Any]:
    assert result.is_error is False, text_of(result)
    return result.structured_content or {}


async def _submit(client: Client, prompt: str) -> dict[str, Any]:
    return _data(await client.call_tool("generate_video", {"prompt": prompt, "wait": False}))


async def _probe(replica_base: str, path: str) -> int:
    async with httpx.AsyncClient(timeout=10) as client:
        return (await client.get(f"{replica_base}{path}")).status_code


async def _probe_all(cluster: Cluster) -> dict[str, tuple[int, int]]:
    """(/readyz, /healthz) of every replica, asked at once."""
    answers: dict[str, tuple[int, int]] = {}

    async def one(replica: Any) -> None:
        answers[replica.name] = (await _probe(replica.base, "/readyz"), await _probe(replica.base, "/healthz"))

    async with anyio.create_task_group() as group:
        for replica in cluster.replicas:
            group.start_soon(one, replica)
    return answers


def _settled(count: int) -> Any:
    def check(rows: list[JournalRow]) -> bool:
        return len(rows) == count and all(not r.has_work for r in rows)

    return check


def _parts(videos: Path) -> list[str]:
    return sorted(p.name for p in videos.iterdir() if p.name.endswith(".part")) if videos.is_dir() else []


def _assert_each_saved_once(cluster: Cluster, rows: list[JournalRow], video: bytes) -> None:
    assert [r.status for r in rows] == ["succeeded"] * len(rows), [(r.task_id, r.status, r.data) for r in rows]
    task_ids = [r.task_id for r in rows]
    assert len(set(task_ids)) == len(rows) and None not in task_ids
    paths = sorted(Path(r.data["video_path"]) for r in rows)
    assert len(set(paths)) == len(rows)
    assert all(path.is_file() and path.read_bytes() == video for path in paths)
    assert sorted(cluster.videos.glob("*.mp4")) == paths
    assert not _parts(cluster.videos)


@pytest.mark.postgres
async def test_a_20_second_database_outage_mid_render_and_mid_download_loses_nothing(
    tmp_path: Path, own_postgres_server: PostgresServer
) -> None:
    """Two replicas follow renders, some of them half-way through their download, when PostgreSQL stops for 20 s
    under statements in flight: meanwhile /readyz says 503 and /healthz 200 on both; once it is back, the same two
    processes (no restart) save every video, fetched once, and are ready again."""
    from tests.fakes.postgres_server import fresh_database

    server = own_postgres_server
    database_url = await fresh_database(server)
    count, downloading = 8, 3
    async with (
        running_stalling_fake_ark(render_seconds=600.0) as fake,
        running_cluster(tmp_path, base_url=fake.base_url, database_url=database_url, replicas=2) as cluster,
    ):
        pids = [replica.pid for replica in cluster.replicas]
        with anyio.fail_after(60):
            async with mcp_client(cluster.url, "alice") as alice:
                handles = [(await _submit(alice, f"outage {i}"))["task_id"] for i in range(count)]
            await until(lambda: all(fake.polls_of(h) >= 1 for h in handles), "every job followed", 10)
            # Three renders end now, and their downloads stop half-way through the body for a few seconds.
            finishing = handles[:downloading]
            fake.stall.update(dict.fromkeys(finishing, 2.0))
            for handle in finishing:
                fake.tasks[handle].status = "succeeded"
            await until(lambda: len(_parts(cluster.videos)) == downloading, "three downloads half-way", 10)
            # The outage must catch writes in flight, not only between them: a lock holds every statement on the
            # jobs table (the downloads' final writes, claims, renewals) until the server stops under them.
            async with held_table_lock(database_url) as waiting:
                await until_async(lambda: waiting(downloading + 2), "writes in flight behind the lock", 15)
                await anyio.to_thread.run_sync(server.stop)
        back_at = anyio.current_time() + OUTAGE_SECONDS
        try:
            with anyio.fail_after(OUTAGE_SECONDS):
                await anyio.sleep(OUTAGE_SECONDS / 4)
                during = await _probe_all(cluster)
            await anyio.sleep(back_at - anyio.current_time())
        finally:
            await anyio.to_thread.run_sync(server.start)
        fake.render_seconds = 0.0  # every other render ends now
        with anyio.fail_after(60):
            rows = await until_journal(database_url, _settled(count), "every job settled after the outage", 45)
            await until(lambda: not _parts(cluster.videos), "no partial download left", 10)
            after = {replica.name: await _probe(replica.base, "/readyz") for replica in cluster.replicas}
        alive = [replica.process.returncode is None for replica in cluster.replicas]
        downloads = {h: fake.downloads_of(h) for h in handles}
    assert during == dict.fromkeys(during, (503, 200)), during
    assert after == dict.fromkeys(after, 200), (after, cluster.logs())
    assert alive == [True, True] and [r.pid for r in cluster.replicas] == pids
    assert fake.creates == count
    _assert_each_saved_once(cluster, rows, large_mp4_bytes())
    # A download that finished during the outage is recorded by its holder once the journal is back, or, if the
    # other replica took the job over first, found whole on disk by the new holder: never fetched again.
    assert downloads == dict.fromkeys(handles, 1), downloads


@pytest.mark.postgres
async def test_a_replica_started_while_the_database_is_down_becomes_ready_once_it_is_back(
    tmp_path: Path, own_postgres_server: PostgresServer
) -> None:
    """A replica started during an outage answers /healthz 200 and /readyz 503, refuses a generate_video call with
    a message that names the journal and says nothing was sent or charged, and becomes ready by itself once the
    database is back; then its calls go through."""
    from tests.fakes.postgres_server import fresh_database
    from tests.fakes.replicas import replica_env, write_tokens_file

    server = own_postgres_server
    database_url = await fresh_database(server)
    async with running_fake_ark(render_seconds=0.2) as fake:
        write_tokens_file(tmp_path / "tokens.json")
        env = replica_env(
            tmp_path, "late", base_url=fake.base_url, database_url=database_url, poll_interval=0.2, lease_seconds=3.0
        )
        await anyio.to_thread.run_sync(server.stop)
        replica = None
        try:
            with anyio.fail_after(60):
                replica = await start_replica(tmp_path, "late", env, ready_within=60, ready_path="/healthz")
                await anyio.sleep(2)
                assert await _probe(replica.base, "/readyz") == 503
                async with mcp_client(replica.url, "alice") as alice:
                    refused = await alice.call_tool("generate_video", {"prompt": "during the outage", "wait": False})
                assert refused.is_error, refused
                message = text_of(refused)
                assert fake.creates == 0 and not fake.requests
                await anyio.to_thread.run_sync(server.start)
                await until_ready(replica.base, 30)
                async with mcp_client(replica.url, "alice") as alice:
                    made = await alice.call_tool("generate_video", {"prompt": "after the outage", "wait": True})
                job = _data(made)
        finally:
            if replica is not None:
                await replica.stop()
    assert "PostgreSQL journal" in message and "Nothing was sent to the provider and nothing was charged" in message
    assert job["status"] == "succeeded" and Path(job["video_path"]).is_file(), job
    assert fake.creates == 1


@asynccontextmanager
async def held_table_lock(database_url: str) -> AsyncGenerator[Callable[[int], Awaitable[bool]]]:
    """Hold an exclusive lock on the jobs table; yields a check: are at least n statements waiting for it?"""
    import psycopg

    db = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
    try:
        await db.execute("BEGIN")
        await db.execute("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE")
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as watcher:

            async def waiting(n: int) -> bool:
                cursor = await watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
                row = await cursor.fetchone()
                return row is not None and int(row[0]) >= n

            yield waiting
    finally:
        with contextlib.suppress(psycopg.Error):
            await db.close()


async def until_async(condition: Callable[[], Awaitable[bool]], what: str, seconds: float) -> None:
    try:
        with anyio.fail_after(seconds):
            while not await condition():
                await anyio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"not within {seconds} s: {what}") from None


async def until_ready(base: str, seconds: float) -> None:
    async def ready() -> bool:
        try:
            return await _probe(base, "/readyz") == 200
        except httpx.TransportError:
            return False

    with anyio.fail_after(seconds):
        while not await ready():
            await anyio.sleep(0.2)


async def _call_while_the_journal_fails_at_the_answer(
    client: Client, fake: FakeArk, prompt: str, fail: Callable[[], Awaitable[None]]
) -> Any:
    """generate_video whose create request is held at the provider while `fail()` takes the journal away; the
    provider then creates the task and answers. The tool result."""
    release = anyio.Event()
    fake.add_fault("create", "hold", release=release)
    result: dict[str, Any] = {}

    async def call() -> None:
        result["answer"] = await client.call_tool("generate_video", {"prompt": prompt, "wait": False})

    async with anyio.create_task_group() as group:
        group.start_soon(call)
        await until(lambda: fake.count("POST") == 1, "the create request is at the provider", 10)
        await fail()
        release.set()
    return result["answer"]


def _assert_told_the_task_exists(answer: Any, task_id: str) -> None:
    text = text_of(answer)
    assert answer.is_error and text, answer
    assert task_id in text and "Do not call generate_video again" in text and "billed" in text, text


@pytest.mark.postgres
async def test_a_create_answered_while_postgresql_is_down_keeps_its_task_and_is_saved_once_it_is_back(
    tmp_path: Path, own_postgres_server: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL stops while a create request is in flight; the provider creates the task. The caller is told the
    task exists (its id) and must not be resubmitted; the server keeps the id in memory (get_task_status finds
    it), logs it, and once the database is back records it, follows it and saves the video once."""
    from seedance_mcp.app import create_app
    from tests.conftest import SECRET_KEY, make_settings
    from tests.fakes.postgres_server import fresh_database

    caplog.set_level(logging.INFO)
    server = own_postgres_server
    database_url = await fresh_database(server)
    async with running_fake_ark(render_seconds=0.3) as fake:
        settings = make_settings(
            tmp_path, provider="ark", base_url=fake.base_url, api_key=SECRET_KEY, database_url=database_url
        )
        async with Client(create_app(settings)) as client:

            async def stop() -> None:
                await anyio.to_thread.run_sync(server.stop)

            with anyio.fail_after(60):
                answer = await _call_while_the_journal_fails_at_the_answer(client, fake, "while it is down", stop)
                [task_id] = list(fake.tasks)
                held = await client.call_tool("get_task_status", {"task_id": task_id})
                await anyio.to_thread.run_sync(server.start)
                saved = await client.call_tool("get_task_status", {"task_id": task_id, "wait": True})
                rows = await until_journal(database_url, _settled(1), "the job recorded and saved", 30)
    _assert_told_the_task_exists(answer, task_id)
    assert (held.structured_content or {})["status"] in ("queued", "running"), text_of(held)
    job = saved.structured_content or {}
    assert job["status"] == "succeeded" and Path(job["video_path"]).read_bytes() == mp4_bytes(), text_of(saved)
    assert [(r.task_id, r.status) for r in rows] == [(task_id, "succeeded")]
    assert fake.creates == 1 and fake.downloads_of(task_id) == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and task_id in r.getMessage()]
    assert warnings, "the unrecorded task id was never logged"


def _mount_small_filesystem(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill ({result.stderr.decode(errors='replace').strip()})")


def _fill(directory: Path) -> Path:
    """Fill the filesystem of `directory` to the last byte; the filler file (delete it to free the space)."""
    filler = directory / "filler"
    chunk = bytes(64 * 1024)
    with filler.open("wb", buffering=0) as out:
        for size in (len(chunk), 4096, 512, 1):
            try:
                while True:
                    out.write(chunk[:size])
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    return filler


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a small tmpfs (root only)")
async def test_a_full_sqlite_state_dir_refuses_new_videos_unsent_and_keeps_a_created_task_until_space_returns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The SQLite journal's filesystem fills up (a real full disk: a small tmpfs). A new call is refused before
    anything is sent, naming the journal and saying nothing was charged. A create answered after the disk filled
    tells the caller the task exists and must not be resubmitted; once space is freed the server records it and
    saves the video, with no restart."""
    from seedance_mcp.app import create_app
    from tests.conftest import SECRET_KEY, make_settings

    caplog.set_level(logging.INFO)
    state = tmp_path / "state"
    await anyio.to_thread.run_sync(_mount_small_filesystem, state, "2m")
    try:
        async with running_fake_ark(render_seconds=0.3) as fake:
            settings = make_settings(tmp_path, provider="ark", base_url=fake.base_url, api_key=SECRET_KEY)
            async with Client(create_app(settings)) as client:
                with anyio.fail_after(60):
                    await client.call_tool("list_tasks", {})  # the journal is open (and has its tables)
                    filler = state / "filler"

                    async def fill() -> None:
                        await anyio.to_thread.run_sync(_fill, state)

                    answer = await _call_while_the_journal_fails_at_the_answer(client, fake, "the disk fills", fill)
                    [task_id] = list(fake.tasks)
                    refused = await client.call_tool("generate_video", {"prompt": "while it is full", "wait": False})
                    sent_while_full = fake.count("POST")
                    filler.unlink()
                    saved = await client.call_tool("get_task_status", {"task_id": task_id, "wait": True})
    finally:
        await anyio.to_thread.run_sync(lambda: subprocess.run(["umount", "-l", str(state)], check=False))
    _assert_told_the_task_exists(answer, task_id)
    text = text_of(refused)
    assert refused.is_error and "SQLite journal" in text and "full" in text, text
    assert "Nothing was sent to the provider and nothing was charged" in text, text
    assert sent_while_full == 1 and fake.creates == 1
    job = saved.structured_content or {}
    assert job["status"] == "succeeded" and Path(job["video_path"]).read_bytes() == mp4_bytes(), text_of(saved)
    assert fake.downloads_of(task_id) == 1


async def test_healthz_reports_a_runtime_that_stopped_for_good(tmp_path: Path) -> None:
    """A runtime that cannot work and will not by waiting (here: its state directory's parent is a file) makes
    /healthz answer 503 with the reason, so an orchestrator restarts the process; /readyz is 503 too."""
    from tests.fakes.replicas import free_port
    from tests.fakes.stdio_helpers import server_env

    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the state directory's parent should be")
    env = server_env(
        tmp_path,
        SEEDANCE_STATE_DIR=str(blocker / "state"),
        SEEDANCE_PROVIDER="sandbox",
        SEEDANCE_STARTUP_DELAY="0",
    )
    port = free_port()
    with (tmp_path / "server.log").open("wb") as log:
        process = await anyio.open_process(
            [sys.executable, "-m", "seedance_mcp", "serve", "--http", "--port", str(port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        async with httpx.AsyncClient(timeout=5) as probe:
            with anyio.fail_after(30):
                while True:
                    try:
                        health = await probe.get(f"http://127.0.0.1:{port}/healthz")
                        if health.status_code == 503:
                            break
                    except httpx.TransportError:
                        pass
                    await anyio.sleep(0.1)
            ready = await probe.get(f"http://127.0.0.1:{port}/readyz")
    finally:
        process.terminate()
        with anyio.move_on_after(10):
            await process.wait()
    assert health.json()["alive"] is False and "SEEDANCE_STATE_DIR" in health.json()["runtime"], health.text
    assert ready.status_code == 503
