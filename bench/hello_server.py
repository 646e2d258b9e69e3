"""The yardstick: a one-tool MCPServer on the same SDK, doing nothing else."""

from mcp.server import MCPServer

server = MCPServer("hello")


@server.tool()
def hello(name: str = "world") -> str:
    """Say hello."""
    return f"hello {name}"


if __name__ == "__main__":
    server.run()
