"""Takes of a storyboard shot (`shots[i].takes`), through the real MCP client on a loopback sandbox: every take
rendered at once under the plan's one approval, each its own paid job; the film uses take 1 and the next shot
continues from take 1; another take is used by calling storyboard again with it as `shots[i].clip`, paying only for
the shots rendered anew."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from PIL import Image

from seedance_mcp.app import create_app
from seedance_mcp.sandbox.clips import read_code
from seedance_mcp.sandbox.server import SandboxServer
from tests.conftest import sandbox_stats, text_of
from tests.e2e.test_storyboard import ark, film_frames

pytestmark = pytest.mark.anyio

SHOT_1: dict[str, Any] = {"prompt": "a red kite rises over the dunes", "duration": 5, "takes": 2}
SHOT_2: dict[str, Any] = {"prompt": "the kite dives toward the sea", "duration": 4}
PLAN: dict[str, Any] = {"model": "2.0", "resolution": "720p", "shots": [SHOT_1, SHOT_2]}


async def approved(client: Client, arguments: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Call storyboard, answer its one approval question with the approval id, return the result and question."""
    refused = await client.call_tool("storyboard", arguments)
    question = text_of(refused)
    assert refused.is_error and 'approval_id="' in question, question
    approval_id = question.split('approval_id="', 1)[1].split('"', 1)[0]
    result = await client.call_tool("storyboard", {**arguments, "approval_id": approval_id})
    assert not result.is_error, text_of(result)
    data: dict[str, Any] = result.structured_content or {}
    assert data["status"] == "succeeded", text_of(result)
    return data, question


def tag_of_last_frame(path: str) -> tuple[int, int]:
    frames, _, _ = film_frames(path)
    return read_code(frames[-1])


async def test_a_shots_takes_render_under_one_approval_and_another_take_is_used_as_a_clip(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    settings = ark(tmp_path, sandbox, confirm_above=0.01)
    with anyio.fail_after(120):
        async with Client(create_app(settings)) as client:
            dry = await client.call_tool("storyboard", {**PLAN, "dry_run": True})
            first, question = await approved(client, PLAN)
            assert (await sandbox_stats(sandbox))["creates"] == 3  # two takes of shot 1, shot 2
            takes = first["shots"][0]["takes"]
            again, _ = await approved(client, {**PLAN, "shots": [{"clip": takes[1]["task_id"]}, SHOT_2]})
    # One quote for the plan, counting every take: shot 1 twice.
    shots = (dry.structured_content or {})["shots"]
    assert shots[0]["estimated_cost"] == pytest.approx(2 * shots[1]["estimated_cost"] * 5 / 4, rel=0.01), shots
    assert (dry.structured_content or {})["estimated_cost"] == pytest.approx(
        shots[0]["estimated_cost"] + shots[1]["estimated_cost"]
    )
    assert "2 takes of shot 1" in question
    # Each take its own saved job, and a contact sheet of them; the film is take 1 then shot 2, from take 1.
    assert [t["take"] for t in takes] == [1, 2] and all(t["status"] == "succeeded" for t in takes)
    assert takes[0]["task_id"] == first["shots"][0]["task_id"] and takes[0]["task_id"] != takes[1]["task_id"]
    with Image.open(first["shots"][0]["contact_sheet_path"]) as sheet:
        assert sheet.format == "PNG" and sheet.height > sheet.width / 3  # a row per take
    assert "shots[0]" in first["next_step"] and '"clip"' in first["next_step"]
    one, two = tag_of_last_frame(takes[0]["video_path"]), tag_of_last_frame(takes[1]["video_path"])
    assert one[0] != two[0]  # two renders, not one
    frames, seconds, _ = film_frames(first["film_path"])
    assert seconds == 9.0 and read_code(frames[5 * 24 - 1]) == one and read_code(frames[5 * 24]) == one
    # Take 2 used as shot 1: one more create (shot 2 anew, from take 2's last frame); no take paid again.
    assert (await sandbox_stats(sandbox))["creates"] == 4
    assert again["shots"][0]["task_id"] == takes[1]["task_id"]
    assert again["shots"][1]["task_id"] != first["shots"][1]["task_id"]
    frames, seconds, _ = film_frames(again["film_path"])
    assert seconds == 9.0 and read_code(frames[5 * 24 - 1]) == two and read_code(frames[5 * 24]) == two


async def test_takes_out_of_range_or_with_a_fixed_seed_are_refused_by_name(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    async with Client(create_app(ark(tmp_path, sandbox))) as client:
        many = await client.call_tool("storyboard", {**PLAN, "shots": [{**SHOT_1, "takes": 5}, SHOT_2]})
        seeded = await client.call_tool("storyboard", {**PLAN, "seed": 7})
    assert many.is_error and "`shots[0].takes`" in text_of(many) and "1-4" in text_of(many), text_of(many)
    assert seeded.is_error and "`seed`" in text_of(seeded) and "shots[0].takes = 2" in text_of(seeded)
    assert (await sandbox_stats(sandbox))["create_attempts"] == 0
