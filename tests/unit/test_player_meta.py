"""The MCP App player's metadata, and what hosts that negotiate apps without showing them still get.

The player's `_meta.ui.csp` names where the provider in use serves its media (Ark and BytePlus TOS URLs) plus the
origins the user declares in SEEDANCE_PLAYER_MEDIA_ORIGINS, on the resource list entry and the read content alike,
in both protocol eras. A client that advertises the apps extension gets results with everything a client without
it gets: the saved path, the provider link, the preview picture and the resource links.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from pydantic import ValidationError

from seedance_mcp.app import create_app
from seedance_mcp.config import Settings, load_settings
from seedance_mcp.tools.app_ui import PLAYER_URI, player_csp
from tests.conftest import make_settings
from tests.fakes.ui_host.bridge import APP_MIME_TYPE

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
