"""`resources/read` of a task's files reads the file the server saved, and no more than its cap.

Through the real MCP client (both protocol eras) against the app on the embedded sandbox: after the video is
saved, something else is put where it was — a symbolic link to a file outside, a FIFO, a file larger than the cap
whose size was reported small — and the read is refused without returning a byte of it.
"""

from __future__ import annotations

import base64
import contextlib
import os
import stat
import sys
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, MCPError
from mcp.types import BlobResourceContents, CallToolResult, ImageContent

from seedance_mcp.app import create_app
from seedance_mcp.tools import resources
from tests.conftest import make_settings, text_of

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(sys.platform == "win32", reason="symbolic links and FIFOs as on POSIX"),
]

MODES = ["auto", "legacy"]
SECRET = b"root:x:0:0:root:/root:/bin/bash\n" * 64


async def finished_video(client: Client) -> tuple[CallToolResult, dict[str, Any]]:
    result = await client.call_tool("generate_video", {"prompt": "a kitten yawns", "duration": 5})
    assert result.is_error is False, text_of(result)
    data = result.structured_content or {}
    assert data["status"] == "succeeded" and data["video_path"]
    return result, data


def everything_read(contents: list[Any]) -> bytes:
    return b"".join(
        base64.b64decode(c.blob) if isinstance(c, BlobResourceContents) else c.text.encode() for c in contents
    )


@pytest.mark.parametrize("mode", MODES)
async def test_a_symlink_put_where_the_saved_video_was_is_refused_and_its_target_never_returned(
    tmp_path: Path, mode: str
) -> None:
    outside = tmp_path / "outside" / "passwd"
    outside.parent.mkdir()
    outside.write_bytes(SECRET)
    with anyio.fail_after(20):
        async with Client(create_app(make_settings(tmp_path, sandbox_render_seconds=0.1)), mode=mode) as client:
            _, data = await finished_video(client)
            video = Path(data["video_path"])
            video.unlink()
            video.symlink_to(outside)
            with pytest.raises(MCPError) as caught:
                await client.read_resource(f"seedance://tasks/{data['task_id']}/video")
            status = await client.call_tool("get_task_status", {"task_id": data["task_id"]})
    assert "symbolic link" in str(caught.value) and b"root:x" not in str(caught.value).encode()
    # The status call's picture and links never carry the link's target either.
    shown = b"".join(
        base64.b64decode(b.data) if isinstance(b, ImageContent) else getattr(b, "text", "").encode()
        for b in status.content
    )
    assert b"root:x" not in shown


@pytest.mark.parametrize("mode", MODES)
async def test_a_symlink_put_where_the_preview_was_is_never_shown_to_the_model(tmp_path: Path, mode: str) -> None:
    with anyio.fail_after(20):
        async with Client(create_app(make_settings(tmp_path, sandbox_render_seconds=0.1)), mode=mode) as client:
            result, data = await finished_video(client)
            (preview,) = [b for b in result.content if isinstance(b, ImageContent)]
            assert base64.b64decode(preview.data)[:2] == b"\xff\xd8"
            cached = Path(data["video_path"] + ".preview.jpg")
            outside = tmp_path / "secret.jpg"
            outside.write_bytes(SECRET)
            newer = os.stat(data["video_path"]).st_mtime + 60
            os.utime(outside, (newer, newer))  # "newer" than the video, as a fresh preview would be
            cached.unlink()
            cached.symlink_to(outside)
            status = await client.call_tool("get_task_status", {"task_id": data["task_id"]})
            try:
                read = everything_read(
                    (await client.read_resource(f"seedance://tasks/{data['task_id']}/preview")).contents
                )
            except MCPError as exc:
                read = str(exc).encode()
    images = [base64.b64decode(b.data) for b in status.content if isinstance(b, ImageContent)]
    assert status.is_error is False
    assert all(b"root:x" not in image for image in images)
    assert [image[:2] for image in images] == [b"\xff\xd8"], "the preview is made again over the link"
    assert cached.is_file() and not cached.is_symlink()
    assert b"root:x" not in read


@pytest.mark.parametrize("mode", MODES)
async def test_a_fifo_put_where_the_saved_last_frame_was_is_refused_at_once(tmp_path: Path, mode: str) -> None:
    async with Client(create_app(make_settings(tmp_path, sandbox_render_seconds=0.1)), mode=mode) as client:
        with anyio.fail_after(20):
            result = await client.call_tool(
                "generate_video", {"prompt": "a kitten yawns", "duration": 5, "return_last_frame": True}
            )
        data = result.structured_content or {}
        frame = Path(data["last_frame_path"])
        frame.unlink()
        os.mkfifo(frame)
        released: list[bool] = []
        refusal: list[MCPError] = []

        async def release_a_stuck_reader() -> None:
            """A server that waits on the FIFO for a writer is let go after 5 s (so the test ends), and noted."""
            await anyio.sleep(5)
            with contextlib.suppress(OSError):
                os.close(os.open(frame, os.O_WRONLY | os.O_NONBLOCK))
                released.append(True)

        with anyio.fail_after(20):
            async with anyio.create_task_group() as group:
                group.start_soon(release_a_stuck_reader)
                try:
                    await client.read_resource(f"seedance://tasks/{data['task_id']}/last-frame")
                except MCPError as exc:
                    refusal.append(exc)
                group.cancel_scope.cancel()
    assert released == [], "the read waited for a writer on the FIFO"
    (caught,) = refusal
    assert "not a regular file" in str(caught)


@contextmanager
def sizes_reported_as(path: Path, size: int) -> Generator[None]:
    """`stat`/`fstat` of `path` report `size` bytes: the file grew after its size was looked at."""
    real_stat, real_fstat = os.stat, os.fstat
    inode = real_stat(path).st_ino

    def shrunk(info: os.stat_result) -> os.stat_result:
        if info.st_ino != inode:
            return info
        fields = list(info)
        fields[stat.ST_SIZE] = size
        return os.stat_result(fields)

    def fake_stat(target: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        return shrunk(real_stat(target, *args, **kwargs))

    def fake_fstat(fd: int) -> os.stat_result:
        return shrunk(real_fstat(fd))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "stat", fake_stat)
        patch.setattr(os, "fstat", fake_fstat)
        yield


async def test_a_video_that_grew_over_the_cap_after_its_size_was_seen_is_refused_not_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with anyio.fail_after(20):
        async with Client(create_app(make_settings(tmp_path, sandbox_render_seconds=0.1))) as client:
            _, data = await finished_video(client)
            video = Path(data["video_path"])
            video.write_bytes(os.urandom(300_000))  # the file now holds 300 KB, over a 100 KB cap
            monkeypatch.setattr(resources, "MAX_VIDEO_BYTES", 100_000)
            with sizes_reported_as(video, 50_000), pytest.raises(MCPError) as caught:
                await client.read_resource(f"seedance://tasks/{data['task_id']}/video")
    assert "100,000-byte limit" in str(caught.value) and data["video_path"] in str(caught.value)
