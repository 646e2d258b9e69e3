"""What an agent does with a clip it made, end to end on the sandbox: edit it, extend it (2.5), finalise a draft."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from seedance_mcp.app import create_app
from seedance_mcp.sandbox import SandboxServer
from tests.conftest import SECRET_KEY, make_settings, sandbox_requests, text_of
from tests.fakes.tiny_http import answer, serving

pytestmark = pytest.mark.anyio


def ark(tmp_path: Path, sandbox: SandboxServer) -> Any:
    return make_settings(tmp_path, provider="ark", base_url=f"{sandbox.url}/api/v3", api_key=SECRET_KEY)


@pytest.mark.parametrize("task_type", ["edit", "extend"])
async def test_a_clip_made_here_is_edited_or_extended_with_2_5_by_its_task_id(
    tmp_path: Path, sandbox: SandboxServer, task_type: str
) -> None:
    async with Client(create_app(ark(tmp_path, sandbox))) as client:
        first = (await client.call_tool("generate_video", {"prompt": "a red kite", "model": "2.5"})).structured_content
        assert first is not None and first["status"] == "succeeded"
        changed = await client.call_tool(
            "generate_video",
            {
                "prompt": "the same kite at night" if task_type == "edit" else "the kite flies on over the sea",
                "model": "2.5",
                "reference_videos": [first["task_id"]],
                "omni_reference_task_type": task_type,
            },
        )
    data = changed.structured_content or {}
    assert changed.is_error is False, text_of(changed)
    assert data["status"] == "succeeded" and Path(data["video_path"]).is_file()
    body = (await sandbox_requests(sandbox))[-1]["body"]
    assert body["omni_reference_task_type"] == task_type and body["model"] == "doubao-seedance-2-5-260628"
    [video] = [item for item in body["content"] if item["type"] == "video_url"]
    assert video["video_url"]["url"] == first["video_url"]  # the task id became its video's URL
    assert body["ratio"] == "adaptive"


async def test_a_1_5_pro_draft_is_finalised_into_the_full_video(tmp_path: Path, sandbox: SandboxServer) -> None:
    async with Client(create_app(ark(tmp_path, sandbox))) as client:
        draft = await client.call_tool("generate_video", {"prompt": "a lighthouse", "model": "1.5-pro", "draft": True})
        draft_id = (draft.structured_content or {})["task_id"]
        final = await client.call_tool(
            "generate_video", {"prompt": "final cut", "model": "1.5-pro", "draft_task_id": draft_id}
        )
    data = final.structured_content or {}
    assert final.is_error is False, text_of(final)
    assert data["status"] == "succeeded" and Path(data["video_path"]).is_file() and data["task_id"] != draft_id
    body = (await sandbox_requests(sandbox))[-1]["body"]
    assert body["content"] == [{"type": "draft_task", "draft_task": {"id": draft_id}}]


async def test_a_strict_openai_shaped_endpoint_accepts_our_create(tmp_path: Path) -> None:
    """An endpoint that refuses every field the official SDK does not send accepts what we send."""
    allowed = {"prompt", "model", "seconds", "size", "input_reference"}
    bodies: list[dict[str, Any]] = []

    def strict(seen: Any) -> bytes:
        import json

        if seen.method == "POST":
            body = json.loads(seen.body)
            bodies.append(body)
            extra = sorted(set(body) - allowed)
            if extra:
                return answer(400, {"error": {"code": "unknown_parameter", "message": f"Unknown: {extra}"}})
            return answer(200, {"id": "video_1", "object": "video", "status": "queued", "created_at": 1})
        return answer(200, {"id": "video_1", "object": "video", "status": "in_progress", "progress": 10})

    async with serving(strict) as server:
        settings = make_settings(
            tmp_path, provider="openai-compatible", base_url=f"{server.url}/v1", api_key=SECRET_KEY, wait_seconds=0
        )
        async with Client(create_app(settings)) as client:
            made = await client.call_tool(
                "generate_video",
                {"prompt": "a kite", "model": "2.0", "resolution": "720p", "ratio": "16:9", "duration": 5},
            )
    assert made.is_error is False, text_of(made)
    assert bodies == [{"prompt": "a kite", "model": "doubao-seedance-2-0-260128", "seconds": "5", "size": "1280x720"}]


async def test_on_stdio_a_draft_made_outside_this_server_is_finalised(tmp_path: Path, sandbox: SandboxServer) -> None:
    """One person, one key: a draft made in the provider's console (not in the journal) may be finalised."""
    import httpx

    headers = {"Authorization": f"Bearer {SECRET_KEY}"}
    async with httpx.AsyncClient(headers=headers) as console:
        made = await console.post(
            f"{sandbox.url}/api/v3/contents/generations/tasks",
            json={
                "model": "doubao-seedance-1-5-pro-251215",
                "content": [{"type": "text", "text": "a lighthouse"}],
                "draft": True,
                "resolution": "480p",
            },
        )
        draft_id = made.json()["id"]
        with anyio.fail_after(10):  # the console shows the draft finished
            while (await console.get(f"{sandbox.url}/api/v3/contents/generations/tasks/{draft_id}")).json()[
                "status"
            ] != "succeeded":
                await anyio.sleep(0.1)
    async with Client(create_app(ark(tmp_path, sandbox))) as client:
        final = await client.call_tool(
            "generate_video", {"prompt": "final cut", "model": "1.5-pro", "draft_task_id": draft_id}
        )
    assert final.is_error is False, text_of(final)
    body = (await sandbox_requests(sandbox))[-1]["body"]
    assert body["content"] == [{"type": "draft_task", "draft_task": {"id": draft_id}}]


async def test_a_draft_named_by_its_job_id_is_sent_as_its_task_id(tmp_path: Path, sandbox: SandboxServer) -> None:
    async with Client(create_app(ark(tmp_path, sandbox))) as client:
        draft = await client.call_tool("generate_video", {"prompt": "a lighthouse", "model": "1.5-pro", "draft": True})
        made = draft.structured_content or {}
        final = await client.call_tool(
            "generate_video", {"prompt": "final cut", "model": "1.5-pro", "draft_task_id": made["job_id"]}
        )
    assert final.is_error is False, text_of(final)
    body = (await sandbox_requests(sandbox))[-1]["body"]
    assert body["content"] == [{"type": "draft_task", "draft_task": {"id": made["task_id"]}}]
