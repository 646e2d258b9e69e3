"""Provider dialects: pure request builders and response parsers, plus one I/O client that drives any of them.

This package knows nothing of MCP.
"""

from seedance_mcp.providers.base import Dialect, dialect_for
from seedance_mcp.providers.client import ProviderClient

__all__ = ["Dialect", "ProviderClient", "dialect_for"]
