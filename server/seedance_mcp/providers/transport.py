"""The HTTP transport under both clients: httpcore's connection pool over a network backend of our own.

httpx's transport gives no say over httpcore's network backend, and at a few hundred requests a second two of its
habits cost more CPU than the requests: before every request the pool asks each idle connection whether the
server closed it, and each answer rebuilds anyio's socket attributes (a `getpeername` system call among them); and
pooled connections read 64 KiB at a time, so a video arrives in thousands of trips through h11 and the event
loop. The backend here keeps each connection's socket at hand for the first and reads `read_bytes` at a time for
the second. Everything else (connection reuse, keep-alive expiry, limits, timeouts, TLS) is httpcore's.
"""

# httpcore's network interfaces take their timeouts as parameters.
# ruff: noqa: ASYNC109

from __future__ import annotations

import select
import socket
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from typing import Any, cast

import httpcore
import httpx

API_READ_BYTES = 64 * 1024
VIDEO_READ_BYTES = 1024 * 1024
API_LIMITS = httpx.Limits(max_connections=16, max_keepalive_connections=16, keepalive_expiry=30.0)
"""API calls: creates and polls are each limited below this (JobSettings), so requests rarely queue in the pool."""
DOWNLOAD_LIMITS = httpx.Limits(max_connections=32, max_keepalive_connections=32, keepalive_expiry=30.0)


def _readable(sock: socket.socket | None) -> bool:
    """Whether reading would not block: on an idle keep-alive connection that means the server closed it (or sent
    something it should not have); either way the connection must not carry another request."""
    if sock is None or sock.fileno() == -1:
        return True
    poller = select.poll()  # not select.select: a busy server's descriptors go past FD_SETSIZE
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


class _Stream(httpcore.AsyncNetworkStream):
    def __init__(self, inner: httpcore.AsyncNetworkStream, read_bytes: int) -> None:
        self._inner = inner
        self._read_bytes = read_bytes
        self._socket: socket.socket | None = inner.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max(max_bytes, self._read_bytes), timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout), self._read_bytes)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return _readable(self._socket)
        if info == "socket":
            return self._socket
        return self._inner.get_extra_info(info)


class _Backend(httpcore.AsyncNetworkBackend):
    def __init__(self, read_bytes: int) -> None:
        # AnyIOBackend is exported only when anyio is installed, which it always is here (a dependency).
        self._inner: httpcore.AsyncNetworkBackend = httpcore.AnyIOBackend()  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
        self._read_bytes = read_bytes

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]]
        | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _Stream(stream, self._read_bytes)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]]
        | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.connect_unix_socket(path, timeout, socket_options), self._read_bytes)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _as_httpx_error(exc: Exception, request: httpx.Request) -> httpx.TransportError:
    """httpcore's exceptions carry the same names as httpx's (ConnectError, ReadTimeout, PoolTimeout, ...), and the
    retry policy relies on them; the generic one stands in for any other."""
    kind = getattr(httpx, type(exc).__name__, None)
    if isinstance(kind, type) and issubclass(kind, httpx.TransportError):
        return kind(str(exc), request=request)
    return httpx.TransportError(str(exc), request=request)


_HTTPCORE_ERRORS = (
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
    httpcore.ProxyError,
)


class _Body(httpx.AsyncByteStream):
    def __init__(self, stream: AsyncIterable[bytes], request: httpx.Request, done: Callable[[], None]) -> None:
        self._stream = stream
        self._request = request
        self._done: Callable[[], None] | None = done

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for piece in self._stream:
                yield piece
        except _HTTPCORE_ERRORS as exc:
            raise _as_httpx_error(exc, self._request) from exc

    async def aclose(self) -> None:
        try:
            closer = getattr(self._stream, "aclose", None)
            if closer is not None:
                await closer()
        finally:
            if self._done is not None:
                self._done()
                self._done = None


SHARD_CONNECTIONS = 4
"""Connections per httpcore pool. Each pool's bookkeeping before every request is quadratic in its connections
(measured: 28 M `is_idle` calls for 4,000 downloads through one pool of 64), so a big pool is several small ones."""


class PooledTransport(httpx.AsyncBaseTransport):
    """An httpx transport over httpcore's connection pools, HTTP/1.1, with the network backend described above.

    `limits.max_connections` is shared out among pools of `SHARD_CONNECTIONS`; a request goes to the pool with the
    fewest requests under way, so no request waits while another pool has a free connection."""

    def __init__(self, limits: httpx.Limits, *, read_bytes: int = API_READ_BYTES) -> None:
        total = limits.max_connections or 100
        keepalive = limits.max_keepalive_connections if limits.max_keepalive_connections is not None else total
        count = max(1, -(-total // SHARD_CONNECTIONS))
        ssl_context = httpx.create_ssl_context()
        backend = _Backend(read_bytes)
        self._pools = [
            httpcore.AsyncConnectionPool(
                ssl_context=ssl_context,
                max_connections=-(-total // count),
                max_keepalive_connections=-(-keepalive // count),
                keepalive_expiry=limits.keepalive_expiry,
                network_backend=backend,
            )
            for _ in range(count)
        ]
        self._under_way = [0] * count

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path),
            headers=request.headers.raw,
            content=cast("AsyncIterable[bytes]", request.stream),
            extensions=dict(request.extensions),
        )
        index = min(range(len(self._pools)), key=self._under_way.__getitem__)
        self._under_way[index] += 1

        def done() -> None:
            self._under_way[index] -= 1

        try:
            response = await self._pools[index].handle_async_request(core_request)
        except BaseException as exc:
            done()
            if isinstance(exc, _HTTPCORE_ERRORS):
                raise _as_httpx_error(exc, request) from exc
            raise
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Body(cast("AsyncIterable[bytes]", response.stream), request, done),
            extensions=cast("dict[str, Any]", response.extensions),  # pyright: ignore[reportUnknownMemberType]
        )

    def requests_under_way(self) -> int:
        return sum(self._under_way)

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()
