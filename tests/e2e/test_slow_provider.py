"""A slow provider must not hold a call past its wait: every provider request has a total deadline
(SEEDANCE_HTTP_TIMEOUT), not only httpx's per-read time-outs, which a provider dripping its answer a byte at a time
never trips.

Through the real server (in-memory MCP client) against the socket-level fake Ark's `drip` fault, and at the
provider edge (ProviderClient) against sockets that never answer or never connect.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from anyio.abc import SocketAttribute, SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream
from mcp import Client

from seedance_mcp.app import create_app
from seedance_mcp.catalog import PRESETS
from seedance_mcp.config import Settings
from seedance_mcp.errors import CreateAnswerLost, DownloadFailed, ProviderUnreachable
from seedance_mcp.providers import dialect_for
from seedance_mcp.providers._http import RetryPolicy
from seedance_mcp.providers.client import ProviderClient
from seedance_mcp.providers.download import DownloadLimits
from seedance_mcp.wire import HttpRequest
from tests.conftest import SECRET_KEY, make_settings, text_of
from tests.fakes.fake_ark import TASKS, FakeArk, running_fake_ark

pytestmark = pytest.mark.anyio

HTTP_TIMEOUT = 2.0
WAIT = 6.0
SLACK = 2.0
"""What a call may take beyond its bound: the in-memory client, the journal writes, a loaded CI machine."""


def ark_settings(tmp_path: Path, fake: FakeArk, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "provider": "ark",
        "base_url": fake.base_url,
        "api_key": SECRET_KEY,
        "http_timeout": HTTP_TIMEOUT,
        "wait_seconds": WAIT,
        "reconcile_delays": (0.1, 0.3, 0.6),
        "reconcile_window": HTTP_TIMEOUT + 0.5,
        "reconcile_patience": 5.0,
    }
    values.update(overrides)
    return make_settings(tmp_path, **values)


async def settled(client: Client, task_id: str) -> dict[str, Any]:
    """The job once it has a final state and its files, following it with get_task_status(wait=true)."""
    with anyio.fail_after(30):
        while True:
            result = await client.call_tool("get_task_status", {"task_id": task_id, "wait": True})
            job = result.structured_content or {}
            if job.get("status") not in ("queued", "running", "unknown", "submitting") and (
                job.get("video_path") or job.get("status") != "succeeded"
            ):
                return job
            await anyio.sleep(0.1)


async def test_a_dripping_create_answer_ends_the_call_within_its_wait_and_the_task_is_found(tmp_path: Path) -> None:
    """The create is answered a byte a second (the task IS made): the call returns once the deadline passes, with
    the create reported lost (never "not created"), and the search adopts the task, saved once, paid once."""
    async with running_fake_ark(render_seconds=0.3) as fake:
        fake.add_fault("create", "drip", interval=1.0)
        async with Client(create_app(ark_settings(tmp_path, fake))) as client:
            started = time.monotonic()
            with anyio.fail_after(WAIT + SLACK):
                first = await client.call_tool("generate_video", {"prompt": "a slow provider"})
            took = time.monotonic() - started
            text = text_of(first)
            assert first.is_error is True and "answer was lost" in text and "SEEDANCE_HTTP_TIMEOUT" in text, text
            assert "NotCreated" not in text and "nothing was created" not in text
            job_id = text.split("job `", 1)[1].split("`", 1)[0]
            job = await settled(client, job_id)
    assert took < WAIT + SLACK
    assert job["status"] == "succeeded" and Path(job["video_path"]).is_file()
    assert fake.creates == 1 and fake.downloads_of(job["task_id"]) == 1


async def test_a_dripping_poll_is_cut_off_and_asked_again(tmp_path: Path) -> None:
    """One status answer (single or in a list) drips: cut off at the deadline, asked again, and the job finishes."""
    async with running_fake_ark(render_seconds=0.3) as fake:
        fake.add_fault("list", "drip", interval=1.0)
        fake.add_fault("status", "drip", interval=1.0)
        async with Client(create_app(ark_settings(tmp_path, fake))) as client:
            with anyio.fail_after(WAIT + SLACK):
                result = await client.call_tool("generate_video", {"prompt": "a slow poll"})
            assert result.is_error is False, text_of(result)
            data = result.structured_content or {}
            job = data if data.get("video_path") else await settled(client, data["task_id"])
    dripped = [r for r in fake.requests if r.fault == "drip"]
    assert dripped and all(r.method == "GET" and r.path.startswith(TASKS) for r in dripped)
    assert job["status"] == "succeeded" and Path(job["video_path"]).is_file()
    assert fake.creates == 1 and fake.downloads_of(job["task_id"]) == 1


async def test_a_dripping_download_gives_up_at_the_download_time_limit_and_a_later_try_saves_it(
    tmp_path: Path,
) -> None:
    async with running_fake_ark(render_seconds=0.3) as fake:
        fake.add_fault("download", "drip", interval=1.0)
        settings = ark_settings(tmp_path, fake, download_timeout=HTTP_TIMEOUT)
        async with Client(create_app(settings)) as client:
            with anyio.fail_after(WAIT + SLACK):
                result = await client.call_tool("generate_video", {"prompt": "a slow download"})
            first = result.structured_content or {}
            # The worker tries the download again by itself (at once at this retry scale), so the call may already
            # return the saved video; either way the first try was given up at the time limit.
            assert first["status"] == "succeeded", first
            job = await settled(client, first["task_id"])
    assert job["status"] == "succeeded" and Path(job["video_path"]).is_file()
    assert [r.fault for r in fake.requests if r.path.endswith(".mp4")] == ["drip", None]
    assert list((tmp_path / "videos").glob(".*.part")) == []


# -- at the provider edge ---------------------------------------------------------------------------------------

FAST = RetryPolicy(attempts=2, timeout=10, base_delay=0.01, max_delay=0.02)


@contextmanager
def provider_at(base_url: str, http: httpx.AsyncClient, **kwargs: Any) -> Generator[ProviderClient]:
    yield ProviderClient(
        preset=PRESETS["ark"],
        dialect=dialect_for("ark"),
        base_url=base_url,
        api_key=SECRET_KEY,
        http=http,
        retry=FAST,
        **kwargs,
    )


def create_request(base_url: str) -> HttpRequest:
    return HttpRequest(method="POST", url=f"{base_url}/contents/generations/tasks", json_body={"model": "m"})


async def test_a_create_the_server_read_and_never_answered_is_lost_at_the_deadline() -> None:
    """The request left (the server read it): past the deadline it may exist, so it is lost, not retried."""
    reads = 0

    async def swallow(stream: SocketStream) -> None:
        nonlocal reads
        async with stream:
            await BufferedByteReceiveStream(stream).receive_until(b"\r\n\r\n", 65536)
            reads += 1
            await anyio.sleep_forever()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    base = f"http://127.0.0.1:{listener.extra(SocketAttribute.local_port)}/api/v3"
    async with listener, anyio.create_task_group() as group, httpx.AsyncClient() as http:
        group.start_soon(listener.serve, swallow)
        with provider_at(base, http, request_timeout=0.5) as provider:
            started = time.monotonic()
            with anyio.fail_after(5), pytest.raises(CreateAnswerLost, match=r"no complete answer within 0\.5 s"):
                await provider.submit(create_request(base))
            assert time.monotonic() - started < 2
        group.cancel_scope.cancel()
    assert reads == 1


async def test_a_create_that_never_got_a_connection_is_not_sent_and_may_be_tried_again() -> None:
    """A host that drops the connection attempt: the deadline passes before a byte of the request left, so the
    create is provably not made (ProviderUnreachable, retried within the policy), never a lost answer."""
    with socket.socket() as listener, socket.socket() as parked:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        parked.connect(listener.getsockname())  # the accept queue is full: further SYNs are dropped
        base = f"http://127.0.0.1:{listener.getsockname()[1]}/api/v3"
        async with httpx.AsyncClient(timeout=httpx.Timeout(30)) as http:
            with (
                provider_at(base, http, request_timeout=0.5) as provider,
                anyio.fail_after(5),
                pytest.raises(ProviderUnreachable, match="DeadlineExceeded"),
            ):
                await provider.submit(create_request(base))


async def test_a_dripping_status_answer_is_retried_then_unreachable_within_the_attempts() -> None:
    async with running_fake_ark() as fake, httpx.AsyncClient() as http:
        fake.add_fault("status", "drip", times=-1, interval=0.5)
        with (
            provider_at(fake.base_url, http, request_timeout=0.5) as provider,
            anyio.fail_after(5),
            pytest.raises(ProviderUnreachable, match="no complete answer"),
        ):
            await provider.fetch("cgt-20250101000000-abcde", "1.5-pro")
    assert fake.count("GET", TASKS) == FAST.attempts


async def test_a_dripping_video_fails_at_the_download_time_limit_and_leaves_nothing(tmp_path: Path) -> None:
    """A large video dripped: the total limit holds whatever each read does, and no part file stays behind."""
    async with running_fake_ark() as fake, httpx.AsyncClient() as http:
        task = fake.add_foreign_task()
        fake.add_fault("download", "drip", times=-1, interval=0.2)
        limits = DownloadLimits(timeout=1.0)
        with provider_at(fake.base_url, http, download=limits) as provider:
            started = time.monotonic()
            with anyio.fail_after(5), pytest.raises(DownloadFailed, match="did not finish within 1 s"):
                await provider.download(f"{fake.url}/files/{task.id}.mp4", tmp_path / "v.mp4")
            assert time.monotonic() - started < 3
    assert list(tmp_path.iterdir()) == []
