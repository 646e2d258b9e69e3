"""The sandbox serves clips that follow the request: length, shape, sound, first frame, a distinct last frame.

Through real HTTP on loopback, decoded with PyAV: each frame's code strip names the task and the frame index.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import anyio
import av
import httpx
import pytest
from PIL import Image, ImageChops, ImageStat

from seedance_mcp.sandbox import SandboxState, running_sandbox
from seedance_mcp.sandbox.clips import read_code, shot_tag

pytestmark = pytest.mark.anyio

ARK_TASKS = "/api/v3/contents/generations/tasks"
HEADERS = {"Authorization": "Bearer sandbox-key"}
MODEL = "doubao-seedance-1-5-pro-251215"


def body(prompt: str, *, first_frame: str | None = None, **fields: Any) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": prompt}]
    if first_frame is not None:
        content.append({"type": "image_url", "image_url": {"url": first_frame}, "role": "first_frame"})
    return {"model": MODEL, "content": content, **fields}


async def finished(http: httpx.AsyncClient, url: str, create: dict[str, Any]) -> dict[str, Any]:
    created = await http.post(url + ARK_TASKS, json=create)
    assert created.status_code == 200, created.text
    task_id = created.json()["id"]
    with anyio.fail_after(20):
        while (task := (await http.get(f"{url}{ARK_TASKS}/{task_id}")).json())["status"] != "succeeded":
            assert task["status"] in ("queued", "running"), task
            await anyio.sleep(0.05)
    return task


def decoded(mp4: bytes) -> tuple[list[Image.Image], float, bool]:
    """Every frame, the video stream's length in seconds, and whether there is an audio stream."""
    with av.open(io.BytesIO(mp4), "r") as container:
        stream = container.streams.video[0]
        assert stream.duration is not None and stream.time_base is not None
        seconds = float(stream.duration * stream.time_base)
        has_audio = bool(container.streams.audio)
        frames = [frame.to_image() for frame in container.decode(stream)]
    return frames, seconds, has_audio


def mean_abs_diff(a: Image.Image, b: Image.Image) -> float:
    a, b = a.convert("RGB"), b.convert("RGB").resize(a.size, Image.Resampling.BILINEAR)
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


async def test_a_clip_has_the_asked_length_shape_and_sound_and_says_which_task_it_is() -> None:
    async with running_sandbox(SandboxState(render_seconds=0.1)) as sandbox, httpx.AsyncClient(headers=HEADERS) as http:
        task = await finished(
            http, sandbox.url, body("a kite", duration=7, ratio="9:16", generate_audio=True, return_last_frame=True)
        )
        video = (await http.get(task["content"]["video_url"])).content
        png = (await http.get(task["content"]["last_frame_url"])).content
        silent = await finished(http, sandbox.url, body("a kite", duration=4, generate_audio=False))
        quiet = (await http.get(silent["content"]["video_url"])).content
    frames, seconds, has_audio = decoded(video)
    assert seconds == 7.0 and len(frames) == 7 * 24 and has_audio
    assert frames[0].size == (180, 320)
    tag = shot_tag(task["id"])
    assert [read_code(frame) for frame in frames] == [(tag, index) for index in range(7 * 24)]
    assert task["sandbox_video"] | {"note": ""} == {
        "width": 180, "height": 320, "seconds": 7.0, "simulated": True, "note": ""
    }  # fmt: skip
    # The last-frame PNG is the clip's last frame, at twice its size (each side >= 300 px, as input images need).
    last = Image.open(io.BytesIO(png))
    assert last.size == (360, 640)
    assert read_code(last.resize((180, 320), Image.Resampling.NEAREST)) == (tag, 7 * 24 - 1)
    assert mean_abs_diff(frames[-1], last) < 4
    frames, seconds, has_audio = decoded(quiet)
    assert seconds == 4.0 and not has_audio and read_code(frames[-1]) == (shot_tag(silent["id"]), 4 * 24 - 1)
    assert shot_tag(silent["id"]) != tag


async def test_a_first_frame_is_the_clips_frame_zero_and_adaptive_takes_its_shape() -> None:
    picture = Image.new("RGB", (600, 800), (250, 30, 30))
    picture.paste((20, 20, 240), (0, 400, 600, 800))
    out = io.BytesIO()
    picture.save(out, "PNG")
    data_url = "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()
    async with running_sandbox(SandboxState(render_seconds=0.1)) as sandbox, httpx.AsyncClient(headers=HEADERS) as http:
        task = await finished(http, sandbox.url, body("the kite flies on", first_frame=data_url, ratio="adaptive"))
        video = (await http.get(task["content"]["video_url"])).content
    frames, seconds, _ = decoded(video)
    assert frames[0].size == (180, 240)  # 3:4, the nearest fixed ratio to 600x800
    assert seconds == 5.0
    assert mean_abs_diff(frames[0], picture) < 4
    assert read_code(frames[1])[1] == 1


async def test_a_clip_started_from_another_tasks_last_frame_opens_on_exactly_that_frame() -> None:
    """What a continuous cut needs: shot 2's frame 0 is shot 1's last frame, whether it came back as the sandbox's
    own link or as the saved PNG sent inline."""
    async with running_sandbox(SandboxState(render_seconds=0.1)) as sandbox, httpx.AsyncClient(headers=HEADERS) as http:
        one = await finished(http, sandbox.url, body("shot one", duration=4, return_last_frame=True))
        link = one["content"]["last_frame_url"]
        png = (await http.get(link)).content
        inline = "data:image/png;base64," + base64.b64encode(png).decode()
        by_link = await finished(http, sandbox.url, body("shot two", first_frame=link, ratio="adaptive"))
        by_data = await finished(http, sandbox.url, body("shot two", first_frame=inline, ratio="adaptive"))
        videos = [(await http.get(t["content"]["video_url"])).content for t in (by_link, by_data)]
    for task, video in zip((by_link, by_data), videos, strict=True):
        frames, _, _ = decoded(video)
        assert frames[0].size == (320, 180)
        assert read_code(frames[0]) == (shot_tag(one["id"]), 4 * 24 - 1)
        assert read_code(frames[1]) == (shot_tag(task["id"]), 1)


async def test_a_restarted_sandbox_serves_the_same_clip_with_its_first_frame(tmp_path: Any) -> None:
    """The tasks file elides inline images, so the task keeps its small fitted first frame itself."""
    picture = Image.new("RGB", (640, 360), (10, 200, 90))
    out = io.BytesIO()
    picture.save(out, "PNG")
    data_url = "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()
    async with (
        running_sandbox(SandboxState.kept_in(tmp_path / "sandbox-tasks.jsonl", render_seconds=0.1)) as first,
        httpx.AsyncClient(headers=HEADERS) as http,
    ):
        task = await finished(http, first.url, body("green", first_frame=data_url))
        before = (await http.get(task["content"]["video_url"])).content
    async with (
        running_sandbox(SandboxState.kept_in(tmp_path / "sandbox-tasks.jsonl", render_seconds=0.1)) as second,
        httpx.AsyncClient(headers=HEADERS) as http,
    ):
        again = (await http.get(f"{second.url}{ARK_TASKS}/{task['id']}")).json()
        after = (await http.get(again["content"]["video_url"])).content
    assert after == before
    assert mean_abs_diff(decoded(after)[0][0], picture) < 4
