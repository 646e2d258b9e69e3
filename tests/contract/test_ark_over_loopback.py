"""The Ark adapter against the sandbox over real HTTP on 127.0.0.1: the same code path as production."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from pathlib import Path

import anyio
import httpx
import pytest

from seedance_mcp.catalog import PRESETS
from seedance_mcp.errors import ProviderError
from seedance_mcp.providers import dialect_for
from seedance_mcp.providers._http import RetryPolicy
from seedance_mcp.providers.client import ProviderClient
from seedance_mcp.requests import VideoArguments
from seedance_mcp.sandbox import SandboxServer
from seedance_mcp.validation import validate_request
from tests.conftest import SECRET_KEY

pytestmark = pytest.mark.anyio


@pytest.fixture
async def ark(sandbox: SandboxServer) -> AsyncGenerator[ProviderClient]:
    async with httpx.AsyncClient() as http:
        yield ProviderClient(
            preset=PRESETS["ark"],
            dialect=dialect_for("ark"),
            base_url=f"{sandbox.url}/api/v3",
            api_key=SECRET_KEY,
            http=http,
            retry=RetryPolicy(base_delay=0.01, max_delay=0.02),
        )


def request_for(**kwargs: object):  # a VideoRequest
    preset = PRESETS["ark"]
    return validate_request(VideoArguments(**{"prompt": "a kitten", **kwargs}), preset, preset.default_model)  # type: ignore[arg-type]


async def test_create_poll_and_download_a_task(ark: ProviderClient, tmp_path: Path) -> None:
    task_id = await ark.submit(ark.create_request(request_for(duration=5, return_last_frame=True)))
    assert task_id.startswith("cgt-")
    first = await ark.fetch(task_id, "1.5-pro")
    assert first.status in ("queued", "running")
    with anyio.fail_after(5):
        while (done := await ark.fetch(task_id, "1.5-pro")).status != "succeeded":
            await anyio.sleep(0.1)
    assert done.usage_tokens == 108900 and done.video_url and done.last_frame_url
    target = tmp_path / "v.mp4"
    size = await ark.download(done.video_url, target)
    assert size == target.stat().st_size and target.read_bytes()[4:8] == b"ftyp"
    assert not list(tmp_path.glob(".*part"))


async def test_the_sandbox_refuses_bad_bodies_the_way_ark_does(ark: ProviderClient) -> None:
    bad = ark.create_request(request_for()).model_copy(
        update={
            "json_body": {
                "model": "doubao-seedance-2-0-260128",
                "content": [{"type": "text", "text": "x"}],
                "camera_fixed": True,
            }
        }
    )
    with pytest.raises(ProviderError) as caught:
        await ark.submit(bad)
    error = caught.value
    assert error.status_code == 400 and error.code == "InvalidParameter.camera_fixed"
    assert error.request_id and error.request_id in error.provider_message


async def test_cancel_a_queued_task(ark: ProviderClient, sandbox: SandboxServer) -> None:
    sandbox.state.render_seconds = 30
    task_id = await ark.submit(ark.create_request(request_for()))
    await ark.cancel(task_id, "1.5-pro")
    assert (await ark.fetch(task_id, "1.5-pro")).status == "cancelled"
