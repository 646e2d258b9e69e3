"""`storyboard` end to end through the real MCP client on a loopback sandbox: one quote and one approval for the
plan, shots that are ordinary jobs, a continuous cut that starts on the previous shot's last frame, one film."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import anyio
import av
import pytest
from mcp import Client
from PIL import Image

from seedance_mcp.app import create_app
from seedance_mcp.sandbox.clips import read_code
from seedance_mcp.sandbox.server import SandboxServer
from tests.conftest import make_settings, sandbox_requests, sandbox_stats, text_of

pytestmark = pytest.mark.anyio

SECRET_KEY = "sk-storyboard-test-key-0123456789"
MODEL = "doubao-seedance-1-5-pro-251215"


def ark(tmp_path: Path, sandbox: SandboxServer, **overrides: Any) -> Any:
    values: dict[str, Any] = {"wait_seconds": 30.0, **overrides}
    return make_settings(tmp_path, provider="ark", base_url=f"{sandbox.url}/api/v3", api_key=SECRET_KEY, **values)


def film_frames(path: str) -> tuple[list[Image.Image], float, bool]:
    with av.open(path, "r") as container:
        stream = container.streams.video[0]
        assert stream.duration is not None and stream.time_base is not None
        seconds = float(stream.duration * stream.time_base)
        frames = [frame.to_image() for frame in container.decode(stream)]
        return frames, seconds, bool(container.streams.audio)


TWO_SHOTS = {
    "model": MODEL,
    "generate_audio": True,
    "shots": [
        {"prompt": "a red kite rises over the dunes", "duration": 5},
        {"prompt": "the kite dives toward the sea", "duration": 4, "transition": "continuous"},
    ],
}


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_two_shot_continuous_storyboard_is_one_film_quoted_and_approved_once(
    tmp_path: Path, sandbox: SandboxServer, mode: str
) -> None:
    settings = ark(tmp_path, sandbox, confirm_above=0.01)
    seen: list[tuple[float, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, message))

    with anyio.fail_after(60):
        async with Client(create_app(settings), mode=mode) as client:
            refused = await client.call_tool("storyboard", TWO_SHOTS)
            assert refused.is_error, text_of(refused)
            message = text_of(refused)
            assert "a film of 2 shots, 9 s" in message and "storyboard again" in message
            assert (await sandbox_stats(sandbox))["creates"] == 0  # nothing sent before the approval
            approval_id = message.split('approval_id="', 1)[1].split('"', 1)[0]
            result = await client.call_tool(
                "storyboard", {**TWO_SHOTS, "approval_id": approval_id}, progress_callback=on_progress
            )
    assert not result.is_error, text_of(result)
    data: dict[str, Any] = result.structured_content or {}
    assert data["status"] == "succeeded", data
    assert [(s["status"], s["paid"], s["saved"]) for s in data["shots"]] == [("succeeded", True, True)] * 2
    assert (await sandbox_stats(sandbox))["creates"] == 2
    # Progress across the plan: strictly increasing, shot i of n, ending at 100 when the film is joined.
    values = [p for p, _ in seen]
    assert values == sorted(set(values)) and values[-1] == 100, values
    messages = " ".join(m or "" for _, m in seen)
    assert "shot 1 of 2" in messages and "shot 2 of 2" in messages and data["plan_id"] in messages
    # The second shot was sent with the first shot's saved last frame as its first frame.
    bodies = [r["body"] for r in await sandbox_requests(sandbox) if r.get("body")]
    roles = [[item.get("role") for item in body["content"] if item["type"] == "image_url"] for body in bodies]
    assert sorted(roles, key=len) == [[], ["first_frame"]]
    # One MP4 whose length is the sum of its shots and whose second shot opens on the first shot's last frame.
    frames, seconds, has_audio = film_frames(data["film_path"])
    assert seconds == 9.0 and len(frames) == 9 * 24 and has_audio
    first_tag, last_index = read_code(frames[5 * 24 - 1])
    assert last_index == 5 * 24 - 1
    assert read_code(frames[5 * 24]) == (first_tag, 5 * 24 - 1)
    assert read_code(frames[5 * 24 + 1])[0] != first_tag and read_code(frames[5 * 24 + 1])[1] == 1
    assert data["film_seconds"] == 9.0 and data["film_video"] == "copied"
    sheet = Image.open(io.BytesIO(Path(data["contact_sheet_path"]).read_bytes()))
    assert sheet.format == "PNG"
    assert all(Path(s["video_path"]).is_file() for s in data["shots"])


async def test_a_bad_shot_is_refused_by_name_before_anything_is_sent(tmp_path: Path, sandbox: SandboxServer) -> None:
    settings = ark(tmp_path, sandbox)
    plan = {
        "model": MODEL,
        "shots": [{"prompt": "one", "duration": 5}, {"prompt": "two", "duration": 99, "transition": "cut"}],
    }
    async with Client(create_app(settings)) as client:
        result = await client.call_tool("storyboard", plan)
    assert result.is_error
    assert "`shots[1].duration`" in text_of(result) and "Nothing was sent" in text_of(result)
    assert (await sandbox_stats(sandbox))["create_attempts"] == 0


async def test_a_plan_over_the_daily_budget_is_refused_before_its_first_shot(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    """Each shot alone fits the daily budget; the plan does not: refused, nothing is sent."""
    plan = {
        "model": "2.0",
        "resolution": "720p",
        "shots": [{"prompt": "one", "duration": 5}, {"prompt": "two", "duration": 5, "transition": "cut"}],
    }
    async with Client(create_app(ark(tmp_path, sandbox))) as client:
        dry = await client.call_tool("storyboard", {**plan, "dry_run": True})
    assert not dry.is_error, text_of(dry)
    total = (dry.structured_content or {})["estimated_cost"]
    assert total > 0
    async with Client(create_app(ark(tmp_path, sandbox, daily_budget=total * 0.75))) as client:
        result = await client.call_tool("storyboard", plan)
    assert result.is_error and "SEEDANCE_DAILY_BUDGET" in text_of(result), text_of(result)
    assert (await sandbox_stats(sandbox))["create_attempts"] == 0


async def test_calling_again_reuses_every_shot_and_pays_nothing_more(tmp_path: Path, sandbox: SandboxServer) -> None:
    """Even with no dedupe window at all: the plan in the journal says since when its shots count as made."""
    settings = ark(tmp_path, sandbox, dedupe_window=0.0)
    async with Client(create_app(settings)) as client:
        first = await client.call_tool("storyboard", TWO_SHOTS)
        again = await client.call_tool("storyboard", TWO_SHOTS)
    one, two = first.structured_content or {}, again.structured_content or {}
    assert one["status"] == two["status"] == "succeeded", (text_of(first), text_of(again))
    assert [s["task_id"] for s in one["shots"]] == [s["task_id"] for s in two["shots"]]
    assert (await sandbox_stats(sandbox))["creates"] == 2


async def test_a_failed_shot_is_retried_alone_by_calling_again(tmp_path: Path, sandbox: SandboxServer) -> None:
    """Shot 2 fails at the provider: the result says which shot failed and which are paid and saved; the same call
    again sends shot 2 only (shot 1 is reused) and ends as the film."""
    settings = ark(tmp_path, sandbox)
    plan = {
        "model": MODEL,
        "shots": [
            {"prompt": "first light [[render=0.2]]", "duration": 4},
            {"prompt": "second light [[render=1]]", "duration": 4, "transition": "cut"},
        ],
    }
    first: Any = None
    async with Client(create_app(settings)) as client:
        async with anyio.create_task_group() as group:

            async def fail_shot_two() -> None:
                while not any("second" in t.prompt for t in sandbox.state.tasks.values()):
                    await anyio.sleep(0.02)
                task = next(t for t in sandbox.state.tasks.values() if "second" in t.prompt)
                task.fail_code = "OutputVideoSensitiveContentDetected"

            group.start_soon(fail_shot_two)
            with anyio.fail_after(30):
                first = await client.call_tool("storyboard", plan)
        with anyio.fail_after(30):
            again = await client.call_tool("storyboard", plan)
    one: dict[str, Any] = first.structured_content or {}
    assert one["status"] == "failed", text_of(first)
    assert [(s["status"], s["paid"], s["saved"]) for s in one["shots"]] == [
        ("succeeded", True, True),
        ("failed", False, False),
    ]
    assert "film_path" not in one or one["film_path"] is None
    two: dict[str, Any] = again.structured_content or {}
    assert two["status"] == "succeeded", text_of(again)
    assert two["shots"][0]["task_id"] == one["shots"][0]["task_id"]
    assert two["shots"][1]["task_id"] != one["shots"][1]["task_id"]
    assert (await sandbox_stats(sandbox))["creates"] == 3


async def test_cancel_task_with_the_plan_id_cancels_the_storyboard_as_a_whole(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    """Shot 1 is still queued: cancel_task(plan_id) cancels it and the plan; no later shot is ever sent, and the
    same call again sends nothing."""
    settings = ark(tmp_path, sandbox)
    plan = {
        "model": MODEL,
        "shots": [
            {"prompt": "waiting in line [[queue=600]]", "duration": 4},
            {"prompt": "never made", "duration": 4, "transition": "continuous"},
        ],
    }
    following = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        following.set()

    result: Any = None
    cancel: Any = None
    with anyio.fail_after(30):
        async with Client(create_app(settings)) as client:
            dry = await client.call_tool("storyboard", {**plan, "dry_run": True})
            plan_id = (dry.structured_content or {})["plan_id"]
            async with anyio.create_task_group() as group:

                async def run() -> None:
                    nonlocal result
                    result = await client.call_tool("storyboard", plan, progress_callback=on_progress)

                group.start_soon(run)
                await following.wait()  # shot 1 is sent and followed
                cancel = await client.call_tool("cancel_task", {"task_id": plan_id})
            again = await client.call_tool("storyboard", plan)
    assert not cancel.is_error, text_of(cancel)
    answer: dict[str, Any] = cancel.structured_content or {}
    assert answer["cancelled"] is True and "shot 1" in answer["message"] and "cancelled" in answer["message"]
    data: dict[str, Any] = result.structured_content or {}
    assert data["status"] == "cancelled", text_of(result)
    assert [s["status"] for s in data["shots"]] == ["cancelled", "not_sent"]
    assert (again.structured_content or {})["status"] == "cancelled"
    assert (await sandbox_stats(sandbox))["creates"] == 1


async def test_a_plan_goes_on_after_the_call_returns(tmp_path: Path, sandbox: SandboxServer) -> None:
    """The call's wait ends while shot 1 renders: it answers `running`, and shot 2 is still sent from shot 1's last
    frame with no one calling; the next call finds both saved and joins them, sending nothing more."""
    settings = ark(tmp_path, sandbox, wait_seconds=0.5)
    plan = {
        "model": MODEL,
        "shots": [
            {"prompt": "slow dawn [[render=2]]", "duration": 4},
            {"prompt": "bright noon [[render=0.3]]", "duration": 4, "transition": "continuous"},
        ],
    }
    with anyio.fail_after(40):
        async with Client(create_app(settings)) as client:
            first = await client.call_tool("storyboard", plan)
            assert (first.structured_content or {})["status"] == "running", text_of(first)
            assert (await sandbox_stats(sandbox))["creates"] == 1
            videos = settings.output_dir
            while len(list(videos.glob("*.mp4"))) < 2:  # shot 2 made and saved in the background
                await anyio.sleep(0.05)
            assert (await sandbox_stats(sandbox))["creates"] == 2
            done = await client.call_tool("storyboard", plan)
    data: dict[str, Any] = done.structured_content or {}
    assert data["status"] == "succeeded", text_of(done)
    assert (await sandbox_stats(sandbox))["creates"] == 2
    assert film_frames(data["film_path"])[1] == 8.0


async def test_two_storyboards_at_once_over_the_daily_budget_one_is_refused_before_any_create(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    """Two plans started together, each within SEEDANCE_DAILY_BUDGET alone, not both: the journal reserves a plan's
    cost in one step with the check, so exactly one is recorded and sends its shots; the other is refused, naming
    the limit, and nothing of it reaches the provider (the sandbox counts the creates)."""

    def plan(tag: str) -> dict[str, Any]:
        shots = [{"prompt": f"{tag} shot {i} [[render=600]]", "duration": 4, "transition": "cut"} for i in range(2)]
        return {"model": "2.0", "resolution": "720p", "shots": shots}  # a model with a list price on Ark

    async with Client(create_app(ark(tmp_path, sandbox))) as client:
        quoted = await client.call_tool("storyboard", {**plan("a"), "dry_run": True})
    cost = float((quoted.structured_content or {})["estimated_cost"])
    settings = ark(tmp_path, sandbox, daily_budget=round(cost * 1.5, 4), wait_seconds=1.0)
    results: dict[str, Any] = {}
    with anyio.fail_after(60):
        async with Client(create_app(settings)) as client:

            async def call(tag: str) -> None:
                results[tag] = await client.call_tool("storyboard", plan(tag))

            async with anyio.create_task_group() as group:
                group.start_soon(call, "a")
                group.start_soon(call, "b")
            refused = [tag for tag, result in results.items() if result.is_error]
            assert len(refused) == 1, {tag: text_of(result) for tag, result in results.items()}
            [accepted] = [tag for tag in results if tag not in refused]
            message = text_of(results[refused[0]])
            assert "SEEDANCE_DAILY_BUDGET" in message and "Nothing was sent" in message, message
            assert (results[accepted].structured_content or {})["status"] == "running"
            creates = (await sandbox_stats(sandbox))["creates"]
            prompts = [r["body"]["content"][0]["text"] for r in await sandbox_requests(sandbox) if r.get("body")]
    assert creates == 2 and all(p.startswith(accepted) for p in prompts), prompts


async def test_get_task_status_of_a_plan_id_answers_the_plan_without_sending_anything(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    """After the call's wait, get_task_status(plan_id) says where the plan stands in storyboard's shape (each
    shot's state, what is paid and saved) and sends nothing; once the plan is done it names the film. The
    storyboard's own answer says to ask get_task_status."""
    plan = {
        "model": MODEL,
        "shots": [
            {"prompt": "a boat leaves the harbour [[render=0.3]]", "duration": 4},
            {"prompt": "the boat reaches open water [[render=600]]", "duration": 4, "transition": "continuous"},
        ],
    }
    with anyio.fail_after(60):
        async with Client(create_app(ark(tmp_path, sandbox, wait_seconds=1.0))) as client:
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            assert "get_task_status(plan_id)" in (tools["storyboard"].description or "")
            first = await client.call_tool("storyboard", plan)
            data: dict[str, Any] = first.structured_content or {}
            assert data["status"] == "running" and "get_task_status" in data["next_step"], text_of(first)
            plan_id = data["plan_id"]
            while (await sandbox_stats(sandbox))["creates"] < 2:
                await anyio.sleep(0.05)
            status = await client.call_tool("get_task_status", {"task_id": plan_id})
            answer: dict[str, Any] = status.structured_content or {}
            assert not status.is_error and answer["status"] == "running", text_of(status)
            assert answer["plan_id"] == plan_id and answer["task_id"] == plan_id
            assert (answer["shots"][0]["status"], answer["shots"][0]["saved"]) == ("succeeded", True)
            assert answer["shots"][1]["status"] in ("queued", "running") and answer["shots"][1]["may_be_paid"]
            for task in sandbox.state.tasks.values():  # shot 2's render ends now
                task.queued_seconds = task.render_seconds = 0.0
            while answer["status"] != "succeeded":  # wait=true: each call waits (up to wait_seconds) for the plan
                waited = await client.call_tool("get_task_status", {"task_id": plan_id, "wait": True})
                answer = waited.structured_content or {}
            missing = await client.call_tool("get_task_status", {"task_id": "sb-0000000000000000"})
            late = await client.call_tool("cancel_task", {"task_id": plan_id})
            after = (await client.call_tool("get_task_status", {"task_id": plan_id})).structured_content or {}
    assert (await sandbox_stats(sandbox))["creates"] == 2  # status calls never send anything
    # a done plan stays done: a cancel says there is nothing to cancel
    assert (late.structured_content or {})["cancelled"] is False and "done" in text_of(late)
    assert after["status"] == "succeeded"
    assert answer["film_seconds"] == 8.0 and Path(answer["film_path"]).is_file()
    assert missing.is_error and "sb-0000000000000000" in text_of(missing)


async def test_a_plan_that_other_plans_reservations_leave_no_room_for_is_refused_before_the_approval_question(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    """Plan A is approved and running: shot 1 renders, shot 2 (continuous) is only reserved. Plan B would fit the
    day's spend but not with A's reservation: it is refused at once, naming the limit, instead of asking the person
    to approve something the journal would then refuse; nothing of B is sent."""
    a = {
        "model": "2.0",
        "resolution": "720p",
        "shots": [
            {"prompt": "a plan A shot [[render=600]]", "duration": 4},
            {"prompt": "a plan A follow-up", "duration": 4, "transition": "continuous"},
        ],
    }
    b = {"model": "2.0", "resolution": "720p", "shots": [{"prompt": "a plan B shot", "duration": 4}]}
    async with Client(create_app(ark(tmp_path, sandbox))) as client:
        quoted = await client.call_tool("storyboard", {**b, "dry_run": True})
    shot = float((quoted.structured_content or {})["estimated_cost"])
    settings = ark(tmp_path, sandbox, daily_budget=round(shot * 2.5, 4), confirm_above=0.01, wait_seconds=1.0)
    with anyio.fail_after(60):
        async with Client(create_app(settings)) as client:
            asked = await client.call_tool("storyboard", a)
            approval_id = text_of(asked).split('approval_id="', 1)[1].split('"', 1)[0]
            running = await client.call_tool("storyboard", {**a, "approval_id": approval_id})
            assert (running.structured_content or {})["status"] == "running", text_of(running)
            refused = await client.call_tool("storyboard", b)
    message = text_of(refused)
    assert refused.is_error and "approval_id" not in message, message
    assert "SEEDANCE_DAILY_BUDGET" in message and "reserved" in message and "Nothing was sent" in message
    prompts = [r["body"]["content"][0]["text"] for r in await sandbox_requests(sandbox) if r.get("body")]
    assert prompts == ["a plan A shot [[render=600]]"], prompts


async def test_a_cancel_landing_between_the_runs_check_and_the_insert_sends_nothing(
    tmp_path: Path, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run reads the plan (running), then submits the shot; a cancel from elsewhere lands in between. The
    journal's insert refuses the shot's job, so no create reaches the provider and the shot says why. The interleaving
    is made: the store cancels the plan itself just before the shot's insert."""
    from seedance_mcp.journal.sqlite import SqliteTaskStore

    insert = SqliteTaskStore.insert

    async def cancelled_first(self: SqliteTaskStore, job: Any, **kwargs: Any) -> Any:
        if kwargs.get("plan_shot") is not None:
            await self.cancel_plan(kwargs["plan_shot"][0])
        return await insert(self, job, **kwargs)

    monkeypatch.setattr(SqliteTaskStore, "insert", cancelled_first)
    settings = ark(tmp_path, sandbox)
    plan = {"model": MODEL, "shots": [{"prompt": "a red kite rises", "duration": 4}]}
    with anyio.fail_after(30):
        async with Client(create_app(settings)) as client:
            result = await client.call_tool("storyboard", plan)
    data: dict[str, Any] = result.structured_content or {}
    assert data["status"] == "cancelled", text_of(result)
    assert [s["status"] for s in data["shots"]] == ["not_sent"], data
    assert "the plan was cancelled" in text_of(result), text_of(result)
    assert (await sandbox_stats(sandbox))["creates"] == 0
