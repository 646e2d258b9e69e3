"""A tiny HTTP/1.1 server on 127.0.0.1 for the provider-edge tests: one request per connection, raw answers.

The handler gets the parsed request and returns the exact bytes to send (status line, headers, body), so a test
can cut a body short, omit Content-Length, lie about the encoding or redirect forever. The connection is closed
after each answer, which is also how an answer without Content-Length ends.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import SocketAttribute, SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream


@dataclass(frozen=True)
class Seen:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def bearer(self) -> str:
        return self.headers.get("authorization", "").removeprefix("Bearer ")


Handler = Callable[[Seen], bytes]


def answer(
    status: int,
    body: bytes | str | Any = b"",
    *,
    headers: dict[str, str] | None = None,
    sized: bool = True,
    content_type: str = "application/json",
) -> bytes:
    """The bytes of a whole answer. A dict or list body is sent as JSON; `sized=False` leaves out Content-Length."""
    if isinstance(body, str):
        data = body.encode()
    elif isinstance(body, bytes):
        data = body
    else:
        data = json.dumps(body).encode()
    lines = [f"HTTP/1.1 {status} Whatever", f"Content-Type: {content_type}", "Connection: close"]
    if sized:
        lines.append(f"Content-Length: {len(data)}")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


@dataclass
class TinyServer:
    url: str
    handler: Handler
    seen: list[Seen] = field(default_factory=list[Seen])


async def _serve_one(server: TinyServer, stream: SocketStream) -> None:
    async with stream:
        reader = BufferedByteReceiveStream(stream)
        try:
            head = (await reader.receive_until(b"\r\n\r\n", 65536)).decode("latin-1")
        except (anyio.EndOfStream, anyio.IncompleteRead):
            return
        request_line, *header_lines = head.split("\r\n")
        method, target, _version = request_line.split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in header_lines if line)}
        length = int(headers.get("content-length", "0"))
        body = await reader.receive_exactly(length) if length else b""
        seen = Seen(method, target, headers, body)
        server.seen.append(seen)
        await stream.send(server.handler(seen))


@asynccontextmanager
async def serving(handler: Handler) -> AsyncGenerator[TinyServer]:
    """`handler` answering on a fresh loopback port for the duration of the block."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(SocketAttribute.local_port)
    server = TinyServer(f"http://127.0.0.1:{port}", handler)

    async def on_connection(stream: SocketStream) -> None:
        await _serve_one(server, stream)

    async with listener, anyio.create_task_group() as task_group:
        task_group.start_soon(listener.serve, on_connection)
        try:
            yield server
        finally:
            task_group.cancel_scope.cancel()
