"""`seedance-mcp serve --http`: streamable HTTP with a bearer token; never open beyond loopback without one."""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import sys
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx
import pytest
from pydantic import ValidationError

from seedance_mcp.access_log import mask_text
from seedance_mcp.config import Settings
from seedance_mcp.http_server import allowed_hosts, allowed_origins
from tests.fakes.stdio_helpers import server_env

pytestmark = pytest.mark.anyio

TOKEN = "http-token-for-tests-0123"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
JSON_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
AUTHORIZED = {**JSON_HEADERS, "Authorization": f"Bearer {TOKEN}"}
ANNOUNCEMENT = "seedance-mcp: serving MCP over HTTP at "
# A provider that is never contacted (no tool is called): the in-process sandbox would start its own uvicorn.
QUIET_PROVIDER = {
    "SEEDANCE_PROVIDER": "ark",
    "SEEDANCE_API_KEY": "ark-key-never-used-4567",
    "SEEDANCE_BASE_URL": "http://127.0.0.1:9",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.subprocess
async def test_the_http_server_requires_its_token(tmp_path: Path) -> None:
    port = free_port()
    env = server_env(tmp_path, SEEDANCE_PROVIDER="sandbox", SEEDANCE_HTTP_TOKEN=TOKEN)
    process = await anyio.open_process(
        [sys.executable, "-m", "seedance_mcp", "serve", "--http", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    try:
        async with httpx.AsyncClient() as client:
            with anyio.fail_after(20):
                while True:
                    try:
                        denied = await client.post(url, json=initialize, headers=headers)
                        break
                    except httpx.ConnectError:
                        await anyio.sleep(0.1)
            allowed = await client.post(url, json=initialize, headers={**headers, "Authorization": f"Bearer {TOKEN}"})
            rebinding = await client.post(
                url, json=initialize, headers={**headers, "Authorization": f"Bearer {TOKEN}", "Host": "evil.example"}
            )
    finally:
        process.terminate()
        with anyio.fail_after(10):
            await process.wait()
    assert denied.status_code == 401
    assert allowed.status_code == 200
    assert "seedance" in allowed.text
    assert rebinding.status_code == 421


@pytest.mark.subprocess
async def test_it_refuses_to_listen_beyond_loopback_without_a_token(tmp_path: Path) -> None:
    env = server_env(tmp_path, SEEDANCE_PROVIDER="sandbox")
    result = await anyio.run_process(
        [sys.executable, "-m", "seedance_mcp", "serve", "--http", "--host", "0.0.0.0", "--port", str(free_port())],
        env=env,
        check=False,
    )
    assert result.returncode == 2
    assert b"SEEDANCE_HTTP_TOKEN" in result.stderr


@pytest.mark.subprocess
async def test_the_sandbox_command_serves_every_dialect_alone(tmp_path: Path) -> None:
    """`seedance-mcp sandbox --port N`: other clients can be pointed at it."""
    port = free_port()
    process = await anyio.open_process(
        [sys.executable, "-m", "seedance_mcp", "sandbox", "--port", str(port), "--render-seconds", "0.2"],
        env=server_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(headers={"Authorization": "Bearer any"}) as client:
            with anyio.fail_after(20):
                while True:
                    try:
                        stats = await client.get(f"{base}/_sandbox/stats")
                        break
                    except httpx.ConnectError:
                        await anyio.sleep(0.1)
            created = await client.post(
                f"{base}/seedance/generations",
                json={"model": "doubao-seedance-1-0-pro-250528", "content": [{"type": "text", "text": "x"}]},
            )
    finally:
        process.terminate()
        with anyio.fail_after(10):
            await process.wait()
    assert stats.status_code == 200
    assert created.json()["message"] == "YEScale - Seedance Video Generation - Submit"


@dataclass
class RunningServer:
    port: int
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def err(self) -> str:
        return self.stderr.decode(errors="replace")


@contextlib.asynccontextmanager
async def http_server(tmp_path: Path, *args: str, **variables: str) -> AsyncGenerator[RunningServer]:
    """`seedance-mcp serve --http --port 0 ARGS`, up once it has announced its URL; output captured until it exits."""
    process = await anyio.open_process(
        [sys.executable, "-m", "seedance_mcp", "serve", "--http", "--port", "0", *args],
        env=server_env(tmp_path, **variables),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    server = RunningServer(port=0)
    announced = anyio.Event()

    async def drain(stream: anyio.abc.ByteReceiveStream, into: bytearray) -> None:
        async for chunk in stream:
            into.extend(chunk)
            if ANNOUNCEMENT.encode() in server.stderr and not announced.is_set():
                announced.set()
        announced.set()  # exited before announcing: the assertion below says so

    try:
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(drain, process.stdout, server.stdout)
            task_group.start_soon(drain, process.stderr, server.stderr)
            try:
                with anyio.fail_after(20):
                    await announced.wait()
                line = server.err().split(ANNOUNCEMENT, 1)[-1].splitlines()[0] if ANNOUNCEMENT in server.err() else ""
                found = re.search(r"listening on \S+:(\d+)\)|^http://127\.0\.0\.1:(\d+)/mcp", line)
                assert found, f"no start-up line: {server.err()}"
                server.port = int(found[1] or found[2])
                yield server
            finally:
                process.terminate()
                with anyio.fail_after(10):
                    await process.wait()
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()


@pytest.mark.subprocess
async def test_remote_clients_are_let_in_under_the_declared_public_names(tmp_path: Path) -> None:
    """On 0.0.0.0 with SEEDANCE_PUBLIC_HOSTS/URL: those Host names pass, others get 421, metadata names the URL."""
    async with (
        http_server(
            tmp_path,
            "--host",
            "0.0.0.0",
            SEEDANCE_HTTP_TOKEN=TOKEN,
            SEEDANCE_PUBLIC_HOSTS="video.example.com, mcp.example.org:8443",
            SEEDANCE_PUBLIC_URL="https://video.example.com",
            **QUIET_PROVIDER,
        ) as server,
        httpx.AsyncClient(base_url=server.url, timeout=10) as client,
    ):

        async def initialize(host: str, **headers: str) -> httpx.Response:
            return await client.post("/mcp", json=INITIALIZE, headers={**AUTHORIZED, "Host": host, **headers})

        public = await initialize("video.example.com")
        public_with_port = await initialize("video.example.com:443")
        other_public = await initialize("mcp.example.org:8443")
        same_origin = await initialize("video.example.com", Origin="https://video.example.com")
        foreign_origin = await initialize("video.example.com", Origin="https://evil.example")
        rebinding = await initialize("evil.example")
        no_token = await client.post("/mcp", json=INITIALIZE, headers={**JSON_HEADERS, "Host": "video.example.com"})
        metadata = await client.get("/.well-known/oauth-protected-resource/mcp", headers={"Host": "video.example.com"})
    assert [public.status_code, public_with_port.status_code, other_public.status_code] == [200, 200, 200]
    assert "seedance" in public.text
    assert same_origin.status_code == 200
    assert foreign_origin.status_code == 403
    assert rebinding.status_code == 421
    assert no_token.status_code == 401
    assert "https://video.example.com/.well-known/oauth-protected-resource/mcp" in no_token.headers["www-authenticate"]
    assert metadata.json()["resource"] == "https://video.example.com/mcp"
    assert f"{ANNOUNCEMENT}https://video.example.com/mcp (bearer token required; listening on 0.0.0.0:" in server.err()
    # No every-interface warning: a public name is set. (Not a bare "421": the log's random request ids hold one.)
    assert "421 (Invalid Host header)" not in server.err()
    assert server.stdout == b""


@pytest.mark.subprocess
async def test_every_interface_without_a_public_name_warns_that_remote_clients_get_421(tmp_path: Path) -> None:
    """0.0.0.0 with a token and no public host still starts, says why remote names fail and what to set."""
    async with (
        http_server(tmp_path, "--host", "0.0.0.0", SEEDANCE_HTTP_TOKEN=TOKEN, **QUIET_PROVIDER) as server,
        httpx.AsyncClient(base_url=server.url, timeout=10) as client,
    ):
        local = await client.post("/mcp", json=INITIALIZE, headers=AUTHORIZED)
        remote = await client.post("/mcp", json=INITIALIZE, headers={**AUTHORIZED, "Host": "video.example.com"})
    assert local.status_code == 200
    assert remote.status_code == 421
    warning = next(line for line in server.err().splitlines() if "WARNING" in line and "421" in line)
    assert "SEEDANCE_PUBLIC_HOSTS" in warning
    assert "SEEDANCE_PUBLIC_URL" in warning


@pytest.mark.subprocess
async def test_the_access_log_never_prints_a_credential_from_a_query_string(tmp_path: Path) -> None:
    """`GET /mcp?token=…`, `?api_key=…`: uvicorn's access log shows the path with the values masked, on stderr only."""
    async with (
        http_server(tmp_path, SEEDANCE_HTTP_TOKEN=TOKEN, **QUIET_PROVIDER) as server,
        httpx.AsyncClient(base_url=server.url, timeout=10) as client,
    ):
        await client.get(f"/mcp?token={TOKEN}&x=1", headers=JSON_HEADERS)
        await client.get("/mcp?api_key=zzz-api-key-value&access_token=access-value-1&key=plain-key-2")
        await client.get("/.well-known/oauth-protected-resource/mcp?X-Amz-Signature=sig-value-3&page=2")
        await client.post("/mcp?auth=auth-value-4", json=INITIALIZE, headers=AUTHORIZED)
    log = server.err()
    assert f"{ANNOUNCEMENT}http://127.0.0.1:{server.port}/mcp (bearer token required)" in log
    for secret in (TOKEN, "zzz-api-key-value", "access-value-1", "plain-key-2", "sig-value-3", "auth-value-4"):
        assert secret not in log
    assert "GET /mcp?token=***&x=1" in log  # the access log is on, and masks only the values
    assert "X-Amz-Signature=***&page=2" in log
    assert server.stdout == b""


@pytest.mark.subprocess
async def test_public_names_without_a_token_are_refused(tmp_path: Path) -> None:
    """A public host name means remote clients through a proxy: the server will not start without a token."""
    env = server_env(tmp_path, SEEDANCE_PROVIDER="sandbox", SEEDANCE_PUBLIC_HOSTS="video.example.com")
    with anyio.fail_after(20):
        result = await anyio.run_process(
            [sys.executable, "-m", "seedance_mcp", "serve", "--http", "--port", "0"], env=env, check=False
        )
    assert result.returncode == 2
    assert b"SEEDANCE_HTTP_TOKEN" in result.stderr


def test_allowed_hosts_are_loopback_the_public_names_and_a_concrete_bind_address() -> None:
    """Names declared without a port match any port; with a port, also the bare name; wildcard binds add nothing."""
    hosts = allowed_hosts("0.0.0.0", 8765, ["video.example.com", "mcp.example.org:8443"])
    assert hosts == [
        "127.0.0.1", "localhost", "[::1]", "127.0.0.1:*", "localhost:*", "[::1]:*",
        "video.example.com", "video.example.com:*", "mcp.example.org:8443", "mcp.example.org",
    ]  # fmt: skip
    assert allowed_hosts("192.0.2.7", 8765)[-2:] == ["192.0.2.7", "192.0.2.7:8765"]
    assert allowed_hosts("fd00::7", 8765)[-2:] == ["[fd00::7]", "[fd00::7]:8765"]
    assert allowed_origins(["video.example.com"]) == ["http://video.example.com", "https://video.example.com"]


def test_public_settings_are_normalised_and_checked() -> None:
    """Comma-separated hosts are trimmed and lower-cased (a pasted URL keeps its host); a public URL must be http(s)."""
    hosts = " Video.Example.com ,https://mcp.example.org:8443/mcp, fd00::7"
    settings = Settings.model_validate({"public_hosts": hosts, "public_url": "HTTPS://video.example.com/"})
    assert settings.public_hosts == ("video.example.com", "mcp.example.org:8443", "[fd00::7]")
    assert settings.public_url == "https://video.example.com"
    for bad in ("video.example.com", "ftp://video.example.com", "https://user:pw@video.example.com"):
        with pytest.raises(ValidationError):
            Settings(public_url=bad)
    with pytest.raises(ValidationError):
        Settings.model_validate({"public_hosts": "video example.com"})


def test_secret_looking_query_values_and_authorization_values_are_masked() -> None:
    """Names like token, api_key, key, sig, password are masked wherever they sit; other parameters are kept."""
    line = '127.0.0.1:5 - "GET /x?a=1&token=t1&apikey=t2&Api%5FKey=t3&password=t4&sig=t5&monkey=ok HTTP/1.1" 200'
    assert mask_text(line) == (
        '127.0.0.1:5 - "GET /x?a=1&token=***&apikey=***&Api%5FKey=***&password=***&sig=***&monkey=ok HTTP/1.1" 200'
    )
    assert mask_text("Authorization: Bearer abc.def") == "Authorization: ***"
    assert mask_text("sent Bearer abc.def-123") == "sent Bearer ***"
    assert mask_text("/p/s%2Fcret+1?q=1", ["s/cret 1"]) == "/p/***?q=1"
