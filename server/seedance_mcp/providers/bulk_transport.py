"""A transport for big downloads: one fresh HTTP/1.1 connection per request, reading 1 MiB per socket read.

httpcore's pooled connections read 64 KiB at a time, and every read is a trip through h11 and the event loop. For
a video that is most of the CPU the download costs (bench #5 measured 60-70 % of curl's speed on loopback; with
1 MiB reads, 85-95 %). Only video downloads use this transport; API calls keep the shared, pooled client. Built
from httpcore's public pieces: its AnyIO network backend and a subclass of its HTTP/1.1 connection.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any, cast

import httpcore
import httpx

READ_BYTES = 1024 * 1024


class _LargeReadHTTP11Connection(httpcore.AsyncHTTP11Connection):
    READ_NUM_BYTES = READ_BYTES


def _as_httpx_error(exc: Exception, request: httpx.Request) -> httpx.TransportError:
    """httpcore's exceptions carry the same names as httpx's; the generic one stands in for any other."""
    kind = getattr(httpx, type(exc).__name__, None)
    if isinstance(kind, type) and issubclass(kind, httpx.TransportError):
        return kind(str(exc), request=request)
    return httpx.TransportError(str(exc), request=request)


class _BodyStream(httpx.AsyncByteStream):
    def __init__(self, response: httpcore.Response, connection: httpcore.AsyncHTTP11Connection, request: httpx.Request):
        self._response = response
        self._connection = connection
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for piece in self._response.aiter_stream():
                yield piece
        except httpcore.TimeoutException as exc:
            raise _as_httpx_error(exc, self._request) from exc
        except httpcore.NetworkError as exc:
            raise _as_httpx_error(exc, self._request) from exc
        except httpcore.ProtocolError as exc:
            raise _as_httpx_error(exc, self._request) from exc

    async def aclose(self) -> None:
        try:
            await self._response.aclose()
        finally:
            await self._connection.aclose()


class BulkDownloadTransport(httpx.AsyncBaseTransport):
    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl_context = ssl_context or httpx.create_ssl_context()
        # AnyIOBackend is exported only when anyio is installed, which it always is here (a dependency).
        self._backend: httpcore.AsyncNetworkBackend = httpcore.AnyIOBackend()  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"cannot download a {url.scheme!r} URL", request=request)
        port = url.port or (443 if url.scheme == "https" else 80)
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        stream: httpcore.AsyncNetworkStream
        try:
            stream = await self._backend.connect_tcp(url.host, port, timeout=timeouts.get("connect"))
            if url.scheme == "https":
                stream = await stream.start_tls(
                    self._ssl_context, server_hostname=url.host, timeout=timeouts.get("connect")
                )
            connection = _LargeReadHTTP11Connection(httpcore.Origin(url.raw_scheme, url.raw_host, port), stream)
            core_request = httpcore.Request(
                method=request.method,
                url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path),
                headers=request.headers.raw,
                content=cast("AsyncIterable[bytes]", request.stream),
                extensions=dict(request.extensions),
            )
            response = await connection.handle_async_request(core_request)
        except (httpcore.TimeoutException, httpcore.NetworkError, httpcore.ProtocolError) as exc:
            raise _as_httpx_error(exc, request) from exc
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_BodyStream(response, connection, request),
            extensions=cast("dict[str, Any]", response.extensions),  # pyright: ignore[reportUnknownMemberType]
        )
