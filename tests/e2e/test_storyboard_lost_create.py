"""A storyboard shot whose create answer is lost (the fake makes the task, then hangs up), through the real server
(MCP client in memory) and the socket-level fake Ark with real clips: what the plan says about that shot, and what
calling it again pays."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.types import CallToolResult

from seedance_mcp.app import create_app
from seedance_mcp.config import Settings
from tests.conftest import SECRET_KEY, make_settings, text_of
from tests.e2e.test_storyboard_kill_fake import PLAN, assert_one_continuous_film, tasks_in_order, until
from tests.fakes.fake_ark import FakeArk, running_fake_ark

pytestmark = pytest.mark.anyio


def fake_settings(tmp_path: Path, fake: FakeArk) -> Settings:
    return make_settings(
        tmp_path,
        provider="ark",
        base_url=fake.base_url,
        api_key=SECRET_KEY,
        wait_seconds=30.0,
        reconcile_delays=(0.2, 0.5, 1.0),
        reconcile_window=1.5,
        http_timeout=5.0,
    )


async def storyboard_losing_shot_2s_create_answer(client: Client, fake: FakeArk) -> dict[str, Any]:
    """The plan's first call, the fake dropping the connection after making shot 2's task: its result."""
    shot_1 = fake.hold_task(1)

    async def arm_the_fault() -> None:  # on shot 2's create, not shot 1's
        await until(lambda: fake.creates == 1)
        fake.add_fault("create", "drop_after")
        shot_1.set()

    result: CallToolResult | None = None
    async with anyio.create_task_group() as group:
        group.start_soon(arm_the_fault)
        result = await client.call_tool("storyboard", PLAN)
    assert result is not None and result.is_error is False, text_of(result)
    assert fake.creates == 2 and [r.fault for r in fake.requests if r.method == "POST"] == [None, "drop_after"]
    return result.structured_content or {}


async def test_a_shot_whose_create_answer_was_lost_is_not_paid_again_when_the_plan_is_called_again(
    tmp_path: Path,
) -> None:
    """The task the fake made for shot 2 is found and used: the next call makes only shot 3, on shot 2's last
    frame, and the film."""
    async with running_fake_ark(render_seconds=0.3, real_clips=True) as fake:
        with anyio.fail_after(90):
            async with Client(create_app(fake_settings(tmp_path, fake))) as client:
                await storyboard_losing_shot_2s_create_answer(client, fake)
                again = await client.call_tool("storyboard", PLAN)
        data: dict[str, Any] = again.structured_content or {}
        assert data.get("status") == "succeeded", text_of(again)
        await assert_one_continuous_film(fake, data)
        assert fake.handler_errors == []


async def test_a_shot_whose_create_answer_was_lost_is_never_reported_as_not_sent(tmp_path: Path) -> None:
    """What the plan says about shot 2 must be true: either the plan waited for the task the fake made and the film
    is joined, or shot 2 is told as possibly paid (its job named), never as not sent."""
    async with running_fake_ark(render_seconds=0.3, real_clips=True) as fake:
        with anyio.fail_after(90):
            async with Client(create_app(fake_settings(tmp_path, fake))) as client:
                data = await storyboard_losing_shot_2s_create_answer(client, fake)
        shot_2 = data["shots"][1]
        made = tasks_in_order(fake)[1].id
        if data["status"] != "succeeded":
            assert shot_2["status"] != "not_sent" and shot_2.get("may_be_paid") is True, shot_2
            assert shot_2.get("task_id"), shot_2  # its job or task, to follow
        else:
            assert shot_2["task_id"] == made and fake.creates == 3
