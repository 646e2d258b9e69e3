"""A storyboard on two `serve --http` replicas sharing one PostgreSQL journal: the plan is run by one replica at a
time (its lease in the journal), repeated calls landing on either replica send nothing again, and when the replica
running it is SIGKILLed mid-plan the other takes it over by itself and finishes the film. The sandbox counts the
creates: one per shot."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from seedance_mcp.sandbox import SandboxServer
from tests.conftest import sandbox_stats, text_of
from tests.fakes.replicas import mcp_client, running_cluster

if TYPE_CHECKING:
    from tests.fakes.postgres_server import PostgresServer

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.postgres,
    pytest.mark.subprocess,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SIGKILLs server processes"),
]
pytest_plugins = ["tests.fakes.postgres_server"]

PLAN = {
    "model": "doubao-seedance-1-5-pro-251215",
    "shots": [
        {"prompt": "a lighthouse at dusk [[render=0.5]]", "duration": 4},
        {"prompt": "the beam sweeps the waves [[render=600]]", "duration": 5, "transition": "continuous"},
        {"prompt": "morning on the same coast [[render=0.5]]", "duration": 4, "transition": "continuous"},
    ],
}


async def _plan_runner(database_url: str) -> tuple[str, str | None]:
    """The plan's state and the lease owner running it, read straight from PostgreSQL."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as db:
        row = await (await db.execute("SELECT state, lease_owner FROM plans")).fetchone()
    assert row is not None
    return str(row[0]), row[1]


async def test_a_plan_on_two_replicas_is_run_by_one_and_finished_by_the_other_after_a_kill(
    tmp_path: Path, sandbox: SandboxServer, postgres_server: PostgresServer
) -> None:
    from tests.fakes.postgres_server import fresh_database

    database_url = await fresh_database(postgres_server)
    async with running_cluster(
        tmp_path,
        base_url=f"{sandbox.url}/api/v3",
        database_url=database_url,
        replicas=2,
        poll_interval=0.1,
        lease_seconds=3.0,
        SEEDANCE_WAIT_SECONDS="1",
    ) as cluster:
        with anyio.fail_after(120):
            async with mcp_client(cluster.url, "alice") as client:
                first = await client.call_tool("storyboard", PLAN)
                assert not first.is_error, text_of(first)
                plan_id = (first.structured_content or {})["plan_id"]
                while (await sandbox_stats(sandbox))["creates"] < 2:  # shot 1 saved, shot 2 sent and rendering
                    await anyio.sleep(0.05)
                # The same call again, landing on each replica in turn: the plan is the running one, nothing is sent.
                for _ in range(2):
                    again = await client.call_tool("storyboard", PLAN)
                    assert (again.structured_content or {})["status"] == "running", text_of(again)
                assert (await sandbox_stats(sandbox))["creates"] == 2
                state, owner = await _plan_runner(database_url)
                assert state == "running" and owner is not None
                [runner] = [r for r in cluster.replicas if r.pid == int(owner.split(":")[1])]
                runner.kill()
                for task in sandbox.state.tasks.values():  # shot 2's render ends now
                    task.queued_seconds = task.render_seconds = 0.0
                while (await _plan_runner(database_url))[0] == "running":  # the survivor takes it over by itself
                    await anyio.sleep(0.1)
                survivor = next(r for r in cluster.replicas if r is not runner)
                state, _ = await _plan_runner(database_url)
                assert (cluster.videos / f"{plan_id}.mp4").is_file()
            async with mcp_client(survivor.url, "alice") as client:
                status = await client.call_tool("get_task_status", {"task_id": plan_id})
    assert state == "done", cluster.logs()
    assert (await sandbox_stats(sandbox))["creates"] == 3  # one per shot, across both replicas and the kill
    data: dict[str, Any] = status.structured_content or {}
    assert data.get("status") == "succeeded" and data["film_seconds"] == 13.0, text_of(status)
    assert [s["paid"] and s["saved"] for s in data["shots"]] == [True, True, True]
