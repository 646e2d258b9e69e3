"""Proxies as configured once at the entry point (review of issue 15, #7, #8, #14).

- A proxy that refuses the CONNECT (407, 403, 502) is "not sent": nothing reached the provider, the job is
  `failed` (not `unknown`), an identical call is not blocked, and the message names the proxy and its variable,
  never its credentials.
- A proxy variable httpx cannot use stops the server at start-up with one line naming the variable.
- `/readyz` checks the provider through the same client, so through the proxy.
- Settings built directly read no proxy from the environment: only `load_settings` (the entry point) does.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from anyio.abc import SocketAttribute, SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream
from mcp import Client

from seedance_mcp.app import create_app
from seedance_mcp.config import load_settings
from tests.conftest import SECRET_KEY, make_settings, text_of
from tests.fakes.fake_ark import running_fake_ark
from tests.fakes.forward_proxy import running_http_proxy
from tests.fakes.replicas import API_KEY, mcp_client, start_replica, write_tokens_file
from tests.fakes.stdio_helpers import server_env

pytestmark = pytest.mark.anyio

PROXY_USER = "office-user"
PROXY_PASSWORD = "pr0xy-Secret-Word"


class RefusingProxy:
    """A proxy on 127.0.0.1 that answers every CONNECT with `status` (and records the request lines)."""

    def __init__(self, status: str) -> None:
        self.status = status
        self.seen: list[bytes] = []
        self.port = 0

    async def handle(self, stream: SocketStream) -> None:
        async with stream:
            head = await BufferedByteReceiveStream(stream).receive_until(b"\r\n\r\n", 65536)
            self.seen.append(head.split(b"\r\n")[0])
            await stream.send(f"HTTP/1.1 {self.status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())


@pytest.mark.parametrize("status", ["407 Proxy Authentication Required", "403 Forbidden", "502 Bad Gateway"])
async def test_a_proxy_that_refuses_the_tunnel_is_reported_as_not_sent_and_blocks_nothing(
    tmp_path: Path, status: str
) -> None:
    proxy = RefusingProxy(status)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(SocketAttribute.local_port)
    settings = make_settings(
        tmp_path,
        provider="ark",
        base_url="https://ark.example.com/api/v3",
        api_key=SECRET_KEY,
        network={"HTTPS_PROXY": f"http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{port}"},
    )
    results: dict[str, Any] = {}
    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, proxy.handle)
        with anyio.fail_after(60):
            async with Client(create_app(settings)) as client:
                for name in ("first", "again"):
                    results[name] = await client.call_tool("generate_video", {"prompt": "office proxy"})
                results["listed"] = await client.call_tool("list_tasks", {})
        group.cancel_scope.cancel()
    first, again, listed = results["first"], results["again"], results["listed"]
    for result in (first, again):
        text = text_of(result)
        assert result.is_error is True, text
        assert f"the proxy http://127.0.0.1:{port} (HTTPS_PROXY) refused" in text, text
        assert status.split()[0] in text and "nothing was created or charged" in text, text
        assert "answer was lost" not in text and "may exist" not in text, text
        assert PROXY_PASSWORD not in text and PROXY_USER not in text and SECRET_KEY not in text
    # The identical second call was tried (not refused as a duplicate of an `unknown` job).
    assert "An identical request" not in text_of(again)
    assert [task["status"] for task in (listed.structured_content or {})["tasks"]] == ["failed", "failed"]
    assert all(line.startswith(b"CONNECT ark.example.com:443 ") for line in proxy.seen), proxy.seen
    if status.startswith(("407", "403")):
        assert len(proxy.seen) == 2, proxy.seen  # refused for good: asked once per call, not retried


async def test_settings_built_directly_read_no_proxy_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the entry point reads the environment: a proxy variable set in the process does not reach a server
    built from Settings(...), and load_settings reads it into `network`."""
    async with running_fake_ark(render_seconds=0.2) as fake, running_http_proxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        settings = make_settings(tmp_path, provider="ark", base_url=fake.base_url, api_key=SECRET_KEY)
        with anyio.fail_after(30):
            async with Client(create_app(settings)) as client:
                made = await client.call_tool("generate_video", {"prompt": "a paper boat"})
        assert made.is_error is False, text_of(made)
        assert proxy.seen == [] and fake.creates == 1
        read = load_settings({"HTTP_PROXY": proxy.url, "no_proxy": "example.com"}).network
        assert read.proxy_for(fake.base_url) is not None and read.proxy_for("https://api.example.com/x") is None


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("ALL_PROXY", f"socks4://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:1080", "socks4://"),
        ("https_proxy", f"ftp://{PROXY_USER}:{PROXY_PASSWORD}@proxy.example.com:21", "ftp://"),
        ("HTTP_PROXY", f"http://{PROXY_USER}:{PROXY_PASSWORD}@:3128", "names no proxy host"),
        ("SSL_CERT_FILE", "/nonexistent/corporate-ca.pem", "not a readable file"),
    ],
)
@pytest.mark.subprocess
def test_a_proxy_variable_the_server_cannot_use_stops_it_at_start_up_with_one_line(
    tmp_path: Path, variable: str, value: str, said: str
) -> None:
    """Before: the runtime died at the first tool call, advising to check the state dir. Now: exit 2 at start-up,
    one line naming the variable, never the proxy's password."""
    env = server_env(tmp_path, SEEDANCE_PROVIDER="ark", SEEDANCE_API_KEY=SECRET_KEY, SEEDANCE_STARTUP_DELAY="0")
    env[variable] = value
    started = subprocess.run(
        [sys.executable, "-m", "seedance_mcp"],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = started.stderr.strip().splitlines()
    assert started.returncode == 2, started.stderr
    assert len(lines) == 1 and "Traceback" not in started.stderr, started.stderr
    assert lines[0].startswith(f"seedance-mcp: invalid configuration: {variable}: "), lines[0]
    assert said in lines[0] and PROXY_PASSWORD not in started.stderr and "SEEDANCE_STATE_DIR" not in lines[0]


PROVIDER_NAME = "provider.seedance-proxy.invalid"


@pytest.mark.subprocess
async def test_readyz_reaches_the_provider_through_the_proxy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A provider host only the proxy can resolve: videos are made through the proxy, and /readyz says ready
    (it answered 503 forever: it connected to the provider directly)."""
    real = socket.getaddrinfo

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:  # only this test process (the proxy) knows the name
        return real("127.0.0.1" if host in (PROVIDER_NAME, PROVIDER_NAME.encode()) else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    write_tokens_file(tmp_path / "tokens.json")
    async with running_fake_ark(render_seconds=0.3) as fake, running_http_proxy() as proxy:
        port = fake.base_url.split(":")[2].split("/")[0]
        env = server_env(
            tmp_path,
            SEEDANCE_PROVIDER="ark",
            SEEDANCE_BASE_URL=f"http://{PROVIDER_NAME}:{port}/api/v3",
            SEEDANCE_API_KEY=API_KEY,
            SEEDANCE_TOKENS_FILE=str(tmp_path / "tokens.json"),
            SEEDANCE_STARTUP_DELAY="0",
            HTTP_PROXY=proxy.url,
        )
        replica = await start_replica(tmp_path, "behind-proxy", env, ready_path="/healthz")
        try:
            with anyio.fail_after(60):
                async with mcp_client(replica.url, "alice") as alice:
                    made = await alice.call_tool("generate_video", {"prompt": "through the proxy"})
                async with httpx.AsyncClient() as probe:
                    ready = await probe.get(f"{replica.base}/readyz")
        finally:
            await replica.stop()
    assert made.is_error is False, text_of(made)
    assert ready.status_code == 200 and ready.json()["provider"] == "ok", ready.text
    assert ("GET", f"http://{PROVIDER_NAME}:{port}/api/v3") in proxy.seen, proxy.seen
