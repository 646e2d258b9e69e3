"""The HTTP transport under both clients: httpcore's connection pools over a network backend of our own.

httpx's transport gives no say over httpcore's network backend, and at a few hundred requests a second its
habits cost more CPU than the requests: before every request the pool asks each idle connection whether the
server closed it (rebuilding anyio's socket attributes and polling the socket each time), every read sets up a
cancel scope and pauses and resumes reading, and pooled connections read 64 KiB at a time. The backend here
(`_Connection`, `_Stream`) avoids all three; its pools are small because httpcore's bookkeeping is quadratic in
a pool's connections. Connection reuse, keep-alive expiry, limits and HTTP itself stay httpcore's.
"""

# httpcore's network interfaces take their timeouts as parameters.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import select
import socket
import ssl
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from typing import Any, cast

import httpcore
import httpx
import sniffio

API_READ_BYTES = 64 * 1024
VIDEO_READ_BYTES = 1024 * 1024
API_LIMITS = httpx.Limits(max_connections=24, max_keepalive_connections=24, keepalive_expiry=30.0)
"""API calls: creates and polls are limited above the transport (JobSettings: 12 + 8) to fewer than this, so a
request never waits in a pool."""
DOWNLOAD_LIMITS = httpx.Limits(max_connections=64, max_keepalive_connections=64, keepalive_expiry=30.0)
"""Downloads: one request at a time per downloading job, and JobSettings.max_concurrent_downloads jobs at once."""


_HIGH_WATER = 2 * 1024 * 1024
"""Bytes a connection buffers before it stops reading from the socket until the reader catches up."""


_FRESH = 0.05
"""Seconds after the last bytes from the server during which an idle connection is trusted without asking its
socket: under load a connection is reused within milliseconds, and a poll() per idle connection per request was
a large part of a request's CPU; a connection idle longer is asked (a server may close it any time)."""


def _socket_readable(transport: asyncio.Transport | None) -> bool:
    sock: socket.socket | None = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or sock.fileno() == -1:
        return True
    poller = select.poll()  # not select.select: a busy server's descriptors go past FD_SETSIZE
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))


class _Connection(asyncio.Protocol):
    """One TCP connection as an asyncio protocol that keeps reading into a buffer."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.last_heard = loop.time()
        self.eof = False
        self.error: BaseException | None = None
        self.reading_paused = False
        self.writing_paused = False
        self._waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)

    def data_received(self, data: bytes) -> None:
        self.last_heard = self.loop.time()
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered > _HIGH_WATER and not self.reading_paused and self.transport is not None:
            self.transport.pause_reading()
            self.reading_paused = True
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False  # close the connection

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        self._wake()

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait(self, timeout: float | None) -> bool:
        """Until something happens on the connection; False when `timeout` passed first."""
        waiter = self._waiter = self.loop.create_future()
        timer = self.loop.call_later(timeout, _expire, waiter) if timeout is not None else None
        try:
            await waiter
            return True
        except TimeoutError:
            return False
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class _Stream(httpcore.AsyncNetworkStream):
    """httpcore's view of a `_Connection`.

    Compared with httpcore's anyio streams: no cancel scope per read and write (a timer only while waiting), no
    pause and resume of reading around every read (two epoll_ctl calls), and the pool's question before each
    request, whether the server closed an idle connection, is answered from what the protocol already saw for a
    connection that heard from the server in the last `_FRESH` seconds (its socket is polled after that). Reads
    return up to `read_bytes` whatever httpcore asks (it asks for 64 KiB:
    a video would take thousands of trips through h11)."""

    def __init__(self, connection: _Connection, read_bytes: int) -> None:
        self._connection = connection
        self._read_bytes = read_bytes

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        connection = self._connection
        while not connection.chunks and not connection.eof:
            if not await connection.wait(timeout):
                raise httpcore.ReadTimeout("timed out waiting for the server's answer")
        if connection.chunks:
            # One chunk as the socket delivered it (up to 256 KiB): no joining, no copying of what stays buffered.
            data = connection.chunks.popleft()
            size = max(max_bytes, self._read_bytes)
            if len(data) > size:
                connection.chunks.appendleft(data[size:])
                data = data[:size]
            connection.buffered -= len(data)
            if connection.reading_paused and connection.buffered < _HIGH_WATER // 2 and connection.transport:
                connection.transport.resume_reading()
                connection.reading_paused = False
            return data
        if connection.error is not None:
            raise httpcore.ReadError(str(connection.error) or type(connection.error).__name__)
        return b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        connection = self._connection
        if not buffer:
            return
        if connection.eof or connection.transport is None or connection.transport.is_closing():
            raise httpcore.WriteError(str(connection.error or "the connection is closed"))
        connection.transport.write(buffer)
        while connection.writing_paused and not connection.eof:
            if not await connection.wait(timeout):
                raise httpcore.WriteTimeout("timed out sending the request")
        if connection.eof and connection.error is not None:
            raise httpcore.WriteError(str(connection.error))

    async def aclose(self) -> None:
        if self._connection.transport is not None:
            self._connection.transport.close()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        connection = self._connection
        assert connection.transport is not None
        try:
            transport = await connection.loop.start_tls(
                connection.transport,
                connection,
                ssl_context,
                server_hostname=server_hostname,
                ssl_handshake_timeout=timeout,
            )
        except TimeoutError as exc:
            connection.transport.abort()
            raise httpcore.ConnectTimeout("timed out in the TLS handshake") from exc
        except (OSError, ssl.SSLError) as exc:
            connection.transport.abort()
            raise httpcore.ConnectError(str(exc)) from exc
        if transport is None:
            raise httpcore.ConnectError("the connection closed during the TLS handshake")
        connection.transport = transport
        return self

    def get_extra_info(self, info: str) -> Any:
        connection = self._connection
        if info == "is_readable":
            if connection.eof or connection.chunks:
                return True
            if connection.loop.time() - connection.last_heard < _FRESH:
                return False
            # Idle for a while: the server may have closed it while the loop was too busy to notice; ask the socket.
            return _socket_readable(connection.transport)
        transport = connection.transport
        if transport is None:
            return None
        if info == "ssl_object":
            return transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return transport.get_extra_info("sockname")
        if info == "server_addr":
            return transport.get_extra_info("peername")
        if info == "socket":
            return transport.get_extra_info("socket")
        return None


class _Backend(httpcore.AsyncNetworkBackend):
    """Connections on asyncio's own protocols (see `_Stream`); elsewhere (trio) httpcore's anyio backend."""

    def __init__(self, read_bytes: int) -> None:
        # AnyIOBackend is exported only when anyio is installed, which it always is here (a dependency).
        self._anyio: httpcore.AsyncNetworkBackend = httpcore.AnyIOBackend()  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
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
        if socket_options or sniffio.current_async_library() != "asyncio":
            return await self._anyio.connect_tcp(host, port, timeout, local_address, socket_options)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _transport, connection = await loop.create_connection(
                    lambda: _Connection(loop),
                    host,
                    port,
                    local_addr=(local_address, 0) if local_address else None,
                )
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"timed out connecting to {host}:{port}") from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        return _Stream(connection, self._read_bytes)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]]
        | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return await self._anyio.connect_unix_socket(path, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        await self._anyio.sleep(seconds)


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
    fewest requests under way, so while requests do not outnumber connections (the callers' limits see to it) none
    waits in a pool."""

    def __init__(
        self, limits: httpx.Limits, *, read_bytes: int = API_READ_BYTES, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        total = limits.max_connections or 100
        keepalive = limits.max_keepalive_connections if limits.max_keepalive_connections is not None else total
        count = max(1, -(-total // SHARD_CONNECTIONS))
        ssl_context = ssl_context or httpx.create_ssl_context()
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
