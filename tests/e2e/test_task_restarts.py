"""Tasks (SEP-2663) across server processes: a task created on one process is answered, and completed, by the next
one from the journal (stdio: the host closes and starts the server; HTTP: the server is killed). Over HTTP each
person's tasks are their own."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult

from seedance_mcp.principals import token_hash
from seedance_mcp.sandbox import SandboxServer
from tests.conftest import SECRET_KEY, free_port_for_tests, sandbox_stats
from tests.fakes.stdio_helpers import server_env, stdio_params
from tests.fakes.task_client import CreateTaskResult, TasksClient, cancel_task, get_task, wait_task

pytestmark = [pytest.mark.anyio, pytest.mark.subprocess]

ALICE, BOB = "alice-token-0123456789abcdef", "bob-token-0123456789abcdef"


async def create(client: Client, arguments: dict[str, Any]) -> CreateTaskResult:
    answer = await client.session.call_tool("generate_video", arguments, allow_claimed=True)
    assert isinstance(answer, CreateTaskResult), answer
    return answer


async def test_a_task_outlives_the_stdio_server_that_created_it(tmp_path: Path) -> None:
    """The host closes the server while the video renders; the next server process (same state dir) finishes the
    job and answers tasks/get for the same id with the saved video."""
    env = server_env(tmp_path, SEEDANCE_PROVIDER="sandbox", SEEDANCE_LEASE_SECONDS="1")
    with anyio.fail_after(60):
        async with Client(stdio_params(env), extensions=[TasksClient()]) as first:
            created = await create(first, {"prompt": "a kite over the sea [[render=4]]"})
            before = await get_task(first.session, created.task_id)
        async with Client(stdio_params(env), extensions=[TasksClient()]) as second:
            final = await wait_task(second.session, created.task_id)
    assert created.status == "working" and before.status == "working"
    assert final.status == "completed", final
    result = CallToolResult.model_validate(final.result)
    data = result.structured_content or {}
    assert data["status"] == "succeeded" and Path(data["video_path"]).is_file()


def tokens_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.json"
    path.write_text(
        json.dumps({"alice": {"token_sha256": token_hash(ALICE)}, "bob": {"token_sha256": token_hash(BOB)}})
    )
    return path


@asynccontextmanager
async def http_server(tmp_path: Path, sandbox: SandboxServer) -> AsyncGenerator[tuple[str, Any]]:
    """`serve --http` on the sandbox with alice's and bob's tokens: its URL and its process (to kill)."""
    port = free_port_for_tests()
    environment = server_env(
        tmp_path,
        SEEDANCE_PROVIDER="ark",
        SEEDANCE_BASE_URL=f"{sandbox.url}/api/v3",
        SEEDANCE_API_KEY=SECRET_KEY,
        SEEDANCE_TOKENS_FILE=str(tokens_file(tmp_path)),
        SEEDANCE_LEASE_SECONDS="1",
    )
    with (tmp_path / f"server-{port}.log").open("wb") as log:
        process = await anyio.open_process(
            [sys.executable, "-m", "seedance_mcp", "serve", "--http", "--port", str(port)],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        url = f"http://127.0.0.1:{port}/mcp"
        try:
            with anyio.fail_after(20):
                while True:
                    try:
                        async with httpx.AsyncClient() as probe:
                            await probe.get(url)
                        break
                    except httpx.TransportError:
                        await anyio.sleep(0.1)
            yield url, process
        finally:
            if process.returncode is None:
                process.terminate()
            with anyio.move_on_after(10):
                await process.wait()


@asynccontextmanager
async def as_person(url: str, token: str) -> AsyncGenerator[Client]:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http), extensions=[TasksClient()]) as client,
    ):
        yield client


async def test_a_task_survives_a_killed_http_server_and_is_only_its_owners(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    """Alice's task over streamable HTTP: Bob cannot read or cancel it with its id; the server is killed (SIGKILL)
    mid-render, a new one starts on the same journal, and Alice's polls end with her saved video, paid once."""
    with anyio.fail_after(90):
        async with http_server(tmp_path, sandbox) as (url, process):
            async with as_person(url, ALICE) as alice:
                created = await create(alice, {"prompt": "alice's kite [[render=4]]"})
                before = await get_task(alice.session, created.task_id)
            async with as_person(url, BOB) as bob:
                with pytest.raises(MCPError) as bob_reads:
                    await get_task(bob.session, created.task_id)
                with pytest.raises(MCPError) as bob_cancels:
                    await cancel_task(bob.session, created.task_id)
            wrong_name = await tasks_get_with_mcp_name(url, created.task_id, "another-task")
            process.send_signal(signal.SIGKILL)
            await process.wait()
        async with http_server(tmp_path, sandbox) as (url, _), as_person(url, ALICE) as alice:
            final = await wait_task(alice.session, created.task_id)
    assert before.status == "working"
    assert bob_reads.value.code == -32602 and bob_cancels.value.code == -32602
    assert wrong_name["error"]["code"] == -32020  # Mcp-Name must be the task id (SEP-2663), so a proxy can route
    assert final.status == "completed", final
    data = CallToolResult.model_validate(final.result).structured_content or {}
    assert data["status"] == "succeeded" and Path(data["video_path"]).is_file()
    assert (await sandbox_stats(sandbox))["creates"] == 1


async def tasks_get_with_mcp_name(url: str, task_id: str, name: str) -> dict[str, Any]:
    """A 2026-07-28 tasks/get whose Mcp-Name header names another task than its body (what a raw client can send)."""
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tasks/get",
        "params": {
            "taskId": task_id,
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {"extensions": {"io.modelcontextprotocol/tasks": {}}},
                "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "0"},
            },
        },
    }
    headers = {
        "Authorization": f"Bearer {ALICE}",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tasks/get",
        "Mcp-Name": name,
    }
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(url, json=body, headers=headers)
    return response.json()
