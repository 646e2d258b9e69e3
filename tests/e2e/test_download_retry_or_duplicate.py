"""A download tried again after a read time-out is one delivery and a logged retry, not a second download.

On a loaded machine the fake provider (same event loop) answers a video request after the server's read time-out:
the server gives up on that answer, asks again and saves the video once. `test_lost_creates`' load test once
counted that abandoned answer as a second download. Here the late answer is made on purpose (the `hold` fault,
released by the test once the server has asked again), so what the fake and the server's log say about it is
checked every run, not only when the machine happens to be slow.
"""

from __future__ import annotations

import logging
from pathlib import Path

import anyio
import httpx
import pytest
from mcp import Client

from seedance_mcp.app import create_app
from tests.e2e.test_lost_creates import ark_settings, logged_download_retries
from tests.fakes.fake_ark import FakeArk, running_fake_ark

pytestmark = pytest.mark.anyio


async def answered(fake: FakeArk, fault: str) -> None:
    with anyio.fail_after(10):
        while not any(r.fault == fault and r.answered is not None for r in fake.requests):
            await anyio.sleep(0.01)


async def test_an_answer_the_server_gave_up_on_is_a_retry_it_logged_not_a_second_download(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="seedance_mcp")
    release = anyio.Event()
    async with running_fake_ark(render_seconds=0.2) as fake:
        fake.add_fault("download", "hold", release=release)
        settings = ark_settings(tmp_path, fake, http_timeout=1.0, poll_interval=0.1)
        async with Client(create_app(settings)) as client:
            done = await client.call_tool("generate_video", {"prompt": "late answer", "wait": True})
            job = done.structured_content or {}
            # The server timed out on the held request and saved the video from its second one; now the held
            # answer goes out, to a client that hung up on it.
            release.set()
            await answered(fake, "hold")
    task_id = job["task_id"]
    assert job["status"] == "succeeded" and Path(job["video_path"]).is_file()
    assert len(list(settings.output_dir.glob("*.mp4"))) == 1
    held = next(r for r in fake.requests if r.fault == "hold")
    assert held.abandoned is True
    assert fake.file_requests_of(task_id) == 2 and fake.deliveries_of(task_id) == 1
    (retry,) = logged_download_retries(caplog, task_id)
    assert "ReadTimeout" in retry and "try 2 of" in retry


async def test_a_video_downloaded_twice_counts_as_two_deliveries(tmp_path: Path) -> None:
    """The other side of the fake's count: two requests the client read whole are two deliveries."""
    async with running_fake_ark(render_seconds=0.2) as fake:
        settings = ark_settings(tmp_path, fake, poll_interval=0.1)
        async with Client(create_app(settings)) as client:
            done = await client.call_tool("generate_video", {"prompt": "twice", "wait": True})
        task_id = (done.structured_content or {})["task_id"]
        async with httpx.AsyncClient(timeout=10.0) as http:
            again = await http.get(f"{fake.url}/files/{task_id}.mp4")
            assert again.status_code == 200 and again.content[4:8] == b"ftyp"
    assert not any(r.abandoned for r in fake.requests)
    assert fake.file_requests_of(task_id) == 2 and fake.deliveries_of(task_id) == 2
