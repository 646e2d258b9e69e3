"""Each gateway is sent what its own document shows (protocol.md §12.6, shared/seeds): no field it lacks, no role
where it shows none; and BytePlus is not sent `tools` (its SDK has no such parameter)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from seedance_mcp.app import create_app
from seedance_mcp.catalog import PRESETS
from seedance_mcp.errors import InvalidArgument
from seedance_mcp.providers import dialect_for
from seedance_mcp.requests import VideoArguments
from seedance_mcp.validation import validate_request
from tests.conftest import make_settings, text_of

pytestmark = pytest.mark.anyio

IMG1, IMG2 = "https://e.com/one.png", "https://e.com/two.png"


def body(preset_name: str, **arguments: Any) -> dict[str, Any]:
    preset = PRESETS[preset_name]
    request = validate_request(VideoArguments(prompt="a kitten yawns", **arguments), preset, preset.default_model)
    http = dialect_for(preset.dialect).create_request(request, "https://gw.example")
    assert http.json_body is not None
    return http.json_body


def refused(preset_name: str, **arguments: Any) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as error:
        body(preset_name, **arguments)
    return error.value


def test_gptge_sends_roles_only_for_first_and_last_frame_videos() -> None:
    """Its roles are first_frame and last_frame, "required for first/last-frame videos"; i2v is "text + image_url"."""
    lone = body("gptge", model="1.5-pro", first_frame=IMG1)
    assert lone["content"][1] == {"type": "image_url", "image_url": {"url": IMG1}}
    both = body("gptge", model="1.5-pro", first_frame=IMG1, last_frame=IMG2)
    assert [item.get("role") for item in both["content"]] == [None, "first_frame", "last_frame"]
    error = refused("gptge", model="1.0-lite-i2v", reference_images=[IMG1])
    assert error.argument == "reference_images" and "no way to send it" in str(error)


def test_yescale_content_items_carry_type_text_and_image_url_only() -> None:
    """No role at all: one image, the first frame; a last frame or reference images cannot be said there."""
    sent = body("yescale", model="1.0-pro", first_frame=IMG1)
    assert sent["content"][1] == {"type": "image_url", "image_url": {"url": IMG1}}
    assert all(set(item) <= {"type", "text", "image_url"} for item in sent["content"])
    assert refused("yescale", model="1.0-pro", first_frame=IMG1, last_frame=IMG2).argument == "last_frame"
    assert refused("yescale", model="1.0-lite-i2v", reference_images=[IMG1]).argument == "reference_images"


def test_aiid_names_references_1_2_3_as_its_document_does() -> None:
    sent = body("aiid", model="2.0", reference_images=[IMG1, IMG2], reference_videos=["https://e.com/v.mp4"])
    assert [item.get("name") for item in sent["content"][1:]] == ["1", "2", "3"]


async def test_web_search_is_refused_on_byteplus_and_sent_on_volcengine(tmp_path: Path) -> None:
    """The BytePlus SDK has no `tools` parameter: refused there with the reason; Volcengine's 2.0 sends the tool."""
    async with Client(create_app(make_settings(tmp_path / "bp", provider="byteplus", api_key=None))) as client:
        byteplus = await client.call_tool(
            "generate_video", {"prompt": "news", "model": "2.0", "web_search": True, "dry_run": True}
        )
    async with Client(create_app(make_settings(tmp_path / "cn", provider="ark", api_key=None))) as client:
        volcengine = await client.call_tool(
            "generate_video", {"prompt": "news", "model": "2.0", "web_search": True, "dry_run": True}
        )
    assert byteplus.is_error is True
    message = text_of(byteplus)
    assert "`web_search`" in message and "BytePlus SDK has no `tools` parameter" in message, message
    assert volcengine.is_error is False, text_of(volcengine)
    assert (volcengine.structured_content or {})["dry_run_request"]["body"]["tools"] == [{"type": "web_search"}]
