"""A paid video is saved by the worker itself, whatever went wrong with its download, unless it is no video at all.

Through the real server (in memory, `create_app`) against the socket-level fake Ark (tests/fakes/fake_ark.py), whose
download faults are real HTTP misbehaviour: a URL that loops redirects, an answer over the size cap, a body that is
an HTML page. Only "this is no video" is permanent; every other failure is tried again by the worker with backoff
(`SEEDANCE_RETRY_SCALE` scales it), then with a fresh URL, and at once when a caller asks (`get_task_status`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from seedance_mcp.app import create_app
from seedance_mcp.config import Settings
from tests.conftest import SECRET_KEY, make_settings, text_of
from tests.fakes.fake_ark import TASKS, FakeArk, mp4_bytes, running_fake_ark

pytestmark = pytest.mark.anyio


def ark_settings(tmp_path: Path, fake: FakeArk, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"provider": "ark", "base_url": fake.base_url, "api_key": SECRET_KEY}
    values.update(overrides)
    return make_settings(tmp_path, **values)


async def newest(client: Client) -> dict[str, Any]:
    """The newest job as list_tasks shows it (list_tasks never asks for a download to be tried again)."""
    listed = await client.call_tool("list_tasks", {"limit": 1, "detail": True})
    return (listed.structured_content or {})["tasks"][0]


async def until_job(
    client: Client, condition: Callable[[dict[str, Any]], object], what: str, seconds: float = 20
) -> dict[str, Any]:
    try:
        with anyio.fail_after(seconds):
            while not condition(job := await newest(client)):
                await anyio.sleep(0.05)
            return job
    except TimeoutError:
        raise AssertionError(f"not within {seconds} s: {what}; the job: {await newest(client)}") from None


def video_gets(fake: FakeArk, task_id: str) -> list[float]:
    """When the fake read each GET of the task's video (redirected hops of a loop excluded)."""
    path = f"/files/{task_id}.mp4"
    return [r.time for r in fake.requests if r.method == "GET" and r.path == path and "_loop" not in r.query]


async def test_a_url_that_loops_redirects_is_tried_again_by_the_worker_until_the_video_is_saved(
    tmp_path: Path,
) -> None:
    """The download URL loops redirects twice, then serves the video: the worker tries again by itself (nobody
    calls get_task_status), asks for a fresh URL after two tries of the same one, and saves the video once;
    meanwhile the result says it will, not that the caller must."""
    async with running_fake_ark(render_seconds=0.2) as fake:
        fake.add_fault("download", "redirect_loop", times=2)
        async with Client(create_app(ark_settings(tmp_path, fake))) as client:
            made = await client.call_tool("generate_video", {"prompt": "a loop", "wait": False})
            task_id = (made.structured_content or {})["task_id"]
            failed = await until_job(client, lambda job: job.get("error_message"), "the first download fails")
            saved = await until_job(client, lambda job: job.get("video_path"), "the worker saves the video by itself")
    assert "redirected more than" in failed["error_message"] and "tries again by itself" in failed["next_step"]
    assert saved["status"] == "succeeded" and Path(saved["video_path"]).read_bytes() == mp4_bytes()
    assert "error_message" not in saved  # nothing to say: left out, never null
    gets = video_gets(fake, task_id)
    assert len(gets) == 3 and fake.downloads_of(task_id) == 1
    # After two tries of one URL the worker asked the provider for a fresh one before the third.
    asked = [r.time for r in fake.requests if r.method == "GET" and r.path == f"{TASKS}/{task_id}"]
    assert any(gets[1] < when < gets[2] for when in asked), (gets, asked)
    assert [p.name for p in (tmp_path / "videos").iterdir()] == [Path(saved["video_path"]).name]


async def test_get_task_status_tries_a_failed_download_at_once(tmp_path: Path) -> None:
    """With the worker's next try 50 s away, get_task_status(wait=true) tries the download now and returns the
    saved video: only the call can have made that second try."""
    async with running_fake_ark(render_seconds=0.2) as fake:
        fake.add_fault("download", "redirect_loop", times=1)
        settings = ark_settings(tmp_path, fake, retry_scale=10.0, wait_seconds=20.0)
        async with Client(create_app(settings)) as client:
            made = await client.call_tool("generate_video", {"prompt": "ask again", "wait": False})
            task_id = (made.structured_content or {})["task_id"]
            failed = await until_job(client, lambda job: job.get("error_message"), "the first download fails")
            with anyio.fail_after(30):
                asked = await client.call_tool("get_task_status", {"task_id": task_id, "wait": True})
    job = asked.structured_content or {}
    assert "next try at" in failed["next_step"]
    assert job["status"] == "succeeded" and Path(job["video_path"]).is_file(), text_of(asked)
    gets = video_gets(fake, task_id)
    assert len(gets) == 2 and gets[1] - gets[0] < 50.0, gets


async def test_a_video_over_the_size_cap_waits_for_the_cap_to_be_raised(tmp_path: Path) -> None:
    """Over SEEDANCE_MAX_DOWNLOAD_MB: not fetched again on a timer, nor by a status call while the cap is the
    same; the result says to raise it. With the cap raised (a restart), get_task_status saves the video."""
    async with running_fake_ark(render_seconds=0.2) as fake:
        fake.add_fault("download", "oversize", times=1, size=3 * 1024 * 1024)
        async with Client(create_app(ark_settings(tmp_path, fake, max_download_mb=2))) as client:
            made = await client.call_tool("generate_video", {"prompt": "a big one", "wait": True})
            task_id = (made.structured_content or {})["task_id"]
            over = await until_job(client, lambda job: job.get("error_message"), "the download is refused")
            again = await client.call_tool("get_task_status", {"task_id": task_id, "wait": True})
            assert len(video_gets(fake, task_id)) == 1
        async with Client(create_app(ark_settings(tmp_path, fake, max_download_mb=8))) as client:
            with anyio.fail_after(30):
                raised = await client.call_tool("get_task_status", {"task_id": task_id, "wait": True})
    assert "SEEDANCE_MAX_DOWNLOAD_MB" in over["next_step"] and "raise" in over["next_step"]
    assert (again.structured_content or {}).get("video_path") is None
    job = raised.structured_content or {}
    assert job["status"] == "succeeded" and Path(job["video_path"]).read_bytes() == mp4_bytes(), text_of(raised)
    assert len(video_gets(fake, task_id)) == 2


async def test_one_page_that_is_no_video_is_tried_again_and_the_video_saved(tmp_path: Path) -> None:
    """One HTML page where the video should be (a CDN's or a proxy's interstitial), then the video: the worker tries
    again after its backoff and saves it (one such page made a paid video unsaveable for good)."""
    async with running_fake_ark(render_seconds=0.2) as fake:
        fake.add_fault("download", "not_video", times=1)
        async with Client(create_app(ark_settings(tmp_path, fake))) as client:
            made = await client.call_tool("generate_video", {"prompt": "a portal page", "wait": False})
            task_id = (made.structured_content or {})["task_id"]
            saved = await until_job(client, lambda job: job.get("video_path"), "the video saved")
    assert Path(saved["video_path"]).read_bytes() == mp4_bytes()
    assert len(video_gets(fake, task_id)) == 2


async def test_a_url_that_keeps_serving_no_video_stops_and_a_status_call_tries_once_more(tmp_path: Path) -> None:
    """Every try gets an HTML page: saving stops after a few tries (the last from a fresh URL) and the result says
    the server will not try again; a status call, a person asking, tries once more (the page may be gone)."""
    async with running_fake_ark(render_seconds=0.2) as fake:
        fake.add_fault("download", "not_video", times=-1)
        async with Client(create_app(ark_settings(tmp_path, fake))) as client:
            made = await client.call_tool("generate_video", {"prompt": "a portal page", "wait": False})
            task_id = (made.structured_content or {})["task_id"]
            stopped = await until_job(
                client, lambda job: "will not try again" in job.get("next_step", ""), "saving stops"
            )
            tried = len(video_gets(fake, task_id))
            fake.faults.clear()
            with anyio.fail_after(20):
                asked = await client.call_tool("get_task_status", {"task_id": task_id, "wait": True})
    assert "ftyp" in stopped["error_message"] and tried == 3
    job = asked.structured_content or {}
    assert job["video_path"] and Path(job["video_path"]).read_bytes() == mp4_bytes(), text_of(asked)
    assert len(video_gets(fake, task_id)) == 4
