"""Provider dialects: pure request builders and response parsers (`dialects/`), and the registry that names them.

The I/O that drives a dialect is `providers.client.ProviderClient` (API calls) and `providers.download.Downloader`
(videos and frames). This package knows nothing of MCP.
"""

from __future__ import annotations

from seedance_mcp.providers.base import Dialect
from seedance_mcp.providers.dialects.aiid import AiidDialect
from seedance_mcp.providers.dialects.ark import ArkDialect
from seedance_mcp.providers.dialects.gptge import GptgeDialect
from seedance_mcp.providers.dialects.openai_videos import OpenAIVideosDialect
from seedance_mcp.providers.dialects.yescale import YescaleDialect

DIALECTS: dict[str, Dialect] = {
    "ark": ArkDialect(),
    "gptge": GptgeDialect(),
    "yescale": YescaleDialect(),
    "openai": OpenAIVideosDialect(),
    "openai-extended": OpenAIVideosDialect(extended=True),
    "aiid": AiidDialect(),
}
"""Every wire dialect by the name a preset's `dialect` gives (catalog.py); the dialects hold no state."""


def dialect_for(name: str) -> Dialect:
    return DIALECTS[name]


__all__ = ["DIALECTS", "Dialect", "dialect_for"]
