"""Local reference media that reach the provider: uploaded once per content hash to an S3-compatible bucket (moto
in server mode on loopback, behind tests/s3_server.py, which checks signatures and expiry as S3 does) and shared
through presigned GETs that expire; or, with `serve --http` and a public URL, served by the server itself through
signed links; or refused, saying how to configure one. The provider here is the sandbox on loopback: what it
received is read back from its request log, and the link in it is fetched as the provider would."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import struct
import subprocess
import sys
import time
import wave
import zlib
from collections.abc import AsyncGenerator, Iterator
from contextlib import asynccontextmanager
from fractions import Fraction
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from seedance_mcp.app import create_app
from seedance_mcp.config import load_settings
from seedance_mcp.media.uploads import HostedUploads, link_keys, link_signature
from seedance_mcp.sandbox import SandboxState, running_sandbox
from tests.conftest import SECRET_KEY, make_settings, png_bytes, sandbox_requests, sandbox_stats, text_of
from tests.e2e.test_http_transport import free_port, http_server
from tests.fakes.s3_server import CheckedS3
from tests.fakes.stdio_helpers import server_env, stdio_transport
from tests.fakes.tiny_http import Seen, answer, serving

pytestmark = pytest.mark.anyio

KEY_ID = "AKIATESTUPLOADS00001"
SECRET = "uploads-secret-0123456789abcdefghijklmn"
BUCKET = "seedance-private-bucket"


def mp4(seconds: float, width: int = 640, height: int = 640, fps: int = 24) -> bytes:
    """A real H.264 MP4 (flat grey frames), encoded in-process with PyAV."""
    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "threads": "1"}
        blank = av.VideoFrame(width, height, "yuv420p")
        for plane in blank.planes:
            plane.update(bytes([128]) * plane.buffer_size)
        for index in range(round(seconds * fps)):
            blank.pts, blank.time_base = index, Fraction(1, fps)
            container.mux(stream.encode(blank))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def wav(seconds: float, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(rate)
        file.writeframes(b"\x00\x01" * int(seconds * rate))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def clip() -> bytes:
    return mp4(2.0)


@pytest.fixture
def s3() -> Iterator[CheckedS3]:
    import boto3  # pyright: ignore[reportMissingTypeStubs]

    with CheckedS3({KEY_ID: SECRET}) as server:
        boto3.client(
            "s3",
            endpoint_url=server.endpoint,
            region_name="us-east-1",
            aws_access_key_id=KEY_ID,
            aws_secret_access_key=SECRET,
        ).create_bucket(Bucket=BUCKET)
        yield server


@pytest.fixture
def signing_clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Seconds botocore's signing clock runs ahead of the real one: a test moves it to sign a link anew at a later
    moment, instead of sleeping."""
    import datetime

    import botocore.auth  # pyright: ignore[reportMissingTypeStubs]

    ahead = [0.0]
    real = botocore.auth.get_current_datetime

    def shifted(remove_tzinfo: bool = True) -> datetime.datetime:
        return real(remove_tzinfo) + datetime.timedelta(seconds=ahead[0])

    monkeypatch.setattr(botocore.auth, "get_current_datetime", shifted)
    return ahead


def upload_settings(tmp_path: Path, s3: CheckedS3, sandbox_url: str, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "provider": "ark",
        "base_url": f"{sandbox_url}/api/v3",
        "api_key": SECRET_KEY,
        "upload_url": f"s3://{BUCKET}/refs",
        "upload_endpoint": s3.endpoint,
        "upload_region": "us-east-1",
        "upload_access_key_id": KEY_ID,
        "upload_secret_access_key": SECRET,
    }
    values.update(overrides)
    return make_settings(tmp_path, **values)


def sent_media(requests: list[dict[str, Any]], kind: str) -> list[str]:
    found: list[str] = []
    for entry in requests:
        for item in entry["body"].get("content", []):
            if item.get("type") == kind:
                found.append(item[kind]["url"])
    return found


def our_logs(caplog: pytest.LogCaptureFixture) -> str:
    """Every log line of the process but the S3 server's own (werkzeug's access log names the bucket: it is S3's)."""
    return "\n".join(record.getMessage() for record in caplog.records if not record.name.startswith("werkzeug"))


def assert_no_secret(text: str) -> None:
    for secret in (SECRET, KEY_ID, BUCKET, "refs/"):
        assert secret not in text, f"{secret!r} leaked: {text[:400]}"


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_local_reference_video_reaches_the_provider_as_a_presigned_link_that_works_and_expires(
    tmp_path: Path, s3: CheckedS3, clip: bytes, caplog: pytest.LogCaptureFixture, mode: str
) -> None:
    """The file is uploaded once (HEAD then PUT; the second call's HEAD finds it), the provider receives a presigned
    GET that serves exactly the file, and the link stops working once its hours are over. Neither the result nor a
    log line names the bucket, the object key, the key id or the secret."""
    caplog.set_level(logging.DEBUG)
    (tmp_path / "walk.mp4").write_bytes(clip)
    async with running_sandbox(SandboxState(render_seconds=0.2)) as sandbox:
        settings = upload_settings(tmp_path, s3, sandbox.url, log_level="DEBUG")
        async with Client(create_app(settings), mode=mode) as client:
            first = await client.call_tool(
                "generate_video",
                {"prompt": "the same walk, at night", "model": "2.0", "reference_videos": [str(tmp_path / "walk.mp4")]},
            )
            dry = await client.call_tool(
                "generate_video",
                {
                    "prompt": "the same walk, at dawn",
                    "model": "2.0",
                    "dry_run": True,
                    "reference_videos": [str(tmp_path / "walk.mp4")],
                },
            )
        requests = await sandbox_requests(sandbox)
    assert first.is_error is False and (first.structured_content or {}).get("status") == "succeeded", text_of(first)
    links = sent_media(requests, "video_url")
    assert len(links) == 1 and "X-Amz-Signature=" in links[0] and "X-Amz-Expires=10800" in links[0], links
    assert re.search(r"/refs/[0-9a-f]{64}\.mp4\?", links[0]), links[0]
    server_logs = our_logs(caplog)  # before this test fetches the link itself (httpx logs the URLs it gets)
    puts = [seen for seen in s3.front.seen if seen[0] == "PUT" and seen[1].endswith(".mp4")]
    heads = [seen for seen in s3.front.seen if seen[0] == "HEAD"]
    assert len(puts) == 1 and len(heads) == 2, s3.front.seen  # the dry run's HEAD found it: no second PUT
    async with httpx.AsyncClient() as http:
        fetched = await http.get(links[0])
        assert fetched.status_code == 200 and fetched.content == clip
        ranged = await http.get(links[0], headers={"Range": "bytes=0-99"})
        assert ranged.status_code == 206 and ranged.content == clip[:100]
        s3.front.offset = 3 * 3600 + 5  # three hours and five seconds later
        expired = await http.get(links[0])
        assert expired.status_code == 403 and b"Request has expired" in expired.content
        s3.front.offset = 0
        tampered = await http.get(links[0].replace("X-Amz-Expires=10800", "X-Amz-Expires=99999"))
        assert tampered.status_code == 403 and b"SignatureDoesNotMatch" in tampered.content
        anonymous = await http.get(links[0].split("?", 1)[0])
        assert anonymous.status_code == 403  # never a public object
    shown = (dry.structured_content or {})["dry_run_request"]["body"]["content"][1]["video_url"]["url"]
    assert re.fullmatch(r"<uploaded [0-9a-f]{64}\.mp4, link expires>", shown), shown
    for result in (first, dry):
        assert_no_secret(text_of(result) + str(result.structured_content))
    assert "walk" in server_logs or "generate_video" in server_logs or server_logs  # the logs were captured
    assert_no_secret(server_logs)


async def test_the_upload_sends_a_plain_body_that_stores_without_checksum_extensions_accept(
    tmp_path: Path, s3: CheckedS3, clip: bytes
) -> None:
    """TOS, older MinIO and R2 refuse aws-chunked bodies with checksum trailers (what botocore ≥ 1.36 sends by
    default): the server's PUT is a plain one, so it stores there too."""
    s3.front.plain_bodies_only = True
    (tmp_path / "walk.mp4").write_bytes(clip)
    async with running_sandbox(SandboxState(render_seconds=0.2)) as sandbox:
        settings = upload_settings(tmp_path, s3, sandbox.url)
        async with Client(create_app(settings)) as client:
            made = await client.call_tool(
                "generate_video",
                {"prompt": "x", "model": "2.0", "dry_run": True, "reference_videos": [str(tmp_path / "walk.mp4")]},
            )
    assert made.is_error is False, text_of(made)
    assert [seen[2] for seen in s3.front.seen if seen[0] == "PUT" and seen[1].endswith(".mp4")] == ["ok"]


async def test_identical_calls_with_a_local_video_share_one_job_although_each_link_is_signed_anew(
    tmp_path: Path, s3: CheckedS3, clip: bytes, signing_clock: list[float]
) -> None:
    """The presigned link differs per call (its signing time), but the same file is the same request: the second
    identical call returns the first job instead of paying again."""
    (tmp_path / "walk.mp4").write_bytes(clip)
    arguments = {"prompt": "walk", "model": "2.0", "reference_videos": [str(tmp_path / "walk.mp4")], "wait": False}
    async with running_sandbox(SandboxState(render_seconds=30)) as sandbox:
        settings = upload_settings(tmp_path, s3, sandbox.url)
        async with Client(create_app(settings)) as client:
            first = await client.call_tool("generate_video", arguments)
            signing_clock[0] = 90  # signed a minute and a half later: a new X-Amz-Date, so a different link
            second = await client.call_tool("generate_video", arguments)
        stats = await sandbox_stats(sandbox)
    one, two = first.structured_content or {}, second.structured_content or {}
    assert one.get("job_id") and one["job_id"] == two.get("job_id") and two.get("reused_existing") is True, two
    assert stats["create_attempts"] == 1


async def test_an_approval_id_for_a_call_with_a_local_video_approves_it_when_the_link_is_signed_anew(
    tmp_path: Path, s3: CheckedS3, clip: bytes, signing_clock: list[float]
) -> None:
    """Above SEEDANCE_CONFIRM_ABOVE a client that cannot ask gets an approval id for exactly this video; the call
    that comes back with it re-uploads nothing and signs a new link, and is still that video: it is made, once.
    Another file with the same id is refused."""
    (tmp_path / "walk.mp4").write_bytes(clip)
    (tmp_path / "other.mp4").write_bytes(mp4(2.5))
    call = {"prompt": "walk", "model": "2.0", "reference_videos": [str(tmp_path / "walk.mp4")]}
    async with running_sandbox(SandboxState(render_seconds=0.2)) as sandbox:
        settings = upload_settings(tmp_path, s3, sandbox.url, confirm_above=0.01)
        async with Client(create_app(settings)) as client:
            refused = await client.call_tool("generate_video", call)
            found = re.search(r'approval_id="(apv-[0-9]+-[0-9a-f]+)"', text_of(refused))
            assert refused.is_error is True and found, text_of(refused)
            signing_clock[0] = 90  # signed a minute and a half later: a new X-Amz-Date, so a different link
            other = await client.call_tool(
                "generate_video",
                {**call, "reference_videos": [str(tmp_path / "other.mp4")], "approval_id": found[1]},
            )
            approved = await client.call_tool("generate_video", {**call, "approval_id": found[1]})
        stats = await sandbox_stats(sandbox)
    assert other.is_error is True and "approves another request" in text_of(other), text_of(other)
    assert approved.is_error is False and (approved.structured_content or {}).get("status") == "succeeded", text_of(
        approved
    )
    assert stats["create_attempts"] == 1


async def test_a_provider_error_that_quotes_the_presigned_link_shows_neither_bucket_nor_key(
    tmp_path: Path, s3: CheckedS3, clip: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """A provider that refuses the reference and quotes its URL back (as gateways do): the tool error keeps the
    provider's code and words but shows the link as the uploaded file, not the bucket, key or key id."""
    caplog.set_level(logging.DEBUG)
    (tmp_path / "walk.mp4").write_bytes(clip)

    def refuse(seen: Seen) -> bytes:
        body = json.loads(seen.body or b"{}")
        url = next((i["video_url"]["url"] for i in body.get("content", []) if i.get("type") == "video_url"), "")
        message = f"The parameter video_url {url} cannot be downloaded: 403 Forbidden"
        error = {"code": "InvalidParameter.VideoDownload", "message": message, "param": "content", "type": "BadRequest"}
        return answer(400, {"error": error}, headers={"X-Request-Id": "req-upload-quote-1"})

    async with serving(refuse) as provider:
        settings = upload_settings(tmp_path, s3, provider.url)
        async with Client(create_app(settings)) as client:
            refused = await client.call_tool(
                "generate_video", {"prompt": "x", "model": "2.0", "reference_videos": [str(tmp_path / "walk.mp4")]}
            )
            listed = await client.call_tool("list_tasks", {"detail": True})
            jobs = (listed.structured_content or {}).get("tasks") or []
            statuses = [await client.call_tool("get_task_status", {"task_id": job["task_id"]}) for job in jobs]
    assert statuses, listed.structured_content  # the refused job is in the journal, with the provider's message
    for later in (listed, *statuses):
        assert_no_secret(text_of(later) + json.dumps(later.structured_content))
    message = text_of(refused)
    assert refused.is_error is True and "InvalidParameter.VideoDownload" in message, message
    assert re.search(r"video_url <uploaded [0-9a-f]{64}\.mp4, link expires> cannot be downloaded", message), message
    assert_no_secret(message)
    assert_no_secret(our_logs(caplog))


async def test_a_wrong_key_or_a_missing_bucket_is_refused_and_nothing_reaches_the_provider(
    tmp_path: Path, s3: CheckedS3, clip: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    (tmp_path / "walk.mp4").write_bytes(clip)
    call = {"prompt": "x", "model": "2.0", "reference_videos": [str(tmp_path / "walk.mp4")]}
    async with running_sandbox(SandboxState(render_seconds=0.2)) as sandbox:
        wrong = upload_settings(tmp_path, s3, sandbox.url, upload_secret_access_key="not-the-secret-0123456789")
        unknown = upload_settings(tmp_path, s3, sandbox.url, upload_access_key_id="AKIAUNKNOWN000000000")
        missing = upload_settings(tmp_path, s3, sandbox.url, upload_url="s3://no-such-bucket-here/refs")
        results = []
        for settings in (wrong, unknown, missing):
            async with Client(create_app(settings)) as client:
                results.append(await client.call_tool("generate_video", call))
        stats = await sandbox_stats(sandbox)
    assert stats["create_attempts"] == 0
    # The HEAD before the PUT is refused first (a HEAD answer has no body: S3's code is just 403).
    codes = [
        "refused the credentials (403)",
        "refused the credentials (403)",
        "not found where configured (NoSuchBucket)",
    ]
    for result, code in zip(results, codes, strict=True):
        message = text_of(result)
        assert result.is_error is True and "`reference_videos[0]`" in message and code in message, message
        assert "Nothing was sent" in message and "no-such-bucket-here" not in message, message
        assert_no_secret(message)
    assert not [seen for seen in s3.front.seen if seen[0] == "PUT" and seen[1].startswith(f"/{BUCKET}/")]
    assert_no_secret(our_logs(caplog))
    assert "not-the-secret" not in our_logs(caplog)


@pytest.mark.parametrize(
    ("name", "make", "words"),
    [
        ("short.mp4", lambda: mp4(1.0), ["plays for 1.00 s", "1.8"]),
        ("long.mp4", lambda: mp4(16.0, 640, 640, 24), ["plays for 16.00 s", "1.8-15 s"]),
        ("small.mp4", lambda: mp4(2.0, 320, 240), ["320×240 px", "300-6000"]),
        ("text.mp4", lambda: b"not a video at all" * 100, ["cannot be read", "mp4 or mov"]),
        ("slow.mp4", lambda: mp4(2.0, 640, 640, 12), ["12.00 fps", "24-60 fps"]),
        ("audio.mp4", lambda: wav(2.0), ["audio.mp4 is not an MP4 or MOV video", "mp4, mov"]),
        ("huge.mp4", None, ["the video is 53.5 MB", "at most 50 MB"]),
    ],
)
async def test_a_local_video_outside_the_limits_is_refused_before_any_upload(
    tmp_path: Path, s3: CheckedS3, name: str, make: Any, words: list[str]
) -> None:
    if make is None:
        with (tmp_path / name).open("wb") as sparse:  # its size is refused before a byte is read
            sparse.truncate(51 * 1024 * 1024)
    else:
        (tmp_path / name).write_bytes(make())
    async with running_sandbox(SandboxState(render_seconds=0.2)) as sandbox:
        settings = upload_settings(tmp_path, s3, sandbox.url)
        async with Client(create_app(settings)) as client:
            result = await client.call_tool(
                "generate_video", {"prompt": "x", "model": "2.0", "reference_videos": [str(tmp_path / name)]}
            )
        stats = await sandbox_stats(sandbox)
    message = text_of(result)
    assert result.is_error is True and "`reference_videos[0]`" in message, message
    assert all(word in message for word in words) and "Nothing was sent" in message, message
    assert stats["create_attempts"] == 0
    assert not [seen for seen in s3.front.seen if seen[0] in ("PUT", "HEAD") and name.split(".")[0] in seen[1]]
    assert [seen for seen in s3.front.seen if seen[0] == "PUT"] == [("PUT", f"/{BUCKET}", "ok")]  # the bucket only


async def test_local_videos_over_the_models_total_length_are_refused_before_any_is_paid_for(
    tmp_path: Path, s3: CheckedS3
) -> None:
    """2.0 takes 15 s of reference video in all: two local 8 s videos are refused together, naming the limit."""
    (tmp_path / "eight.mp4").write_bytes(mp4(8.0))
    async with running_sandbox(SandboxState(render_seconds=0.2)) as sandbox:
        settings = upload_settings(tmp_path, s3, sandbox.url)
        async with Client(create_app(settings)) as client:
            result = await client.call_tool(
                "generate_video",
                {"prompt": "x", "model": "2.0", "reference_videos": [str(tmp_path / "eight.mp4")] * 2},
            )
        stats = await sandbox_stats(sandbox)
    message = text_of(result)
    assert result.is_error is True and "`reference_videos`" in message and "16.00 s together" in message, message
    assert "at most 15 s" in message and stats["create_attempts"] == 0


async def test_a_local_audio_and_a_large_image_go_through_the_upload_when_one_is_configured(
    tmp_path: Path, s3: CheckedS3
) -> None:
    """With a bucket, a reference audio is checked (WAV, ≥ 1.8 s) and uploaded rather than inlined; an image over
    the inline limit is uploaded too, a small one stays a data: URL."""
    (tmp_path / "voice.wav").write_bytes(wav(2.0))
    (tmp_path / "short.wav").write_bytes(wav(1.0))
    (tmp_path / "face.png").write_bytes(png_bytes(400, 400))
    padding = b"\x00" * (11 * 1024 * 1024)  # a private ancillary chunk takes the PNG past 10 MB
    chunk = struct.pack(">I", len(padding)) + b"pdDn" + padding + struct.pack(">I", zlib.crc32(b"pdDn" + padding))
    small = png_bytes(600, 600)
    big = small[:-12] + chunk + small[-12:]
    (tmp_path / "big.png").write_bytes(big)
    async with running_sandbox(SandboxState(render_seconds=0.2)) as sandbox:
        settings = upload_settings(tmp_path, s3, sandbox.url)
        async with Client(create_app(settings)) as client:
            made = await client.call_tool(
                "generate_video",
                {
                    "prompt": "x",
                    "model": "2.0",
                    "dry_run": True,
                    "reference_images": [str(tmp_path / "face.png"), str(tmp_path / "big.png")],
                    "reference_audios": [str(tmp_path / "voice.wav")],
                },
            )
            short = await client.call_tool(
                "generate_video",
                {
                    "prompt": "x",
                    "model": "2.0",
                    "reference_images": [str(tmp_path / "face.png")],
                    "reference_audios": [str(tmp_path / "short.wav")],
                },
            )
    assert made.is_error is False, text_of(made)
    urls = [
        item[item["type"]]["url"] for item in (made.structured_content or {})["dry_run_request"]["body"]["content"][1:]
    ]
    assert urls[0].startswith("data:image/png;base64,"), urls[0][:40]
    assert re.fullmatch(r"<uploaded [0-9a-f]{64}\.png, link expires>", urls[1]), urls[1]
    assert re.fullmatch(r"<uploaded [0-9a-f]{64}\.wav, link expires>", urls[2]), urls[2]
    message = text_of(short)
    assert short.is_error is True and "`reference_audios[0]`" in message and "plays for 1.00 s" in message, message


async def test_without_an_upload_a_local_video_is_refused_saying_how_to_configure_one(
    tmp_path: Path, clip: bytes
) -> None:
    (tmp_path / "walk.mp4").write_bytes(clip)
    async with running_sandbox(SandboxState(render_seconds=0.2)) as sandbox:
        settings = make_settings(tmp_path, provider="ark", base_url=f"{sandbox.url}/api/v3", api_key=SECRET_KEY)
        async with Client(create_app(settings)) as client:
            result = await client.call_tool(
                "generate_video", {"prompt": "x", "model": "2.0", "reference_videos": [str(tmp_path / "walk.mp4")]}
            )
        stats = await sandbox_stats(sandbox)
    message = text_of(result)
    assert result.is_error is True and "`reference_videos[0]`" in message, message
    assert "SEEDANCE_UPLOAD_URL=s3://" in message and "SEEDANCE_PUBLIC_URL" in message, message
    assert stats["create_attempts"] == 0


def test_upload_settings_come_from_the_environment_with_the_usual_aws_variables() -> None:
    settings = load_settings(
        {
            "SEEDANCE_UPLOAD_URL": "s3://bucket/some/prefix/",
            "SEEDANCE_UPLOAD_ENDPOINT": "https://tos-s3-cn-beijing.volces.com",
            "AWS_ACCESS_KEY_ID": "AKIAENV",
            "AWS_SECRET_ACCESS_KEY": "env-secret-value",
            "AWS_DEFAULT_REGION": "cn-beijing",
            "SEEDANCE_UPLOAD_LINK_HOURS": "2",
        }
    )
    assert settings.upload_region == "cn-beijing" and settings.upload_link_hours == 2
    assert settings.upload_secret_access_key is not None
    assert "env-secret-value" in settings.secrets() and "env-secret-value" not in repr(settings)
    plain = load_settings({"AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": "x"})
    assert plain.upload_url is None and plain.upload_access_key_id is None  # read only when uploads are configured
    with pytest.raises(ValueError, match=r"s3://bucket"):
        load_settings({"SEEDANCE_UPLOAD_URL": "https://bucket.example.com/prefix"})


TOKEN = "hosted-uploads-token-0123456789"


@asynccontextmanager
async def mcp_over_http(url: str) -> AsyncGenerator[Client]:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


@pytest.mark.subprocess
async def test_hosted_mode_serves_the_upload_through_a_signed_expiring_link_of_serve_http(
    tmp_path: Path, clip: bytes
) -> None:
    """`serve --http` with SEEDANCE_PUBLIC_URL and no bucket: the provider receives a link to the server's own
    `/media/…`, which serves the file without a bearer token (HEAD and Range too). A link with its expiry altered,
    signed with another key, correctly signed but expired, or naming a file not stored gets a refusal without detail;
    the access log masks the signature."""
    (tmp_path / "walk.mp4").write_bytes(clip)
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    async with (
        running_sandbox(SandboxState(render_seconds=0.2)) as sandbox,
        http_server(
            tmp_path,
            "--port",
            str(port),
            SEEDANCE_HTTP_TOKEN=TOKEN,
            SEEDANCE_PUBLIC_URL=public,
            SEEDANCE_PROVIDER="ark",
            SEEDANCE_BASE_URL=f"{sandbox.url}/api/v3",
            SEEDANCE_API_KEY=SECRET_KEY,
            SEEDANCE_ALLOWED_DIRS=str(tmp_path),
            SEEDANCE_UPLOAD_LINK_HOURS="2",
        ) as server,
    ):
        async with mcp_over_http(f"{server.url}/mcp") as client:
            result = await client.call_tool(
                "generate_video",
                {"prompt": "the walk, hosted", "model": "2.0", "reference_videos": [str(tmp_path / "walk.mp4")]},
            )
        links = sent_media(await sandbox_requests(sandbox), "video_url")
        assert result.is_error is False, text_of(result)
        assert len(links) == 1 and links[0].startswith(f"{public}/media/"), links
        link = links[0]
        name = link.split("/media/", 1)[1].split("?", 1)[0]
        query = dict(part.split("=", 1) for part in link.split("?", 1)[1].split("&"))
        expires = int(query["exp"])
        assert 2 * 3600 - 60 <= expires - time.time() <= 2 * 3600 + 5, query
        key_id, key = next(iter(link_keys([(tmp_path / "state" / "approval.key").read_bytes()]).items()))
        assert query["kid"] == key_id and query["sig"] == link_signature(key, name, expires)

        def signed(file: str, until: int, with_key: bytes = key) -> str:
            return f"{public}/media/{file}?exp={until}&kid={key_id}&sig={link_signature(with_key, file, until)}"

        async with httpx.AsyncClient(timeout=10) as http:
            fetched = await http.get(link)
            head = await http.head(link)
            ranged = await http.get(link, headers={"Range": "bytes=10-19"})
            answers = {
                "altered expiry": await http.get(link.replace(f"exp={expires}", f"exp={expires + 3600}")),
                "another key": await http.get(signed(name, expires, b"k" * 32)),
                "expired": await http.get(signed(name, int(time.time()) - 5)),
                "no signature": await http.get(f"{public}/media/{name}"),
                "unknown key id": await http.get(link.replace(f"kid={key_id}", "kid=00000000")),
            }
            missing = await http.get(signed("0" * 64 + ".mp4", int(time.time()) + 60))
            fresh = await http.get(signed(name, int(time.time()) + 60))
        log = server.err()
    assert fetched.status_code == 200 and fetched.content == clip
    assert fetched.headers["content-type"] == "video/mp4"
    assert head.status_code == 200 and int(head.headers["content-length"]) == len(clip)
    assert ranged.status_code == 206 and ranged.content == clip[10:20]
    for why, refusal in answers.items():
        assert refusal.status_code == 403, why
        assert refusal.text == "This link is not valid or has expired.\n", why  # one answer: no oracle
    assert missing.status_code == 404 and fresh.status_code == 200  # the test's own signing is the server's
    assert (tmp_path / "state" / "uploads" / name).read_bytes() == clip
    assert query["sig"] not in log and "sig=***" in log


def test_hosted_files_are_kept_while_a_link_may_fetch_them_and_deleted_after(tmp_path: Path) -> None:
    """Each share moves the file's expiry (its modification time) to its newest link's; the sweep (at most hourly)
    deletes only files every link of which has expired, and abandoned partial writes."""
    now = [1_000_000.0]
    hosted = HostedUploads(tmp_path / "uploads", "https://video.example.com", lambda: [b"s" * 32], 1.0, lambda: now[0])
    first = hosted.share("reference_videos[0]", b"first file", "mp4")
    stored = tmp_path / "uploads" / f"{hashlib.sha256(b'first file').hexdigest()}.mp4"
    assert stored.read_bytes() == b"first file" and stored.stat().st_mtime == 1_000_000 + 3600
    assert f"exp={1_000_000 + 3600}&" in first
    (tmp_path / "uploads" / ".abandoned.part").write_bytes(b"x")
    os.utime(tmp_path / "uploads" / ".abandoned.part", (now[0] - 7200, now[0] - 7200))
    now[0] += 1800  # half an hour later the same file is shared again: its link now lasts until +1.5 h
    hosted.share("reference_videos[0]", b"first file", "mp4")
    assert stored.stat().st_mtime == 1_000_000 + 5400
    now[0] += 3600 + 1  # the first link has expired, the second has not; an hour since the last sweep
    hosted.share("reference_audios[0]", b"second file", "wav")
    assert stored.is_file() and not (tmp_path / "uploads" / ".abandoned.part").exists()
    now[0] += 3600  # every link to the first file has expired
    hosted.share("reference_audios[0]", b"second file", "wav")
    assert not stored.exists()
    assert sorted(p.name for p in (tmp_path / "uploads").iterdir()) == [
        f"{hashlib.sha256(b'second file').hexdigest()}.wav"
    ]


@pytest.mark.subprocess
def test_starting_a_server_with_an_upload_bucket_loads_neither_boto3_nor_pyav() -> None:
    """boto3 (and PyAV, for the checks) load on the first upload, never at start-up: the stdio cold start stays
    lean with SEEDANCE_UPLOAD_URL set."""
    code = (
        "import sys, pathlib, seedance_mcp.app as app, seedance_mcp.config as config; "
        "app.create_app(config.Settings(provider='sandbox', state_dir=pathlib.Path('/nonexistent'), "
        "upload_url='s3://bucket/prefix', upload_endpoint='http://127.0.0.1:9')); "
        "sys.exit(1 if any(m.split('.')[0] in ('boto3', 'botocore', 'av') for m in sys.modules) else 0)"
    )
    import seedance_mcp

    server_root = Path(seedance_mcp.__file__).resolve().parents[1]  # wherever this test file lives
    result = subprocess.run([sys.executable, "-c", code], cwd=server_root, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


@pytest.mark.subprocess
async def test_over_stdio_the_upload_works_and_stderr_names_no_bucket_key_or_secret(
    tmp_path: Path, s3: CheckedS3, clip: bytes
) -> None:
    """The server as a host starts it, configured by the environment (the usual AWS variables), logging at DEBUG:
    the provider gets a working presigned link; stdout carries only the protocol and stderr names neither the
    bucket, the object key, the key id nor the secret."""
    (tmp_path / "walk.mp4").write_bytes(clip)
    async with running_sandbox(SandboxState(render_seconds=0.2)) as sandbox:
        env = server_env(
            tmp_path,
            SEEDANCE_PROVIDER="ark",
            SEEDANCE_BASE_URL=f"{sandbox.url}/api/v3",
            SEEDANCE_API_KEY=SECRET_KEY,
            SEEDANCE_ALLOWED_DIRS=str(tmp_path),
            SEEDANCE_UPLOAD_URL=f"s3://{BUCKET}/refs",
            SEEDANCE_UPLOAD_ENDPOINT=s3.endpoint,
            AWS_REGION="us-east-1",
            AWS_ACCESS_KEY_ID=KEY_ID,
            AWS_SECRET_ACCESS_KEY=SECRET,
        )
        errlog_path = tmp_path / "stderr.log"
        with errlog_path.open("w") as errlog, anyio.fail_after(60):
            async with Client(stdio_transport(env, errlog)) as client:
                made = await client.call_tool(
                    "generate_video",
                    {"prompt": "over stdio", "model": "2.0", "reference_videos": [str(tmp_path / "walk.mp4")]},
                )
        links = sent_media(await sandbox_requests(sandbox), "video_url")
    assert made.is_error is False and (made.structured_content or {}).get("status") == "succeeded", text_of(made)
    log = errlog_path.read_text()
    assert "generate_video" in log or "journal" in log, log[:400]  # the DEBUG log was written
    assert_no_secret(log)
    assert_no_secret(text_of(made) + str(made.structured_content))
    async with httpx.AsyncClient() as http:
        fetched = await http.get(links[0])
    assert fetched.status_code == 200 and fetched.content == clip
