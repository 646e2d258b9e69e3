"""A storyboard shot that is a clip already made (`shots[i].clip`, e.g. a take chosen from generate_video's takes),
through the real MCP client on a loopback sandbox: not sent, not paid, its video is that shot of the film, and a
continuous shot after it starts from its last frame; a clip that is not the caller's finished, saved video is
refused by name with nothing sent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from seedance_mcp.app import create_app
from seedance_mcp.sandbox.clips import read_code
from seedance_mcp.sandbox.server import SandboxServer
from tests.conftest import sandbox_requests, sandbox_stats, text_of
from tests.e2e.test_principals import ALICE, BOB, as_person, http_server
from tests.e2e.test_storyboard import ark, film_frames

pytestmark = pytest.mark.anyio

TAKE = {"prompt": "a red kite rises over the dunes", "model": "2.0", "resolution": "720p", "duration": 5}


def after(clip: str) -> dict[str, Any]:
    return {
        "model": "2.0",
        "resolution": "720p",
        "shots": [{"clip": clip}, {"prompt": "the kite dives toward the sea", "duration": 4}],
    }


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_chosen_take_is_shot_one_of_a_continuous_storyboard_and_is_not_paid_again(
    tmp_path: Path, sandbox: SandboxServer, mode: str
) -> None:
    with anyio.fail_after(90):
        async with Client(create_app(ark(tmp_path, sandbox)), mode=mode) as client:
            made = await client.call_tool("generate_video", {**TAKE, "takes": 2})
            assert not made.is_error, text_of(made)
            takes = (made.structured_content or {})["takes"]
            assert [t["status"] for t in takes] == ["succeeded"] * 2
            chosen = takes[1]
            assert (await sandbox_stats(sandbox))["creates"] == 2
            dry = await client.call_tool("storyboard", {**after(chosen["task_id"]), "dry_run": True})
            result = await client.call_tool("storyboard", after(chosen["task_id"]))
    assert not dry.is_error, text_of(dry)
    shots = (dry.structured_content or {})["shots"]
    assert shots[0]["estimated_cost"] == 0 and shots[1]["estimated_cost"] > 0, shots
    assert (dry.structured_content or {})["estimated_cost"] == shots[1]["estimated_cost"]  # only the shot to render
    assert "a film of 2 shots, 9 s" in text_of(dry) and "1 of them clips already made (not paid)" in text_of(dry)
    assert not result.is_error, text_of(result)
    data: dict[str, Any] = result.structured_content or {}
    assert data["status"] == "succeeded", data
    assert (await sandbox_stats(sandbox))["creates"] == 3  # one create for the storyboard: shot 2
    assert data["shots"][0]["task_id"] == chosen["task_id"] and data["shots"][0]["video_path"] == chosen["video_path"]
    # Shot 2 was sent with a first frame (the take was made without a saved last frame: its MP4's final frame).
    bodies = [r["body"] for r in await sandbox_requests(sandbox) if r.get("body")]
    roles = [[item.get("role") for item in body["content"] if item["type"] == "image_url"] for body in bodies]
    assert sorted(roles, key=len) == [[], [], ["first_frame"]]
    # The film is the take (5 s) then shot 2 (4 s), and shot 2 opens on the take's last frame.
    take_frames, _, _ = film_frames(chosen["video_path"])
    frames, seconds, _ = film_frames(data["film_path"])
    assert seconds == 9.0 and len(frames) == 9 * 24
    take_tag, last_index = read_code(take_frames[-1])
    assert read_code(frames[5 * 24 - 1]) == (take_tag, last_index) == (take_tag, 5 * 24 - 1)
    assert read_code(frames[5 * 24]) == (take_tag, 5 * 24 - 1)
    assert read_code(frames[5 * 24 + 1])[0] != take_tag


async def test_an_unknown_or_unfinished_clip_is_refused_by_name_and_nothing_is_sent(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    with anyio.fail_after(60):
        async with Client(create_app(ark(tmp_path, sandbox))) as client:
            queued = await client.call_tool("generate_video", {**TAKE, "prompt": "a kite [[queue=60]]", "wait": False})
            handle = (queued.structured_content or {})["task_id"]
            creates = (await sandbox_stats(sandbox))["create_attempts"]
            unknown = await client.call_tool("storyboard", after("cgt-no-such-clip"))
            unfinished = await client.call_tool("storyboard", after(handle))
            both = await client.call_tool(
                "storyboard",
                {**after(handle), "shots": [{"clip": handle, "prompt": "also this", "duration": 5}]},
            )
    assert unknown.is_error and "`shots[0].clip`" in text_of(unknown) and "cgt-no-such-clip" in text_of(unknown)
    assert unfinished.is_error and "`shots[0].clip`" in text_of(unfinished), text_of(unfinished)
    assert "not a finished, saved video" in text_of(unfinished) and "get_task_status" in text_of(unfinished)
    assert both.is_error and "`shots[0].clip`" in text_of(both) and "prompt, duration" in text_of(both)
    assert (await sandbox_stats(sandbox))["create_attempts"] == creates  # none for the storyboards


@pytest.mark.subprocess
async def test_another_persons_clip_is_refused_as_unknown_and_nothing_is_sent(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    async with http_server(tmp_path, sandbox) as url:
        with anyio.fail_after(90):
            async with as_person(url, ALICE) as alice:
                made = await alice.call_tool("generate_video", TAKE)
                assert not made.is_error, text_of(made)
                handle = (made.structured_content or {})["task_id"]
            async with as_person(url, BOB) as bob:
                refused = await bob.call_tool("storyboard", after(handle))
    assert refused.is_error and "`shots[0].clip`" in text_of(refused), text_of(refused)
    assert (await sandbox_stats(sandbox))["creates"] == 1
