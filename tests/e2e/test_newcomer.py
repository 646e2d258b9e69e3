"""A newcomer's first hour: the demo shows the video, its thumbnail, its simulated cost and the command for clients;
the embedded sandbox's tasks survive a restart; its progress estimate follows the render time it was told."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client

from seedance_mcp.app import create_app
from seedance_mcp.demo import ProgressBar, client_command, cost_line
from seedance_mcp.sandbox import SandboxState, running_sandbox
from seedance_mcp.sandbox.state import TASKS_FILE, planned_seconds
from tests.conftest import make_settings, text_of
from tests.fakes.stdio_helpers import ROOT, server_env, stdio_params

pytestmark = pytest.mark.anyio

ARK_TASKS = "/api/v3/contents/generations/tasks"
BODY = {"model": "doubao-seedance-1-5-pro-251215", "content": [{"type": "text", "text": "a kite"}]}
HEADERS = {"Authorization": "Bearer sandbox-key"}


def line_after(label: str, output: str) -> str:
    match = re.search(rf"^{re.escape(label)}\s*(.+)$", output, re.MULTILINE)
    assert match, f"no {label!r} line in:\n{output}"
    return match.group(1).strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fake opener is an xdg-open shell script")
@pytest.mark.subprocess
def test_the_demo_prints_the_video_its_thumbnail_its_simulated_cost_and_a_client_command(tmp_path: Path) -> None:
    """`seedance-mcp demo --open` as a subprocess: exit 0, the saved MP4, its thumbnail, the cost, the opener."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    opened = tmp_path / "opened.txt"
    opener = bin_dir / "xdg-open"
    opener.write_text(f'#!/bin/sh\nprintf "%s" "$1" > "{opened}"\n')
    opener.chmod(0o755)
    env = server_env(tmp_path, SEEDANCE_SANDBOX_RENDER_SECONDS="1", SEEDANCE_LOG_LEVEL="WARNING")
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        [sys.executable, "-m", "seedance_mcp", "demo", "a paper boat", "--output-dir", str(tmp_path / "out"), "--open"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    output = done.stdout
    video = Path(line_after("Video:", output))
    assert video.is_absolute() and video.read_bytes()[4:8] == b"ftyp"
    thumbnail = Path(line_after("Thumbnail:", output))
    assert thumbnail.is_file() and thumbnail.read_bytes()[:2] == b"\xff\xd8"  # a JPEG
    assert "simulated" in line_after("Cost:", output) and "CNY" in line_after("Cost:", output)
    progress = [line for line in output.splitlines() if line.startswith("  [")]
    assert progress and not any("ETA" in line for line in progress if "queued ·" in line)
    command = line_after("To use it from Claude Desktop / Cursor / Claude Code, use this command:", output)
    assert Path(command).is_absolute() and Path(command).is_file() and os.access(command, os.X_OK), command
    assert f'"command": "{command}"' in output  # the ready JSON snippet
    assert opened.read_text() == str(video)


def test_the_client_command_is_this_installations_absolute_seedance_mcp() -> None:
    """The command the demo gives clients is the `seedance-mcp` next to this Python (the venv's), absolute."""
    command = client_command()
    assert Path(command).is_absolute() and Path(command).name.startswith("seedance-mcp")
    assert Path(command).parent == Path(sys.executable).absolute().parent


def test_the_eta_follows_the_progress_rate_and_the_cost_says_simulated() -> None:
    """10 %/s with 50 % to go: about 5 s; a sandbox result's cost is marked simulated."""
    now = [0.0]
    bar = ProgressBar(out=io.StringIO(), clock=lambda: now[0])
    bar.show(0.0, 100.0, "running · 0 s · cgt-1")
    now[0] = 5.0
    assert bar.eta(50.0, now[0]) == "ETA ~5 s"
    data: dict[str, Any] = {"cost": 5.0094, "currency": "CNY", "usage_tokens": 108900, "simulated": True}
    assert cost_line(data).startswith("5.01 CNY for 108,900 output tokens") and "simulated" in cost_line(data)
    assert "simulated" not in cost_line({**data, "simulated": False})


async def test_a_restarted_sandbox_keeps_its_tasks_and_its_port_so_old_video_urls_still_work(tmp_path: Path) -> None:
    """Tasks kept in a file: a second sandbox on it answers for the first one's task, on the same port."""
    path = tmp_path / TASKS_FILE
    with anyio.fail_after(20):
        async with (
            running_sandbox(SandboxState.kept_in(path, render_seconds=0.2)) as first,
            httpx.AsyncClient(headers=HEADERS) as http,
        ):
            created = await http.post(first.url + ARK_TASKS, json=BODY)
            task_id = created.json()["id"]
            while (done := (await http.get(f"{first.url}{ARK_TASKS}/{task_id}")).json())["status"] != "succeeded":
                await anyio.sleep(0.05)
        old_url = done["content"]["video_url"]
        async with (
            running_sandbox(SandboxState.kept_in(path, render_seconds=0.2)) as second,
            httpx.AsyncClient(headers=HEADERS) as http,
        ):
            again = (await http.get(f"{second.url}{ARK_TASKS}/{task_id}")).json()
            video = await http.get(old_url)
    assert second.url == first.url
    assert again["status"] == "succeeded" and again["created_at"] == done["created_at"]
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"
    assert again["sandbox_video"]["seconds"] == 5.0 and again["sandbox_video"]["width"] == 320


async def test_the_standalone_sandbox_state_keeps_nothing_on_disk(tmp_path: Path) -> None:
    """Without a tasks file the sandbox is memory-only, as `seedance-mcp sandbox` runs it."""
    state = SandboxState(render_seconds=0.1)
    async with running_sandbox(state) as server, httpx.AsyncClient(headers=HEADERS) as http:
        assert (await http.post(server.url + ARK_TASKS, json=BODY)).status_code == 200
    assert state.tasks_file is None and not list(tmp_path.iterdir())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="stdio subprocesses as elsewhere")
@pytest.mark.subprocess
async def test_a_sandbox_job_finishes_in_a_fresh_server_after_the_first_one_stopped(tmp_path: Path) -> None:
    """A client that starts a server per call: create with wait=false, stop, start anew, wait → saved."""
    env = server_env(
        tmp_path, SEEDANCE_PROVIDER="sandbox", SEEDANCE_SANDBOX_RENDER_SECONDS="2.5", SEEDANCE_LEASE_SECONDS="1"
    )
    with anyio.fail_after(60):
        async with Client(stdio_params(env), mode="legacy") as client:
            made = await client.call_tool("generate_video", {"prompt": "a restart", "wait": False})
        first = made.structured_content or {}
        assert first["status"] in ("queued", "running", "submitting"), text_of(made)
        async with Client(stdio_params(env), mode="legacy") as client:
            result = await client.call_tool("get_task_status", {"task_id": first["task_id"], "wait": True})
    data = result.structured_content or {}
    assert data["status"] == "succeeded", text_of(result)
    assert Path(data["video_path"]).read_bytes()[4:8] == b"ftyp"
    assert (tmp_path / "state" / TASKS_FILE).is_file()


async def test_a_sandbox_job_with_a_render_marker_is_not_shown_as_nearly_done_early(tmp_path: Path) -> None:
    """`[[render=20]]`: after 3 s the progress and the next step expect a 20 s render, not the default one."""
    assert planned_seconds("a kite [[render=20]]", 6.0) == 20.0 and planned_seconds("a kite", 6.0) == 6.0
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    settings = make_settings(tmp_path, wait_seconds=3.0, sandbox_render_seconds=1.0)
    with anyio.fail_after(20):
        async with Client(create_app(settings)) as client:
            result = await client.call_tool(
                "generate_video", {"prompt": "a slow kite [[render=20]]"}, progress_callback=on_progress
            )
    data = result.structured_content or {}
    assert data["status"] in ("queued", "running"), text_of(result)
    assert "about 20 s" in data["next_step"]
    assert data["progress_percent"] < 50 and seen and max(seen) < 50


def test_the_readme_gives_clients_a_command_that_works_outside_the_venv() -> None:
    """The client snippets name an absolute venv path or uvx, never a bare `seedance-mcp` command."""
    readme = (ROOT / "README.md").read_text()
    client_section = readme[readme.index("## Use it from your MCP client") : readme.index("## Hosting for a team")]
    assert '"command": "seedance-mcp"' not in client_section and "-- seedance-mcp\n" not in client_section
    assert "/.venv/bin/seedance-mcp" in client_section and "uvx --from" in client_section
    assert "pipx run seedance-mcp" in client_section
    example = (ROOT / "mcp.json.example").read_text()
    assert '"command": "seedance-mcp"' not in example and ".venv/bin/seedance-mcp" in example
    assert "simulated" in readme[readme.index("## The sandbox") : readme.index("## Performance")]
