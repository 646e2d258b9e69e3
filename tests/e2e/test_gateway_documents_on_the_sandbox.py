"""A gateway's document, end to end: the sandbox playing the gateway receives only what the document shows. The
bodies themselves, built without a server: tests/unit/test_gateway_documents.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client

from seedance_mcp.app import create_app
from tests.conftest import make_settings, text_of

pytestmark = pytest.mark.anyio


async def test_kkiai_gets_neither_return_last_frame_nor_the_safety_identifier_marker(tmp_path: Path) -> None:
    """Its document names neither: the sandbox playing kkiai receives a body without them (Ark's has both), and the
    user's own SEEDANCE_SAFETY_IDENTIFIER is not sent there either; asking for the last frame is refused."""
    bodies: dict[str, dict[str, Any]] = {}
    for preset, extra in (("ark", {}), ("kkiai", {}), ("kkiai-own-id", {"safety_identifier": "user-42"})):
        settings = make_settings(
            tmp_path / preset, sandbox_as=preset.removesuffix("-own-id"), sandbox_render_seconds=0.2, **extra
        )
        async with Client(create_app(settings)) as client:
            made = await client.call_tool("generate_video", {"prompt": f"a lighthouse {preset}", "model": "1.0-pro"})
            data = made.structured_content or {}
            assert data.get("status") == "succeeded", text_of(made)
            async with httpx.AsyncClient() as http:
                log = await http.get(str(httpx.URL(data["video_url"]).copy_with(path="/_sandbox/requests", query=None)))
            bodies[preset] = log.json()["requests"][-1]["body"]
            if preset == "kkiai":
                asked = await client.call_tool(
                    "generate_video", {"prompt": "x", "model": "1.0-pro", "return_last_frame": True}
                )
                assert asked.is_error is True and "return_last_frame" in text_of(asked)
    assert bodies["ark"]["return_last_frame"] is True and bodies["ark"]["safety_identifier"].startswith("seedance-mcp-")
    for preset in ("kkiai", "kkiai-own-id"):
        assert "return_last_frame" not in bodies[preset] and "safety_identifier" not in bodies[preset], bodies[preset]
