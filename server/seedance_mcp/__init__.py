"""seedance-mcp: make videos with ByteDance Seedance from any MCP client."""

__version__ = "0.1.0"
