"""Hosts that negotiate the MCP App extension without showing the player lose nothing from their results: real
renders on the embedded sandbox, both protocol eras. The player's metadata: tests/unit/test_player_meta.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.extension import advertise
from mcp.types import CallToolResult, ImageContent, ResourceLink, TextContent

from seedance_mcp.app import create_app
from seedance_mcp.tools.app_ui import PLAYER_URI
from tests.conftest import make_settings, text_of
from tests.fakes.ui_host.bridge import APP_MIME_TYPE, UI_EXTENSION
from tests.unit.test_player_meta import MODES

pytestmark = pytest.mark.anyio


def _what_a_host_without_the_player_needs(result: CallToolResult) -> dict[str, Any]:
    """The path and link (structured and in the text), the preview picture, and the links to the saved files."""
    data = result.structured_content or {}
    text = " ".join(block.text for block in result.content if isinstance(block, TextContent))
    links = sorted(block.uri.rsplit("/", 1)[-1] for block in result.content if isinstance(block, ResourceLink))
    images = [block.mime_type for block in result.content if isinstance(block, ImageContent)]
    return {
        "path_in_structured": bool(data.get("video_path")),
        "link_in_structured": bool(data.get("video_url")),
        "path_in_text": bool(data.get("video_path")) and data["video_path"] in text,
        "link_in_text": bool(data.get("video_url")) and data["video_url"] in text,
        "images": images,
        "links": links,
    }


EVERYTHING = {
    "path_in_structured": True,
    "link_in_structured": True,
    "path_in_text": True,
    "link_in_text": True,
    "images": ["image/jpeg"],
    "links": ["preview", "video"],
}


@pytest.mark.parametrize("mode", MODES)
async def test_a_client_that_negotiates_apps_loses_nothing_from_its_results(tmp_path: Path, mode: str) -> None:
    """Several hosts negotiate the apps extension and then never load the player: generate_video, get_task_status
    and a second read give them the path, the link, the preview and the resource links, as a client without it."""
    apps = advertise(UI_EXTENSION, {"mimeTypes": [APP_MIME_TYPE]})
    seen: dict[str, dict[str, Any]] = {}
    with anyio.fail_after(40):
        for name, extensions in (("apps", [apps]), ("plain", [])):
            settings = make_settings(tmp_path / name)
            async with Client(create_app(settings), mode=mode, extensions=extensions) as client:
                made = await client.call_tool("generate_video", {"prompt": "a lantern festival at night"})
                assert not made.is_error, text_of(made)
                task_id = (made.structured_content or {})["task_id"]
                status = await client.call_tool("get_task_status", {"task_id": task_id})
                tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            seen[f"{name}/generate_video"] = _what_a_host_without_the_player_needs(made)
            seen[f"{name}/get_task_status"] = _what_a_host_without_the_player_needs(status)
            # The tools name the player either way; a host that loads no app simply ignores that.
            assert (tools["generate_video"].meta or {})["ui"]["resourceUri"] == PLAYER_URI
    assert all(found == EVERYTHING for found in seen.values()), seen
