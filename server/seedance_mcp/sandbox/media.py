"""The sandbox's video and last frame (a real 2 s H.264/AAC MP4 and a PNG, shipped with the package), and the
`/media/{name}` route every dialect's signed video URL points at."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from seedance_mcp.sandbox.http import apply_fault, sandbox_of, take
from seedance_mcp.sandbox.state import SandboxState, SandboxTask


@cache
def sample_mp4() -> bytes:
    return resources.files("seedance_mcp.sandbox").joinpath("assets/sample.mp4").read_bytes()


@dataclass(frozen=True)
class SampleClip:
    """What the sandbox really serves for every task, whatever was asked: the shipped sample's size and length."""

    width: int
    height: int
    seconds: float


@cache
def sample_clip() -> SampleClip:
    """The sample MP4's picture size (its video track's `tkhd`) and length (`mvhd`), read from the file."""
    video = sample_mp4()
    seconds, width, height = 2.0, 320, 180  # what the shipped file holds, should a box not be found
    at = video.find(b"mvhd")
    if at > 0:
        version = video[at + 4]
        scale, length = (
            struct.unpack(">IQ", video[at + 24 : at + 36])
            if version == 1
            else struct.unpack(">II", video[at + 16 : at + 24])
        )
        seconds = length / scale if scale else seconds
    at = video.find(b"tkhd")
    while at > 0:
        end = at + 4 + (92 if video[at + 4] == 1 else 84)
        w, h = struct.unpack(">II", video[end - 8 : end])
        if w and h:  # the audio track's tkhd has no size
            width, height = w >> 16, h >> 16
            break
        at = video.find(b"tkhd", at + 4)
    return SampleClip(width, height, round(seconds, 3))


@cache
def last_frame_png() -> bytes:
    return resources.files("seedance_mcp.sandbox").joinpath("assets/last_frame.png").read_bytes()


def padded_mp4(total_bytes: int, chunk: int = 4 * 1024 * 1024) -> Iterator[bytes]:
    """The sample MP4 grown to `total_bytes` with a trailing `free` box, streamed: still a valid, playable file.

    Lets a benchmark download a video of any size without the sandbox ever holding it in memory.
    """
    video = sample_mp4()
    padding = total_bytes - len(video)
    if padding < 8:
        yield video
        return
    yield video
    # One `free` box holds at most 2^32 - 1 bytes; larger paddings chain boxes.
    while padding >= 8:
        box = min(padding, 2**32 - 1)
        if padding - box and padding - box < 8:
            box -= 8
        yield struct.pack(">I4s", box, b"free")
        remaining = box - 8
        zeros = bytes(min(chunk, remaining))
        while remaining > 0:
            piece = zeros if remaining >= len(zeros) else zeros[:remaining]
            yield piece
            remaining -= len(piece)
        padding -= box


async def media_route(request: Request) -> Response:
    state = sandbox_of(request)
    name = request.path_params["name"]
    task_id, _, suffix = name.rpartition(".")
    task = state.task(task_id)
    if (faulted := await apply_fault(state, "download")) is not None:
        return faulted
    if task is None or task.status(state.clock()) != "succeeded":
        return Response("NoSuchKey", status_code=404)
    if take(state, "download", "expired_url") or request.query_params.get("v") != str(task.url_version):
        # The signature has expired: a fresh status answer carries a new URL.
        task.url_version += 1
        state.save_task(task)
        return Response("AccessDenied: Request has expired", status_code=403)
    if suffix == "png":
        return Response(last_frame_png(), media_type="image/png")
    return await serve_video(state, task, "video/quicktime" if suffix == "mov" else "video/mp4")


async def serve_video(state: SandboxState, task: SandboxTask, media_type: str = "video/mp4") -> Response:
    state.downloads += 1
    if task.video_bytes > len(sample_mp4()):
        return StreamingResponse(
            iterate(padded_mp4(task.video_bytes)),
            media_type=media_type,
            headers={"Content-Length": str(task.video_bytes)},
        )
    return Response(sample_mp4(), media_type=media_type)


async def iterate(chunks: Any) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk
