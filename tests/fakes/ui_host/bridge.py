"""The server half of the test MCP Apps host: a loopback HTTP server for `host.html` and its bridge to MCP.

`host.html` is the host page a browser loads. It cannot speak MCP to an in-process server itself, so every MCP
request it makes (`tools/list`, `tools/call`, `resources/read`) is a POST of `{"method", "params"}` to `/mcp`, which
this server sends through a real `mcp.Client` and answers with the JSON-RPC `result` (camelCase wire form) or
`error`. One request per connection; the connection closes after each answer.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import SocketAttribute, SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream
from mcp import Client, MCPError
from pydantic import BaseModel

HOST_PAGE = Path(__file__).with_name("host.html")

UI_EXTENSION = "io.modelcontextprotocol/ui"
APP_MIME_TYPE = "text/html;profile=mcp-app"


@dataclass
class Bridge:
    url: str
    client: Client
    calls: list[dict[str, Any]] = field(default_factory=list[dict[str, Any]])
    """Every MCP request the host page forwarded, in order: `{"method": …, "params": …}`."""

    def tool_calls(self, name: str) -> list[dict[str, Any]]:
        return [
            call["params"].get("arguments") or {}
            for call in self.calls
            if call["method"] == "tools/call" and call["params"].get("name") == name
        ]

    def resource_reads(self) -> list[str]:
        return [call["params"]["uri"] for call in self.calls if call["method"] == "resources/read"]


def _wire(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(by_alias=True, exclude_none=True, mode="json")


async def _forward(client: Client, method: str, params: dict[str, Any]) -> dict[str, Any]:
    """One MCP request through the real client: `{"result": …}` or `{"error": {"code", "message"}}`."""
    try:
        match method:
            case "tools/list":
                return {"result": _wire(await client.list_tools())}
            case "tools/call":
                result = await client.call_tool(params["name"], params.get("arguments") or {})
                return {"result": _wire(result)}
            case "resources/read":
                return {"result": _wire(await client.read_resource(params["uri"]))}
            case _:
                return {"error": {"code": -32601, "message": f"the test host does not forward {method}"}}
    except MCPError as exc:
        return {"error": {"code": exc.code, "message": exc.message}}


def _answer(status: int, body: bytes, content_type: str) -> bytes:
    head = (
        f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


async def _serve_one(bridge: Bridge, stream: SocketStream) -> None:
    async with stream:
        reader = BufferedByteReceiveStream(stream)
        try:
            head = (await reader.receive_until(b"\r\n\r\n", 65536)).decode("latin-1")
            request_line, *header_lines = head.split("\r\n")
            method, target, _version = request_line.split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in header_lines if ln)}
            length = int(headers.get("content-length", "0"))
            body = await reader.receive_exactly(length) if length else b""
        except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError, ValueError):
            return
        path = target.split("?", 1)[0]
        if method == "GET" and path == "/host.html":
            page = await anyio.Path(HOST_PAGE).read_bytes()
            answer = _answer(200, page, "text/html; charset=utf-8")
        elif method == "POST" and path == "/mcp":
            request = json.loads(body)
            params: dict[str, Any] = request.get("params") or {}
            bridge.calls.append({"method": request["method"], "params": params})
            reply = await _forward(bridge.client, request["method"], params)
            answer = _answer(200, json.dumps(reply).encode(), "application/json")
        else:
            answer = _answer(404, b"not found", "text/plain")
        try:
            await stream.send(answer)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            return


@asynccontextmanager
async def serving_host(client: Client) -> AsyncGenerator[Bridge]:
    """The host page and its MCP bridge (to `client`) on a fresh loopback port, for the duration of the block."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    bridge = Bridge(f"http://127.0.0.1:{listener.extra(SocketAttribute.local_port)}", client)

    async def on_connection(stream: SocketStream) -> None:
        await _serve_one(bridge, stream)

    async with listener, anyio.create_task_group() as task_group:
        task_group.start_soon(listener.serve, on_connection)
        try:
            yield bridge
        finally:
            task_group.cancel_scope.cancel()
