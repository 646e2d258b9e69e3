"""Takes and continuations, end to end through the real MCP client on the sandbox (Ark's wire form).

- `takes`: several takes of one request render in parallel under one approval (one question, or one approval id),
  one budget check for all of them, each an ordinary job; a repeated call pays for none again; the result shows a
  contact sheet with each take's first, middle and last frames.
- `continue_from`: on 2.5 the clip is extended by its task id; on a model without extend the clip's last frame
  (saved PNG, the provider's URL, or the saved MP4's final frame) is sent as the new clip's first frame.
"""

from __future__ import annotations

import base64
import io
import math
import re
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, types
from mcp.client.session import ClientRequestContext
from PIL import Image

from seedance_mcp.app import create_app
from seedance_mcp.sandbox import SandboxServer
from seedance_mcp.sandbox.state import Fault
from tests.conftest import SECRET_KEY, make_settings, sandbox_requests, sandbox_stats, text_of
from tests.fakes.stdio_helpers import server_env, stdio_params

pytestmark = pytest.mark.anyio

MODES = ["auto", "legacy"]
# 2.0 at 720p 16:9 for 5 s: 108,900 tokens at 46 CNY per million = 5.0094 CNY a take.
CALL = {"prompt": "a red kite", "model": "2.0", "resolution": "720p", "ratio": "16:9", "duration": 5}
COST = 108900 * 46 / 1e6


def ark(tmp_path: Path, sandbox: SandboxServer, **overrides: Any) -> Any:
    return make_settings(tmp_path, provider="ark", base_url=f"{sandbox.url}/api/v3", api_key=SECRET_KEY, **overrides)


def answering() -> Any:
    """An elicitation callback that approves, recording each question."""
    asked: list[str] = []

    async def callback(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"approve": True})

    callback.asked = asked  # type: ignore[attr-defined]
    return callback


def picture(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def final_frame(video: Path) -> Image.Image:
    """The video's last decoded frame, read here independently of the server's code."""
    import av

    with av.open(str(video)) as container:
        frames = [frame.to_image() for frame in container.decode(video=0)]  # pyright: ignore[reportUnknownMemberType]
    return frames[-1]


def first_frame_sent(body: dict[str, Any]) -> str:
    [image] = [item for item in body["content"] if item["type"] == "image_url"]
    assert image.get("role") in (None, "first_frame"), image
    return image["image_url"]["url"]


def decoded_data_url(url: str) -> Image.Image:
    assert url.startswith("data:image/png;base64,"), url[:60]
    return picture(base64.b64decode(url.split(",", 1)[1]))


# --- takes ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_takes_render_in_parallel_under_one_question_and_show_a_contact_sheet(
    tmp_path: Path, sandbox: SandboxServer, mode: str
) -> None:
    sandbox.state.render_seconds = 1.5
    callback = answering()
    settings = ark(tmp_path, sandbox, confirm_above=1.0)
    with anyio.fail_after(60):
        async with Client(create_app(settings), mode=mode, elicitation_callback=callback) as client:
            result = await client.call_tool("generate_video", {**CALL, "takes": 3})
    assert result.is_error is False, text_of(result)
    data = result.structured_content or {}
    [question] = callback.asked  # one approval for all three, at their summed cost
    assert "3 takes" in question and f"{3 * COST:.2f} CNY in all" in question
    takes = data["takes"]
    assert len(takes) == 3 and len({take["task_id"] for take in takes}) == 3
    assert all(take["status"] == "succeeded" and Path(take["video_path"]).is_file() for take in takes)
    assert len({take["video_path"] for take in takes}) == 3
    assert data["task_id"] == takes[0]["task_id"]
    # Parallel: every take was created at the provider before the first of them finished (1.5 s each).
    tasks = [sandbox.state.tasks[take["task_id"]] for take in takes]
    assert max(task.created_at for task in tasks) < min(task.finished_at() or 0 for task in tasks)
    assert (await sandbox_stats(sandbox))["creates"] == 3
    # Each take carries its own marker: three ordinary jobs that a lost answer could each be found by.
    markers = {request["body"].get("safety_identifier") for request in await sandbox_requests(sandbox)}
    assert len(markers) == 3 and None not in markers
    # The contact sheet: one row per take, first/middle/last, each tile labelled; also shown to the model.
    sheet = picture(Path(data["contact_sheet_path"]).read_bytes())
    assert sheet.format == "PNG"
    columns, rows = 3, 3
    tile_w = (sheet.width - 6 * (columns + 1)) // columns
    cell_h = (sheet.height - 6 * (rows + 1)) // rows
    assert tile_w == 320 and cell_h == 180 + 22  # the sandbox's 320×180 clip, a 22 px label band under each
    grey = sheet.convert("L")
    for row in range(rows):
        for column in range(columns):
            left, top = 6 + column * (tile_w + 6), 6 + row * (cell_h + 6)
            band = grey.crop((left, top + 180 + 2, left + tile_w, top + cell_h))
            assert band.getextrema()[1] > 150, (row, column)  # pyright: ignore[reportOperatorIssue]
            frame = grey.crop((left, top, left + tile_w, top + 180))
            assert frame.getextrema()[0] != frame.getextrema()[1]  # pyright: ignore[reportIndexIssue]
    images = [block for block in result.content if isinstance(block, types.ImageContent)]
    assert len(images) == 1 and images[0].mime_type == "image/jpeg"
    assert "continue_from" in data["next_step"] and data["contact_sheet_path"] in data["next_step"]


@pytest.mark.parametrize("mode", MODES)
async def test_a_repeated_takes_call_pays_for_none_again(tmp_path: Path, sandbox: SandboxServer, mode: str) -> None:
    async with Client(create_app(ark(tmp_path, sandbox)), mode=mode) as client:
        first = await client.call_tool("generate_video", {**CALL, "takes": 2, "wait": False})
        again = await client.call_tool("generate_video", {**CALL, "takes": 2})
        one = await client.call_tool("generate_video", CALL)  # a single video is not one of the takes
    assert first.is_error is False and again.is_error is False, text_of(first) + text_of(again)
    ids = [take["task_id"] for take in (first.structured_content or {})["takes"]]
    assert [take["task_id"] for take in (again.structured_content or {})["takes"]] == ids
    assert (again.structured_content or {})["reused_existing"] is True
    assert (one.structured_content or {})["task_id"] not in ids
    assert (await sandbox_stats(sandbox))["creates"] == 3


@pytest.mark.parametrize("mode", MODES)
async def test_a_client_that_cannot_ask_approves_all_takes_with_one_id_once(
    tmp_path: Path, sandbox: SandboxServer, mode: str
) -> None:
    settings = ark(tmp_path, sandbox, confirm_above=1.0)
    async with Client(create_app(settings), mode=mode) as client:
        refused = await client.call_tool("generate_video", {**CALL, "takes": 2})
        match = re.search(r'approval_id="(apv-[0-9]+-[0-9a-f]+)"', text_of(refused))
        assert refused.is_error is True and match is not None, text_of(refused)
        assert f"{2 * COST:.2f} CNY in all" in text_of(refused)
        # The id approves exactly two takes: not three, not a single video.
        other = [
            await client.call_tool("generate_video", {**CALL, **extra, "approval_id": match.group(1)})
            for extra in ({"takes": 3}, {})
        ]
        made = await client.call_tool("generate_video", {**CALL, "takes": 2, "approval_id": match.group(1)})
        twice = await client.call_tool(
            "generate_video", {**CALL, "takes": 2, "approval_id": match.group(1), "force_new": True}
        )
    assert all(result.is_error is True and "approves another request" in text_of(result) for result in other)
    assert made.is_error is False, text_of(made)
    ids = [take["task_id"] for take in (made.structured_content or {})["takes"]]
    assert [take["task_id"] for take in (twice.structured_content or {})["takes"]] == ids
    assert (await sandbox_stats(sandbox))["creates"] == 2


async def test_a_take_whose_create_answer_is_lost_is_never_sent_again_and_the_others_stand(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    """The first create's answer is dropped after the task was made: that take is `unknown` (found later by its
    own marker), the other take goes on, and repeating the call sends nothing more."""
    sandbox.state.faults.append(Fault("create", "drop_after"))
    async with Client(create_app(ark(tmp_path, sandbox))) as client:
        first = await client.call_tool("generate_video", {**CALL, "takes": 2, "wait": False})
        again = await client.call_tool("generate_video", {**CALL, "takes": 2})
    assert first.is_error is False, text_of(first)
    statuses = sorted(take["status"] for take in (first.structured_content or {})["takes"])
    assert statuses[1] == "unknown" and statuses[0] in ("queued", "running"), statuses
    assert again.is_error is False, text_of(again)
    # The repeat found both takes: the lost one adopted by its marker (its task, never a second one), both saved.
    takes = (again.structured_content or {})["takes"]
    assert {take["task_id"] for take in takes} == set(sandbox.state.tasks)
    assert all(take["status"] == "succeeded" and Path(take["video_path"]).is_file() for take in takes)
    assert (again.structured_content or {})["reused_existing"] is True
    assert (await sandbox_stats(sandbox))["creates"] == 2


@pytest.mark.subprocess
async def test_takes_over_stdio_are_found_again_by_a_second_server_process(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    """Two stdio server processes on one journal: the second, asked for the same takes, returns the first's and
    sends nothing; each take then says how to continue it (its own result, by get_task_status)."""
    env = server_env(
        tmp_path, SEEDANCE_PROVIDER="ark", SEEDANCE_BASE_URL=f"{sandbox.url}/api/v3", SEEDANCE_API_KEY=SECRET_KEY
    )
    with anyio.fail_after(60):
        async with Client(stdio_params(env)) as first:
            made = await first.call_tool("generate_video", {**CALL, "takes": 2})
        async with Client(stdio_params(env)) as second:
            again = await second.call_tool("generate_video", {**CALL, "takes": 2, "wait": False})
            ids = [take["task_id"] for take in (made.structured_content or {})["takes"]]
            status = await second.call_tool("get_task_status", {"task_id": ids[1]})
    assert made.is_error is False and again.is_error is False, text_of(made) + text_of(again)
    assert [take["task_id"] for take in (again.structured_content or {})["takes"]] == ids
    assert all(take["status"] == "succeeded" for take in (made.structured_content or {})["takes"])
    assert (status.structured_content or {})["continue_with"].startswith(f'generate_video(continue_from="{ids[1]}"')
    assert (await sandbox_stats(sandbox))["creates"] == 2


async def test_takes_all_refused_by_the_provider_fail_the_call_with_its_code(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    """Every create answered 429 until the retries give up: a tool error keeping the provider's code, as for one
    video, and nothing was created."""
    sandbox.state.faults.append(Fault("create", "http_429", times=1000))
    async with Client(create_app(ark(tmp_path, sandbox))) as client:
        refused = await client.call_tool("generate_video", {**CALL, "takes": 2})
        single = await client.call_tool("generate_video", {**CALL, "seed": 5})
    assert refused.is_error is True and "RateLimitExceeded" in text_of(refused), text_of(refused)
    assert single.is_error is True and "RateLimitExceeded" in text_of(single), text_of(single)
    assert (await sandbox_stats(sandbox))["creates"] == 0


async def test_the_budget_is_checked_once_for_all_takes(tmp_path: Path, sandbox: SandboxServer) -> None:
    """A budget for two and a half takes: three takes are refused whole (none sent), two are made."""
    async with Client(create_app(ark(tmp_path, sandbox, daily_budget=COST * 2.5))) as client:
        three = await client.call_tool("generate_video", {**CALL, "takes": 3, "wait": False})
        assert (await sandbox_stats(sandbox))["creates"] == 0
        two = await client.call_tool("generate_video", {**CALL, "takes": 2, "wait": False})
        listed = (await client.call_tool("list_tasks", {})).structured_content or {}
    assert three.is_error is True and "none was sent" in text_of(three) and "SEEDANCE_DAILY_BUDGET" in text_of(three)
    assert two.is_error is False, text_of(two)
    assert (await sandbox_stats(sandbox))["creates"] == 2
    assert len(listed["tasks"]) == 2


async def test_a_dry_run_of_takes_quotes_them_all_and_sends_nothing(tmp_path: Path, sandbox: SandboxServer) -> None:
    async with Client(create_app(ark(tmp_path, sandbox, confirm_above=1.0))) as client:
        result = await client.call_tool("generate_video", {**CALL, "takes": 3, "dry_run": True})
    step = (result.structured_content or {})["next_step"]
    assert result.is_error is False and f"3 takes, about {3 * COST:.2f} CNY in all" in step, step
    assert 'approval_id="apv-' in step
    assert (await sandbox_stats(sandbox))["creates"] == 0


async def test_the_chosen_draft_take_is_rendered_for_real(tmp_path: Path, sandbox: SandboxServer) -> None:
    """The README's example: three 2.5 draft takes, then the second one finalised by its task id."""
    boat = {"prompt": "a paper boat on a rainy street", "model": "2.5"}
    async with Client(create_app(ark(tmp_path, sandbox))) as client:
        drafts = await client.call_tool("generate_video", {**boat, "draft": True, "takes": 3})
        data = drafts.structured_content or {}
        assert drafts.is_error is False and "draft_task_id" in data["next_step"], text_of(drafts)
        chosen = data["takes"][1]["task_id"]
        final = await client.call_tool("generate_video", {**boat, "draft_task_id": chosen})
    assert final.is_error is False and (final.structured_content or {})["status"] == "succeeded", text_of(final)
    body = (await sandbox_requests(sandbox))[-1]["body"]
    assert body["content"] == [{"type": "draft_task", "draft_task": {"id": chosen}}]
    assert (await sandbox_stats(sandbox))["creates"] == 4


@pytest.mark.parametrize(
    ("extra", "argument", "allowed"),
    [({"takes": 5}, "takes", "1-4"), ({"takes": 0}, "takes", "1-4"), ({"takes": 2, "seed": 7}, "seed", "-1")],
)
async def test_bad_takes_are_refused_naming_the_argument(
    tmp_path: Path, sandbox: SandboxServer, extra: dict[str, Any], argument: str, allowed: str
) -> None:
    async with Client(create_app(ark(tmp_path, sandbox))) as client:
        result = await client.call_tool("generate_video", {**CALL, **extra})
    assert result.is_error is True and argument in text_of(result) and allowed in text_of(result), text_of(result)
    assert (await sandbox_stats(sandbox))["creates"] == 0


# --- continue_from ----------------------------------------------------------------------------------------------


async def test_every_finished_clip_says_how_to_continue_it(tmp_path: Path, sandbox: SandboxServer) -> None:
    async with Client(create_app(ark(tmp_path, sandbox))) as client:
        made = (await client.call_tool("generate_video", CALL)).structured_content or {}
        pending = (await client.call_tool("generate_video", {**CALL, "seed": 3, "wait": False})).structured_content
    assert made["continue_with"] == f'generate_video(continue_from="{made["task_id"]}")'
    assert "continue_with" not in (pending or {})


async def test_on_2_5_continue_from_extends_the_clip_by_its_task_id(tmp_path: Path, sandbox: SandboxServer) -> None:
    async with Client(create_app(ark(tmp_path, sandbox))) as client:
        first = (await client.call_tool("generate_video", {"prompt": "a red kite", "model": "2.5"})).structured_content
        assert first is not None and first["status"] == "succeeded"
        extended = await client.call_tool(
            "generate_video", {"prompt": "the kite flies on", "model": "2.5", "continue_from": first["task_id"]}
        )
    assert extended.is_error is False, text_of(extended)
    body = (await sandbox_requests(sandbox))[-1]["body"]
    assert body["omni_reference_task_type"] == "extend"
    [video] = [item for item in body["content"] if item["type"] == "video_url"]
    assert video["video_url"]["url"] == first["video_url"]
    assert not [item for item in body["content"] if item["type"] == "image_url"]


@pytest.mark.parametrize("source", ["saved png", "provider url", "saved mp4"])
async def test_without_extend_continue_from_sends_the_clips_last_frame_as_the_first_frame(
    tmp_path: Path, sandbox: SandboxServer, source: str
) -> None:
    asked = {"saved png": {"return_last_frame": True}, "provider url": {}, "saved mp4": {"return_last_frame": False}}
    async with Client(create_app(ark(tmp_path, sandbox))) as client:
        first = (await client.call_tool("generate_video", {**CALL, **asked[source]})).structured_content or {}
        assert first["status"] == "succeeded"
        then = await client.call_tool(
            "generate_video", {"prompt": "the kite lands", "model": "2.0", "continue_from": first["job_id"]}
        )
    assert then.is_error is False, text_of(then)
    body = (await sandbox_requests(sandbox))[-1]["body"]
    sent = first_frame_sent(body)
    assert "omni_reference_task_type" not in body
    if source == "provider url":
        assert sent == first["last_frame_url"]
        return
    frame = decoded_data_url(sent)
    if source == "saved png":
        original = picture(Path(first["last_frame_path"]).read_bytes())
    else:
        assert first.get("last_frame_url") is None and first.get("last_frame_path") is None
        original = final_frame(Path(first["video_path"]))
    # The same picture, each pixel repeated (a whole factor) to reach the provider's 300 px minimum side; a frame
    # already that large is sent as it is.
    factor = max(1, math.ceil(300 / min(original.size)))
    assert frame.size == (original.width * factor, original.height * factor)
    assert (
        frame.convert("RGB").resize(original.size, Image.Resampling.NEAREST).tobytes()
        == original.convert("RGB").tobytes()
    )


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ({"continue_from": "kite.mp4"}, "cgt-"),
        ({"continue_from": "cgt-20260101000000-abcde"}, "no clip"),
        ({"continue_from": "cgt-20260101000000-abcde", "first_frame": "https://example.com/a.png"}, "first_frame"),
        (
            {"continue_from": "cgt-20260101000000-abcde", "model": "2.5", "reference_videos": ["https://x/a.mp4"]},
            "reference_videos",
        ),
        ({"continue_from": "cgt-20260101000000-abcde", "model": "1.0-lite-t2v"}, "neither extend"),
    ],
)
async def test_a_bad_continue_from_is_refused_naming_it(
    tmp_path: Path, sandbox: SandboxServer, extra: dict[str, Any], says: str
) -> None:
    async with Client(create_app(ark(tmp_path, sandbox))) as client:
        result = await client.call_tool("generate_video", {**CALL, **extra})
    assert result.is_error is True and "continue_from" in text_of(result) and says in text_of(result), text_of(result)
    assert (await sandbox_stats(sandbox))["creates"] == 0


async def test_continuing_an_unfinished_clip_is_refused_with_how_to_wait(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    sandbox.state.render_seconds = 30.0
    async with Client(create_app(ark(tmp_path, sandbox))) as client:
        pending = (await client.call_tool("generate_video", {**CALL, "wait": False})).structured_content or {}
        result = await client.call_tool(
            "generate_video", {"prompt": "next", "model": "2.0", "continue_from": pending["task_id"]}
        )
    assert result.is_error is True and "continue_from" in text_of(result) and "get_task_status" in text_of(result)
    assert (await sandbox_stats(sandbox))["creates"] == 1


@pytest.mark.parametrize(("provider", "model", "needs"), [("new-api", "2.5", "omni_reference_task_type")])
def test_continue_from_on_a_gateway_that_cannot_carry_it_is_refused_naming_it(
    provider: str, model: str, needs: str
) -> None:
    from seedance_mcp.catalog import PRESETS
    from seedance_mcp.errors import InvalidArgument
    from seedance_mcp.requests import VideoArguments
    from seedance_mcp.validation import validate_request

    args = VideoArguments(prompt="the kite flies on", model=model, continue_from="cgt-20260101000000-abcde")
    with pytest.raises(InvalidArgument) as refused:
        validate_request(args, PRESETS[provider], "2.0")
    assert refused.value.argument == "continue_from" and needs in str(refused.value)
