"""The MCP Apps player (`io.modelcontextprotocol/ui`, SEP-1865): one self-contained HTML page, `ui://seedance/player`.

Hosts that render MCP Apps show it for the tools whose `_meta.ui.resourceUri` names it (generate_video,
get_task_status, list_tasks): it plays the video, follows a render with a live progress bar, lists recent videos
and cancels queued jobs, all through the host's proxy (`tools/call`, `resources/read`). Hosts without apps never
read it, and the tools answer exactly as before (links, path and preview included, whether or not a host that
negotiated apps ever shows the player).

Its CSP metadata (`_meta.ui.csp.resourceDomains`) names where the provider serves videos and images, so a host may
let the player stream the provider's URL; without it (or when the URL is refused or expired) the player reads the
saved file through `resources/read`, and when nothing plays it says why and shows the path and the link instead.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from mcp.server import MCPServer

from seedance_mcp.config import Settings
from seedance_mcp.runtime import LazyRuntime

PLAYER_URI = "ui://seedance/player"
"""The player's resource URI; tools name it in `meta=PLAYER_META`."""

APP_MIME_TYPE = "text/html;profile=mcp-app"
"""The MCP Apps HTML profile (the only content type of the extension)."""

PLAYER_META: dict[str, Any] = {"ui": {"resourceUri": PLAYER_URI}}
"""A tool's `_meta` naming the player (`@server.tool(meta=PLAYER_META)`)."""

PROVIDER_MEDIA_ORIGINS: dict[str, tuple[str, ...]] = {
    # Ark's videos and last frames are signed TOS object URLs, e.g.
    # https://ark-content-generation-v2-cn-beijing.tos-cn-beijing.volces.com/… (BytePlus's too, in its regions:
    # …-ap-southeast-1.tos-ap-southeast-1.volces.com), and BytePlus also serves from its own domain.
    "ark": ("https://*.volces.com",),
    "byteplus": ("https://*.volces.com", "https://*.bytepluses.com"),
}
"""Where each provider serves its media, as CSP origins. The gateways' media hosts vary (and change): their users
name them in SEEDANCE_PLAYER_MEDIA_ORIGINS. The sandbox needs none (its bytes come through resources/read)."""


def player_csp(settings: Settings) -> dict[str, list[str]]:
    """The player's `_meta.ui.csp`: the media origins of the provider in use and those the user declared.

    `resourceDomains` becomes the app's media-src and img-src (where a <video> or <img> may load from). The player
    makes no fetch or XHR, so `connectDomains` stays empty: a host grants it nothing it does not use."""
    provider = settings.provider if settings.provider != "sandbox" else None
    origins = [*PROVIDER_MEDIA_ORIGINS.get(provider or "", ()), *settings.player_media_origins]
    return {"connectDomains": [], "resourceDomains": list(dict.fromkeys(origins))}


@cache
def player_html() -> str:
    """The player page shipped in the package (`seedance_mcp/ui/player.html`), read once."""
    return resources.files("seedance_mcp").joinpath("ui", "player.html").read_text(encoding="utf-8")


def register(server: MCPServer[LazyRuntime], settings: Settings) -> None:
    """Register the `ui://seedance/player` resource (the tools name it in their decorators), with the CSP metadata
    of the provider in use (the SDK puts it on the resource list entry and the read content alike)."""
    meta: dict[str, Any] = {"ui": {"csp": player_csp(settings), "prefersBorder": True}}

    @server.resource(
        PLAYER_URI,
        name="seedance_player",
        title="Seedance video player",
        description="Interactive player for Seedance video tasks: playback, live render progress, recent videos, "
        "cancel (an MCP App; hosts without apps ignore it).",
        mime_type=APP_MIME_TYPE,
        meta=meta,
    )
    def seedance_player() -> str:
        return player_html()


__all__ = [
    "APP_MIME_TYPE",
    "PLAYER_META",
    "PLAYER_URI",
    "PROVIDER_MEDIA_ORIGINS",
    "player_csp",
    "player_html",
    "register",
]
