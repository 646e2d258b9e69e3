"""Run the sandbox on 127.0.0.1 inside the caller's event loop (or alone, for `seedance-mcp sandbox`)."""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import AsyncGenerator, Generator

import anyio
import uvicorn

from seedance_mcp.sandbox.app import create_sandbox_app
from seedance_mcp.sandbox.state import SandboxState


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handlers: the host process (the MCP server) owns Ctrl+C."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def bound_socket(host: str, port: int, *, fall_back: bool) -> socket.socket:
    """A socket bound to `port`; with `fall_back`, to any free port when that one is taken (or 0)."""
    # IPPROTO_TCP spelled out: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on sockets whose `proto` says
    # TCP, and an answer written in two pieces would otherwise wait ~40 ms for the client's delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        if not (fall_back and port):
            sock.close()
            raise
        sock.bind((host, 0))
    return sock


class SandboxServer:
    """A sandbox bound to a loopback port; `url` is its base, e.g. `http://127.0.0.1:41234`.

    `port=0` picks a free port, or, when the state keeps its tasks in a file (`SandboxState.kept_in`), the port
    it served on last time if that is free: video URLs handed out before a restart carry that port.
    """

    def __init__(self, state: SandboxState | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = state or SandboxState()
        self.app = create_sandbox_app(self.state)
        self._socket = bound_socket(host, port or self.state.last_port, fall_back=not port)
        self._socket.listen(1024)
        self._socket.setblocking(False)
        bound_host, bound_port = self._socket.getsockname()[:2]
        self.url = f"http://{bound_host}:{bound_port}"
        if bound_port != self.state.last_port:
            self.state.save_port(bound_port)
        config = uvicorn.Config(
            self.app,
            log_config=None,  # uvicorn's default config logs to stdout, which is the MCP channel
            access_log=False,
            lifespan="off",
            timeout_keep_alive=30,
            limit_concurrency=None,
            backlog=1024,
        )
        self._server = _EmbeddedServer(config)
        logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)

    async def serve(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(self._server.serve, [self._socket])
            while not self._server.started:  # noqa: ASYNC110  # uvicorn exposes only a flag, no event
                await anyio.sleep(0.01)
            task_status.started()

    def stop(self) -> None:
        self._server.should_exit = True

    def close(self) -> None:
        """Release the listening socket (uvicorn does not close sockets it was handed).

        Its asyncio servers are closed first: when the serving task was cancelled (the embedded sandbox ends with
        the server's runtime) uvicorn never closed them, so the event loop still watched this socket's descriptor;
        closed under that watch, the next socket given the same number inherited a dead registration and never
        accepted a connection (a second embedded sandbox in one process answered nothing)."""
        for server in getattr(self._server, "servers", ()):
            server.close()
        self._socket.close()


@contextlib.asynccontextmanager
async def running_sandbox(state: SandboxState | None = None, *, port: int = 0) -> AsyncGenerator[SandboxServer]:
    """A sandbox serving for the duration of the block."""
    server = SandboxServer(state, port=port)
    try:
        async with anyio.create_task_group() as task_group:
            await task_group.start(server.serve)
            try:
                yield server
            finally:
                server.stop()
    finally:
        server.close()
