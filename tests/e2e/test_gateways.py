"""Every preset generates a video end to end against the sandbox, through the same adapter code as production."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from seedance_mcp.app import create_app
from seedance_mcp.sandbox import SandboxServer
from tests.conftest import SECRET_KEY, make_settings, png_bytes, sandbox_requests, sandbox_stats, text_of

pytestmark = pytest.mark.anyio

# preset -> (base URL path on the sandbox, arguments the preset accepts)
PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "ark": ("/api/v3", {"duration": 5, "seed": 3}),
    "byteplus": ("/api/v3", {"duration": 5, "watermark": True}),
    "kkiai": ("/volc/v1", {"duration": 5, "ratio": "16:9"}),
    "gptge": ("", {"duration": 5, "resolution": "720p", "camera_fixed": False}),
    "yescale": ("", {"duration": 5, "resolution": "480p", "model": "1.0-pro"}),
    "openai-compatible": ("/v1", {"duration": 5, "resolution": "720p", "ratio": "9:16", "first_frame": "PNG"}),
    "new-api": ("", {"duration": 5, "resolution": "720p", "seed": 7, "watermark": True}),
}


@pytest.mark.parametrize("preset", sorted(PRESETS))
async def test_each_preset_makes_a_video_end_to_end(preset: str, tmp_path: Path, sandbox: SandboxServer) -> None:
    path, arguments = PRESETS[preset]
    if arguments.get("first_frame") == "PNG":
        image = tmp_path / "first.png"
        image.write_bytes(png_bytes(720, 1280))
        arguments = {**arguments, "first_frame": str(image)}
    settings = make_settings(tmp_path, provider=preset, base_url=sandbox.url + path, api_key=SECRET_KEY)
    async with Client(create_app(settings)) as client:
        result = await client.call_tool("generate_video", {"prompt": f"a lighthouse on {preset}", **arguments})
    assert result.is_error is False, text_of(result)
    data = result.structured_content or {}
    assert data["status"] == "succeeded", data
    assert data["provider"] == preset
    assert Path(data["video_path"]).read_bytes()[4:8] == b"ftyp"
    assert data["usage_tokens"] and data["usage_tokens"] > 0
    stats = await sandbox_stats(sandbox)
    assert stats["creates"] == 1


async def test_kkiai_sends_2_0_to_its_api_v3_path(tmp_path: Path, sandbox: SandboxServer) -> None:
    """kkiai serves 1.x on /volc/v1 and 2.0 on /api/v3 (the preset's own mapping, here onto the sandbox)."""
    settings = make_settings(tmp_path, provider="sandbox", sandbox_as="kkiai")
    async with Client(create_app(settings)) as client:
        one = await client.call_tool("generate_video", {"prompt": "1.x", "model": "1.0-pro", "dry_run": True})
        two = await client.call_tool("generate_video", {"prompt": "2.0", "model": "2.0", "dry_run": True})
    assert (one.structured_content or {})["dry_run_request"]["url"].endswith("/volc/v1/contents/generations/tasks")
    assert (two.structured_content or {})["dry_run_request"]["url"].endswith("/api/v3/contents/generations/tasks")


@pytest.mark.parametrize("shape", ["object", "metadata", "toplevel", "items"])
async def test_openai_compatible_results_are_found_in_every_shape(
    shape: str, tmp_path: Path, sandbox: SandboxServer
) -> None:
    """The video may be at /content (with the key), metadata.url, a top-level video_url, or under items[]."""
    settings = make_settings(tmp_path, provider="openai-compatible", base_url=sandbox.url, api_key=SECRET_KEY)
    async with Client(create_app(settings)) as client:
        result = await client.call_tool("generate_video", {"prompt": f"a shape test [[shape={shape}]]"})
    data = result.structured_content or {}
    assert data["status"] == "succeeded", text_of(result)
    assert Path(data["video_path"]).is_file()


async def test_gateway_wire_forms_reach_the_sandbox_as_documented(tmp_path: Path, sandbox: SandboxServer) -> None:
    """What arrives at the gateway is the documented body: inline flags for gpt.ge, the SDK's fields for /v1/videos."""
    for preset, arguments in (
        ("gptge", {"duration": 5, "resolution": "720p"}),
        ("openai-compatible", {"duration": 5, "ratio": "16:9"}),
    ):
        settings = make_settings(tmp_path / preset, provider=preset, base_url=sandbox.url, api_key=SECRET_KEY)
        async with Client(create_app(settings)) as client:
            await client.call_tool("generate_video", {"prompt": "wire", "wait": False, **arguments})
    gptge, openai = (entry["body"] for entry in (await sandbox_requests(sandbox))[-2:])
    assert gptge["content"][0]["text"] == "wire --rs 720p --dur 5"
    # The official `openai` SDK's field set: the default model's (2.0 mini) default resolution, 720p, at 16:9.
    assert openai == {"model": "doubao-seedance-2-0-mini-260615", "prompt": "wire", "seconds": "5", "size": "1280x720"}


async def test_the_sandbox_can_speak_any_dialect_without_a_key(tmp_path: Path) -> None:
    """SEEDANCE_PROVIDER=sandbox with SEEDANCE_SANDBOX_AS=yescale: YEScale's rules, no key, no cost."""
    settings = make_settings(tmp_path, provider="sandbox", sandbox_as="yescale")
    async with Client(create_app(settings)) as client:
        refused = await client.call_tool("generate_video", {"prompt": "x", "duration": 6})
        made = await client.call_tool("generate_video", {"prompt": "x", "duration": 10, "resolution": "1080p"})
    assert refused.is_error is True and "5, 10" in text_of(refused)
    assert (made.structured_content or {})["status"] == "succeeded"


# Each preset's default model since 1.5 pro was shut down on BytePlus (issue 16): one sold there, with a price.
DRY_RUN_PATHS = {
    "ark": ("https://ark.cn-beijing.volces.com/api/v3/contents/generations/tasks", "doubao-seedance-2-0-mini-260615"),
    "byteplus": (
        "https://ark.ap-southeast.bytepluses.com/api/v3/contents/generations/tasks",
        "dreamina-seedance-2-0-fast-260128",
    ),
    "kkiai": ("https://www.kkiai.com/api/v3/contents/generations/tasks", "doubao-seedance-2-0-fast-260128"),
    "gptge": ("https://api.gpt.ge/task/volces/seedance", "doubao-seedance-1-0-pro-250528"),
    "yescale": ("https://api.yescale.io/seedance/generations", "doubao-seedance-1-0-pro-250528"),
}


@pytest.mark.parametrize("preset", sorted(DRY_RUN_PATHS))
async def test_list_models_and_dry_run_tell_the_truth_for_each_preset(preset: str, tmp_path: Path) -> None:
    """The real endpoints and model ids of each preset, with no key and nothing sent."""
    url, default_model = DRY_RUN_PATHS[preset]
    settings = make_settings(tmp_path, provider=preset, api_key=None)
    async with Client(create_app(settings)) as client:
        models = (await client.call_tool("list_models", {})).structured_content or {}
        dry = (await client.call_tool("generate_video", {"prompt": "x", "dry_run": True})).structured_content or {}
    assert models["provider"] == preset and models["default_model"] == default_model
    ids = {m["model_id"] for m in models["models"]}
    assert default_model in ids
    assert ("doubao-seedance-2-0-260128" in ids) is (preset in ("ark", "kkiai"))
    assert dry["dry_run_request"]["url"] == url
    assert dry["model"] == default_model
    assert "Authorization" not in dry["dry_run_request"]["headers"]  # no key configured
    if preset == "yescale":
        assert models["gateway_limits"][:2] == ["duration: only 5, 10 s", "resolution: only 480p, 1080p"]
