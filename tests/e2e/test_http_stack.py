"""The HTTP stack people configure: proxies, certificates and dual-stack hosts, through the real server.

Each test runs `generate_video` through the in-memory MCP client against the socket-level fake Ark, with the
variables given to its Settings (`network`, as `load_settings` reads them from the environment at the entry
point; the subprocess tests set them in the server's environment). A recording proxy on 127.0.0.1
(tests/fakes/forward_proxy.py) shows what went through it.
"""

from __future__ import annotations

import dataclasses
import socket
import ssl
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
import trustme
from mcp import Client

from seedance_mcp.app import create_app
from seedance_mcp.config import Settings
from seedance_mcp.jobs import JobSettings
from seedance_mcp.providers.client import API_LIMITS
from seedance_mcp.providers.download import DOWNLOAD_LIMITS
from tests.conftest import SECRET_KEY, make_settings, text_of
from tests.fakes.fake_ark import TASKS, FakeArk, running_fake_ark
from tests.fakes.forward_proxy import running_http_proxy, running_socks5_proxy
from tests.fakes.stdio_helpers import server_env, stdio_transport

pytestmark = pytest.mark.anyio


def ark_settings(tmp_path: Path, fake: FakeArk, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"provider": "ark", "base_url": fake.base_url, "api_key": SECRET_KEY, "http_timeout": 10}
    values.update(overrides)
    return make_settings(tmp_path, **values)


async def generate(settings: Settings, prompt: str = "a paper boat on a rainy street") -> dict[str, Any]:
    """One generate_video call that waits for the video; its structured result (an error fails the test)."""
    with anyio.fail_after(30):
        async with Client(create_app(settings)) as client:
            result = await client.call_tool("generate_video", {"prompt": prompt})
    assert result.is_error is False, text_of(result)
    data = result.structured_content or {}
    assert data["status"] == "succeeded" and Path(data["video_path"]).is_file(), data
    return data


def throwaway_ca(tmp_path: Path, *names: str) -> tuple[trustme.CA, ssl.SSLContext, Path]:
    """A CA of the test's own, a server context with a certificate it issued for `names`, and the CA's PEM file."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(server)
    pem = tmp_path / "throwaway-ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    return ca, server, pem


# -- proxies ----------------------------------------------------------------------------------------------------


async def test_a_proxy_in_the_environment_carries_the_create_the_polls_and_the_download(tmp_path: Path) -> None:
    async with running_fake_ark(render_seconds=0.3) as fake, running_http_proxy() as proxy:
        data = await generate(ark_settings(tmp_path, fake, network={"HTTP_PROXY": proxy.url}))
    gets = [target.split("?", 1)[0] for method, target in proxy.seen if method == "GET"]
    assert ("POST", f"{fake.url}{TASKS}") in proxy.seen
    assert [target for target in gets if target.startswith(f"{fake.url}{TASKS}")], "no poll went through the proxy"
    assert f"{fake.url}/files/{data['task_id']}.mp4" in gets
    # Everything the fake saw came through the proxy, and the proxy itself saw no trouble.
    assert len(proxy.seen) == len(fake.requests) and proxy.errors == []


@pytest.mark.subprocess
async def test_a_server_process_started_with_a_proxy_in_its_environment_sends_through_it(tmp_path: Path) -> None:
    """As an MCP host starts it: a stdio subprocess whose environment names the proxy (lower case, as shells and
    most tools spell it), the configuration read by httpx in that process."""
    async with running_fake_ark(render_seconds=0.3) as fake, running_http_proxy() as proxy:
        env = server_env(
            tmp_path, SEEDANCE_PROVIDER="ark", SEEDANCE_BASE_URL=fake.base_url, SEEDANCE_API_KEY=SECRET_KEY
        )
        env["http_proxy"] = proxy.url
        with (tmp_path / "stderr.log").open("w") as errlog, anyio.fail_after(30):
            async with Client(stdio_transport(env, errlog)) as client:
                result = await client.call_tool("generate_video", {"prompt": "through the office proxy"})
    data = result.structured_content or {}
    assert data["status"] == "succeeded" and Path(data["video_path"]).is_file(), text_of(result)
    assert ("POST", f"{fake.url}{TASKS}") in proxy.seen
    assert len(proxy.seen) == len(fake.requests) and proxy.errors == []


async def test_no_proxy_naming_the_providers_host_bypasses_the_proxy(tmp_path: Path) -> None:
    async with running_fake_ark(render_seconds=0.3) as fake, running_http_proxy() as proxy:
        await generate(
            ark_settings(tmp_path, fake, network={"HTTP_PROXY": proxy.url, "NO_PROXY": "example.com,127.0.0.1"})
        )
    assert proxy.seen == [] and fake.creates == 1


async def test_an_https_provider_is_reached_through_the_proxys_connect_tunnel(tmp_path: Path) -> None:
    """`https_proxy` (lower case, as curl and most tools spell it) and a provider on HTTPS: the proxy sees only
    CONNECT tunnels to the provider's host, and the provider sees the create, the polls and the download."""
    _ca, server_tls, pem = throwaway_ca(tmp_path, "127.0.0.1")
    async with running_fake_ark(render_seconds=0.3, tls=server_tls) as fake, running_http_proxy() as proxy:
        data = await generate(
            ark_settings(tmp_path, fake, network={"https_proxy": proxy.url, "SSL_CERT_FILE": str(pem)})
        )
    host = fake.url.removeprefix("https://")
    assert proxy.targets("CONNECT") and set(proxy.targets("CONNECT")) == {host}
    assert [m for m, _t in proxy.seen if m != "CONNECT"] == [] and proxy.errors == []
    assert fake.creates == 1 and fake.downloads_of(data["task_id"]) == 1


async def test_a_socks5_proxy_in_all_proxy_carries_every_request(tmp_path: Path) -> None:
    """ALL_PROXY=socks5://… (how Clash and v2ray are usually set up) needs httpx's SOCKS extra: declared."""
    async with running_fake_ark(render_seconds=0.3) as fake, running_socks5_proxy() as proxy:
        await generate(ark_settings(tmp_path, fake, network={"ALL_PROXY": proxy.url}))
    host = fake.url.removeprefix("http://")
    assert proxy.targets("SOCKS5 CONNECT") and set(proxy.targets("SOCKS5 CONNECT")) == {host}
    assert proxy.errors == [] and fake.creates == 1


async def test_the_embedded_sandbox_on_loopback_is_never_sent_to_the_proxy(tmp_path: Path) -> None:
    """Our own 127.0.0.1: a proxy elsewhere could not reach it, and has no business seeing it."""
    async with running_http_proxy() as proxy:
        await generate(make_settings(tmp_path, network={"HTTP_PROXY": proxy.url, "ALL_PROXY": proxy.url}))
    assert proxy.seen == []


def test_the_pools_hold_every_request_the_job_limits_let_through() -> None:
    """Creates and polls (and downloads) are limited above the HTTP clients; their pools must be at least that
    large, or a request would spend its deadline waiting for a connection."""
    defaults: dict[str, Any] = {field.name: field.default for field in dataclasses.fields(JobSettings)}
    assert (API_LIMITS.max_connections or 0) >= defaults["max_concurrent_creates"] + defaults["max_concurrent_polls"]
    assert (DOWNLOAD_LIMITS.max_connections or 0) >= defaults["max_concurrent_downloads"]


# -- certificates -----------------------------------------------------------------------------------------------


async def test_ssl_cert_file_names_the_ca_that_vouches_for_the_provider(tmp_path: Path) -> None:
    """A provider (or a TLS-inspecting corporate proxy) whose certificate comes from a CA of its own: trusted with
    SSL_CERT_FILE, refused without it; refused means nothing was sent, so nothing was created."""
    _ca, server_tls, pem = throwaway_ca(tmp_path, "127.0.0.1")
    async with running_fake_ark(render_seconds=0.3, tls=server_tls) as fake:
        settings = ark_settings(tmp_path / "untrusted", fake, http_timeout=5)
        with anyio.fail_after(30):
            async with Client(create_app(settings)) as client:
                refused = await client.call_tool("generate_video", {"prompt": "a paper boat"})
        assert refused.is_error is True and "CERTIFICATE_VERIFY_FAILED" in text_of(refused), text_of(refused)
        assert fake.creates == 0 and fake.requests == []

        data = await generate(ark_settings(tmp_path / "trusted", fake, network={"SSL_CERT_FILE": str(pem)}))
    assert data["video_url"].startswith("https://127.0.0.1:") and fake.creates == 1


# -- dual-stack hosts -------------------------------------------------------------------------------------------

DUAL_STACK_NAME = "dual-stack.seedance.test"


@contextmanager
def resolving_to_both(monkeypatch: pytest.MonkeyPatch, first: str) -> Generator[None]:
    """DUAL_STACK_NAME resolves to ::1 and 127.0.0.1, `first` first (as getaddrinfo orders them by RFC 6724), in
    this process, whatever /etc/hosts says; every other name resolves as usual."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name != DUAL_STACK_NAME:
            return real(host, port, *args, **kwargs)
        v6 = (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("::1", int(port), 0, 0))
        v4 = (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", int(port)))
        return [v6, v4] if first == "::1" else [v4, v6]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield


def ipv6_loopback_works() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@contextmanager
def not_answering(address: str, port: int, *, silent: bool) -> Generator[None]:
    """`address`:`port` refuses connections, or (`silent`) never completes them: a listener whose one-place accept
    queue is already full drops every SYN, as a firewall does (a broken IPv6 route looks like this)."""
    if not silent:
        yield
        return
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family) as listener, socket.socket(family) as parked:
        if family == socket.AF_INET6:
            listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        listener.bind((address, port))
        listener.listen(0)
        parked.connect((address, port))  # fills the queue: nothing is ever accepted
        yield


@pytest.mark.parametrize(
    ("listening", "other", "silent"),
    [("127.0.0.1", "::1", True), ("127.0.0.1", "::1", False), ("::1", "127.0.0.1", True), ("::1", "127.0.0.1", False)],
    ids=["v4-listens-v6-drops", "v4-listens-v6-refuses", "v6-listens-v4-drops", "v6-listens-v4-refuses"],
)
async def test_a_provider_whose_name_resolves_to_both_families_is_reached_on_the_one_that_listens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listening: str, other: str, silent: bool
) -> None:
    """Happy eyeballs (anyio's connect_tcp under httpx): the address tried first may refuse or, worse, drop the
    connection silently; the other is tried 250 ms later and the create, the polls and the download all arrive."""
    if (listening == "::1" or silent) and not ipv6_loopback_works():
        pytest.skip("IPv6 is disabled on this machine (no ::1 to listen on): this dual-stack case cannot be staged")
    with resolving_to_both(monkeypatch, first=other):
        async with running_fake_ark(render_seconds=0.3, host=listening, name=DUAL_STACK_NAME) as fake:
            port = int(fake.url.rsplit(":", 1)[1])
            with not_answering(other, port, silent=silent):
                data = await generate(ark_settings(tmp_path, fake, http_timeout=5))
    assert data["video_url"].startswith(f"http://{DUAL_STACK_NAME}:")
    assert fake.creates == 1 and fake.downloads_of(data["task_id"]) == 1
