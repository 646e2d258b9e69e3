"""A test MCP Apps host: a host page for a real browser, and its HTTP bridge to an in-process MCP server."""
