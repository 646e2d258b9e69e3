"""The MCP Apps player (`io.modelcontextprotocol/ui`, SEP-1865): one self-contained HTML page, `ui://seedance/player`.

Hosts that render MCP Apps show it for the tools whose `_meta.ui.resourceUri` names it (generate_video,
get_task_status, list_tasks): it plays the video, follows a render with a live progress bar, lists recent videos
and cancels queued jobs, all through the host's proxy (`tools/call`, `resources/read`). Hosts without apps never
read it, and the tools answer exactly as before.
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

_RESOURCE_META: dict[str, Any] = {
    "ui": {
        # No external origin is needed: the page is inline, and the video's bytes come through the host's
        # `resources/read` proxy (played as a data: URL, which the spec's restrictive default CSP allows).
        "csp": {"connectDomains": [], "resourceDomains": []},
        "prefersBorder": True,
    }
}


@cache
def player_html() -> str:
    """The player page shipped in the package (`seedance_mcp/ui/player.html`), read once."""
    return resources.files("seedance_mcp").joinpath("ui", "player.html").read_text(encoding="utf-8")


def register(server: MCPServer[LazyRuntime], settings: Settings) -> None:
    """Register the `ui://seedance/player` resource (the tools name it in their decorators)."""
    del settings  # The page is the same for every provider; the signature matches the other families.

    @server.resource(
        PLAYER_URI,
        name="seedance_player",
        title="Seedance video player",
        description="Interactive player for Seedance video tasks: playback, live render progress, recent videos, "
        "cancel (an MCP App; hosts without apps ignore it).",
        mime_type=APP_MIME_TYPE,
        meta=_RESOURCE_META,
    )
    def seedance_player() -> str:
        return player_html()


__all__ = ["APP_MIME_TYPE", "PLAYER_META", "PLAYER_URI", "player_html", "register"]
