"""The MCP App player's metadata, and what hosts that negotiate apps without showing them still get.

The player's `_meta.ui.csp` names where the provider in use serves its media (Ark and BytePlus TOS URLs) plus the
origins the user declares in SEEDANCE_PLAYER_MEDIA_ORIGINS, on the resource list entry and the read content alike,
in both protocol eras. A client that advertises the apps extension gets results with everything a client without
it gets: the saved path, the provider link, the preview picture and the resource links.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.extension import advertise
from mcp.types import CallToolResult, ImageContent, ResourceLink, TextContent
from pydantic import ValidationError

from seedance_mcp.app import create_app
from seedance_mcp.config import Settings, load_settings
from seedance_mcp.tools.app_ui import PLAYER_URI, player_csp
from tests.conftest import make_settings, text_of
from tests.ui_host.bridge import APP_MIME_TYPE, UI_EXTENSION

pytestmark = pytest.mark.anyio

MODES = ["auto", "legacy"]


async def _player_meta(settings: Settings, mode: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The player's `_meta` on its resources/list entry and on its resources/read content."""
    async with Client(create_app(settings), mode=mode) as client:
        listed = next(r for r in (await client.list_resources()).resources if str(r.uri) == PLAYER_URI)
        read = (await client.read_resource(PLAYER_URI)).contents[0]
    assert read.mime_type == APP_MIME_TYPE
    return listed.meta or {}, read.meta or {}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("provider", "origins"),
    [
        ("ark", ["https://*.volces.com"]),
        ("byteplus", ["https://*.volces.com", "https://*.bytepluses.com"]),
        ("sandbox", []),
        ("yescale", []),
    ],
)
async def test_the_player_declares_where_the_providers_media_load_from(
    tmp_path: Path, mode: str, provider: str, origins: list[str]
) -> None:
    settings = make_settings(tmp_path, provider=provider, api_key="key-for-the-csp-test-0123")
    listed, read = await _player_meta(settings, mode)
    for meta in (listed, read):
        assert meta["ui"]["csp"] == {"connectDomains": [], "resourceDomains": origins}
        assert meta["ui"]["prefersBorder"] is True


@pytest.mark.parametrize("mode", MODES)
async def test_a_gateways_media_origins_come_from_the_setting(tmp_path: Path, mode: str) -> None:
    """SEEDANCE_PLAYER_MEDIA_ORIGINS, read at the edge, joins the provider's own origins (each once)."""
    settings = load_settings(
        {
            "SEEDANCE_PROVIDER": "byteplus",
            "SEEDANCE_STATE_DIR": str(tmp_path / "state"),
            "SEEDANCE_PLAYER_MEDIA_ORIGINS": "https://CDN.gateway.example/, https://*.files.example, https://*.volces.com",
        }
    )
    assert settings.player_media_origins == (
        "https://cdn.gateway.example",
        "https://*.files.example",
        "https://*.volces.com",
    )
    listed, read = await _player_meta(settings, mode)
    expected = [
        "https://*.volces.com",
        "https://*.bytepluses.com",
        "https://cdn.gateway.example",
        "https://*.files.example",
    ]
    assert listed["ui"]["csp"]["resourceDomains"] == expected == read["ui"]["csp"]["resourceDomains"]


@pytest.mark.parametrize("bad", ["https://cdn.example.com/videos", "cdn.example.com", "ftp://cdn.example.com", "*"])
def test_a_media_origin_that_is_not_an_origin_is_refused_naming_the_form(bad: str) -> None:
    with pytest.raises(ValidationError, match="expected origins like"):
        Settings.model_validate({"player_media_origins": bad})


def test_the_sandbox_speaking_ark_declares_nothing_its_bytes_come_through_resources_read(tmp_path: Path) -> None:
    assert player_csp(make_settings(tmp_path, sandbox_as="ark"))["resourceDomains"] == []


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
