"""The pooled transport under both clients: real bytes over loopback, httpx's errors, connections kept alive."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncGenerator
from pathlib import Path

import anyio
import httpx
import pytest
import trustme
from anyio.abc import SocketAttribute, SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream
from anyio.streams.tls import TLSStream

from seedance_mcp.providers.transport import API_LIMITS, DOWNLOAD_LIMITS, VIDEO_READ_BYTES, PooledTransport
from seedance_mcp.sandbox import SandboxServer
from tests.conftest import free_port_for_tests
from tests.fake_ark import running_fake_ark

pytestmark = pytest.mark.anyio


async def test_a_large_video_arrives_whole(sandbox: SandboxServer, tmp_path: Path) -> None:
    async with httpx.AsyncClient(headers={"Authorization": "Bearer k"}) as api:
        created = await api.post(
            f"{sandbox.url}/api/v3/contents/generations/tasks",
            json={"model": "doubao-seedance-1-5-pro-251215", "content": [{"type": "text", "text": "[[size_mb=20]]"}]},
        )
        sandbox.state.tasks[created.json()["id"]].queued_seconds = 0
        sandbox.state.tasks[created.json()["id"]].render_seconds = 0
        task = (await api.get(f"{sandbox.url}/api/v3/contents/generations/tasks/{created.json()['id']}")).json()
    size = 0
    async with (
        httpx.AsyncClient(transport=PooledTransport(DOWNLOAD_LIMITS, read_bytes=VIDEO_READ_BYTES)) as client,
        client.stream("GET", task["content"]["video_url"]) as response,
    ):
        assert response.status_code == 200
        async for piece in response.aiter_raw():
            size += len(piece)
    assert size == 20 * 1024 * 1024 == int(response.headers["content-length"])


async def test_connection_failures_are_httpx_errors() -> None:
    async with httpx.AsyncClient(transport=PooledTransport(DOWNLOAD_LIMITS, read_bytes=VIDEO_READ_BYTES)) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{free_port_for_tests()}/video.mp4")
        with pytest.raises(httpx.UnsupportedProtocol):
            await client.get("ftp://example.com/video.mp4")


async def test_requests_in_turn_share_one_kept_alive_connection() -> None:
    """Keep-alive works through the pools: three requests one after another arrive on one connection."""
    async with running_fake_ark() as fake, httpx.AsyncClient(transport=PooledTransport(API_LIMITS)) as client:
        for _ in range(3):
            response = await client.get(f"{fake.url}/api/v3/contents/generations/tasks?page_size=1")
            assert response.status_code == 200
    assert len({record.connection for record in fake.requests}) == 1


async def test_a_connection_the_server_closed_while_idle_is_not_reused() -> None:
    """A server that closes a kept-alive connection after answering: the next request sees the close before it is
    sent (the readable-socket check) and goes out on a new connection, instead of failing on the dead one."""
    accepted = 0
    closed = anyio.Event()

    async def serve(stream: SocketStream) -> None:
        nonlocal accepted
        accepted += 1
        async with stream:
            reader = BufferedByteReceiveStream(stream)
            await reader.receive_until(b"\r\n\r\n", 65536)
            await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        closed.set()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    url = f"http://127.0.0.1:{listener.extra(SocketAttribute.local_port)}/"
    async with (
        listener,
        anyio.create_task_group() as group,
        httpx.AsyncClient(transport=PooledTransport(API_LIMITS)) as client,
    ):
        group.start_soon(listener.serve, serve)
        with anyio.fail_after(10):
            assert (await client.post(url, json={"n": 1})).text == "ok"
            await closed.wait()
            assert (await client.post(url, json={"n": 2})).text == "ok"
        group.cancel_scope.cancel()
    assert accepted == 2


async def test_many_requests_at_once_spread_over_the_pools_and_all_return() -> None:
    """Forty requests at once over pools of a few connections each: every one answered, none lost in the
    bookkeeping of which pool is least busy (a failed request is counted out too)."""
    transport = PooledTransport(API_LIMITS)
    async with running_fake_ark() as fake, httpx.AsyncClient(transport=transport) as client:
        statuses: list[int] = []

        async def one() -> None:
            statuses.append((await client.get(f"{fake.url}/api/v3/contents/generations/tasks?page_size=1")).status_code)

        async with anyio.create_task_group() as group:
            for _ in range(40):
                group.start_soon(one)
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{free_port_for_tests()}/")
        assert statuses == [200] * 40
        assert transport.requests_under_way() == 0
    assert 1 < len({record.connection for record in fake.requests}) <= (API_LIMITS.max_connections or 0)


async def _serve_https(ca: trustme.CA, answer: bytes) -> AsyncGenerator[str]:
    """An HTTPS server on 127.0.0.1 with a certificate from `ca` that answers every request with `answer`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)

    async def serve(stream: SocketStream) -> None:
        # The client hanging up (or refusing the certificate) ends the connection; that is not the test's failure.
        with contextlib.suppress(anyio.IncompleteRead, anyio.BrokenResourceError, ssl.SSLError, OSError):
            async with stream:
                tls = await TLSStream.wrap(stream, server_side=True, ssl_context=context, standard_compatible=False)
                reader = BufferedByteReceiveStream(tls)
                while True:
                    await reader.receive_until(b"\r\n\r\n", 65536)
                    await tls.send(answer)

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, serve)
        yield f"https://127.0.0.1:{listener.extra(SocketAttribute.local_port)}/"
        group.cancel_scope.cancel()


async def test_https_answers_arrive_over_the_transports_own_tls_handshake() -> None:
    """Real providers are HTTPS: the handshake (asyncio's start_tls), certificate checking against the trusted CA
    and two requests on the one kept-alive TLS connection; a server whose certificate is not trusted is refused."""
    ca = trustme.CA()
    trusted = ssl.create_default_context()
    ca.configure_trust(trusted)
    body = b'{"id": "cgt-tls"}'
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    with anyio.fail_after(10):
        async with contextlib.asynccontextmanager(_serve_https)(ca, answer) as url:
            async with httpx.AsyncClient(transport=PooledTransport(API_LIMITS, ssl_context=trusted)) as client:
                for _ in range(2):
                    response = await client.get(url)
                    assert response.json() == {"id": "cgt-tls"}
            async with httpx.AsyncClient(transport=PooledTransport(API_LIMITS)) as client:
                with pytest.raises(httpx.ConnectError):
                    await client.get(url)


async def test_a_server_that_never_answers_is_a_read_timeout() -> None:
    """A request the server reads and never answers ends with httpx's ReadTimeout after the read time-out."""

    async def serve(stream: SocketStream) -> None:
        async with stream:
            await BufferedByteReceiveStream(stream).receive_until(b"\r\n\r\n", 65536)
            await anyio.sleep_forever()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    url = f"http://127.0.0.1:{listener.extra(SocketAttribute.local_port)}/"
    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, serve)
        async with httpx.AsyncClient(transport=PooledTransport(API_LIMITS), timeout=httpx.Timeout(5, read=0.3)) as c:
            with anyio.fail_after(10), pytest.raises(httpx.ReadTimeout):
                await c.get(url)
        group.cancel_scope.cancel()


async def test_a_close_that_came_while_the_event_loop_was_busy_is_noticed_before_reuse() -> None:
    """The server closes a kept-alive connection while the event loop is too busy to read the close: before the
    next request the idle connection's socket is asked, and the request goes out on a new connection."""
    import socketserver
    import threading
    import time

    closed = threading.Event()

    class CloseAfterAnswering(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            data = b""
            while b"\r\n\r\n" not in data:
                data += self.request.recv(65536)
            self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            self.request.close()
            closed.set()

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), CloseAfterAnswering)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        async with httpx.AsyncClient(transport=PooledTransport(API_LIMITS)) as client:
            assert (await client.get(url)).text == "ok"
            # The loop busy with CPU-bound work while the server's FIN arrives, and for a while after.
            assert closed.wait(5)
            until = time.monotonic() + 0.2
            while time.monotonic() < until:
                pass
            assert (await client.get(url)).text == "ok"
    finally:
        server.shutdown()
        server.server_close()
