"""Shared fixtures: settings built directly (never from the environment), a loopback sandbox, MCP clients."""

from __future__ import annotations

import struct
import zlib
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import httpx
import pytest

from seedance_mcp.config import Settings
from seedance_mcp.journal.job import Job, new_job_id
from seedance_mcp.sandbox import SandboxServer, SandboxState, running_sandbox
from tests.suite_policy import *  # noqa: F403  # its hooks: markers checked; in CI a skip fails the run

SECRET_KEY = "sk-test-SECRET-0123456789abcdef"
"""A recognisable fake key: every test that could leak it scans for it."""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUEST_METHOD")
"""What httpx reads for proxies (REQUEST_METHOD: urllib ignores HTTP_PROXY under CGI), in either case."""


@pytest.fixture(autouse=True)
def no_proxy_from_the_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server honours the proxy variables, as httpx does: a developer's proxy must not carry the tests' requests
    for 127.0.0.1. A test that wants a proxy sets one."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "provider": "sandbox",
        "state_dir": tmp_path / "state",
        "output_dir": tmp_path / "videos",
        "poll_interval": 0.05,
        "poll_interval_max": 0.2,
        "sandbox_render_seconds": 0.6,
        "wait_seconds": 15.0,
        "retry_scale": 0.01,
        "allowed_dirs": (tmp_path,),
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
async def sandbox() -> AsyncGenerator[SandboxServer]:
    """A sandbox on a loopback port, outside the server under test (so it can outlive it)."""
    async with running_sandbox(SandboxState(render_seconds=0.6)) as server:
        yield server


async def sandbox_stats(server: SandboxServer) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        return (await client.get(f"{server.url}/_sandbox/stats")).json()


async def sandbox_requests(server: SandboxServer) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as client:
        return (await client.get(f"{server.url}/_sandbox/requests")).json()["requests"]


def png_bytes(width: int, height: int) -> bytes:
    """A real (tiny-content) PNG of the given size."""
    row = b"\x00" + b"\x80\x40\x20" * width
    raw = zlib.compress(row * height, 9)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def text_of(result: Any) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


def free_port_for_tests() -> int:
    """A loopback port nobody listens on (bound, read, released)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make_job(**fields: object) -> Job:
    """A journal job with plausible fields; `fields` override them."""
    return Job.model_validate(
        {
            "job_id": new_job_id(),
            "provider": "ark",
            "model": "seedance-1-0-pro-250528",
            "model_key": "pro",
            "prompt": "a red kite over the sea",
            "status": "queued",
            "fingerprint": "fp-1",
            "created_at": 1_750_000_000.0,
            "updated_at": 1_750_000_000.0,
            **fields,
        }
    )
