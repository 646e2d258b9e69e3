"""The tasks extension (SEP-2663) through the real MCP client, in memory: a 2026-07-28 client that declares it gets
generate_video as a task read from the journal; every other client, and every answer that is not a running job, gets
today's plain result."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, MCPError
from mcp.client.session import ClientRequestContext
from mcp.types import CallToolResult, ElicitRequestParams, ElicitResult

from seedance_mcp.app import create_app
from seedance_mcp.config import Settings
from seedance_mcp.sandbox import SandboxServer
from tests.conftest import SECRET_KEY, make_settings, sandbox_stats, text_of
from tests.fakes.task_client import (
    CreateTaskResult,
    GetTaskResult,
    TasksClient,
    cancel_task,
    get_task,
    wait_task,
)

pytestmark = pytest.mark.anyio

# 2.0 at 720p 16:9 for 5 s: 5.01 CNY at list price, above a SEEDANCE_CONFIRM_ABOVE of 1.
CALL = {"prompt": "a red kite", "model": "2.0", "resolution": "720p", "ratio": "16:9", "duration": 5}


def tasks_client(settings: Settings, **kwargs: Any) -> Client:
    return Client(create_app(settings), extensions=[TasksClient()], **kwargs)


async def create(client: Client, arguments: dict[str, Any]) -> CreateTaskResult | CallToolResult:
    answer = await client.session.call_tool("generate_video", arguments, allow_claimed=True)
    assert isinstance(answer, CreateTaskResult | CallToolResult), answer
    return answer


async def test_a_declaring_client_gets_a_task_that_polls_to_the_saved_video(settings: Settings) -> None:
    seen: list[GetTaskResult] = []
    with anyio.fail_after(30):
        async with tasks_client(settings) as client:
            created = await create(client, {"prompt": "a kite [[render=2]]"})
            assert isinstance(created, CreateTaskResult), created
            final = await wait_task(client.session, created.task_id, seen)
            status = await client.call_tool(
                "get_task_status", {"task_id": (final.result or {})["structuredContent"]["task_id"]}
            )
    # Answered at once (not after the 15 s wait the plain tool makes): the job is journaled and still rendering.
    assert created.status == "working" and created.ttl_ms is None and created.poll_interval_ms == 50
    job_id, _, secret = created.task_id.partition(".")
    assert job_id.startswith("job-") and len(secret) >= 22  # 128 random bits: a handle nobody guesses
    working = [task for task in seen if task.status == "working"]
    assert working and all("%" in (task.status_message or "") for task in working)
    assert final.status == "completed" and final.error is None
    result = CallToolResult.model_validate(final.result)
    data = result.structured_content or {}
    assert result.is_error is False and data["status"] == "succeeded" and Path(data["video_path"]).is_file()
    assert data == status.structured_content  # exactly what get_task_status answers


async def test_call_tool_on_a_declaring_client_resolves_the_task_to_the_result(settings: Settings) -> None:
    with anyio.fail_after(30):
        async with tasks_client(settings) as client:
            result = await client.call_tool("generate_video", {"prompt": "a lighthouse [[render=1]]"})
    data = result.structured_content or {}
    assert result.is_error is False and data["status"] == "succeeded" and Path(data["video_path"]).is_file()


async def test_a_task_cancelled_while_queued_ends_cancelled_and_its_job_too(settings: Settings) -> None:
    with anyio.fail_after(30):
        async with tasks_client(settings) as client:
            created = await create(client, {"prompt": "a long queue [[queue=60]]"})
            assert isinstance(created, CreateTaskResult), created
            await cancel_task(client.session, created.task_id)
            final = await wait_task(client.session, created.task_id)
            await cancel_task(client.session, created.task_id)  # a terminal task: the same ack
            again = await get_task(client.session, created.task_id)
            job = await client.call_tool("get_task_status", {"task_id": created.task_id.partition(".")[0]})
    assert final.status == "cancelled" and final.result is None and again.status == "cancelled"
    assert (job.structured_content or {})["status"] == "cancelled"


async def test_refusals_dry_runs_and_settled_dedupe_hits_stay_plain_results(settings: Settings) -> None:
    with anyio.fail_after(30):
        async with tasks_client(settings) as client:
            dry = await create(client, {"prompt": "a kite", "dry_run": True})
            refused = await create(client, {"prompt": "a kite", "duration": 99})
            async with Client(create_app(settings)) as plain:  # the same person, not declaring tasks
                first = await plain.call_tool("generate_video", {"prompt": "a heron", "wait": True})
            again = await create(client, {"prompt": "a heron"})
    assert isinstance(dry, CallToolResult) and (dry.structured_content or {})["status"] == "not_submitted"
    assert isinstance(refused, CallToolResult) and refused.is_error is True and "duration" in text_of(refused)
    assert (first.structured_content or {})["status"] == "succeeded"
    assert isinstance(again, CallToolResult), again
    assert (again.structured_content or {})["reused_existing"] is True
    assert (again.structured_content or {})["task_id"] == (first.structured_content or {})["task_id"]


async def test_legacy_and_non_declaring_clients_keep_the_plain_tools(settings: Settings) -> None:
    """SEP-2663 is not defined on 2025-11-25: a legacy session that declares it still gets plain results (its
    tasks/* are the 2025-11-25 ones, legacy_tasks.py, for calls that ask with `params.task`); a 2026 client that does
    not declare the extension is told the capability it lacks."""
    with anyio.fail_after(30):
        async with tasks_client(settings, mode="legacy") as legacy:
            old = await create(legacy, {"prompt": "a kite [[render=0.5]]"})
            with pytest.raises(MCPError) as unknown:
                await get_task(legacy.session, "job-x.y")
        async with Client(create_app(settings)) as modern:
            new = await create(modern, {"prompt": "a heron [[render=0.5]]"})
            with pytest.raises(MCPError) as undeclared:
                await get_task(modern.session, "job-x.y")
    for result in (old, new):
        assert isinstance(result, CallToolResult) and (result.structured_content or {})["status"] == "succeeded"
    assert unknown.value.code == -32602
    assert undeclared.value.code == -32021 and "io.modelcontextprotocol/tasks" in str(undeclared.value.data)


async def test_a_task_id_that_is_not_exactly_the_one_given_is_not_found(settings: Settings) -> None:
    with anyio.fail_after(30):
        async with tasks_client(settings) as client:
            created = await create(client, {"prompt": "a kite [[queue=60]]"})
            assert isinstance(created, CreateTaskResult), created
            job_id, _, secret = created.task_id.partition(".")
            tampered = secret[:-1] + ("B" if secret.endswith("A") else "A")
            guesses = [job_id, f"{job_id}.", f"{job_id}.{tampered}", f"{job_id}.{secret}x", secret, "nothing"]
            codes: list[int] = []
            for guess in guesses:
                with pytest.raises(MCPError) as refused:
                    await get_task(client.session, guess)
                codes.append(refused.value.code)
                with pytest.raises(MCPError) as not_cancelled:
                    await cancel_task(client.session, guess)
                codes.append(not_cancelled.value.code)
            still = await get_task(client.session, created.task_id)
    assert codes == [-32602] * len(guesses) * 2
    assert still.status == "working"


async def test_an_approval_is_asked_plainly_and_only_the_paid_job_becomes_a_task(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    """Cost approval is an input_required round before any job exists; only what follows the yes is a task. A
    client that cannot ask gets the approval id as a plain result, and nothing is sent."""
    settings = make_settings(
        tmp_path, provider="ark", base_url=f"{sandbox.url}/api/v3", api_key=SECRET_KEY, confirm_above=1.0
    )
    asked: list[str] = []

    async def person_says_yes(context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        asked.append(params.message)
        return ElicitResult(action="accept", content={"approve": True})

    with anyio.fail_after(30):
        async with tasks_client(settings) as cannot_ask:
            refused = await create(cannot_ask, CALL)
        async with tasks_client(settings, elicitation_callback=person_says_yes) as client:
            made = await client.call_tool("generate_video", CALL)
    assert isinstance(refused, CallToolResult) and re.search(r'approval_id="apv-', text_of(refused)), refused
    assert len(asked) == 1 and "5.01 CNY" in asked[0]
    assert made.is_error is False and (made.structured_content or {})["status"] == "succeeded"
    assert (await sandbox_stats(sandbox))["creates"] == 1


async def test_an_identical_call_while_the_first_renders_is_the_same_task_and_paid_once(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    settings = make_settings(tmp_path, provider="ark", base_url=f"{sandbox.url}/api/v3", api_key=SECRET_KEY)
    with anyio.fail_after(30):
        async with tasks_client(settings) as client:
            first = await create(client, {"prompt": "a kite [[render=2]]"})
            second = await create(client, {"prompt": "a kite [[render=2]]"})
            assert isinstance(first, CreateTaskResult) and isinstance(second, CreateTaskResult), (first, second)
            final = await wait_task(client.session, second.task_id)
    assert second.task_id == first.task_id and final.status == "completed"
    assert (await sandbox_stats(sandbox))["creates"] == 1


async def test_cancelling_a_task_that_is_rendering_is_an_ack_and_its_video_is_still_saved(settings: Settings) -> None:
    """Ark cannot stop a running render: the cancel is acknowledged (SEP-2663: cooperative), the task ends
    `completed`, and the video it pays for is on disk, never lost."""
    with anyio.fail_after(30):
        async with tasks_client(settings) as client:
            created = await create(client, {"prompt": "a kite [[render=2]]"})
            assert isinstance(created, CreateTaskResult), created
            while "running" not in ((await get_task(client.session, created.task_id)).status_message or ""):
                await anyio.sleep(0.05)
            await cancel_task(client.session, created.task_id)
            final = await wait_task(client.session, created.task_id)
    assert final.status == "completed"
    data = CallToolResult.model_validate(final.result).structured_content or {}
    assert data["status"] == "succeeded" and Path(data["video_path"]).is_file()
