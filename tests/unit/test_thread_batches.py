"""BatchedThread and the journal's batches: work queued by many callers, run in one thread, many per trip."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import anyio
import pytest

from seedance_mcp.errors import JournalUnavailable
from seedance_mcp.journal.job import Job
from seedance_mcp.journal.sqlite import SqliteTaskStore
from seedance_mcp.journal.thread_batches import BatchedThread, Call
from tests.conftest import make_job

pytestmark = pytest.mark.anyio


async def test_a_cancelled_caller_that_carries_others_calls_to_the_thread_still_runs_them() -> None:
    """A caller whose scope is already cancelled becomes the one that takes the queued calls of others to the
    thread: their work must run and they must get its results, never a `None` as if it had."""
    batched = BatchedThread()
    gate = threading.Event()
    ran: list[str] = []
    results: dict[str, object] = {}

    async def first() -> None:
        results["a"] = await batched.run(lambda: gate.wait() and "a")
        with anyio.move_on_after(0):  # no checkpoint since: this call starts in an expired scope
            await batched.run(lambda: ran.append("x") or "x")

    async def other(name: str) -> None:
        results[name] = await batched.run(lambda: ran.append(name) or name)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(first)
            while not batched.busy:
                await anyio.sleep(0.01)
            group.start_soon(other, "b")
            group.start_soon(other, "c")
            await anyio.wait_all_tasks_blocked()  # b and c queued, waiting for the trip under way
            assert len(batched._queue) == 2  # pyright: ignore[reportPrivateUsage]
            gate.set()
    assert results == {"a": "a", "b": "b", "c": "c"}
    assert {"b", "c"} <= set(ran)


async def test_journal_reads_batched_together_do_not_wait_for_another_process_writing(tmp_path: Path) -> None:
    """Reads alone take no write lock: two status reads in one batch are answered while another process holds
    the journal's write lock (WAL lets readers through), as one read alone is."""
    path = tmp_path / "jobs.sqlite3"
    store = await SqliteTaskStore.open(path)
    for key in ("job-a", "job-b"):
        await store.insert(make_job(job_id=key, fingerprint=key), dedupe_window=None, lease_owner=None, lease_seconds=1)
    trips: list[list[bool]] = []  # per trip to the thread: whether each call writes
    run_batch = store._thread._run_batch  # pyright: ignore[reportPrivateUsage]

    def recording(batch: list[Call[Any]]) -> None:
        trips.append([call.writes for call in batch])
        run_batch(batch)

    store._thread._run_batch = recording  # pyright: ignore[reportPrivateUsage]
    other = sqlite3.connect(path, isolation_level=None)
    gate = threading.Event()
    read: dict[str, Job | None] = {}

    def hold(_db: sqlite3.Connection) -> bool:
        return gate.wait()

    async def get(key: str) -> None:
        read[key] = await store.get(key)

    try:
        other.execute("BEGIN IMMEDIATE")
        with anyio.fail_after(10):
            async with anyio.create_task_group() as group:
                group.start_soon(store._in_thread, hold)  # pyright: ignore[reportPrivateUsage]
                while not store._thread.busy:  # pyright: ignore[reportPrivateUsage]
                    await anyio.sleep(0.01)
                group.start_soon(get, "job-a")  # these two wait for the next trip: one batch
                group.start_soon(get, "job-b")
                await anyio.wait_all_tasks_blocked()
                gate.set()
        assert other.in_transaction  # the other process held the write lock throughout
        other.execute("COMMIT")
    finally:
        other.close()
        await store.close()
    assert {key: job.job_id if job else None for key, job in read.items()} == {"job-a": "job-a", "job-b": "job-b"}
    assert trips[-2:] == [[True], [False, False]], trips  # the hold, then both reads in one trip


async def test_a_batch_that_sqlite_rolls_back_whole_tells_each_caller_the_truth(tmp_path: Path) -> None:
    """A full disk makes SQLite roll back the batch's whole transaction: the jobs written before it in the batch
    are reported failed (they are not in the journal), those after it are written and reported written."""
    path = tmp_path / "jobs.sqlite3"
    store = await SqliteTaskStore.open(path)
    db = store._connection  # pyright: ignore[reportPrivateUsage]
    assert db is not None
    (pages,) = db.execute("PRAGMA page_count").fetchone()
    db.execute(f"PRAGMA max_page_count = {pages + 8}")  # room for small jobs, not for a big one
    gate = threading.Event()
    outcomes: dict[str, str] = {}

    def hold(_db: sqlite3.Connection) -> bool:
        return gate.wait()

    async def insert(job: Job) -> None:
        try:
            await store.insert(job, dedupe_window=None, lease_owner="me", lease_seconds=60)
            outcomes[job.job_id] = "written"
        except JournalUnavailable as exc:  # SQLite's "database or disk is full"
            outcomes[job.job_id] = f"failed: {exc}"

    try:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as group:
                group.start_soon(store._in_thread, hold)  # pyright: ignore[reportPrivateUsage]
                while not store._thread.busy:  # pyright: ignore[reportPrivateUsage]
                    await anyio.sleep(0.01)
                # Queued in this order (each waits for the trip under way before the next starts): one batch.
                group.start_soon(insert, make_job(job_id="job-a", fingerprint="job-a", status="submitting"))
                await anyio.wait_all_tasks_blocked()
                group.start_soon(
                    insert, make_job(job_id="job-big", fingerprint="job-big", status="submitting", prompt="x" * 200_000)
                )
                await anyio.wait_all_tasks_blocked()
                group.start_soon(insert, make_job(job_id="job-c", fingerprint="job-c", status="submitting"))
                await anyio.wait_all_tasks_blocked()
                assert len(store._thread._queue) == 3  # pyright: ignore[reportPrivateUsage]
                gate.set()
        in_journal = {key: await store.get(key) is not None for key in outcomes}
    finally:
        await store.close()
    assert outcomes["job-big"].startswith("failed") and len(outcomes) == 3
    for key, outcome in outcomes.items():
        assert in_journal[key] == (outcome == "written"), (key, outcome)
    assert in_journal["job-c"]
