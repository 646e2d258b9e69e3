"""The tools end to end: the real MCP client in memory (both protocol eras) against the app on the sandbox."""

from __future__ import annotations

import base64
import itertools
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPDeprecationWarning

from seedance_mcp.app import create_app
from seedance_mcp.config import Settings
from seedance_mcp.sandbox import SandboxServer
from tests.conftest import SECRET_KEY, make_settings, png_bytes, sandbox_requests, sandbox_stats, text_of

pytestmark = pytest.mark.anyio

MODES = ["auto", "legacy"]


@pytest.mark.parametrize("mode", MODES)
async def test_every_tool_has_annotations_and_an_output_schema(settings: Settings, mode: str) -> None:
    """Each tool says whether it is read-only/paid, and returns structured content."""
    async with Client(create_app(settings), mode=mode) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == {
        "generate_video", "storyboard", "get_task_status", "list_tasks", "cancel_task", "list_models"
    }  # fmt: skip
    for tool in tools.values():
        assert tool.annotations is not None, tool.name
        assert tool.output_schema is not None, tool.name
        assert tool.description
    generate, status, cancel = tools["generate_video"], tools["get_task_status"], tools["cancel_task"]
    assert generate.annotations and status.annotations and cancel.annotations and generate.output_schema
    assert generate.annotations.read_only_hint is False
    assert generate.annotations.idempotent_hint is False
    assert "COSTS MONEY" in (generate.description or "")
    assert status.annotations.read_only_hint is True
    assert cancel.annotations.destructive_hint is True
    assert "task_id" in generate.output_schema["properties"]


@pytest.mark.parametrize("mode", MODES)
async def test_generate_video_saves_the_mp4_and_reports_strictly_increasing_progress(
    settings: Settings, mode: str
) -> None:
    """One call submits, polls with progress, downloads, and returns the path of a real MP4."""
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    with anyio.fail_after(20):
        async with Client(create_app(settings), mode=mode) as client:
            result = await client.call_tool(
                "generate_video", {"prompt": "a kitten yawns", "duration": 5}, progress_callback=on_progress
            )
    assert result.is_error is False, text_of(result)
    data: dict[str, Any] = result.structured_content or {}
    assert data["status"] == "succeeded"
    assert data["task_id"].startswith("cgt-")
    path = Path(data["video_path"])
    assert path.parent == settings.output_dir
    assert path.read_bytes()[4:8] == b"ftyp"
    assert data["usage_tokens"] == 108900 and "estimated_tokens" not in data  # billed: the estimate is left out
    assert data["video_url_expires_at"] is not None
    progress = [p for p, _, _ in seen]
    assert len(progress) >= 2
    assert all(b > a for a, b in itertools.pairwise(progress)), progress
    assert progress[-1] == 100
    assert all(total == 100 for _, total, _ in seen)
    assert all(message and data["task_id"][:10] in message for _, _, message in seen)


@pytest.mark.parametrize("mode", MODES)
async def test_a_bad_argument_is_a_tool_error_that_names_it_and_sends_nothing(
    tmp_path: Path, sandbox: SandboxServer, mode: str
) -> None:
    """duration=99 on the default model (2.0 mini): refused with the allowed range; the provider never hears of it;
    the server lives on."""
    settings = make_settings(tmp_path, provider="ark", base_url=f"{sandbox.url}/api/v3", api_key=SECRET_KEY)
    async with Client(create_app(settings), mode=mode) as client:
        result = await client.call_tool("generate_video", {"prompt": "a kitten", "duration": 99})
        assert result.is_error is True
        message = text_of(result)
        assert "`duration`" in message and "4-15" in message and "Nothing was sent" in message
        later = await client.call_tool("list_models", {})
        assert later.is_error is False
    assert (await sandbox_stats(sandbox))["create_attempts"] == 0


async def test_without_a_key_list_models_works_and_generate_names_the_variable(tmp_path: Path) -> None:
    """A missing key does not stop the server; generate_video says which variable to set."""
    settings = make_settings(tmp_path, provider="ark", api_key=None)
    async with Client(create_app(settings)) as client:
        models = await client.call_tool("list_models", {})
        result = await client.call_tool("generate_video", {"prompt": "a kitten"})
    assert models.is_error is False
    assert models.structured_content is not None
    assert models.structured_content["default_model"] == "doubao-seedance-2-0-mini-260615"
    assert result.is_error is True
    assert "SEEDANCE_API_KEY" in text_of(result)


async def test_list_models_tells_each_models_limits(settings: Settings) -> None:
    """The catalog behind validation is what list_models shows."""
    async with Client(create_app(settings)) as client:
        result = await client.call_tool("list_models", {"model": "all"})
    models = {m["key"]: m for m in (result.structured_content or {})["models"]}
    assert models["2.0-fast"]["resolutions"] == ["480p", "720p"]
    assert models["1.5-pro"]["duration_seconds"] == "4-12 or -1 (auto)"
    assert models["1.5-pro"]["draft"] is True and models["1.0-pro"]["draft"] is False
    assert models["1.0-pro"]["frames"] == "25 + 4n in 29-289"
    assert models["2.0"]["max_reference_images"] == 9
    assert models["1.0-lite-t2v"]["modes"] == ["text-to-video (prompt only)"]


async def test_dry_run_shows_the_exact_request_masks_the_key_and_sends_nothing(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    """dry_run returns method, URL, body and the token estimate; the key is masked; no create reaches the provider."""
    settings = make_settings(tmp_path, provider="ark", base_url=f"{sandbox.url}/api/v3", api_key=SECRET_KEY)
    image = tmp_path / "first.png"
    image.write_bytes(png_bytes(640, 360))
    async with Client(create_app(settings)) as client:
        result = await client.call_tool(
            "generate_video",
            {
                "prompt": "a boat",
                "model": "2.0",  # the default (2.0 mini) renders no 1080p
                "resolution": "1080p",
                "duration": 10,
                "first_frame": str(image),
                "dry_run": True,
            },
        )
    data = result.structured_content or {}
    assert data["status"] == "not_submitted"
    request = data["dry_run_request"]
    assert request["method"] == "POST"
    assert request["url"] == f"{sandbox.url}/api/v3/contents/generations/tasks"
    assert request["headers"]["Authorization"] == "Bearer ***"
    assert request["body"]["content"][1]["image_url"]["url"].startswith("data:image/png;base64,<")
    assert request["body"]["resolution"] == "1080p" and request["body"]["duration"] == 10
    assert data["estimated_tokens"] == round(1920 * 1080 * (24 * 10 + 1) / 1024)
    assert SECRET_KEY not in str(data)
    assert (await sandbox_stats(sandbox))["create_attempts"] == 0


async def test_a_local_image_is_sent_as_a_data_url(tmp_path: Path, sandbox: SandboxServer) -> None:
    """A file path becomes `data:image/png;base64,…` with the first_frame role."""
    settings = make_settings(tmp_path, provider="ark", base_url=f"{sandbox.url}/api/v3", api_key=SECRET_KEY)
    data = png_bytes(640, 360)
    image = tmp_path / "first.png"
    image.write_bytes(data)
    async with Client(create_app(settings)) as client:
        result = await client.call_tool("generate_video", {"prompt": "a boat", "first_frame": str(image)})
    assert result.is_error is False, text_of(result)
    body = (await sandbox_requests(sandbox))[-1]["body"]
    assert body["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64," + base64.b64encode(data).decode()},
        "role": "first_frame",
    }


async def test_files_outside_the_allowed_directories_are_refused(tmp_path: Path) -> None:
    """A model cannot make the server read and upload an arbitrary file, not even through a symlink."""
    inside = tmp_path / "allowed"
    inside.mkdir()
    outside = tmp_path / "secret.png"
    outside.write_bytes(png_bytes(640, 360))
    (inside / "link.png").symlink_to(outside)
    settings = make_settings(tmp_path, allowed_dirs=(inside,))
    async with Client(create_app(settings)) as client:
        direct = await client.call_tool("generate_video", {"prompt": "x", "first_frame": str(outside)})
        linked = await client.call_tool("generate_video", {"prompt": "x", "first_frame": str(inside / "link.png")})
    for result in (direct, linked):
        assert result.is_error is True
        assert "outside the directories" in text_of(result) and "SEEDANCE_ALLOWED_DIRS" in text_of(result)


async def test_a_too_small_image_is_refused_before_sending(settings: Settings, tmp_path: Path) -> None:
    """Sides under 300 px break Seedance's input limits: refused with the rule."""
    image = tmp_path / "tiny.png"
    image.write_bytes(png_bytes(200, 200))
    async with Client(create_app(settings)) as client:
        result = await client.call_tool("generate_video", {"prompt": "x", "first_frame": str(image)})
    assert result.is_error is True
    assert "200×200" in text_of(result) and "300-6000" in text_of(result)


async def test_without_waiting_a_handle_comes_back_and_get_task_status_finishes_the_job(settings: Settings) -> None:
    """wait=false returns the task id at once; get_task_status(wait=true) then returns the saved video."""
    async with Client(create_app(settings)) as client:
        first = await client.call_tool("generate_video", {"prompt": "a slow river", "wait": False})
        handle = first.structured_content or {}
        assert handle["status"] in ("queued", "running")
        assert "get_task_status" in handle["next_step"]
        done = await client.call_tool("get_task_status", {"task_id": handle["task_id"], "wait": True})
    data = done.structured_content or {}
    assert data["status"] == "succeeded"
    assert Path(data["video_path"]).is_file()


async def test_an_identical_call_returns_the_first_job_instead_of_paying_twice(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    """A retried call with the same arguments reuses the job; force_new pays for a second one."""
    settings = make_settings(tmp_path, provider="ark", base_url=f"{sandbox.url}/api/v3", api_key=SECRET_KEY)
    async with Client(create_app(settings)) as client:
        first = await client.call_tool("generate_video", {"prompt": "twice", "wait": False})
        again = await client.call_tool("generate_video", {"prompt": "twice", "wait": False})
        forced = await client.call_tool("generate_video", {"prompt": "twice", "wait": False, "force_new": True})
    a, b, c = (r.structured_content or {} for r in (first, again, forced))
    assert b["task_id"] == a["task_id"] and b["reused_existing"] is True
    assert c["task_id"] != a["task_id"] and "reused_existing" not in c  # false: left out
    assert (await sandbox_stats(sandbox))["creates"] == 2


async def test_list_tasks_shows_jobs_newest_first(settings: Settings) -> None:
    """list_tasks reads the journal: ids, prompts, statuses, paths."""
    async with Client(create_app(settings)) as client:
        await client.call_tool("generate_video", {"prompt": "first one"})
        await client.call_tool("generate_video", {"prompt": "second one"})
        listed = await client.call_tool("list_tasks", {})
        only_done = await client.call_tool("list_tasks", {"status": "succeeded", "limit": 1})
    tasks = (listed.structured_content or {})["tasks"]
    assert [t["prompt"] for t in tasks] == ["second one", "first one"]
    assert all(t["saved"] for t in tasks)
    assert len((only_done.structured_content or {})["tasks"]) == 1 and (only_done.structured_content or {})["more"]
    assert len((only_done.structured_content or {})["tasks"]) == 1


async def test_cancel_task_cancels_a_queued_task_and_explains_a_running_one(tmp_path: Path) -> None:
    """Ark cancels queued tasks; a running one cannot be cancelled and the answer says it will be billed."""
    settings = make_settings(tmp_path, sandbox_render_seconds=60.0, poll_interval=5.0)
    async with Client(create_app(settings)) as client:
        queued = await client.call_tool("generate_video", {"prompt": "cancel me [[queue=30]]", "wait": False})
        task_id = (queued.structured_content or {})["task_id"]
        cancelled = await client.call_tool("cancel_task", {"task_id": task_id})
        status = await client.call_tool("get_task_status", {"task_id": task_id})
        # Never queued: running (for a minute) from the moment it is created, so the cancel surely finds it running.
        running = await client.call_tool("generate_video", {"prompt": "too late [[queue=0]]", "wait": False})
        refused = await client.call_tool("cancel_task", {"task_id": (running.structured_content or {})["task_id"]})
    assert (cancelled.structured_content or {})["cancelled"] is True
    assert (status.structured_content or {})["status"] == "cancelled"
    refusal = refused.structured_content or {}
    assert refusal["cancelled"] is False and "cannot cancel a running task" in refusal["message"]


async def test_an_output_moderation_failure_keeps_the_providers_code(settings: Settings) -> None:
    """A task that fails on the provider side returns status failed with the provider's error code."""
    async with Client(create_app(settings)) as client:
        result = await client.call_tool("generate_video", {"prompt": "x [[fail=OutputVideoSensitiveContentDetected]]"})
    data = result.structured_content or {}
    assert data["status"] == "failed"
    assert data["error_code"] == "OutputVideoSensitiveContentDetected"
    assert "not billed" in data["next_step"]


async def test_an_input_moderation_refusal_keeps_the_code_and_request_id(settings: Settings) -> None:
    """A 400 from the provider on create is a tool error carrying the provider's code and request id."""
    async with Client(create_app(settings)) as client:
        result = await client.call_tool("generate_video", {"prompt": "x [[sensitive]]"})
        listed = await client.call_tool("list_tasks", {})
    assert result.is_error is True
    text = text_of(result)
    assert "InputTextSensitiveContentDetected" in text and "HTTP 400" in text and "Request ID:" in text
    job = (listed.structured_content or {})["tasks"][0]
    assert job["status"] == "failed" and job["error_code"] == "InputTextSensitiveContentDetected"


async def test_a_refused_key_says_so(tmp_path: Path, sandbox: SandboxServer) -> None:
    """401: the error says the key was refused and names the variable, without the key."""
    settings = make_settings(tmp_path, provider="ark", base_url=f"{sandbox.url}/api/v3", api_key="invalid-key")
    async with Client(create_app(settings)) as client:
        result = await client.call_tool("generate_video", {"prompt": "x"})
    assert result.is_error is True
    text = text_of(result)
    assert "AuthenticationError" in text and "key was refused" in text and "SEEDANCE_API_KEY" in text
    assert "invalid-key" not in text


async def test_unknown_task_ids_get_a_clear_error(settings: Settings) -> None:
    async with Client(create_app(settings)) as client:
        result = await client.call_tool("get_task_status", {"task_id": "cgt-nope"})
    assert result.is_error is True
    assert "list_tasks" in text_of(result)


async def test_cancelling_the_tool_call_stops_the_waiting_never_the_paid_job(tmp_path: Path) -> None:
    """A client that gives up mid-wait: the job is still followed and its video still lands."""
    settings = make_settings(tmp_path, sandbox_render_seconds=1.5)

    def saved() -> list[Path]:
        return list(settings.output_dir.glob("*.mp4")) if settings.output_dir.exists() else []

    async with Client(create_app(settings)) as client:
        with anyio.move_on_after(0.5):
            await client.call_tool("generate_video", {"prompt": "abandoned"})
        listed = await client.call_tool("list_tasks", {})
        handle = (listed.structured_content or {})["tasks"][0]["task_id"]
        with anyio.fail_after(10):
            while not saved():
                await anyio.sleep(0.1)
        status = await client.call_tool("get_task_status", {"task_id": handle})
    assert (status.structured_content or {})["status"] == "succeeded"
    assert len(saved()) == 1


async def test_hosts_that_set_a_log_level_get_an_answer(settings: Settings) -> None:
    """VS Code sends logging/setLevel on connect; it must not get 'method not found'."""
    async with Client(create_app(settings), mode="legacy") as client:
        with pytest.warns(MCPDeprecationWarning):  # the client marks the call deprecated; hosts still send it
            await client.set_logging_level("warning")  # pyright: ignore[reportDeprecated]
        assert (await client.call_tool("list_models", {})).is_error is False


async def test_a_log_level_is_set_only_where_the_protocol_has_the_method(settings: Settings) -> None:
    """The answer to logging/setLevel (a middleware) sets the server's own log level; a 2026-07-28 client, whose
    protocol has no such method, still gets -32601, and a level the protocol does not know is -32602."""
    import logging

    from mcp import MCPError, types

    logger = logging.getLogger("seedance_mcp")
    before = logger.level
    try:
        with anyio.fail_after(20):
            async with Client(create_app(settings), mode="legacy") as client:
                with pytest.warns(MCPDeprecationWarning):
                    await client.set_logging_level("error")  # pyright: ignore[reportDeprecated]
                assert logger.level == logging.ERROR
                unknown = types.SetLevelRequest.model_construct(
                    params=types.SetLevelRequestParams.model_construct(level="loud")
                )
                with pytest.raises(MCPError) as bad:
                    await client.session.send_request(unknown, types.EmptyResult)
            async with Client(create_app(settings), mode="2026-07-28") as client:
                with pytest.warns(MCPDeprecationWarning), pytest.raises(MCPError) as removed:
                    await client.set_logging_level("debug")  # pyright: ignore[reportDeprecated]
            assert logger.level == logging.ERROR  # unchanged by the refused request
    finally:
        logger.setLevel(before)
    assert bad.value.code == -32602
    assert removed.value.code == -32601


async def test_an_unwritable_state_dir_is_a_clear_tool_error_and_the_server_lives_on(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the state directory should be")
    settings = make_settings(tmp_path, state_dir=blocker / "state")
    async with Client(create_app(settings)) as client:
        failed = await client.call_tool("generate_video", {"prompt": "x"})
        models = await client.call_tool("list_models", {})
    assert failed.is_error is True and "SEEDANCE_STATE_DIR" in text_of(failed)
    assert models.is_error is False


async def test_the_shot_guide_prompt_turns_an_idea_into_instructions(settings: Settings) -> None:
    """The server offers a prompt that earns its place: how to describe a shot for Seedance."""
    async with Client(create_app(settings)) as client:
        listed = await client.list_prompts()
        prompt = await client.get_prompt("seedance_shot", {"idea": "a fox in the snow"})
    assert [p.name for p in listed.prompts] == ["seedance_shot"]
    text = prompt.messages[0].content.text  # type: ignore[union-attr]
    assert "a fox in the snow" in text and "generate_video" in text and "Camera" in text


def test_the_sandbox_never_hands_out_one_task_id_twice() -> None:
    """Thousands of creates in one second: each gets its own id (a reused id would lose a paid task)."""
    from seedance_mcp.catalog import MODELS_BY_KEY
    from seedance_mcp.sandbox import SandboxState

    state = SandboxState(render_seconds=1.0, clock=lambda: 1_800_000_000.0)
    spec = MODELS_BY_KEY["1.5-pro"]
    ids = {state.new_task("ark", spec, spec.cn_id, f"job {i}", {}).id for i in range(5000)}
    assert len(ids) == 5000
