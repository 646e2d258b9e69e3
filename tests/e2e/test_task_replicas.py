"""Tasks on a team server: replicas of `serve --http` on one PostgreSQL journal behind a round-robin proxy, each
request on a connection of its own, so a task's create and its polls land on different processes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import pytest
from mcp import MCPError
from mcp.types import CallToolResult

from tests.fakes.fake_ark import running_fake_ark
from tests.fakes.replicas import mcp_client, running_cluster
from tests.fakes.task_client import CreateTaskResult, GetTaskResult, TasksClient, cancel_task, get_task, wait_task

if TYPE_CHECKING:
    from tests.fakes.postgres_server import PostgresServer

pytestmark = [pytest.mark.anyio, pytest.mark.postgres, pytest.mark.subprocess, pytest.mark.slow]
pytest_plugins = ["tests.fakes.postgres_server"]  # the session's PostgreSQL server fixture, `postgres_server`


@pytest.fixture
async def database_url(postgres_server: PostgresServer) -> str:
    from tests.fakes.postgres_server import fresh_database

    return await fresh_database(postgres_server)


async def test_every_replica_answers_a_task_for_its_owner_and_no_one_else(tmp_path: Path, database_url: str) -> None:
    async with (
        running_fake_ark(render_seconds=2.0) as fake,
        running_cluster(tmp_path, base_url=fake.base_url, database_url=database_url, replicas=2) as cluster,
    ):
        with anyio.fail_after(60):
            async with mcp_client(cluster.url, "alice", extensions=[TasksClient()]) as alice:
                created = await alice.session.call_tool(
                    "generate_video", {"prompt": "a kite over two replicas"}, allow_claimed=True
                )
                assert isinstance(created, CreateTaskResult), created
                polls: list[GetTaskResult] = []
                final = await wait_task(alice.session, created.task_id, polls)
            async with mcp_client(cluster.url, "bob", extensions=[TasksClient()]) as bob:
                refusals: list[int] = []
                for _ in range(2):  # one request to each replica
                    with pytest.raises(MCPError) as read:
                        await get_task(bob.session, created.task_id)
                    refusals.append(read.value.code)
                    with pytest.raises(MCPError) as cancel:
                        await cancel_task(bob.session, created.task_id)
                    refusals.append(cancel.value.code)
        connections = list(cluster.proxy.connections)
    assert final.status == "completed" and len(polls) >= 2, cluster.logs()
    data = CallToolResult.model_validate(final.result).structured_content or {}
    assert data["status"] == "succeeded" and Path(data["video_path"]).is_file()
    assert refusals == [-32602] * 4
    assert all(count >= 3 for count in connections), connections  # both replicas answered the task's requests
    assert fake.creates == 1
