"""A storyboard whose server is SIGKILLed mid-plan, through the socket-level fake Ark (`tests/fakes/fake_ark.py`).

A real `python -m seedance_mcp` over stdio runs a 3-shot plan of continuous cuts against the fake, which serves
each task a clip of its own (`real_clips`: its length as asked, its PNG the clip's real last picture). The server
is killed while shot 2 renders; while the answer to shot 2's create is on its way (the task made, its id not yet
read); while shot 2's video is being fetched; or while shot 3's create is held unread (never made). A new server on
the same journal finishes the plan by itself (`continue_the_plan` only asks get_task_status). Judged from the fake's
own records: three creates, one per shot; shots 2 and 3 start on the picture the fake served as the previous shot's
last frame; the film is as long as the three clips and holds their frames in order (each frame's code strip names
its task and index).
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import signal
import sys
from collections.abc import AsyncGenerator, Callable, Coroutine
from pathlib import Path
from typing import Any

import anyio
import av
import pytest
from mcp import Client
from PIL import Image

from seedance_mcp.sandbox.clips import first_frame_url, read_code, shot_tag
from tests.conftest import SECRET_KEY, text_of
from tests.fakes.fake_ark import TASKS, FakeArk, FakeTask, running_fake_ark
from tests.fakes.stdio_helpers import server_env, server_pids, stdio_transport

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.subprocess,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to find the server process"),
]

PLAN: dict[str, Any] = {
    "model": "doubao-seedance-1-5-pro-251215",
    "shots": [
        {"prompt": "a lighthouse at dusk", "duration": 4},
        {"prompt": "the beam sweeps the waves", "duration": 5, "transition": "continuous"},
        {"prompt": "morning on the same coast", "duration": 4, "transition": "continuous"},
    ],
}


def fake_env(tmp_path: Path, fake: FakeArk, **variables: str) -> dict[str, str]:
    values = {
        "SEEDANCE_PROVIDER": "ark",
        "SEEDANCE_BASE_URL": fake.base_url,
        "SEEDANCE_API_KEY": SECRET_KEY,
        "SEEDANCE_LEASE_SECONDS": "2",  # the killed server's hold on its jobs runs out soon
        "SEEDANCE_WAIT_SECONDS": "40",
        "SEEDANCE_STARTUP_DELAY": "0",
        "SEEDANCE_RECONCILE_DELAYS": "0.2,0.5,1",
    }
    return server_env(tmp_path, **{**values, **variables})


@contextlib.asynccontextmanager
async def server(tmp_path: Path, fake: FakeArk, name: str, **variables: str) -> AsyncGenerator[Client]:
    """A server process on the test's journal, its stderr in `<tmp>/<name>.log`."""
    with (tmp_path / f"{name}.log").open("w") as errlog:
        async with Client(stdio_transport(fake_env(tmp_path, fake, **variables), errlog)) as client:
            yield client


async def plan_id_of(client: Client) -> str:
    """The plan's id, from a dry run (nothing sent): what a caller that lost its answer can ask about."""
    result = await client.call_tool("storyboard", {**PLAN, "dry_run": True})
    assert result.is_error is False, text_of(result)
    return (result.structured_content or {})["plan_id"]


async def continue_the_plan(client: Client, plan_id: str) -> dict[str, Any]:
    """The new server carries the killed plan on to its film by itself (its worker takes the plan over once the
    killed server's lease ran out): no storyboard call, only get_task_status(plan_id), which sends nothing. Its
    answer once the plan ended (structured content)."""
    while True:
        result = await client.call_tool("get_task_status", {"task_id": plan_id, "wait": True})
        data: dict[str, Any] = result.structured_content or {}
        assert result.is_error is False and data.get("plan_id") == plan_id, text_of(result)
        if data["status"] != "running":
            assert data["status"] == "succeeded", text_of(result)
            return data


async def until(condition: Callable[[], bool]) -> None:
    """Wait for a state of the fake (bounded by the test's fail_after)."""
    while not condition():
        await anyio.sleep(0.05)


async def kill_the_server(tmp_path: Path) -> None:
    marker = str(tmp_path / "state")
    pids = server_pids(marker)
    assert pids, "the server process was not found"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    await until(lambda: not server_pids(marker))


async def killed_mid_plan(
    tmp_path: Path,
    fake: FakeArk,
    when: Callable[[], bool],
    meanwhile: Callable[[], Coroutine[Any, Any, None]] | None = None,
    **variables: str,
) -> str:
    """Start the plan on a first server (and `meanwhile()` beside it), SIGKILL it once `when()` holds; the plan's
    id."""
    plan_id = ""
    async with server(tmp_path, fake, "killed", **variables) as client, anyio.create_task_group() as group:
        plan_id = await plan_id_of(client)

        async def call() -> None:
            with contextlib.suppress(Exception):  # its answer never comes: the server dies
                await client.call_tool("storyboard", PLAN)

        group.start_soon(call)
        if meanwhile is not None:
            group.start_soon(meanwhile)
        await until(when)
        await kill_the_server(tmp_path)
        group.cancel_scope.cancel()
    assert plan_id.startswith("sb-")
    return plan_id


def tasks_in_order(fake: FakeArk) -> list[FakeTask]:
    return sorted(fake.tasks.values(), key=lambda task: task.seq)


def shot_2_rendering(fake: FakeArk) -> bool:
    """Shot 2 is made and its id is in the journal: the server polls it."""
    tasks = tasks_in_order(fake)
    return len(tasks) == 2 and fake.polls_of(tasks[1].id) > 0


def create_bodies(fake: FakeArk) -> list[dict[str, Any]]:
    return [r.json() for r in fake.requests if r.method == "POST" and r.path == TASKS]


def prompt_of(body: dict[str, Any]) -> str:
    return next(item["text"] for item in body["content"] if item.get("type") == "text")


def picture(png: bytes) -> Image.Image:
    with Image.open(io.BytesIO(png)) as opened:
        return opened.convert("RGB")


async def first_frame_sent(fake: FakeArk, body: dict[str, Any]) -> bytes:
    """The image a create body starts on: an inline data: URL's bytes, or what the fake serves at that URL."""
    url = first_frame_url(body)
    assert url is not None, f"no first frame in {body}"
    if url.startswith("data:"):
        return base64.b64decode(url.partition(",")[2])
    task_id = url.split("/files/", 1)[1].split(".png", 1)[0]
    return (await fake.clip_of(task_id)).last_frame_png


def frames_of(mp4: str | bytes) -> tuple[float, list[Image.Image]]:
    with av.open(io.BytesIO(mp4) if isinstance(mp4, bytes) else mp4, "r") as container:
        stream = container.streams.video[0]
        assert stream.duration is not None and stream.time_base is not None
        return float(stream.duration * stream.time_base), [f.to_image() for f in container.decode(stream)]


async def assert_one_continuous_film(fake: FakeArk, data: dict[str, Any]) -> None:
    """Three creates, one per shot; each continuous shot started on the previous clip's served last frame; the film
    is the three clips' length and their frames in order."""
    bodies = create_bodies(fake)
    assert fake.creates == 3 and len(bodies) == 3, [prompt_of(b) for b in bodies]
    assert [prompt_of(b) for b in bodies] == [shot["prompt"] for shot in PLAN["shots"]]
    tasks = tasks_in_order(fake)
    assert [shot["task_id"] for shot in data["shots"]] == [task.id for task in tasks]
    assert [(s["paid"], s["saved"]) for s in data["shots"]] == [(True, True)] * 3

    for before, body in zip(tasks, bodies[1:], strict=False):
        served = fake.clips[before.id].last_frame_png
        assert any(r.path == f"/files/{before.id}.png" and r.status == 200 for r in fake.requests)
        sent = picture(await first_frame_sent(fake, body))
        assert sent.size == picture(served).size and sent.tobytes() == picture(served).tobytes()

    clips = [frames_of(fake.clips[task.id].mp4) for task in tasks]
    film_seconds, film = frames_of(data["film_path"])
    assert [seconds for seconds, _ in clips] == [4.0, 5.0, 4.0]
    assert film_seconds == sum(seconds for seconds, _ in clips) == data["film_seconds"]
    tags = [shot_tag(task.id) for task in tasks]
    lengths = [len(frames) for _, frames in clips]
    expected = [(tags[0], i) for i in range(lengths[0])]
    for shot in (1, 2):  # frame 0 is the shot before's last picture, then its own frames from 1
        expected += [(tags[shot - 1], lengths[shot - 1] - 1)] + [(tags[shot], i) for i in range(1, lengths[shot])]
    assert [read_code(frame) for frame in film] == expected


async def test_a_plan_killed_while_shot_2_renders_goes_on_without_paying_again(tmp_path: Path) -> None:
    """SIGKILL while the fake holds shot 2 `running`; a new server continues: shot 2 followed, not sent again."""
    async with running_fake_ark(render_seconds=0.3, real_clips=True) as fake:
        rendering = fake.hold_task(2)
        with anyio.fail_after(150):
            plan_id = await killed_mid_plan(tmp_path, fake, lambda: shot_2_rendering(fake))
            assert fake.creates == 2
            rendering.set()
            async with server(tmp_path, fake, "continues") as client:
                data = await continue_the_plan(client, plan_id)
        await assert_one_continuous_film(fake, data)
        first, second, _ = tasks_in_order(fake)
        assert fake.deliveries_of(first.id) == 1 and fake.deliveries_of(second.id) == 1
        assert fake.handler_errors == []


async def test_a_plan_killed_before_shot_2s_create_answer_was_read_adopts_the_task_the_fake_made(
    tmp_path: Path,
) -> None:
    """SIGKILL with shot 2 created at the fake but its answer held back: the new server finds that task in the
    provider's list (lost-create reconciliation) and follows it; shot 2 is never created again."""
    async with running_fake_ark(render_seconds=0.3, real_clips=True) as fake:
        shot_1 = fake.hold_task(1)
        answer = anyio.Event()

        def shot_1_made() -> bool:
            return fake.creates == 1

        def shot_2_made() -> bool:
            return fake.creates == 2

        async def arm_the_fault() -> None:  # on shot 2's create, not shot 1's
            await until(shot_1_made)
            fake.add_fault("create", "hold_answer", release=answer)
            shot_1.set()

        with anyio.fail_after(150):
            plan_id = await killed_mid_plan(tmp_path, fake, shot_2_made, arm_the_fault)
            held = create_bodies(fake)[1]
            assert [r.fault for r in fake.requests if r.method == "POST"] == [None, "hold_answer"]
            assert [r.status for r in fake.requests if r.method == "POST"] == [200, None]  # never answered
            async with server(tmp_path, fake, "continues") as client:
                data = await continue_the_plan(client, plan_id)
            answer.set()
        await assert_one_continuous_film(fake, data)
        assert create_bodies(fake)[1] == held
        assert fake.handler_errors == []


async def test_a_plan_killed_while_shot_2s_video_downloads_saves_it_once_without_paying_again(tmp_path: Path) -> None:
    """SIGKILL with shot 2's video request held unanswered at the fake: the new server downloads it again (the
    first never reached anyone) and goes on; shot 2 is not created again."""
    async with running_fake_ark(render_seconds=0.3, real_clips=True) as fake:
        rendering = fake.hold_task(2)
        download = anyio.Event()

        async def hold_its_download() -> None:
            await until(lambda: shot_2_rendering(fake))
            fake.add_fault("download", "hold", task_id=tasks_in_order(fake)[1].id, release=download)
            rendering.set()

        def shot_2_downloading() -> bool:
            tasks = tasks_in_order(fake)
            return len(tasks) == 2 and fake.file_requests_of(tasks[1].id) > 0

        with anyio.fail_after(150):
            plan_id = await killed_mid_plan(tmp_path, fake, shot_2_downloading, hold_its_download)
            assert fake.creates == 2
            async with server(tmp_path, fake, "continues") as client:
                data = await continue_the_plan(client, plan_id)
        await assert_one_continuous_film(fake, data)
        second = tasks_in_order(fake)[1].id
        assert fake.file_requests_of(second) == 2 and fake.deliveries_of(second) == 1
        assert [r.fault for r in fake.requests if r.path == f"/files/{second}.mp4"] == ["hold", None]
        assert fake.handler_errors == []


async def killed_with_shot_3s_create_unread(tmp_path: Path, fake: FakeArk) -> str:
    """Kill the server while the fake holds shot 3's create unread (it never makes that task); the plan's id."""
    rendering = fake.hold_task(2)
    never = anyio.Event()  # never set: that create is never made

    async def hold_shot_3s_create() -> None:
        await until(lambda: shot_2_rendering(fake))
        fake.add_fault("create", "hold", release=never)
        rendering.set()

    def shot_3_sent() -> bool:
        return sum(1 for r in fake.requests if r.method == "POST" and r.path == TASKS) == 3

    # The killed server's hold on shot 3's job outlasts the new server's start-up by far: the continuing call
    # finds that job still unresolved (`submitting`) and waits for it, whatever the machine's load.
    held_long = {**SHORT_WINDOW, "SEEDANCE_LEASE_SECONDS": "10"}
    plan_id = await killed_mid_plan(tmp_path, fake, shot_3_sent, hold_shot_3s_create, **held_long)
    assert fake.creates == 2
    return plan_id


SHORT_WINDOW = {"SEEDANCE_RECONCILE_WINDOW": "1.5", "SEEDANCE_HTTP_TIMEOUT": "1.5"}
"""A lost create's task may still appear for 1.5 s (the product waits the HTTP time-out plus 30 s)."""


@pytest.mark.slow  # waits out the killed server's 10 s lease
async def test_a_plan_killed_with_shot_3s_create_never_made_sends_it_once_more_by_itself(tmp_path: Path) -> None:
    """SIGKILL while shot 3's create is held unread at the fake, which never makes it: the new server, with no
    storyboard call, finds shot 3's create proven never made (a complete look past the reconcile window), sends it
    once more (safe: nothing was created or charged) and joins the film; the held create is the only extra request."""
    async with running_fake_ark(render_seconds=0.3, real_clips=True) as fake:
        with anyio.fail_after(150):
            plan_id = await killed_with_shot_3s_create_unread(tmp_path, fake)
            async with server(tmp_path, fake, "continues", **SHORT_WINDOW) as client:
                data = await continue_the_plan(client, plan_id)
        assert [s["paid"] for s in data["shots"]] == [True, True, True]
        sent = [r for r in fake.requests if r.method == "POST" and r.path == TASKS]
        assert [r.fault for r in sent] == [None, None, "hold", None]
        unmarked = [{k: v for k, v in r.json().items() if k != "safety_identifier"} for r in sent[2:]]
        assert unmarked[0] == unmarked[1]  # the same shot 3 (each job has a marker of its own)
        del fake.requests[fake.requests.index(sent[2])]  # the create the fake never made
        await assert_one_continuous_film(fake, data)
        assert fake.handler_errors == []


@pytest.mark.slow
async def test_one_continuing_call_makes_the_film_when_a_shots_create_was_proven_never_made(tmp_path: Path) -> None:
    async with running_fake_ark(render_seconds=0.3, real_clips=True) as fake:
        with anyio.fail_after(150):
            plan_id = await killed_with_shot_3s_create_unread(tmp_path, fake)
            async with server(tmp_path, fake, "continues", **SHORT_WINDOW) as client:
                result = await client.call_tool("storyboard", PLAN)
        data: dict[str, Any] = result.structured_content or {}
        assert (data.get("plan_id"), data.get("status")) == (plan_id, "succeeded"), text_of(result)
        assert fake.creates == 3
