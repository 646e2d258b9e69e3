"""The download transport: real bytes over loopback, httpx's errors, redirects followed by the client."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from seedance_mcp.providers.bulk_transport import BulkDownloadTransport
from seedance_mcp.sandbox import SandboxServer
from tests.conftest import free_port_for_tests

pytestmark = pytest.mark.anyio


async def test_a_large_video_arrives_whole(sandbox: SandboxServer, tmp_path: Path) -> None:
    async with httpx.AsyncClient(headers={"Authorization": "Bearer k"}) as api:
        created = await api.post(
            f"{sandbox.url}/api/v3/contents/generations/tasks",
            json={"model": "doubao-seedance-1-5-pro-251215", "content": [{"type": "text", "text": "[[size_mb=20]]"}]},
        )
        sandbox.state.tasks[created.json()["id"]].queued_seconds = 0
        sandbox.state.tasks[created.json()["id"]].render_seconds = 0
        task = (await api.get(f"{sandbox.url}/api/v3/contents/generations/tasks/{created.json()['id']}")).json()
    size = 0
    async with (
        httpx.AsyncClient(transport=BulkDownloadTransport()) as client,
        client.stream("GET", task["content"]["video_url"]) as response,
    ):
        assert response.status_code == 200
        async for piece in response.aiter_raw():
            size += len(piece)
    assert size == 20 * 1024 * 1024 == int(response.headers["content-length"])


async def test_connection_failures_are_httpx_errors() -> None:
    async with httpx.AsyncClient(transport=BulkDownloadTransport()) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{free_port_for_tests()}/video.mp4")
        with pytest.raises(httpx.UnsupportedProtocol):
            await client.get("ftp://example.com/video.mp4")
