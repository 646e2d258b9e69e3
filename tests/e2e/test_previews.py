"""Results you can see: the preview JPEG a finished result shows the model, and the task files as MCP resources.

End to end through the real MCP client in memory (both protocol eras) against the app on the embedded sandbox,
plus the preview functions on the sandbox's real H.264 MP4.
"""

from __future__ import annotations

import base64
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, MCPError
from mcp.types import BlobResourceContents, CallToolResult, ImageContent, ResourceLink
from PIL import Image

from seedance_mcp.app import create_app
from seedance_mcp.catalog import PRESETS
from seedance_mcp.config import Settings
from seedance_mcp.jobs import fingerprint_of
from seedance_mcp.media import previews
from seedance_mcp.providers.dialects.ark import ArkDialect
from seedance_mcp.requests import VideoArguments
from seedance_mcp.sandbox import SandboxServer
from seedance_mcp.sandbox.media import last_frame_png, sample_mp4
from seedance_mcp.tools import resources
from seedance_mcp.validation import validate_request
from tests.conftest import make_settings, text_of

pytestmark = pytest.mark.anyio

MODES = ["auto", "legacy"]
SERVER_ROOT = Path(__file__).resolve().parents[2] / "server"


def quick(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for a sandbox that renders in a tenth of a second."""
    return make_settings(tmp_path, **{"sandbox_render_seconds": 0.1, **overrides})


def image_of(result: CallToolResult) -> ImageContent:
    images = [block for block in result.content if isinstance(block, ImageContent)]
    assert len(images) == 1, result.content
    return images[0]


def links_of(result: CallToolResult) -> dict[str, ResourceLink]:
    """The result's resource links by their last URI segment (`video`, `last-frame`, `preview`)."""
    return {block.uri.rsplit("/", 1)[-1]: block for block in result.content if isinstance(block, ResourceLink)}


def picture(data: bytes) -> Image.Image:
    """Decoded bytes (fully read, so a bad JPEG fails here); an in-memory file needs no closing."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


async def make_video(client: Client, **arguments: Any) -> CallToolResult:
    result = await client.call_tool("generate_video", {"prompt": "a kitten yawns", "duration": 5, **arguments})
    assert result.is_error is False, text_of(result)
    assert (result.structured_content or {})["status"] == "succeeded"
    return result


# --- the model's picture and the client's links -------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_a_finished_video_shows_the_model_a_small_jpeg_and_links_its_files(tmp_path: Path, mode: str) -> None:
    """generate_video's finished result carries a JPEG under 100 KB and resource links to the MP4, frame and JPEG."""
    with anyio.fail_after(20):
        async with Client(create_app(quick(tmp_path)), mode=mode) as client:
            result = await make_video(client, return_last_frame=True)
    data = result.structured_content or {}
    task_id = data["task_id"]
    image = image_of(result)
    jpeg = base64.b64decode(image.data)
    assert image.mime_type == "image/jpeg" and jpeg[:3] == b"\xff\xd8\xff"
    assert len(jpeg) <= previews.PREVIEW_MAX_BYTES
    shown = picture(jpeg)
    assert shown.format == "JPEG" and shown.width > 0 and shown.height > 0
    links = links_of(result)
    assert set(links) == {"video", "last-frame", "preview"}
    assert links["video"].uri == f"seedance://tasks/{task_id}/video" and links["video"].mime_type == "video/mp4"
    assert links["last-frame"].uri == f"seedance://tasks/{task_id}/last-frame"
    assert links["last-frame"].mime_type == "image/png" and links["preview"].mime_type == "image/jpeg"
    assert links["video"].size == Path(data["video_path"]).stat().st_size
    # The local path and the provider URL stay in the structured result and in the text the model reads.
    assert data["video_path"] in text_of(result) and data["video_url"] in text_of(result)
    assert data["last_frame_path"] and Path(data["last_frame_path"]).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("mode", MODES)
async def test_each_link_reads_back_its_file_with_the_right_mime_type(tmp_path: Path, mode: str) -> None:
    """resources/read of each link returns the saved file's exact bytes as a blob of its MIME type."""
    with anyio.fail_after(20):
        async with Client(create_app(quick(tmp_path)), mode=mode) as client:
            result = await make_video(client, return_last_frame=True)
            links = links_of(result)
            read = {name: (await client.read_resource(link.uri)).contents for name, link in links.items()}
    data = result.structured_content or {}
    preview = previews.preview_path_for(data["video_path"], data["last_frame_path"])
    assert preview is not None
    expected = {
        "video": ("video/mp4", Path(data["video_path"]).read_bytes()),
        "last-frame": ("image/png", Path(data["last_frame_path"]).read_bytes()),
        "preview": ("image/jpeg", preview.read_bytes()),
    }
    for name, (mime_type, file_bytes) in expected.items():
        (content,) = read[name]
        assert isinstance(content, BlobResourceContents), name
        assert content.mime_type == mime_type, name
        assert base64.b64decode(content.blob) == file_bytes, name
    assert base64.b64decode(image_of(result).data) == expected["preview"][1]


@pytest.mark.parametrize("mode", MODES)
async def test_the_task_resource_templates_are_listed(tmp_path: Path, mode: str) -> None:
    """resources/templates/list names the video, last-frame and preview templates with their MIME types."""
    async with Client(create_app(quick(tmp_path)), mode=mode) as client:
        templates = (await client.list_resource_templates()).resource_templates
    listed = {template.uri_template: template.mime_type for template in templates}
    assert listed["seedance://tasks/{task_id}/video"] == "video/mp4"
    assert listed["seedance://tasks/{task_id}/last-frame"] == "image/png"
    assert listed["seedance://tasks/{task_id}/preview"] == "image/jpeg"


@pytest.mark.parametrize("mode", MODES)
async def test_reading_an_unknown_task_is_an_error_that_names_the_id(tmp_path: Path, mode: str) -> None:
    """A task id the journal does not have is refused with that id and what to call instead."""
    with anyio.fail_after(20):
        async with Client(create_app(quick(tmp_path)), mode=mode) as client:
            with pytest.raises(MCPError) as caught:
                await client.read_resource("seedance://tasks/cgt-20990101000000-nosuch/video")
    assert "cgt-20990101000000-nosuch" in str(caught.value) and "list_tasks" in str(caught.value)


async def test_a_video_over_the_read_cap_is_refused_pointing_at_its_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """resources/read refuses a video over its size cap, naming the size and the video_path to open instead."""
    with anyio.fail_after(20):
        async with Client(create_app(quick(tmp_path))) as client:
            result = await make_video(client)
            monkeypatch.setattr(resources, "MAX_VIDEO_BYTES", 1000)
            with pytest.raises(MCPError) as caught:
                await client.read_resource(links_of(result)["video"].uri)
    data = result.structured_content or {}
    assert "1,000-byte limit" in str(caught.value) and data["video_path"] in str(caught.value)


async def test_reading_the_video_of_a_task_still_rendering_says_to_wait(tmp_path: Path) -> None:
    """Before the video is saved there is nothing to read: the error says so and names get_task_status."""
    settings = quick(tmp_path, sandbox_render_seconds=30.0)
    with anyio.fail_after(20):
        async with Client(create_app(settings)) as client:
            started = await client.call_tool("generate_video", {"prompt": "slow", "wait": False})
            task_id = (started.structured_content or {})["task_id"]
            with pytest.raises(MCPError) as caught:
                await client.read_resource(f"seedance://tasks/{task_id}/video")
            await client.call_tool("cancel_task", {"task_id": task_id})
    assert not any(isinstance(block, ImageContent | ResourceLink) for block in started.content)
    assert task_id in str(caught.value) and "get_task_status" in str(caught.value)


@pytest.mark.parametrize("mode", MODES)
async def test_a_provider_without_last_frames_still_gets_a_preview_from_the_mp4(tmp_path: Path, mode: str) -> None:
    """On a gateway that cannot return a last frame (gpt.ge), the preview is made from the saved MP4's frames."""
    with anyio.fail_after(20):
        async with Client(create_app(quick(tmp_path, sandbox_as="gptge")), mode=mode) as client:
            result = await make_video(client)
    data = result.structured_content or {}
    assert data.get("last_frame_path") is None
    shown = picture(base64.b64decode(image_of(result).data))
    assert shown.format == "JPEG" and shown.width > 0
    assert set(links_of(result)) == {"video", "preview"}


async def test_the_preview_is_made_once_and_reused_by_later_status_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second status call returns the cached JPEG: the file is not rewritten and no frame is decoded again."""
    with anyio.fail_after(20):
        async with Client(create_app(quick(tmp_path))) as client:
            made = await make_video(client, return_last_frame=True)
            data = made.structured_content or {}
            cached = previews.preview_path_for(data["video_path"], data["last_frame_path"])
            assert cached is not None and cached.is_file()
            written = cached.stat().st_mtime_ns

            def no_decoding(*_: Any, **__: Any) -> bytes:
                raise AssertionError("the preview was made again")

            monkeypatch.setattr(previews, "make_preview", no_decoding)
            again = await client.call_tool("get_task_status", {"task_id": data["task_id"]})
    assert again.is_error is False, text_of(again)
    assert cached.stat().st_mtime_ns == written
    assert not list(cached.parent.glob(".*.part"))
    assert base64.b64decode(image_of(again).data) == cached.read_bytes()
    assert set(links_of(again)) == {"video", "last-frame", "preview"}


@pytest.mark.parametrize("mode", MODES)
async def test_a_call_that_does_not_ask_for_the_last_frame_gets_its_url_and_no_png(tmp_path: Path, mode: str) -> None:
    """Left out, the last frame is not saved: its URL (usable as the next shot's `first_frame`) is in the result,
    the preview comes from the MP4's own frames, and only the video and the preview are linked."""
    with anyio.fail_after(20):
        async with Client(create_app(quick(tmp_path)), mode=mode) as client:
            result = await make_video(client)
    data = result.structured_content or {}
    assert data.get("last_frame_path") is None
    assert str(data["last_frame_url"]).startswith("http")
    assert set(links_of(result)) == {"video", "preview"}
    assert picture(base64.b64decode(image_of(result).data)).format == "JPEG"
    assert not list(Path(data["video_path"]).parent.glob("*.png"))


async def test_an_identical_call_that_asks_for_the_last_frame_has_it_saved(tmp_path: Path) -> None:
    """The same video asked again with `return_last_frame=true` reuses the job (no second payment) and the PNG is
    saved for it after all."""
    with anyio.fail_after(30):
        async with Client(create_app(quick(tmp_path))) as client:
            first = await make_video(client)
            again = await client.call_tool(
                "generate_video", {"prompt": "a kitten yawns", "duration": 5, "return_last_frame": True}
            )
            assert again.is_error is False, text_of(again)
            first_data, again_data = first.structured_content or {}, again.structured_content or {}
            assert again_data["task_id"] == first_data["task_id"] and again_data["reused_existing"] is True
            while True:
                status = await client.call_tool("get_task_status", {"task_id": first_data["task_id"], "wait": True})
                path = (status.structured_content or {}).get("last_frame_path")
                if path:
                    break
                await anyio.sleep(0.1)
    assert Path(path).read_bytes()[:4] == b"\x89PNG"


# --- asking Ark for the last frame ----------------------------------------------------------------------------


def ark_body(**arguments: Any) -> dict[str, Any]:
    preset = PRESETS["ark"]
    request = validate_request(VideoArguments(prompt="a kitten", **arguments), preset, preset.default_model)
    body = ArkDialect().create_request(request, "https://ark.example/api/v3").json_body
    assert body is not None
    return body


def test_an_ark_request_asks_for_the_free_last_frame_unless_told_otherwise() -> None:
    """Left unset, return_last_frame is sent as true on Ark; false stays false; a draft (no last frame) sends none."""
    assert ark_body()["return_last_frame"] is True
    assert ark_body(return_last_frame=False)["return_last_frame"] is False
    assert "return_last_frame" not in ark_body(model="1.5-pro", draft=True)
    gptge = PRESETS["gptge"]
    assert validate_request(VideoArguments(prompt="a kitten"), gptge, gptge.default_model).return_last_frame is None


def test_the_dedupe_fingerprint_of_a_call_stays_the_same_with_the_default_last_frame() -> None:
    """The default is deterministic: the same call always fingerprints alike, and as the explicit `true` call."""
    preset = PRESETS["ark"]

    def fingerprint(**arguments: Any) -> str:
        request = validate_request(VideoArguments(prompt="a kitten", **arguments), preset, preset.default_model)
        return fingerprint_of("ark", ArkDialect().create_request(request, "https://ark.example/api/v3"))

    assert fingerprint() == fingerprint() == fingerprint(return_last_frame=True)
    assert fingerprint() != fingerprint(return_last_frame=False)


# --- the preview functions on real media ----------------------------------------------------------------------


def test_the_sheet_of_the_sample_mp4_is_four_frames_ending_on_its_last(tmp_path: Path) -> None:
    """Four frames of the real H.264 sample in a 2×2 grid, the last tile the video's final frame."""
    video = tmp_path / "sample.mp4"
    video.write_bytes(sample_mp4())
    frames = previews.sample_frames(video)
    assert len(frames) == 4 and all(frame.size == (320, 180) for frame in frames)
    sheet = previews.contact_sheet(frames)
    assert sheet.size == (2 * 320 + previews.SHEET_GAP, 2 * 180 + previews.SHEET_GAP)
    jpeg = previews.make_preview(video, None)
    assert jpeg[:3] == b"\xff\xd8\xff" and len(jpeg) <= previews.PREVIEW_MAX_BYTES


def test_a_picture_too_big_for_the_bound_is_re_encoded_smaller_until_it_fits() -> None:
    """Noise (JPEG's worst case) still comes out under the bound, by lower quality and then a smaller size."""
    noise = Image.frombytes("RGB", (1280, 720), os.urandom(1280 * 720 * 3))
    jpeg = previews.encode_jpeg(noise, max_bytes=30_000)
    assert len(jpeg) <= 30_000
    assert picture(jpeg).width < 1280


def test_an_undecodable_video_falls_back_to_the_last_frame_alone(tmp_path: Path) -> None:
    """A broken MP4 with the provider's PNG gives the PNG as the preview; with neither, no preview and no error."""
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    frame = tmp_path / "last.png"
    frame.write_bytes(last_frame_png())
    shown = picture(previews.make_preview(broken, frame))
    assert shown.size == picture(frame.read_bytes()).size
    with pytest.raises(previews.PreviewError):
        previews.make_preview(broken, None)
    assert previews.ensure_preview(str(broken), None) is None


@pytest.mark.subprocess
def test_starting_the_server_does_not_load_pyav_or_pillow() -> None:
    """PyAV and Pillow load only when a preview is made, never at start-up (the stdio cold start stays lean)."""
    code = (
        "import sys, pathlib, seedance_mcp.app as app, seedance_mcp.config as config; "
        "app.create_app(config.Settings(provider='sandbox', state_dir=pathlib.Path('/nonexistent'))); "
        "sys.exit(1 if any(m.split('.')[0] in ('av', 'PIL') for m in sys.modules) else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=SERVER_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


async def test_a_video_saved_on_another_replicas_disk_is_served_from_the_provider_url(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    """Replicas that share no disk: resources/read fetches the video once from its URL into this server's dir."""
    from tests.conftest import SECRET_KEY, sandbox_stats

    settings = make_settings(tmp_path, provider="ark", base_url=f"{sandbox.url}/api/v3", api_key=SECRET_KEY)
    async with Client(create_app(settings)) as client:
        made = (await client.call_tool("generate_video", {"prompt": "elsewhere"})).structured_content or {}
        saved = Path(made["video_path"])
        original = saved.read_bytes()
        saved.unlink()  # as if another replica had saved it on its own disk
        read = await client.read_resource(f"seedance://tasks/{made['task_id']}/video")
    blob = read.contents[0]
    assert base64.b64decode(blob.blob) == original  # type: ignore[union-attr]
    assert (await sandbox_stats(sandbox))["downloads"] == 2
