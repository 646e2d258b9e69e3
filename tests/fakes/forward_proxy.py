"""Proxies on 127.0.0.1 that record what passes through them: an HTTP forward proxy (absolute-form requests and
CONNECT tunnels, as corporate proxies and `HTTP(S)_PROXY` clients speak it) and a SOCKS5 proxy (`ALL_PROXY=socks5://`,
as Clash and v2ray set it). Written here, with anyio, so a test sees every request and tunnel:

    async with running_http_proxy() as proxy:
        proxy.url        # http://127.0.0.1:{port}
        proxy.seen       # [("POST", "http://127.0.0.1:…/api/v3/contents/generations/tasks"), ("CONNECT", "h:443")]

The HTTP proxy keeps client connections alive and forwards each request on a kept-alive upstream connection of its
own; answers must carry a Content-Length (every fake of the tests does), anything else is passed on until the
server closes.
"""

from __future__ import annotations

import contextlib
import ipaddress
import struct
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import anyio
from anyio.abc import ByteReceiveStream, ByteSendStream, SocketAttribute, SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

_DONE = (
    anyio.EndOfStream,
    anyio.IncompleteRead,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.DelimiterNotFound,
    OSError,
)


@dataclass
class RecordingProxy:
    url: str = ""
    seen: list[tuple[str, str]] = field(default_factory=list[tuple[str, str]])
    """(method, target) of every request and tunnel, in order: an absolute URL, or `host:port` for a tunnel."""
    errors: list[str] = field(default_factory=list[str])
    """Unexpected exceptions of the proxy itself (should stay empty)."""

    def targets(self, method: str) -> list[str]:
        return [target for seen_method, target in self.seen if seen_method == method]


async def _pipe(source: ByteReceiveStream, sink: ByteSendStream) -> None:
    with contextlib.suppress(*_DONE):
        while True:
            await sink.send(await source.receive())


async def _tunnel(client: SocketStream, client_reader: BufferedByteReceiveStream, upstream: SocketStream) -> None:
    """Bytes both ways until either side closes; then both are closed."""
    async with upstream, anyio.create_task_group() as group:

        async def one_way(run: Callable[[], Awaitable[None]]) -> None:
            await run()
            group.cancel_scope.cancel()

        group.start_soon(one_way, lambda: _pipe(client_reader, upstream))
        group.start_soon(one_way, lambda: _pipe(upstream, client))


def _headers(lines: list[str]) -> list[tuple[str, str]]:
    return [(name.strip(), value.strip()) for name, _, value in (line.partition(":") for line in lines if ":" in line)]


class _HttpProxy:
    def __init__(self, record: RecordingProxy) -> None:
        self.record = record

    async def handle(self, client: SocketStream) -> None:
        upstreams: dict[tuple[str, int], tuple[SocketStream, BufferedByteReceiveStream]] = {}
        reader = BufferedByteReceiveStream(client)
        try:
            async with client:
                while True:
                    head = await reader.receive_until(b"\r\n\r\n", 65536)
                    request_line, *lines = head.decode("latin-1").split("\r\n")
                    method, target, version = request_line.split(" ", 2)
                    self.record.seen.append((method, target))
                    if method == "CONNECT":
                        host, _, port = target.rpartition(":")
                        upstream = await anyio.connect_tcp(host.strip("[]"), int(port))
                        await client.send(b"HTTP/1.1 200 Connection established\r\n\r\n")
                        await _tunnel(client, reader, upstream)
                        return
                    if not await self._forward(client, reader, upstreams, method, target, version, lines):
                        return
        except _DONE:
            pass
        except Exception as exc:  # the proxy must not take its listener down; tests check this list
            self.record.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            for upstream, _reader in upstreams.values():
                await upstream.aclose()

    async def _forward(
        self,
        client: SocketStream,
        reader: BufferedByteReceiveStream,
        upstreams: dict[tuple[str, int], tuple[SocketStream, BufferedByteReceiveStream]],
        method: str,
        target: str,
        version: str,
        lines: list[str],
    ) -> bool:
        """One absolute-form request, forwarded in origin form; False when the client connection must close."""
        url = urlsplit(target)
        if url.scheme != "http" or not url.hostname:
            await client.send(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return False
        headers = _headers(lines)
        length = next((int(value) for name, value in headers if name.lower() == "content-length"), 0)
        body = await reader.receive_exactly(length) if length else b""
        key = (url.hostname, url.port or 80)
        if key not in upstreams:
            stream = await anyio.connect_tcp(*key)
            upstreams[key] = (stream, BufferedByteReceiveStream(stream))
        upstream, upstream_reader = upstreams[key]
        kept = [(n, v) for n, v in headers if n.lower() not in ("proxy-connection", "proxy-authorization")]
        path = url.path or "/"
        if url.query:
            path += f"?{url.query}"
        outgoing = f"{method} {path} {version}\r\n" + "".join(f"{n}: {v}\r\n" for n, v in kept) + "\r\n"
        await upstream.send(outgoing.encode("latin-1") + body)
        answer_head = await upstream_reader.receive_until(b"\r\n\r\n", 65536)
        status_line, *answer_lines = answer_head.decode("latin-1").split("\r\n")
        answer_headers = _headers(answer_lines)
        await client.send(answer_head + b"\r\n\r\n")
        status = int(status_line.split(" ", 2)[1])
        sized = [int(v) for n, v in answer_headers if n.lower() == "content-length"]
        if method == "HEAD" or status in (204, 304) or (sized and sized[0] == 0):
            pass
        elif sized:
            remaining = sized[0]
            while remaining:
                piece = await upstream_reader.receive(min(remaining, 65536))
                await client.send(piece)
                remaining -= len(piece)
        else:
            await _pipe(upstream_reader, client)
            return False
        closing = any(n.lower() == "connection" and v.lower() == "close" for n, v in answer_headers)
        if closing:
            await upstream.aclose()
            del upstreams[key]
        return True


class _Socks5Proxy:
    """SOCKS5 without authentication, CONNECT only (RFC 1928), which is what httpx asks of it."""

    def __init__(self, record: RecordingProxy) -> None:
        self.record = record

    async def handle(self, client: SocketStream) -> None:
        reader = BufferedByteReceiveStream(client)
        try:
            async with client:
                version, methods = await reader.receive_exactly(2)
                await reader.receive_exactly(methods)
                if version != 5:
                    return
                await client.send(b"\x05\x00")
                _version, command, _reserved, kind = await reader.receive_exactly(4)
                if kind == 1:
                    host = str(ipaddress.IPv4Address(await reader.receive_exactly(4)))
                elif kind == 4:
                    host = str(ipaddress.IPv6Address(await reader.receive_exactly(16)))
                else:
                    (size,) = await reader.receive_exactly(1)
                    host = (await reader.receive_exactly(size)).decode("idna")
                (port,) = struct.unpack(">H", await reader.receive_exactly(2))
                self.record.seen.append(("SOCKS5 CONNECT" if command == 1 else f"SOCKS5 {command}", f"{host}:{port}"))
                if command != 1:
                    await client.send(b"\x05\x07\x00\x01" + bytes(6))
                    return
                upstream = await anyio.connect_tcp(host, port)
                await client.send(b"\x05\x00\x00\x01" + bytes(6))
                await _tunnel(client, reader, upstream)
        except _DONE:
            pass
        except Exception as exc:
            self.record.errors.append(f"{type(exc).__name__}: {exc}")


@contextlib.asynccontextmanager
async def _serving(
    scheme: str, handler: Callable[[RecordingProxy], _HttpProxy | _Socks5Proxy]
) -> AsyncGenerator[RecordingProxy]:
    record = RecordingProxy()
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    record.url = f"{scheme}://127.0.0.1:{listener.extra(SocketAttribute.local_port)}"
    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, handler(record).handle)
        try:
            yield record
        finally:
            group.cancel_scope.cancel()


def running_http_proxy() -> contextlib.AbstractAsyncContextManager[RecordingProxy]:
    """An HTTP forward proxy (absolute-form requests and CONNECT) on a fresh 127.0.0.1 port."""
    return _serving("http", _HttpProxy)


def running_socks5_proxy() -> contextlib.AbstractAsyncContextManager[RecordingProxy]:
    """A SOCKS5 proxy (no authentication) on a fresh 127.0.0.1 port."""
    return _serving("socks5", _Socks5Proxy)
