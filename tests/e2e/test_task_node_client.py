"""A TypeScript task client (tests/fakes/node/task_client.mjs, on @modelcontextprotocol/client 2.4.0's transports from
npm) drives the real server over streamable HTTP and stdio: create, poll, result, cancel, and a restart in the
middle. `.ci/run` installs its npm packages (`npm ci` in tests/fakes/node, pinned by package-lock.json)."""

from __future__ import annotations

import json
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from seedance_mcp.sandbox import SandboxServer
from tests.conftest import sandbox_stats
from tests.e2e.test_task_restarts import ALICE, BOB, http_server
from tests.fakes.stdio_helpers import server_env

pytestmark = [pytest.mark.anyio, pytest.mark.subprocess]

NODE_DIR = Path(__file__).resolve().parent.parent / "fakes" / "node"
CLIENT = NODE_DIR / "task_client.mjs"


def node() -> str:
    found = shutil.which("node")
    if found is None or not (NODE_DIR / "node_modules" / "@modelcontextprotocol" / "client").is_dir():
        pytest.skip("needs node and `npm ci` in tests/fakes/node (.ci/run does both)")
    return found


async def run_client(*args: str, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Run the Node client to the end; its events (one JSON object a line)."""
    with anyio.fail_after(90):
        done = await anyio.run_process([node(), str(CLIENT), *args], env=env, check=False, cwd=NODE_DIR)
    stdout, stderr = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 0, f"node client failed ({done.returncode}):\n{stdout}\n{stderr[-3000:]}"
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def events(lines: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [line["value"] for line in lines if line["event"] == name]


def saved_video(task: dict[str, Any]) -> dict[str, Any]:
    assert task["status"] == "completed", task
    data = task["result"]["structuredContent"]
    assert data["status"] == "succeeded" and Path(data["video_path"]).is_file(), data
    return data


async def test_the_node_client_over_http_runs_cancels_and_outlives_a_killed_server(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    async with http_server(tmp_path, sandbox) as (url, process):
        http = ["--url", url, "--token", ALICE]
        ran = await run_client(*http, "run", "a kite [[render=1.5]]")
        cancelled = await run_client(*http, "cancel", "a long queue [[queue=60]]")
        plain = await run_client("--url", url, "--token", BOB, "plain", "a heron [[render=0.5]]")
        made = await run_client(*http, "create", "a lighthouse [[render=4]]")
        process.send_signal(signal.SIGKILL)
        await process.wait()
    [created] = events(made, "created")
    async with http_server(tmp_path, sandbox) as (url, _):
        after = await run_client("--url", url, "--token", ALICE, "wait", created["taskId"])
        stranger = await run_client("--url", url, "--token", BOB, "plain", "bob again [[render=0.5]]")

    [first] = events(ran, "created")
    assert first["resultType"] == "task" and first["status"] == "working" and first["ttlMs"] is None
    assert any(poll["status"] == "working" and "%" in poll["statusMessage"] for poll in events(ran, "poll"))
    saved_video(events(ran, "final")[0])
    assert events(cancelled, "cancel")[0]["resultType"] == "complete"
    assert events(cancelled, "final")[0]["status"] == "cancelled"
    [result] = events(plain, "result")
    assert "resultType" not in result or result["resultType"] == "complete"
    assert result["structuredContent"]["status"] == "succeeded"
    assert events(plain, "get")[0]["code"] == -32021
    saved_video(events(after, "final")[0])  # finished by the second server, from the journal
    assert events(stranger, "result")[0]["structuredContent"]["status"] == "succeeded"
    # run, cancel (created, then cancelled before it rendered), bob's two plain calls, and the restarted one: each once.
    assert (await sandbox_stats(sandbox))["creates"] == 5


async def test_the_node_client_over_stdio_finishes_a_task_on_the_next_server_process(tmp_path: Path) -> None:
    env = server_env(tmp_path, SEEDANCE_PROVIDER="sandbox", SEEDANCE_LEASE_SECONDS="1")
    lines = await run_client("--stdio", f"{sys.executable} -m seedance_mcp", "restart", "a kite [[render=4]]", env=env)
    [created] = events(lines, "created")
    assert created["resultType"] == "task" and events(lines, "before")[0]["status"] == "working"
    assert events(lines, "closed") == [{}]
    saved_video(events(lines, "final")[0])


LEGACY_CLIENT = NODE_DIR / "legacy_task_client.mjs"


async def run_legacy(*args: str, env: dict[str, str] | None = None, ok: bool = True) -> list[dict[str, Any]]:
    """The TypeScript SDK 1.32's own task client (2025-11-25 experimental tasks), to the end; its events."""
    with anyio.fail_after(90):
        done = await anyio.run_process([node(), str(LEGACY_CLIENT), *args], env=env, check=False, cwd=NODE_DIR)
    stdout, stderr = done.stdout.decode(), done.stderr.decode()
    assert (done.returncode == 0) == ok, f"node client ended {done.returncode}:\n{stdout}\n{stderr[-3000:]}"
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


async def test_the_sdk_1_x_task_client_over_http_streams_cancels_lists_and_outlives_a_killed_server(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    """@modelcontextprotocol/sdk 1.32.2's `experimental.tasks`, unchanged, on the 2025-11-25 wire: callToolStream to
    the saved video, cancel while queued, a dry run (a task born completed), listTasks, and a task created before
    the server was killed (SIGKILL), finished by the next one. Bob cannot read Alice's task."""
    async with http_server(tmp_path, sandbox) as (url, process):
        alice = ["--url", url, "--token", ALICE]
        ran = await run_legacy(*alice, "run", "a kite [[render=1.5]]")
        cancelled = await run_legacy(*alice, "cancel", "a long queue [[queue=60]]")
        dry = await run_legacy(*alice, "dry", "a heron")
        made = await run_legacy(*alice, "create", "a lighthouse [[render=4]]")
        listed = await run_legacy(*alice, "list")
        process.send_signal(signal.SIGKILL)
        await process.wait()
    [created] = events(made, "created")
    async with http_server(tmp_path, sandbox) as (url, _):
        after = await run_legacy("--url", url, "--token", ALICE, "wait", created["taskId"])
        stranger = await run_legacy("--url", url, "--token", BOB, "wait", created["taskId"], ok=False)

    assert events(ran, "capabilities")[0] == {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}
    assert events(ran, "taskSupport")[0] == {"taskSupport": "optional"}
    [first] = events(ran, "taskCreated")
    assert first["status"] == "working" and first["ttl"] is None
    assert [status["status"] for status in events(ran, "taskStatus")][-1] == "completed"
    [result] = events(ran, "result")
    assert result["_meta"]["io.modelcontextprotocol/related-task"] == {"taskId": first["taskId"]}
    assert (
        result["structuredContent"]["status"] == "succeeded"
        and Path(result["structuredContent"]["video_path"]).is_file()
    )
    assert events(cancelled, "final")[0]["status"] == "cancelled"
    assert events(cancelled, "cancel-again")[0]["code"] == -32602  # a terminal task cannot be cancelled (SEP-1686)
    assert events(dry, "taskCreated")[0]["status"] == "completed"
    assert events(dry, "result")[0]["structuredContent"]["status"] == "not_submitted"
    listed_ids = {task["taskId"] for task in events(listed, "list")[0]["tasks"]}
    assert {first["taskId"], created["taskId"]} <= listed_ids
    assert events(after, "final")[0]["status"] == "completed"  # finished by the second server, from the journal
    assert Path(events(after, "result")[0]["structuredContent"]["video_path"]).is_file()
    assert not events(stranger, "final")
    assert events(stranger, "error")[0]["code"] == -32602 and "not found" in events(stranger, "error")[0]["message"]
    # run, cancel (created, then cancelled before it rendered) and the restarted one: each paid once.
    assert (await sandbox_stats(sandbox))["creates"] == 3


async def test_the_sdk_1_x_task_client_over_stdio_finishes_a_task_on_the_next_server_process(tmp_path: Path) -> None:
    env = server_env(tmp_path, SEEDANCE_PROVIDER="sandbox", SEEDANCE_LEASE_SECONDS="1")
    lines = await run_legacy("--stdio", f"{sys.executable} -m seedance_mcp", "restart", "a kite [[render=4]]", env=env)
    assert events(lines, "before")[0]["status"] == "working" and events(lines, "closed") == [{}]
    assert events(lines, "final")[0]["status"] == "completed"
    data = events(lines, "result")[0]["structuredContent"]
    assert data["status"] == "succeeded" and Path(data["video_path"]).is_file()
