"""The aiid gateway (seed 002) as it really speaks, gemini-omni, and the sandbox's SEEDANCE_SANDBOX_AS / model map."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client

from seedance_mcp.app import create_app
from seedance_mcp.catalog import PRESETS, builtin_catalog
from seedance_mcp.model_map import parse_model_map
from seedance_mcp.providers import dialect_for
from seedance_mcp.providers.dialects.aiid import AiidDialect
from seedance_mcp.requests import VideoArguments
from seedance_mcp.sandbox import SandboxServer, SandboxState, running_sandbox
from seedance_mcp.validation import validate_request
from tests.conftest import SECRET_KEY, make_settings, sandbox_requests, sandbox_stats, text_of
from tests.fakes.stdio_helpers import server_env

pytestmark = pytest.mark.anyio

IMG1, IMG2 = "https://e.com/one.png", "https://e.com/two.png"
VIDEO = "https://e.com/clip.mp4"
ENDPOINT = "ep-20251103-abcde"


def aiid_body(**arguments: Any) -> tuple[str, dict[str, Any]]:
    preset = PRESETS["aiid"]
    request = validate_request(VideoArguments(prompt="a kitten yawns", **arguments), preset, "2.0")
    http = dialect_for(preset.dialect).create_request(request, "https://api.aiid.edu.kg")
    assert http.json_body is not None
    return http.url, http.json_body


def test_the_aiid_create_body_is_exactly_what_its_document_names() -> None:
    """References travel as Ark content items named "1", "2", … (as aiid's example names them), with mode
    reference_material and function_mode omni_reference."""
    url, body = aiid_body(
        model="2.0",
        reference_images=[IMG1, IMG2],
        reference_videos=[VIDEO],
        duration=6,
        ratio="16:9",
        resolution="720p",
        generate_audio=False,
        watermark=True,
    )
    assert url == "https://api.aiid.edu.kg/api/v3/contents/generations/tasks"
    assert body == {
        "model": "doubao-seedance-2-0-260128",
        "prompt": "a kitten yawns",
        "mode": "reference_material",
        "content": [
            {"type": "text", "text": "a kitten yawns"},
            {"type": "image_url", "image_url": {"url": IMG1}, "role": "reference_image", "name": "1"},
            {"type": "image_url", "image_url": {"url": IMG2}, "role": "reference_image", "name": "2"},
            {"type": "video_url", "video_url": {"url": VIDEO}, "role": "reference_video", "name": "3"},
        ],
        "function_mode": "omni_reference",
        "duration": 6,
        "ratio": "16:9",
        "resolution": "720p",
        "generate_audio": False,
        "watermark": True,
    }


def test_aiid_text_frames_and_gemini_modes_map_to_their_compatibility_mode() -> None:
    """t2v sends the prompt alone; i2v_first_last the frames; gemini-omni t2v, r2v and edit (no length, no ratio)."""
    assert aiid_body(model="2.0-fast", duration=5)[1] == {
        "model": "doubao-seedance-2-0-fast-260128",
        "prompt": "a kitten yawns",
        "mode": "t2v",
        "duration": 5,
    }
    frames = aiid_body(model="1.5-pro", first_frame=IMG1, last_frame=IMG2)[1]
    assert frames["mode"] == "i2v_first_last" and "function_mode" not in frames
    assert [item.get("role") for item in frames["content"]] == [None, "first_frame", "last_frame"]
    assert aiid_body(model="gemini-omni", duration=8)[1] == {
        "model": "gemini-omni",
        "prompt": "a kitten yawns",
        "mode": "t2v",
        "duration": 8,
    }
    r2v = aiid_body(model="gemini-omni", reference_images=[IMG1], duration=4)[1]
    assert r2v["mode"] == "r2v" and "function_mode" not in r2v and r2v["content"][1]["name"] == "1"
    edit = aiid_body(model="gemini-omni", reference_videos=[VIDEO], omni_reference_task_type="edit")[1]
    assert edit == {
        "model": "gemini-omni",
        "prompt": "a kitten yawns",
        "mode": "edit",
        "content": [
            {"type": "text", "text": "a kitten yawns"},
            {"type": "video_url", "video_url": {"url": VIDEO}, "role": "reference_video", "name": "1"},
        ],
    }


@pytest.mark.parametrize(
    ("arguments", "argument"),
    [
        ({"model": "gemini-omni", "duration": 5}, "duration"),
        ({"model": "gemini-omni", "reference_videos": [VIDEO], "omni_reference_task_type": "edit", "duration": 8},
         "duration"),
        ({"model": "gemini-omni", "first_frame": IMG1}, "first_frame"),
        ({"model": "gemini-omni", "resolution": "480p"}, "resolution"),
        ({"model": "2.0", "seed": 3}, "seed"),
        ({"model": "2.0", "service_tier": "default"}, "service_tier"),
        ({"model": "2.0", "priority": 3}, "priority"),
        ({"model": "2.0", "reference_videos": [VIDEO], "omni_reference_task_type": "edit"}, "omni_reference_task_type"),
    ],
)  # fmt: skip
def test_aiid_refuses_what_its_api_or_the_model_cannot_carry(arguments: dict[str, Any], argument: str) -> None:
    """Undocumented fields, gemini-omni's other lengths and modes: refused with the argument named, nothing built."""
    from seedance_mcp.errors import InvalidArgument

    with pytest.raises(InvalidArgument) as refused:
        aiid_body(**arguments)
    assert refused.value.argument == argument


def test_aiid_results_are_read_at_the_top_level_in_items_or_in_an_items_string() -> None:
    """items[].content.video_url, items[].video_url, a top-level content, or items sent as a JSON string."""
    dialect = AiidDialect()
    url = "https://cdn.example/v.mp4"
    shapes: list[dict[str, Any]] = [
        {"id": "task_1", "status": "succeeded", "items": [{"status": "succeeded", "content": {"video_url": url}}]},
        {"id": "task_1", "items": [{"status": "succeeded", "video_url": url, "progress": 100}]},
        {"id": "task_1", "status": "succeeded", "content": {"video_url": url}, "items": []},
        {"id": "task_1", "status": "succeeded", "items": f'[{{"status": "succeeded", "video_url": "{url}"}}]'},
    ]
    for body in shapes:
        snapshot = dialect.parse_task(body, "task_1")
        assert (snapshot.status, snapshot.video_url) == ("succeeded", url), body
    failed = dialect.parse_task(
        {"id": "task_1", "items": [{"status": "failed", "error": {"code": "bad", "message": "no"}}]}, "task_1"
    )
    assert (failed.status, failed.error_code, failed.error_message) == ("failed", "bad", "no")
    running = dialect.parse_task({"id": "task_1", "status": "running", "items": [{"progress": 40}]}, "task_1")
    assert (running.status, running.progress) == ("running", 40.0)
    assert dialect.cancel_request("task_1", "https://api.aiid.edu.kg") is None
    assert dialect.status_request("task_1", "https://api.aiid.edu.kg/api/v3/").url == (
        "https://api.aiid.edu.kg/api/v3/contents/generations/tasks/task_1"
    )


@pytest.mark.parametrize("shape", ["items", "flat", "bare", "string", "toplevel"])
async def test_the_aiid_preset_follows_a_task_whose_results_sit_in_items(
    shape: str, tmp_path: Path, sandbox: SandboxServer
) -> None:
    """provider=aiid against the sandbox: a `task_…` id, the status and video URL read wherever the answer puts them."""
    settings = make_settings(tmp_path, provider="aiid", base_url=sandbox.url, api_key=SECRET_KEY)
    async with Client(create_app(settings)) as client:
        result = await client.call_tool(
            "generate_video",
            {"prompt": f"a lighthouse [[shape={shape}]] [[render=0.2]]", "model": "2.0", "duration": 5},
        )
    data = result.structured_content or {}
    assert data.get("status") == "succeeded", text_of(result)
    assert data["provider"] == "aiid" and data["task_id"].startswith("task_")
    assert Path(data["video_path"]).read_bytes()[4:8] == b"ftyp"
    logged = (await sandbox_requests(sandbox))[-1]
    assert logged["dialect"] == "aiid"
    assert logged["body"] == {
        "model": "doubao-seedance-2-0-260128",
        "prompt": f"a lighthouse [[shape={shape}]] [[render=0.2]]",
        "mode": "t2v",
        "duration": 5,
    }


async def test_a_gemini_omni_edit_runs_end_to_end_on_the_embedded_aiid_sandbox(tmp_path: Path) -> None:
    """SEEDANCE_SANDBOX_AS=aiid: one reference video + omni_reference_task_type=edit is sent as mode edit and made."""
    settings = make_settings(tmp_path, provider="sandbox", sandbox_as="aiid", sandbox_render_seconds=0.2)
    async with Client(create_app(settings)) as client:
        result = await client.call_tool(
            "generate_video",
            {
                "prompt": "make the sky purple in video 1",
                "model": "gemini-omni",
                "reference_videos": [VIDEO],
                "omni_reference_task_type": "edit",
            },
        )
        made = await client.call_tool(
            "generate_video", {"prompt": "a fox in image 1", "model": "gemini-omni", "reference_images": [IMG1]}
        )
        data = result.structured_content or {}
        assert data.get("status") == "succeeded", text_of(result)
        async with httpx.AsyncClient() as http:  # the embedded sandbox lives as long as the server
            log = await http.get(str(httpx.URL(data["video_url"]).copy_with(path="/_sandbox/requests", query=None)))
    logged = log.json()["requests"]
    assert data["model"] == "gemini-omni" and data["task_id"].startswith("task_")
    assert Path(data["video_path"]).is_file()
    assert (made.structured_content or {}).get("status") == "succeeded", text_of(made)
    edit, r2v = (entry["body"] for entry in logged[-2:])
    assert edit["mode"] == "edit" and "duration" not in edit and "ratio" not in edit
    assert edit["content"][1] == {
        "type": "video_url",
        "video_url": {"url": VIDEO},
        "role": "reference_video",
        "name": "1",
    }
    assert r2v["mode"] == "r2v" and r2v["content"][1]["name"] == "1"


async def test_gemini_omni_duration_5_is_refused_naming_4_6_8_10(tmp_path: Path, sandbox: SandboxServer) -> None:
    """The gateway would round 5 s silently; the server refuses it, names the lengths, and sends nothing."""
    settings = make_settings(tmp_path, provider="aiid", base_url=sandbox.url, api_key=SECRET_KEY)
    async with Client(create_app(settings)) as client:
        result = await client.call_tool("generate_video", {"prompt": "x", "model": "gemini-omni", "duration": 5})
    assert result.is_error is True
    assert "duration" in text_of(result) and "4, 6, 8, 10" in text_of(result)
    assert (await sandbox_stats(sandbox))["create_attempts"] == 0


async def test_list_models_offers_gemini_omni_on_aiid_only(tmp_path: Path) -> None:
    """aiid lists gemini-omni beside the Seedance models its document names; no other preset lists it."""
    for name, preset in PRESETS.items():
        assert ("gemini-omni" in preset.model_keys) is (name == "aiid"), name
    async with Client(create_app(make_settings(tmp_path / "aiid", provider="aiid", api_key=None))) as client:
        aiid = (await client.call_tool("list_models", {})).structured_content or {}
    async with Client(create_app(make_settings(tmp_path / "ark", provider="ark", api_key=None))) as client:
        ark = (await client.call_tool("list_models", {})).structured_content or {}
    aiid_ids = [m["model_id"] for m in aiid["models"]]
    assert aiid["provider"] == "aiid" and aiid["default_model"] == "doubao-seedance-2-0-260128"
    assert "gemini-omni" in aiid_ids and "doubao-seedance-2-0-fast-260128" in aiid_ids
    assert "doubao-seedance-2-5-260628" not in aiid_ids
    assert "gemini-omni" not in [m["model_id"] for m in ark["models"]]
    assert any("service_tier" in line for line in aiid["gateway_limits"])


async def test_a_declared_endpoint_generates_with_the_mapped_models_rules_on_the_embedded_sandbox(
    tmp_path: Path,
) -> None:
    """SEEDANCE_MODEL_MAP=ep-…=2.5: the sandbox accepts the endpoint id, and 2.5's 4-30 s applies (20 ok, 40 not)."""
    settings = make_settings(tmp_path, provider="sandbox", model_map=f"{ENDPOINT}=2.5", sandbox_render_seconds=0.2)
    async with Client(create_app(settings)) as client:
        made = await client.call_tool("generate_video", {"prompt": "a long pan", "model": ENDPOINT, "duration": 20})
        refused = await client.call_tool("generate_video", {"prompt": "too long", "model": ENDPOINT, "duration": 40})
    data = made.structured_content or {}
    assert data.get("status") == "succeeded", text_of(made)
    assert data["model"] == ENDPOINT and Path(data["video_path"]).is_file()
    assert refused.is_error is True and "4-30" in text_of(refused)


async def test_the_sandbox_itself_applies_a_declared_endpoints_rules() -> None:
    """Straight to the sandbox (no server-side check): the endpoint is the mapped model; unknown ids still 404."""
    state = SandboxState(render_seconds=0.2, model_map=parse_model_map(f"{ENDPOINT}=2.5", builtin_catalog()))
    async with running_sandbox(state) as server, httpx.AsyncClient(headers={"Authorization": "Bearer k"}) as http:
        url = f"{server.url}/api/v3/contents/generations/tasks"
        text = [{"type": "text", "text": "x"}]
        ok = await http.post(url, json={"model": ENDPOINT, "content": text, "duration": 20})
        too_long = await http.post(url, json={"model": ENDPOINT, "content": text, "duration": 40})
        unknown = await http.post(url, json={"model": "ep-unknown", "content": text})
        gemini_on_ark = await http.post(url, json={"model": "gemini-omni", "content": text})
    assert ok.status_code == 200, ok.text
    assert too_long.status_code == 400 and too_long.json()["error"]["param"] == "duration"
    assert unknown.status_code == 404 and gemini_on_ark.status_code == 404


async def test_the_sandbox_answers_aiid_refusals_in_aiids_envelope(sandbox: SandboxServer) -> None:
    """A missing prompt, a t2v with media and gemini-omni lengths: `{"error":{"code":"invalid_request_error",…}}`."""
    url = f"{sandbox.url}/api/v3/contents/generations/tasks"
    async with httpx.AsyncClient(headers={"Authorization": "Bearer k"}) as http:
        no_prompt = await http.post(url, json={"model": "gemini-omni", "mode": "t2v"})
        no_image = await http.post(url, json={"model": "doubao-seedance-2-0-260128", "prompt": "x", "mode": "i2v"})
        unknown = await http.post(url, json={"model": "doubao-seedance-2-0-260128", "prompt": "x", "seed": 1})
        snapped = await http.post(url, json={"model": "gemini-omni", "prompt": "x", "seconds": 5})
    for refused in (no_prompt, no_image, unknown):
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_request_error", refused.text
    assert "images" in no_image.json()["error"]["message"]
    assert snapped.status_code == 200 and snapped.json()["id"].startswith("task_")
    assert sandbox.state.tasks[snapped.json()["id"]].duration == 6  # the gateway rounds; the server never sends 5


async def _read_lines(stream: Any, into: list[str], ready: anyio.Event) -> None:
    buffer = b""
    async for chunk in stream:
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        into.extend(line.decode() for line in complete)
        if any("Ctrl+C" in line for line in into):
            ready.set()
    ready.set()


@asynccontextmanager
async def standalone_sandbox(tmp_path: Path, **variables: str) -> AsyncGenerator[tuple[list[str], str]]:
    process = await anyio.open_process(
        [sys.executable, "-m", "seedance_mcp", "sandbox", "--port", "0", "--render-seconds", "0.3"],
        env=server_env(tmp_path, **variables),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    lines: list[str] = []
    ready = anyio.Event()
    try:
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(_read_lines, process.stdout, lines, ready)
            with anyio.fail_after(20):
                await ready.wait()
            assert lines and lines[0].startswith("Seedance sandbox on http://127.0.0.1:"), lines
            yield lines, lines[0].removeprefix("Seedance sandbox on ")
            task_group.cancel_scope.cancel()
    finally:
        process.terminate()
        with anyio.fail_after(10):
            await process.wait()


@pytest.mark.subprocess
async def test_the_standalone_sandbox_honours_sandbox_as_and_the_model_map(tmp_path: Path) -> None:
    """`SEEDANCE_SANDBOX_AS=aiid seedance-mcp sandbox --port 0`: it says so, prints aiid's lines only, serves aiid."""
    async with standalone_sandbox(tmp_path, SEEDANCE_SANDBOX_AS="aiid", SEEDANCE_MODEL_MAP=f"{ENDPOINT}=2.5") as (
        lines,
        url,
    ):
        async with httpx.AsyncClient(headers={"Authorization": "Bearer any"}, timeout=10) as http:
            created = await http.post(
                f"{url}/api/v3/contents/generations/tasks",
                json={"model": "gemini-omni", "prompt": "a heron", "mode": "t2v", "duration": 8},
            )
            assert created.status_code == 200, created.text
            task_id = created.json()["id"]
            with anyio.fail_after(15):
                while True:
                    task = (await http.get(f"{url}/api/v3/contents/generations/tasks/{task_id}")).json()
                    if task["status"] == "succeeded":
                        break
                    await anyio.sleep(0.05)
            stats = (await http.get(f"{url}/_sandbox/stats")).json()
        text = "\n".join(lines)
        assert "SEEDANCE_SANDBOX_AS=aiid" in text
        assert f"SEEDANCE_PROVIDER=aiid SEEDANCE_BASE_URL={url}" in text
        assert "SEEDANCE_PROVIDER=ark" not in text and f"{ENDPOINT}=2.5" in text
        assert task_id.startswith("task_") and task["items"][0]["content"]["video_url"].startswith(url)
        assert stats["speaks"] == "aiid" and stats["model_map"] == {ENDPOINT: "2.5"}


@pytest.mark.subprocess
async def test_the_standalone_sandbox_without_sandbox_as_prints_every_provider(tmp_path: Path) -> None:
    """Unset, every provider's base URL is printed, aiid's and kkiai's paths included."""
    async with standalone_sandbox(tmp_path) as (lines, url):
        text = "\n".join(lines)
        assert f"SEEDANCE_PROVIDER=ark SEEDANCE_BASE_URL={url}/api/v3" in text
        assert f"SEEDANCE_PROVIDER=kkiai SEEDANCE_BASE_URL={url}/volc/v1" in text
        assert f"SEEDANCE_PROVIDER=aiid SEEDANCE_BASE_URL={url}\n" in text + "\n"


@pytest.mark.subprocess
def test_the_standalone_sandbox_refuses_an_unknown_sandbox_as(tmp_path: Path) -> None:
    """A typo in SEEDANCE_SANDBOX_AS ends the command with exit code 2 and the known names, before it listens."""
    result = subprocess.run(
        [sys.executable, "-m", "seedance_mcp", "sandbox", "--port", "0"],
        env=server_env(tmp_path, SEEDANCE_SANDBOX_AS="aidd"),
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2 and b"aiid" in result.stderr and result.stdout == b""
