"""Found by an adversarial review of the money-safety code: each test failed before its fix."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from seedance_mcp.app import create_app
from seedance_mcp.journal.job import Job
from seedance_mcp.journal.sqlite import SqliteTaskStore
from tests.conftest import SECRET_KEY, make_settings, text_of
from tests.fakes.fake_ark import running_fake_ark

pytestmark = pytest.mark.anyio


async def journal_row(state_dir: Path, job_id: str) -> Job | None:
    store = await SqliteTaskStore.open(state_dir / "jobs.sqlite3")
    try:
        return await store.get(job_id)
    finally:
        await store.close()


async def test_a_refused_cancel_of_a_running_task_does_not_lose_its_success_from_the_journal(tmp_path: Path) -> None:
    """Cancel of a running task writes the job; the follower's later download write must still record `succeeded`."""
    settings = make_settings(tmp_path, sandbox_render_seconds=1.5)
    async with Client(create_app(settings)) as client:
        started = await client.call_tool("generate_video", {"prompt": "cancel too late [[queue=0.1]]", "wait": False})
        data = started.structured_content or {}
        task_id, job_id = data["task_id"], data["job_id"]
        with anyio.fail_after(10):
            while True:
                status = await client.call_tool("get_task_status", {"task_id": task_id})
                if (status.structured_content or {})["status"] == "running":
                    break
                await anyio.sleep(0.05)
        refused = await client.call_tool("cancel_task", {"task_id": task_id})
        assert (refused.structured_content or {})["cancelled"] is False
        with anyio.fail_after(15):
            while True:
                job = await journal_row(settings.state_dir, job_id)
                assert job is not None
                if job.video_path is not None:
                    break
                await anyio.sleep(0.1)
    # The video is on disk, but the journal must also say the task succeeded (and has no work left).
    assert Path(job.video_path).is_file()
    assert job.status == "succeeded", f"journal says {job.status!r} with the video saved"
    assert not job.has_work


async def test_a_lost_create_does_not_adopt_the_task_of_another_job_whose_create_is_still_in_flight(
    tmp_path: Path,
) -> None:
    """With the user's own safety_identifier (no markers), a fitting task of a job mid-create is not ours to adopt."""
    async with running_fake_ark(render_seconds=0.3) as fake:
        fake.add_fault("create", "drop_before")  # job A's create never arrives: nothing of A's exists
        settings = make_settings(
            tmp_path,
            provider="ark",
            base_url=fake.base_url,
            api_key=SECRET_KEY,
            http_timeout=2.0,
            safety_identifier="user-42",
            reconcile_delays=(1.0, 0.3, 0.3),
            reconcile_window=1.5,
            reconcile_patience=4.0,
        )
        args: dict[str, Any] = {"resolution": "720p", "ratio": "16:9", "duration": 5, "seed": 7}
        async with Client(create_app(settings)) as client:
            lost = await client.call_tool("generate_video", {"prompt": "job A", **args})
            assert lost.is_error is True and "answer was lost" in text_of(lost)
            listed = await client.call_tool("list_tasks", {"limit": 1, "detail": True})
            job_a = (listed.structured_content or {})["tasks"][0]
            a = await journal_row(settings.state_dir, job_a["job_id"])
            assert a is not None and a.status == "unknown"
            # Meanwhile a second server process sharing the journal sends job B (same settings, other prompt):
            # its create has reached Ark (the task exists), its answer has not come back yet.
            store = await SqliteTaskStore.open(settings.state_dir / "jobs.sqlite3")
            try:
                now = time.time()
                b = a.model_copy(
                    update={
                        "job_id": "job-b-in-flight",
                        "prompt": "job B",
                        "fingerprint": "fingerprint-of-b",
                        "status": "submitting",
                        "created_at": now,
                        "updated_at": now,
                        "error_message": None,
                        "version": 0,
                    }
                )
                assert (
                    await store.insert(b, dedupe_window=None, lease_owner="other-host:1:abcdef", lease_seconds=60)
                    is None
                )
            finally:
                await store.close()
            task_b = fake.add_foreign_task(
                model=a.model, owner="us", safety_identifier="user-42", seed=7, resolution="720p", ratio="16:9"
            )
            with anyio.fail_after(20):
                while True:
                    a = await journal_row(settings.state_dir, a.job_id)
                    assert a is not None
                    if a.status != "unknown" or a.search_done:
                        break
                    await anyio.sleep(0.1)
    assert a.task_id != task_b.id, "job A adopted job B's task (B's create was still in flight)"


async def test_an_insert_whose_caller_was_cancelled_while_queued_is_not_written_later(tmp_path: Path) -> None:
    """A generate call cancelled while its insert waits behind a busy journal must not leave a `submitting` job."""
    import sqlite3

    path = tmp_path / "jobs.sqlite3"
    store = await SqliteTaskStore.open(path)
    other = sqlite3.connect(path, isolation_level=None)  # another server process holding the write lock
    try:
        now = time.time()
        job = Job(
            job_id="job-cancelled-caller",
            provider="ark",
            model="m",
            model_key="1.5-pro",
            prompt="p",
            status="submitting",
            fingerprint="f",
            created_at=now,
            updated_at=now,
        )
        other.execute("BEGIN IMMEDIATE")
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: store.claim("me", 30.0, limit=10))  # the claim loop: blocked on the lock
            with anyio.fail_after(5):
                while not store._thread.busy:  # pyright: ignore[reportPrivateUsage]
                    await anyio.sleep(0.01)
            with anyio.move_on_after(0.2):  # the tool call is cancelled while its insert waits its turn
                await store.insert(job, dedupe_window=600, lease_owner="me", lease_seconds=30.0)
            other.execute("COMMIT")
        await store.get("anything")  # the next journal call of any task
        assert await store.get(job.job_id) is None, "the cancelled call's job was journaled as `submitting`"
    finally:
        other.close()
        await store.close()
