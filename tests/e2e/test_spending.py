"""Money the person approves: a per-video limit, a daily budget kept across server processes, and asking first.

The sandbox's prices are the list prices of the model it speaks for (simulated money), so the limits bite there.
"""

from __future__ import annotations

import re
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
from tests.fakes.stdio_helpers import server_env, stdio_params

pytestmark = pytest.mark.anyio

# 2.0 at 720p 16:9 for 5 s: 108,900 tokens at 46 CNY per million = 5.0094 CNY.
MODES = ["auto", "legacy"]
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


@pytest.mark.subprocess
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
    """An elicitation callback that records each question and gives this answer (the person's)."""
    asked: list[str] = []

    async def callback(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        if action == "accept":
            return types.ElicitResult(action="accept", content={"approve": approve})
        return types.ElicitResult(action="decline" if action == "decline" else "cancel")

    callback.asked = asked  # type: ignore[attr-defined]
    return callback


def ark(tmp_path: Path, sandbox: SandboxServer, **overrides: Any) -> Any:
    return make_settings(
        tmp_path, provider="ark", base_url=f"{sandbox.url}/api/v3", api_key=SECRET_KEY, confirm_above=1.0, **overrides
    )


def approval_id_in(text: str) -> str:
    match = re.search(r'approval_id="(apv-[0-9]+-[0-9a-f]+)"', text)
    assert match is not None, text
    return match.group(1)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("action", "approve", "made"),
    [("accept", True, True), ("decline", True, False), ("cancel", True, False), ("accept", False, False)],
)
async def test_a_client_that_can_ask_asks_the_person_above_the_threshold(
    tmp_path: Path, sandbox: SandboxServer, mode: str, action: str, approve: bool, made: bool
) -> None:
    """In both protocol eras (a back-channel request on 2025-11-25, an input_required round on 2026-07-28)."""
    callback = answering(action, approve)
    async with Client(create_app(ark(tmp_path, sandbox)), mode=mode, elicitation_callback=callback) as client:
        result = await client.call_tool("generate_video", CALL)
    data = result.structured_content or {}
    [question] = callback.asked
    assert "doubao-seedance-2-0-260128" in question and "5.01 CNY" in question and "720p" in question
    assert result.is_error is False, text_of(result)
    if made:
        assert data["status"] == "succeeded"
    else:
        assert data["status"] == "not_submitted" and "declined" in data["next_step"]
    assert (await sandbox_stats(sandbox))["creates"] == (1 if made else 0)


@pytest.mark.parametrize("mode", MODES)
async def test_the_person_is_asked_whatever_the_arguments_say(
    tmp_path: Path, sandbox: SandboxServer, mode: str
) -> None:
    """A model cannot approve its own spending where the person can be asked: neither the old `approve_cost`
    (any amount) nor an approval id for exactly this video skips the question, and a decline sends nothing."""
    settings = ark(tmp_path, sandbox)
    async with Client(create_app(settings), mode=mode) as cannot_ask:  # no elicitation: gets an approval id
        approval_id = approval_id_in(text_of(await cannot_ask.call_tool("generate_video", CALL)))
    callback = answering("decline")
    async with Client(create_app(settings), mode=mode, elicitation_callback=callback) as client:
        old_forms = [
            await client.call_tool("generate_video", {**CALL, "approve_cost": value}) for value in (1000, "Infinity")
        ]
        with_id = await client.call_tool("generate_video", {**CALL, "approval_id": approval_id})
    for old in old_forms:
        assert old.is_error is True and "approval_id" in text_of(old) and "Nothing was sent" in text_of(old)
    assert with_id.is_error is False and (with_id.structured_content or {})["status"] == "not_submitted"
    assert len(callback.asked) == 1
    assert (await sandbox_stats(sandbox))["creates"] == 0


@pytest.mark.parametrize("mode", MODES)
async def test_a_client_that_cannot_ask_approves_exactly_the_quoted_video_once(
    tmp_path: Path, sandbox: SandboxServer, mode: str
) -> None:
    """The refusal's approval id pays for that video only: not for a cheaper or dearer one, not with a changed
    cost or signature, and not twice (force_new with the same id returns the job it paid for)."""
    async with Client(create_app(ark(tmp_path, sandbox)), mode=mode) as client:
        refused = await client.call_tool("generate_video", CALL)
        approval_id = approval_id_in(text_of(refused))
        issued, mac = approval_id.removeprefix("apv-").split("-")
        tampered = [
            f"apv-{int(issued) + 1}-{mac}",
            f"apv-{issued}-{mac[:-1]}{'0' if mac[-1] != '0' else '1'}",
            "apv-1-" + "0" * 32,
            "5.01",
        ]
        others = [await client.call_tool("generate_video", {**CALL, "approval_id": bad}) for bad in tampered]
        other_video = await client.call_tool("generate_video", {**CALL, "duration": 10, "approval_id": approval_id})
        other_prompt = await client.call_tool(
            "generate_video", {**CALL, "prompt": "a blue kite", "approval_id": approval_id}
        )
        approved = await client.call_tool("generate_video", {**CALL, "approval_id": approval_id})
        again = await client.call_tool("generate_video", {**CALL, "approval_id": approval_id, "force_new": True})
    assert refused.is_error is True and "5.01 CNY" in text_of(refused) and "Nothing was sent" in text_of(refused)
    for result in [*others, other_video, other_prompt]:
        assert result.is_error is True and "needs the user's approval" in text_of(result), text_of(result)
        assert "The approval_id given" in text_of(result) and "Nothing was sent" in text_of(result)
    for result in (other_video, other_prompt):  # each is quoted afresh, with an id of its own
        assert approval_id_in(text_of(result)) != approval_id
    assert "10.0" in text_of(other_video) or "10 s" in text_of(other_video)
    first = approved.structured_content or {}
    assert approved.is_error is False and first["status"] == "succeeded", text_of(approved)
    second = again.structured_content or {}
    assert again.is_error is False and second["task_id"] == first["task_id"] and second["reused_existing"] is True
    assert (await sandbox_stats(sandbox))["creates"] == 1


async def test_a_dry_run_quotes_the_cost_with_an_approval_id_that_the_real_call_accepts(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    async with Client(create_app(ark(tmp_path, sandbox))) as client:
        dry = await client.call_tool("generate_video", {**CALL, "dry_run": True})
        approval_id = approval_id_in((dry.structured_content or {})["next_step"])
        made = await client.call_tool("generate_video", {**CALL, "approval_id": approval_id})
    assert (dry.structured_content or {})["estimated_cost"] == pytest.approx(COST, abs=1e-3)
    assert made.is_error is False and (made.structured_content or {})["status"] == "succeeded", text_of(made)
    assert (await sandbox_stats(sandbox))["creates"] == 1


async def test_an_approval_id_holds_for_servers_on_the_same_state_dir_and_no_other(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    """Two MCP hosts on one machine share the state dir (and its approval key); a server elsewhere does not
    accept an id it did not sign, even for the same request."""
    async with Client(create_app(ark(tmp_path, sandbox))) as first:
        approval_id = approval_id_in(text_of(await first.call_tool("generate_video", CALL)))
    elsewhere = ark(tmp_path, sandbox, state_dir=tmp_path / "elsewhere")
    async with Client(create_app(elsewhere)) as stranger:
        refused = await stranger.call_tool("generate_video", {**CALL, "approval_id": approval_id})
    async with Client(create_app(ark(tmp_path, sandbox))) as second:
        made = await second.call_tool("generate_video", {**CALL, "approval_id": approval_id})
    assert refused.is_error is True and "another server" in text_of(refused)
    assert made.is_error is False, text_of(made)
    key = tmp_path / "state" / "approval.key"
    assert key.stat().st_mode & 0o077 == 0
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


@pytest.mark.parametrize("mode", MODES)
async def test_a_video_whose_price_is_unknown_needs_the_persons_approval(
    tmp_path: Path, sandbox: SandboxServer, mode: str
) -> None:
    """1.5 pro has no list price on Ark here: with SEEDANCE_CONFIRM_ABOVE set, its cost cannot be checked, so the
    person judges it (asked, or quoted with an approval id), never sent unasked."""
    call = {"prompt": "a red kite", "model": "1.5-pro"}
    async with Client(create_app(ark(tmp_path, sandbox)), mode=mode) as cannot_ask:
        refused = await cannot_ask.call_tool("generate_video", call)
        approved = await cannot_ask.call_tool(
            "generate_video", {**call, "approval_id": approval_id_in(text_of(refused))}
        )
    callback = answering("decline")
    async with Client(create_app(ark(tmp_path, sandbox)), mode=mode, elicitation_callback=callback) as client:
        declined = await client.call_tool("generate_video", {**call, "prompt": "a green kite"})
    assert refused.is_error and "cost unknown" in text_of(refused) and "Nothing was sent" in text_of(refused)
    assert approved.is_error is False, text_of(approved)
    assert [("cost unknown" in q) for q in callback.asked] == [True]
    assert (declined.structured_content or {})["status"] == "not_submitted"
    assert (await sandbox_stats(sandbox))["creates"] == 1


async def test_the_published_schema_offers_approval_id_and_not_an_amount(tmp_path: Path) -> None:
    async with Client(create_app(make_settings(tmp_path))) as client:
        tool = {t.name: t for t in (await client.list_tools()).tools}["generate_video"]
    properties = tool.input_schema["properties"]
    assert properties["approval_id"]["type"] == ["string", "null"] and "approve_cost" not in properties
