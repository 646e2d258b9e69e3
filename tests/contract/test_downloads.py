"""Downloads fail loudly and only once: every failure is a DownloadFailed with the right flags, nothing half-saved
stays behind, a cut-off video is never taken for a whole one, and abandoned part files are swept. Real HTTP on
127.0.0.1 (tests/fakes/tiny_http.py), so the bytes go through httpx and h11 as in production."""

from __future__ import annotations

import inspect
import io
import os
import struct
import subprocess
import sys
import time
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from seedance_mcp.catalog import PRESETS
from seedance_mcp.errors import DownloadFailed
from seedance_mcp.media.mp4 import video_structure_problem
from seedance_mcp.providers import dialect_for
from seedance_mcp.providers._http import DOWNLOAD_ERRORS, RetryPolicy, download_error
from seedance_mcp.providers.client import ProviderClient
from seedance_mcp.providers.download import SMALL_BODY, DownloadLimits
from seedance_mcp.providers.partial_files import partial_path, sweep_partial_files
from seedance_mcp.sandbox.media import last_frame_png, sample_mp4
from tests.conftest import SECRET_KEY
from tests.fakes.tiny_http import Handler, Seen, TinyServer, answer, serving

pytestmark = pytest.mark.anyio

FAST = RetryPolicy(attempts=3, timeout=5, base_delay=0.001, max_delay=0.002, max_retry_after=0.01)
VIDEO = sample_mp4()


@asynccontextmanager
async def provider_at(
    handler: Handler, *, max_bytes: int = 10 * 1024 * 1024
) -> AsyncGenerator[tuple[ProviderClient, TinyServer]]:
    async with serving(handler) as server, httpx.AsyncClient() as http:
        yield (
            ProviderClient(
                preset=PRESETS["ark"],
                dialect=dialect_for("ark"),
                base_url=f"{server.url}/api/v3",
                api_key=SECRET_KEY,
                http=http,
                retry=FAST,
                download=DownloadLimits(max_bytes=max_bytes, timeout=10),
            ),
            server,
        )


async def failed_download(
    handler: Handler, tmp_path: Path, *, name: str = "v.mp4", url_path: str = "/files/v.mp4", **kw: object
) -> tuple[DownloadFailed, TinyServer]:
    """Download through `handler`, expecting a DownloadFailed; the output directory must be left empty."""
    out = tmp_path / "out"
    out.mkdir()
    async with provider_at(handler) as (client, server):
        with pytest.raises(DownloadFailed) as caught:
            await client.download(f"{server.url}{url_path}", out / name, **kw)  # type: ignore[arg-type]
    assert list(out.iterdir()) == []  # no .part, no final file
    return caught.value, server


def always(data: bytes) -> Handler:
    return lambda seen: data


def in_turn(*answers: bytes) -> Handler:
    """Each request gets the next answer; the last one repeats."""
    queue = list(answers)
    return lambda seen: queue.pop(0) if len(queue) > 1 else queue[0]


async def test_a_whole_video_is_saved_and_nothing_else_is_left(tmp_path: Path) -> None:
    """A sized, complete MP4 is saved under its name and its byte count returned."""
    async with provider_at(always(answer(200, VIDEO, content_type="video/mp4"))) as (client, server):
        size = await client.download(f"{server.url}/files/v.mp4", tmp_path / "v.mp4")
    assert size == len(VIDEO) and (tmp_path / "v.mp4").read_bytes() == VIDEO
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"]


def large_video(size: int = SMALL_BODY + 2 * 1024 * 1024) -> bytes:
    """A valid MP4 larger than what is received whole in memory: the sample and a `free` box of zeros."""
    padding = size - len(VIDEO) - 8
    return VIDEO + struct.pack(">I4s", padding + 8, b"free") + bytes(padding)


async def test_a_large_video_is_streamed_to_disk_whole(tmp_path: Path) -> None:
    """Over SMALL_BODY, with a Content-Length: streamed piece by piece into the part file, checked, renamed."""
    big = large_video()
    async with provider_at(always(answer(200, big, content_type="video/mp4"))) as (client, server):
        size = await client.download(f"{server.url}/files/v.mp4", tmp_path / "v.mp4")
    assert size == len(big) and (tmp_path / "v.mp4").read_bytes() == big
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"]


async def test_a_large_video_cut_off_midway_is_retried_and_never_saved_short(tmp_path: Path) -> None:
    big = large_video()
    whole = answer(200, big, content_type="video/mp4")
    cut = whole[: len(whole) - len(big) // 3]
    async with provider_at(in_turn(cut, whole)) as (client, server):
        size = await client.download(f"{server.url}/files/v.mp4", tmp_path / "v.mp4")
        assert len(server.seen) == 2
    assert size == len(big) and (tmp_path / "v.mp4").read_bytes() == big
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"]


async def test_a_large_body_that_is_no_video_is_refused_and_its_part_file_removed(tmp_path: Path) -> None:
    error, server = await failed_download(
        always(answer(200, bytes(SMALL_BODY + 1024), content_type="video/mp4")), tmp_path
    )
    assert error.permanent and "ftyp" in str(error) and len(server.seen) == 1


async def test_a_redirect_loop_fails_this_download_but_not_for_good(tmp_path: Path) -> None:
    """A URL that redirects forever is a DownloadFailed (not httpx.TooManyRedirects), not retried within this
    download, and not permanent: the fault may pass, and a fresh URL may not loop (the worker tries again later)."""
    error, server = await failed_download(always(answer(302, headers={"Location": "/files/v.mp4"})), tmp_path)
    assert not error.permanent and not error.expired and error.over_cap is None
    assert len(server.seen) == 11  # the first request and ten redirects, once: not retried


async def test_a_body_that_fails_to_decode_is_a_download_failure(tmp_path: Path) -> None:
    """`Content-Encoding: gzip` on a body that is not gzip: retried, then a (transient) DownloadFailed."""
    bad = answer(200, b"this is not gzip at all", headers={"Content-Encoding": "gzip"}, content_type="video/mp4")
    error, server = await failed_download(always(bad), tmp_path)
    assert not error.permanent and "DecodingError" in str(error)
    assert len(server.seen) == FAST.attempts


async def test_non_http_and_invalid_urls_are_refused_unsent(tmp_path: Path) -> None:
    """A file:// URL or a URL httpx cannot parse never reaches the network; not permanent (only a file that is no
    video is): the provider's next, fresh URL may be sound."""
    async with provider_at(always(answer(200, VIDEO))) as (client, server):
        for url in ("file:///etc/passwd", "ftp://example.com/v.mp4", "http://[::1/v.mp4", "http://127.0.0.1:99999/v"):
            with pytest.raises(DownloadFailed) as caught:
                await client.download(url, tmp_path / "v.mp4")
            assert not caught.value.permanent, url
        assert server.seen == []
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("status", [403, 404, 410])
async def test_an_expired_signed_url_is_flagged_expired_and_not_retried(status: int, tmp_path: Path) -> None:
    """403/404/410 from the storage: `expired`, so the job layer asks for a fresh URL once."""
    error, server = await failed_download(always(answer(status, "<Error>AccessDenied</Error>")), tmp_path)
    assert error.expired and not error.permanent and error.status_code == status
    assert len(server.seen) == 1


@pytest.mark.parametrize("status", [400, 401, 405, 451])
async def test_other_refusals_are_not_retried_within_the_download(status: int, tmp_path: Path) -> None:
    """A 4xx other than the expiry answers (and 408/429) is not asked again at once; not permanent either (the
    worker tries later, then with a fresh URL)."""
    error, server = await failed_download(always(answer(status, "no")), tmp_path)
    assert not error.permanent and not error.expired and len(server.seen) == 1


async def test_server_errors_are_retried_then_fail_transiently(tmp_path: Path) -> None:
    """5xx and 429 are retried within the download; when they last, the failure is not permanent."""
    error, server = await failed_download(always(answer(503, "busy", headers={"Retry-After": "0"})), tmp_path)
    assert not error.permanent and not error.expired and len(server.seen) == FAST.attempts


async def test_a_video_over_the_size_cap_says_so_whether_declared_or_not(tmp_path: Path) -> None:
    """Over the cap by Content-Length or by the bytes that came: `over_cap` names the cap, so the worker waits for
    it to be raised instead of fetching the video on a timer."""
    big = VIDEO + bytes(2048)
    for sized in (True, False):
        out = tmp_path / f"sized-{sized}"
        out.mkdir()
        handler = always(answer(200, big, sized=sized, content_type="video/mp4"))
        async with provider_at(handler, max_bytes=len(VIDEO) + 1024) as (client, server):
            with pytest.raises(DownloadFailed) as caught:
                await client.download(f"{server.url}/files/v.mp4", out / "v.mp4")
            assert caught.value.over_cap == len(VIDEO) + 1024 and not caught.value.permanent
            assert len(server.seen) == 1
        assert list(out.iterdir()) == []


async def test_a_truncated_unsized_video_is_retried_and_the_whole_one_is_saved(tmp_path: Path) -> None:
    """Half a video without Content-Length looks complete to HTTP; the box walk refuses it and the retry wins."""
    half = answer(200, VIDEO[: len(VIDEO) // 2], sized=False, content_type="video/mp4")
    whole = answer(200, VIDEO, sized=False, content_type="video/mp4")
    async with provider_at(in_turn(half, whole)) as (client, server):
        size = await client.download(f"{server.url}/files/v.mp4", tmp_path / "v.mp4")
        assert len(server.seen) == 2
    assert size == len(VIDEO) and (tmp_path / "v.mp4").read_bytes() == VIDEO
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"]


async def test_a_video_cut_short_every_time_fails_transiently_and_leaves_nothing(tmp_path: Path) -> None:
    """Always truncated: bounded retries, then a DownloadFailed that is neither permanent nor expired."""
    cut = answer(200, VIDEO[:30000], sized=False, content_type="video/mp4")
    error, server = await failed_download(always(cut), tmp_path)
    assert not error.permanent and not error.expired and "mdat" in str(error)
    assert len(server.seen) == FAST.attempts


async def test_a_sized_body_cut_off_midway_is_retried(tmp_path: Path) -> None:
    """Content-Length promised more than came before the connection closed: retried, never saved short."""
    head = answer(200, VIDEO, content_type="video/mp4")
    cut = head[: len(head) - len(VIDEO) // 2]
    async with provider_at(in_turn(cut, head)) as (client, server):
        size = await client.download(f"{server.url}/files/v.mp4", tmp_path / "v.mp4")
        assert len(server.seen) == 2
    assert size == len(VIDEO)


async def test_a_body_that_is_no_video_is_refused_permanently(tmp_path: Path) -> None:
    """An HTML page answered 200 where a video was expected is not saved as `.mp4`, and not fetched again."""
    error, server = await failed_download(always(answer(200, "<html>hello</html>", content_type="text/html")), tmp_path)
    assert error.permanent and len(server.seen) == 1


async def test_an_image_is_not_checked_as_a_video(tmp_path: Path) -> None:
    """The last frame (a PNG) is saved as sent; `kind` defaults from the destination's suffix."""
    png = last_frame_png()
    async with provider_at(always(answer(200, png, sized=False, content_type="image/png"))) as (client, server):
        assert await client.download(f"{server.url}/files/f.png", tmp_path / "f.png") == len(png)
        assert await client.download(f"{server.url}/files/f", tmp_path / "f.bin", kind="image") == len(png)
    async with provider_at(always(answer(200, png, content_type="image/png"))) as (client, server):
        with pytest.raises(DownloadFailed):
            await client.download(f"{server.url}/files/f.png", tmp_path / "g.png", kind="video")


async def test_the_key_goes_only_to_the_providers_own_origin(tmp_path: Path) -> None:
    """An authenticated URL elsewhere is refused unsent; a redirect elsewhere is followed without the key."""
    async with serving(always(answer(200, VIDEO, content_type="video/mp4"))) as storage:

        def api(seen: Seen) -> bytes:
            return answer(302, headers={"Location": f"{storage.url}/signed/v.mp4"})

        async with provider_at(api) as (client, server):
            with pytest.raises(DownloadFailed) as caught:
                await client.download(f"{storage.url}/v.mp4", tmp_path / "a.mp4", authenticated=True)
            assert not caught.value.permanent and storage.seen == []
            size = await client.download(
                f"{server.url}/api/v3/videos/1/content", tmp_path / "b.mp4", authenticated=True
            )
        assert size == len(VIDEO)
        assert server.seen[0].bearer == SECRET_KEY
        assert [seen.headers.get("authorization") for seen in storage.seen] == [None]


async def test_a_failed_fresh_url_look_up_is_a_download_failure() -> None:
    """After an expired URL, a provider that cannot say the new one gives a DownloadFailed, nothing foreign."""
    async with provider_at(always(answer(500, {"error": {"code": "InternalServiceError", "message": "x"}}))) as (
        client,
        _server,
    ):
        with pytest.raises(DownloadFailed) as caught:
            await client.fresh_media_url("cgt-1", "1.5-pro")
    assert not caught.value.permanent


def test_every_httpx_exception_is_mapped_by_name() -> None:
    """Like httpx's own test for httpcore: a new httpx exception class fails here until it is classified."""
    exported = {
        value for name in dir(httpx) if inspect.isclass(value := getattr(httpx, name)) and issubclass(value, Exception)
    }
    mapped = {kind for kind, _retry in DOWNLOAD_ERRORS}
    assert exported - mapped == set()
    request = httpx.Request("GET", "https://example.com/v.mp4")
    for kind in exported:
        if kind is httpx.HTTPStatusError:
            exc = kind("boom", request=request, response=httpx.Response(500, request=request))
        elif issubclass(kind, httpx.RequestError):
            exc = kind("boom", request=request)
        elif issubclass(kind, httpx.StreamError) and kind is not httpx.StreamError:
            exc = kind()  # pyright: ignore[reportCallIssue] - StreamConsumed and its siblings take no message
        else:
            exc = kind("boom")
        error, _retry = download_error(exc, "the video", secret=SECRET_KEY)
        assert isinstance(error, DownloadFailed)


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def problem_of(data: bytes) -> tuple[str, bool] | None:
    return video_structure_problem(io.BytesIO(data), len(data))


def test_the_box_walker_accepts_real_and_valid_layouts() -> None:
    """The sample MP4, a 64-bit `largesize` mdat, and a last box sized 0 ("to the end") all add up."""
    assert problem_of(VIDEO) is None
    ftyp, moov = box(b"ftyp", b"isom\x00\x00\x02\x00"), box(b"moov", b"\x00" * 40)
    media = b"\x01" * 100
    large = struct.pack(">I4sQ", 1, b"mdat", 16 + len(media)) + media
    to_end = struct.pack(">I4s", 0, b"mdat") + media
    assert problem_of(ftyp + moov + large) is None
    assert problem_of(ftyp + moov + to_end) is None
    assert problem_of(ftyp + large + moov) is None


def test_every_truncation_of_the_sample_video_is_refused() -> None:
    """Cut at any byte, even exactly between two boxes, the sample is refused as retryable (not permanent)."""
    for size in range(len(VIDEO)):
        found = problem_of(VIDEO[:size])
        assert found is not None and found[1] is False, size


def test_the_box_walker_refuses_what_is_no_mp4() -> None:
    """No `ftyp` first is permanent; trailing junk and impossible sizes are refused."""
    found = problem_of(b"<html>" + b"x" * 100)
    assert found is not None and found[1] is True
    assert problem_of(VIDEO + b"junk") is not None
    assert problem_of(VIDEO[:32] + struct.pack(">I4s", 4, b"moov") + VIDEO[32:]) is not None


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    return child.pid


@pytest.mark.subprocess
def test_the_sweep_removes_dead_and_stale_part_files_only(tmp_path: Path) -> None:
    """A dead pid's part goes; a live one's stays unless older than a day; other files are never touched."""
    dead = partial_path(tmp_path / "a.mp4", pid=dead_pid())
    live = partial_path(tmp_path / "b.mp4", pid=os.getppid())
    stale = partial_path(tmp_path / "c.mp4", pid=os.getppid())
    mine = partial_path(tmp_path / "d.mp4")
    video = tmp_path / "e.mp4"
    for path in (dead, live, stale, mine, video):
        path.write_bytes(b"x")
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(stale, (two_days_ago, two_days_ago))
    assert sweep_partial_files(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in (live, mine, video))
    assert sweep_partial_files(tmp_path / "missing") == 0
