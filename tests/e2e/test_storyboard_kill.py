"""A storyboard survives a SIGKILL of its server mid-plan: a new server on the same journal finishes the plan by
itself, with no storyboard call (its worker takes the plan over once the dead one's lease ran out), sends only the
shots that had no job, and no shot is paid for twice (the sandbox counts the creates)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Any

import anyio
import av
import pytest
from mcp import Client

from seedance_mcp.sandbox import SandboxServer
from tests.conftest import SECRET_KEY, sandbox_stats, text_of
from tests.fakes.stdio_helpers import server_env, server_pids, stdio_params

pytestmark = pytest.mark.anyio


PLAN = {
    "model": "doubao-seedance-1-5-pro-251215",
    "shots": [
        {"prompt": "a lighthouse at dusk [[render=0.5]]", "duration": 4},
        {"prompt": "the beam sweeps the waves [[render=600]]", "duration": 5, "transition": "continuous"},
        {"prompt": "morning on the same coast [[render=0.5]]", "duration": 4, "transition": "continuous"},
    ],
}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to find the server process")
@pytest.mark.subprocess
async def test_a_storyboard_killed_mid_plan_is_finished_by_the_next_server_without_a_call(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    env = server_env(
        tmp_path,
        SEEDANCE_PROVIDER="ark",
        SEEDANCE_BASE_URL=f"{sandbox.url}/api/v3",
        SEEDANCE_API_KEY=SECRET_KEY,
        SEEDANCE_LEASE_SECONDS="2",
        SEEDANCE_WAIT_SECONDS="40",
    )
    marker = str(tmp_path / "state")
    with anyio.fail_after(90):
        async with Client(stdio_params(env)) as client, anyio.create_task_group() as group:

            async def call() -> None:
                with contextlib.suppress(Exception):
                    await client.call_tool("storyboard", PLAN)

            group.start_soon(call)
            while (await sandbox_stats(sandbox))["creates"] < 2:  # shot 1 saved, shot 2 sent and rendering
                await anyio.sleep(0.05)
            pids = server_pids(marker)
            assert pids, "the server process was not found"
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            while server_pids(marker):
                await anyio.sleep(0.05)
            group.cancel_scope.cancel()
        assert (await sandbox_stats(sandbox))["creates"] == 2
        for task in sandbox.state.tasks.values():  # shot 2's render ends now
            task.queued_seconds = task.render_seconds = 0.0

        # A new server on the same journal, and no storyboard call: it resumes the plan by itself.
        videos = tmp_path / "videos"
        async with Client(stdio_params(env)) as client:
            while not list(videos.glob("sb-*.mp4")):
                await anyio.sleep(0.1)
            [film] = videos.glob("sb-*.mp4")
            # The film is renamed into place just before the plan is marked done: until then it says `running`.
            while True:
                status = await client.call_tool("get_task_status", {"task_id": film.stem})
                if (status.structured_content or {}).get("status") != "running":
                    break
                await anyio.sleep(0.1)
    assert (await sandbox_stats(sandbox))["creates"] == 3  # shots 1 and 2 never sent again; only shot 3 is new
    data: dict[str, Any] = status.structured_content or {}
    assert not status.is_error and data.get("status") == "succeeded", text_of(status)
    assert [s["paid"] and s["saved"] for s in data["shots"]] == [True, True, True]
    assert data["film_path"] == str(film)
    with av.open(str(film), "r") as joined:
        stream = joined.streams.video[0]
        assert stream.duration is not None and stream.time_base is not None
        assert float(stream.duration * stream.time_base) == 13.0
