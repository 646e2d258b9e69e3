"""`seedance-mcp serve --http`: streamable HTTP with a bearer token; never open beyond loopback without one."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import anyio
import httpx
import pytest

from tests.stdio_helpers import server_env

pytestmark = pytest.mark.anyio

TOKEN = "http-token-for-tests-0123"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_the_http_server_requires_its_token(tmp_path: Path) -> None:
    port = free_port()
    env = server_env(tmp_path, SEEDANCE_PROVIDER="sandbox", SEEDANCE_HTTP_TOKEN=TOKEN)
    process = await anyio.open_process(
        [sys.executable, "-m", "seedance_mcp", "serve", "--http", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    try:
        async with httpx.AsyncClient() as client:
            with anyio.fail_after(20):
                while True:
                    try:
                        denied = await client.post(url, json=initialize, headers=headers)
                        break
                    except httpx.ConnectError:
                        await anyio.sleep(0.1)
            allowed = await client.post(url, json=initialize, headers={**headers, "Authorization": f"Bearer {TOKEN}"})
            rebinding = await client.post(
                url, json=initialize, headers={**headers, "Authorization": f"Bearer {TOKEN}", "Host": "evil.example"}
            )
    finally:
        process.terminate()
        with anyio.fail_after(10):
            await process.wait()
    assert denied.status_code == 401
    assert allowed.status_code == 200
    assert "seedance" in allowed.text
    assert rebinding.status_code == 421


async def test_it_refuses_to_listen_beyond_loopback_without_a_token(tmp_path: Path) -> None:
    env = server_env(tmp_path, SEEDANCE_PROVIDER="sandbox")
    result = await anyio.run_process(
        [sys.executable, "-m", "seedance_mcp", "serve", "--http", "--host", "0.0.0.0", "--port", str(free_port())],
        env=env,
        check=False,
    )
    assert result.returncode == 2
    assert b"SEEDANCE_HTTP_TOKEN" in result.stderr


async def test_the_sandbox_command_serves_every_dialect_alone(tmp_path: Path) -> None:
    """`seedance-mcp sandbox --port N`: other clients can be pointed at it."""
    port = free_port()
    process = await anyio.open_process(
        [sys.executable, "-m", "seedance_mcp", "sandbox", "--port", str(port), "--render-seconds", "0.2"],
        env=server_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(headers={"Authorization": "Bearer any"}) as client:
            with anyio.fail_after(20):
                while True:
                    try:
                        stats = await client.get(f"{base}/_sandbox/stats")
                        break
                    except httpx.ConnectError:
                        await anyio.sleep(0.1)
            created = await client.post(
                f"{base}/seedance/generations",
                json={"model": "doubao-seedance-1-0-pro-250528", "content": [{"type": "text", "text": "x"}]},
            )
    finally:
        process.terminate()
        with anyio.fail_after(10):
            await process.wait()
    assert stats.status_code == 200
    assert created.json()["message"] == "YEScale - Seedance Video Generation - Submit"
