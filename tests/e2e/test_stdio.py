"""Over a real stdio subprocess: what Claude Desktop, Cursor or VS Code launch."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client

from seedance_mcp.sandbox import SandboxServer
from tests.conftest import SECRET_KEY, sandbox_stats, text_of
from tests.fakes.stdio_helpers import server_env, stdio_params, stdio_transport

pytestmark = [pytest.mark.anyio, pytest.mark.subprocess]

BASES = {
    "ark": "/api/v3",
    "byteplus": "/api/v3",
    "kkiai": "/volc/v1",
    "gptge": "",
    "yescale": "",
    "openai-compatible": "",
}


async def test_the_embedded_sandbox_makes_a_video_over_stdio(tmp_path: Path) -> None:
    """SEEDANCE_PROVIDER=sandbox: no key, the sandbox starts inside the server, an MP4 lands on disk."""
    env = server_env(tmp_path, SEEDANCE_PROVIDER="sandbox")
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    with anyio.fail_after(30):
        async with Client(stdio_params(env), mode="legacy") as client:
            tools = await client.list_tools()
            result = await client.call_tool("generate_video", {"prompt": "over stdio"}, progress_callback=on_progress)
    assert len(tools.tools) == 6
    data = result.structured_content or {}
    assert data["status"] == "succeeded", text_of(result)
    assert Path(data["video_path"]).read_bytes()[4:8] == b"ftyp"
    assert seen and seen == sorted(set(seen)) and seen[-1] == 100


@pytest.mark.parametrize("preset", sorted(BASES))
async def test_each_preset_over_stdio_with_no_key_in_any_output(
    preset: str, tmp_path: Path, sandbox: SandboxServer
) -> None:
    """Every preset end to end through a stdio client; the key never shows in results or on stderr."""
    env = server_env(
        tmp_path, SEEDANCE_PROVIDER=preset, SEEDANCE_BASE_URL=sandbox.url + BASES[preset], SEEDANCE_API_KEY=SECRET_KEY
    )
    errlog_path = tmp_path / "stderr.log"
    with errlog_path.open("w") as errlog, anyio.fail_after(30):
        async with Client(stdio_transport(env, errlog)) as client:
            made = await client.call_tool("generate_video", {"prompt": f"stdio {preset}", "duration": 5})
            listed = await client.call_tool("list_tasks", {})
            bad = await client.call_tool("generate_video", {"prompt": "x", "duration": 99})
    data = made.structured_content or {}
    assert data["status"] == "succeeded", text_of(made)
    assert Path(data["video_path"]).is_file()
    assert bad.is_error is True
    assert (await sandbox_stats(sandbox))["creates"] == 1
    stderr = errlog_path.read_text()
    assert "submitted" in stderr  # the server does log, to stderr
    for text in (stderr, str(data), str(listed.structured_content), text_of(bad)):
        assert SECRET_KEY not in text
    journal = (tmp_path / "state" / "jobs.sqlite3").read_bytes()
    assert SECRET_KEY.encode() not in journal


async def test_an_invalid_configuration_is_reported_on_stderr_not_stdout(tmp_path: Path) -> None:
    """A bad SEEDANCE_PROVIDER stops the server with a readable message and exit code 2."""
    env = server_env(tmp_path, SEEDANCE_PROVIDER="nonsense")
    process = await anyio.run_process(
        [stdio_params(env).command, *stdio_params(env).args], env=env, check=False, input=b""
    )
    assert process.returncode == 2
    assert process.stdout == b""
    assert b"SEEDANCE_PROVIDER" in process.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a pseudo-terminal, as a person's shell has")
def test_run_by_hand_in_a_terminal_it_says_what_it_is_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    import os
    import pty
    import select
    import time

    pid, fd = pty.fork()
    if pid == 0:  # the child: the server, as a person would start it in a shell
        os.environ.update(SEEDANCE_PROVIDER="sandbox", SEEDANCE_STATE_DIR=str(tmp_path / "state"))
        os.execv(sys.executable, [sys.executable, "-m", "seedance_mcp"])
    seen = b""
    deadline = time.monotonic() + 20
    while b"Ctrl-C stops it" not in seen and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.2)[0]:
            seen += os.read(fd, 4096)
    os.write(fd, b"\x03")
    stopped_at = time.monotonic()
    while time.monotonic() - stopped_at < 10:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)  # noqa: TID251  # a plain test without an event loop polling a child process
    else:
        os.kill(pid, 9)
        raise AssertionError(f"still running 10 s after Ctrl-C: {seen!r}")
    assert b"seedance-mcp demo" in seen
    assert os.waitstatus_to_exitcode(status) == 130
