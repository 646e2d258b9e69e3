"""Money the person approves: a per-video limit, a daily budget kept across server processes, and asking first.

The sandbox's prices are the list prices of the model it speaks for (simulated money), so the limits bite there.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, types
from mcp.client.session import ClientRequestContext

from seedance_mcp.app import create_app
from seedance_mcp.sandbox import SandboxServer
from tests.conftest import SECRET_KEY, make_settings, sandbox_stats, text_of
from tests.stdio_helpers import server_env, stdio_params

pytestmark = pytest.mark.anyio

# 2.0 at 720p 16:9 for 5 s: 108,900 tokens at 46 CNY per million = 5.0094 CNY.
CALL = {"prompt": "a red kite", "model": "2.0", "resolution": "720p", "ratio": "16:9", "duration": 5}
COST = 108900 * 46 / 1e6


async def test_a_video_over_the_per_video_limit_is_refused_and_nothing_is_sent(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    settings = make_settings(
        tmp_path, provider="ark", base_url=f"{sandbox.url}/api/v3", api_key=SECRET_KEY, max_cost_per_video=4.0
    )
    async with Client(create_app(settings)) as client:
        refused = await client.call_tool("generate_video", CALL)
        cheaper = await client.call_tool("generate_video", {**CALL, "resolution": "480p"})
    assert refused.is_error is True
    assert "SEEDANCE_MAX_COST_PER_VIDEO" in text_of(refused) and "5.01" in text_of(refused)
    assert "Nothing was sent" in text_of(refused)
    assert cheaper.is_error is False
    assert (await sandbox_stats(sandbox))["creates"] == 1


async def test_the_daily_budget_counts_jobs_in_flight_and_holds_across_two_server_processes(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    """Four calls at once through two processes on one journal, a budget for two and a half videos: two are made."""
    sandbox.state.render_seconds = 3.0
    env = server_env(
        tmp_path,
        SEEDANCE_PROVIDER="ark",
        SEEDANCE_BASE_URL=f"{sandbox.url}/api/v3",
        SEEDANCE_API_KEY=SECRET_KEY,
        SEEDANCE_DAILY_BUDGET=str(COST * 2.5),
    )
    results: list[types.CallToolResult] = []

    async def submit(client: Client, index: int) -> None:
        results.append(await client.call_tool("generate_video", {**CALL, "prompt": f"kite {index}", "wait": False}))

    with anyio.fail_after(60):
        async with Client(stdio_params(env)) as first, Client(stdio_params(env)) as second:
            await first.call_tool("list_models", {})
            await second.call_tool("list_models", {})
            async with anyio.create_task_group() as group:
                for index in range(4):
                    group.start_soon(submit, (first, second)[index % 2], index)
            listed = (await first.call_tool("list_tasks", {})).structured_content or {}
    made = [r for r in results if not r.is_error]
    refused = [r for r in results if r.is_error]
    assert len(made) == 2 and len(refused) == 2
    assert all("SEEDANCE_DAILY_BUDGET" in text_of(r) and "Nothing was sent" in text_of(r) for r in refused)
    assert (await sandbox_stats(sandbox))["creates"] == 2
    assert listed["spend"]["today"] == pytest.approx(2 * COST, abs=1e-3) and listed["spend"]["currency"] == "CNY"


def answering(action: str, approve: bool = True) -> Any:
    asked: list[str] = []

    async def callback(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        if action == "accept":
            return types.ElicitResult(action="accept", content={"approve": approve})
        return types.ElicitResult(action="decline")

    callback.asked = asked  # type: ignore[attr-defined]
    return callback


@pytest.mark.parametrize(
    ("action", "approve", "made"), [("accept", True, True), ("decline", True, False), ("accept", False, False)]
)
async def test_a_client_that_can_ask_asks_the_person_above_the_threshold(
    tmp_path: Path, sandbox: SandboxServer, action: str, approve: bool, made: bool
) -> None:
    settings = make_settings(
        tmp_path, provider="ark", base_url=f"{sandbox.url}/api/v3", api_key=SECRET_KEY, confirm_above=1.0
    )
    callback = answering(action, approve)
    async with Client(create_app(settings), mode="legacy", elicitation_callback=callback) as client:
        result = await client.call_tool("generate_video", CALL)
    data = result.structured_content or {}
    [question] = callback.asked
    assert "doubao-seedance-2-0-260128" in question and "5.01 CNY" in question and "720p" in question
    assert result.is_error is False
    if made:
        assert data["status"] == "succeeded"
    else:
        assert data["status"] == "not_submitted" and "declined" in data["next_step"]
    assert (await sandbox_stats(sandbox))["creates"] == (1 if made else 0)


async def test_a_client_that_cannot_ask_is_told_the_cost_and_calls_again_with_the_approval(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    settings = make_settings(
        tmp_path, provider="ark", base_url=f"{sandbox.url}/api/v3", api_key=SECRET_KEY, confirm_above=1.0
    )
    async with Client(create_app(settings)) as client:
        refused = await client.call_tool("generate_video", CALL)
        small = await client.call_tool("generate_video", {**CALL, "resolution": "480p", "approve_cost": 0.5})
        approved = await client.call_tool("generate_video", {**CALL, "approve_cost": 5.01})
    assert refused.is_error is True and "approve_cost=5.01" in text_of(refused)
    assert small.is_error is True  # an approval for less than the cost does not count
    assert approved.is_error is False and (approved.structured_content or {})["status"] == "succeeded"
    assert (await sandbox_stats(sandbox))["creates"] == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="stdio subprocesses as elsewhere")
async def test_list_tasks_reports_the_spend_of_today_and_this_week_per_model(tmp_path: Path) -> None:
    async with Client(create_app(make_settings(tmp_path))) as client:
        await client.call_tool("generate_video", CALL)
        await client.call_tool("generate_video", {**CALL, "model": "2.0-mini"})
        listed = (await client.call_tool("list_tasks", {})).structured_content or {}
    spend = listed["spend"]
    by_model = {row["model"]: row for row in spend["this_week_by_model"]}
    assert by_model["doubao-seedance-2-0-260128"]["cost"] == pytest.approx(COST, abs=1e-3)
    assert spend["today"] == pytest.approx(spend["this_week"]) and spend["today_billed_tokens"] > 0


async def test_hosts_that_honour_it_are_told_generate_video_needs_the_user(tmp_path: Path) -> None:
    async with Client(create_app(make_settings(tmp_path, require_confirmation=True))) as client:
        marked = {t.name: t for t in (await client.list_tools()).tools}["generate_video"]
    async with Client(create_app(make_settings(tmp_path))) as client:
        plain = {t.name: t for t in (await client.list_tools()).tools}["generate_video"]
    assert (marked.meta or {}).get("anthropic/requiresUserInteraction") is True
    assert "anthropic/requiresUserInteraction" not in (plain.meta or {})
