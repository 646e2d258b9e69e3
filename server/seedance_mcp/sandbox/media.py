"""The sandbox's videos and last frames (each task's own clip, clips.py; the shipped 2 s sample only for a
`[[size_mb=N]]` video padded to a size), and the `/media/{name}` route every dialect's signed video URL points at."""

from __future__ import annotations

import base64
import struct
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from seedance_mcp.sandbox.clips import FPS, Clip, clip_size, make_clip
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
        png = last_frame_png() if state.sample_clips else (await task_clip(state, task)).last_frame_png
        return Response(png, media_type="image/png")
    return await serve_video(state, task, "video/quicktime" if suffix == "mov" else "video/mp4")


async def serve_video(state: SandboxState, task: SandboxTask, media_type: str = "video/mp4") -> Response:
    state.downloads += 1
    if task.video_bytes > len(sample_mp4()):
        return StreamingResponse(
            iterate(padded_mp4(task.video_bytes)),
            media_type=media_type,
            headers={"Content-Length": str(task.video_bytes)},
        )
    video = sample_mp4() if state.sample_clips else (await task_clip(state, task)).mp4
    return Response(video, media_type=media_type)


def task_frames(task: SandboxTask) -> int:
    """The frames of a task's clip: `frames`, else `duration` seconds (5 for -1) at 24 fps."""
    if task.frames:
        return task.frames
    return (task.duration if task.duration and task.duration > 0 else 5) * FPS


def task_shape(state: SandboxState, task: SandboxTask, depth: int = 0) -> str:
    """The ratio of a task's clip; "" means its first frame's: the clip of the task that frame is from."""
    if task.clip_ratio or depth > 8 or not (task.first_frame or "").startswith("task:"):
        return task.clip_ratio or "16:9"
    source = state.task((task.first_frame or "")[5:])
    return task_shape(state, source, depth + 1) if source is not None else "16:9"


def task_video(state: SandboxState, task: SandboxTask) -> tuple[int, int, float]:
    """(width, height, seconds) of the clip a task serves, without making it."""
    width, height = clip_size(task_shape(state, task))
    return width, height, task_frames(task) / FPS


async def task_clip(state: SandboxState, task: SandboxTask) -> Clip:
    """A task's clip, made in a worker thread (the event loop keeps serving) and kept in a small cache."""
    first_png: bytes | None = None
    reference = task.first_frame or ""
    if reference.startswith("task:"):
        source = state.task(reference[5:])
        if source is not None and source.id != task.id:
            first_png = (await task_clip(state, source)).last_frame_png
    elif reference.startswith("data:"):
        first_png = base64.b64decode(reference.partition(",")[2])
    return await anyio.to_thread.run_sync(
        make_clip, task.id, task_frames(task), task_shape(state, task), bool(task.generate_audio), first_png
    )


async def iterate(chunks: Any) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk
