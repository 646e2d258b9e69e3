"""Polls that fall due together share one list request on Ark; without a list call, tasks are polled alone."""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
import pytest
from mcp import Client

from seedance_mcp.app import create_app
from seedance_mcp.catalog import PRESETS
from seedance_mcp.jobs.status_batcher import StatusBatcher
from seedance_mcp.providers import dialect_for
from seedance_mcp.providers._http import RetryPolicy
from seedance_mcp.providers.client import ProviderClient
from seedance_mcp.sandbox import SandboxServer
from tests.conftest import SECRET_KEY, make_settings, sandbox_stats

pytestmark = pytest.mark.anyio


async def test_concurrent_ark_jobs_are_polled_through_the_task_list(tmp_path: Path, sandbox: SandboxServer) -> None:
    settings = make_settings(tmp_path, provider="ark", base_url=f"{sandbox.url}/api/v3", api_key=SECRET_KEY)
    async with Client(create_app(settings)) as client:
        async with anyio.create_task_group() as group:
            for index in range(6):
                group.start_soon(client.call_tool, "generate_video", {"prompt": f"batched {index}"})
        listed = await client.call_tool("list_tasks", {"status": "succeeded"})
    assert len((listed.structured_content or {})["tasks"]) == 6
    stats = await sandbox_stats(sandbox)
    assert stats["list_polls"] >= 1
    assert stats["list_polls"] + stats["status_polls"] < stats["statuses_read"]  # fewer requests than statuses


async def test_gateways_without_a_list_are_polled_one_by_one(tmp_path: Path, sandbox: SandboxServer) -> None:
    settings = make_settings(tmp_path, provider="gptge", base_url=sandbox.url, api_key=SECRET_KEY)
    async with Client(create_app(settings)) as client:
        result = await client.call_tool("generate_video", {"prompt": "alone"})
    assert (result.structured_content or {})["status"] == "succeeded"
    stats = await sandbox_stats(sandbox)
    assert stats["list_polls"] == 0 and stats["status_polls"] >= 1


async def test_a_refused_list_switches_batching_off_and_polls_continue() -> None:
    """A gateway that answers 404 to the list: every task is still read, one by one."""
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path + ("?list" if request.url.query else ""))
        if request.url.query:
            return httpx.Response(404, json={"error": {"code": "NotFound", "message": "no list here"}})
        task_id = request.url.path.rsplit("/", 1)[1]
        return httpx.Response(200, json={"id": task_id, "status": "running"})

    provider = ProviderClient(
        preset=PRESETS["kkiai"],
        dialect=dialect_for("ark"),
        base_url="https://gw.example/volc/v1",
        api_key=SECRET_KEY,
        http=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        retry=RetryPolicy(attempts=1),
    )
    results: dict[str, str] = {}
    async with anyio.create_task_group() as group:
        batcher = StatusBatcher(provider, group, anyio.CapacityLimiter(4), window=0.01)

        async def poll(task_id: str) -> None:
            results[task_id] = (await batcher.fetch(task_id, "1.5-pro")).status

        async with anyio.create_task_group() as first_round:
            for task_id in ("a", "b", "c"):
                first_round.start_soon(poll, task_id)
        await poll("d")
    assert results == {"a": "running", "b": "running", "c": "running", "d": "running"}
    assert calls.count("/volc/v1/contents/generations/tasks?list") == 1  # tried once, then never again
    assert calls[-1] == "/volc/v1/contents/generations/tasks/d"
