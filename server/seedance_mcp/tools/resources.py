"""Results you can see: a finished task's picture for the model, and its files as MCP resources for the client.

- `task_result(task, job)` is what generate_video and get_task_status return: the VideoTask as structured content
  and as JSON text (as before), plus, once the video is saved, an `image` block (the preview JPEG, ≤ 100 KB: a
  contact sheet ending on the last frame; see media/previews.py) and `resource_link` blocks for the saved files.
- `register(server, settings)` adds the resource templates those links point at, served by `resources/read`:
  `seedance://tasks/{task_id}/video` (video/mp4), `…/last-frame` (image/png), `…/preview` (image/jpeg).
  Reads are bounded: a file over the cap is refused with the local path and provider URL to use instead.
"""

from __future__ import annotations

import base64
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import anyio.to_thread
from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.types import CallToolResult, ContentBlock, ImageContent, ResourceLink, TextContent

from seedance_mcp.config import Settings
from seedance_mcp.errors import SeedanceError, TaskNotFound
from seedance_mcp.models import VideoTask
from seedance_mcp.results import task_content, task_text
from seedance_mcp.runtime import LazyRuntime
from seedance_mcp.tools.context import ToolContext

if TYPE_CHECKING:
    from seedance_mcp.journal.job import Job

logger = logging.getLogger(__name__)

VIDEO_URI = "seedance://tasks/{task_id}/video"
LAST_FRAME_URI = "seedance://tasks/{task_id}/last-frame"
PREVIEW_URI = "seedance://tasks/{task_id}/preview"
MAX_VIDEO_BYTES = 50 * 1024 * 1024
"""The largest video `resources/read` returns: base64 in one JSON message grows it by a third."""
MAX_IMAGE_BYTES = 20 * 1024 * 1024


def task_uri(template: str, task_id: str) -> str:
    return template.replace("{task_id}", task_id)


async def task_result(task: VideoTask, job: Job | None = None) -> CallToolResult:
    """A tool result for one task: the VideoTask as structured content, a short text of it (every path and link,
    the next step) for the model, and for a finished job with saved files the preview picture and links to the
    files. Making the preview never fails the call."""
    content: list[ContentBlock] = [TextContent(type="text", text=task_text(task))]
    if job is not None and job.status == "succeeded" and (job.video_path or job.last_frame_path):
        try:
            content.extend(await anyio.to_thread.run_sync(_media_blocks, job, task.task_id))
        except Exception:  # a picture is a bonus: the result stands without it
            logger.exception("the media blocks of %s could not be made", task.task_id)
    return CallToolResult(content=content, structured_content=task_content(task))


def _media_blocks(job: Job, task_id: str) -> list[ContentBlock]:
    """The preview image and the resource links of a finished job's saved files (blocking: a worker thread)."""
    from seedance_mcp.media.previews import ensure_preview

    blocks: list[ContentBlock] = []
    preview = ensure_preview(job.video_path, job.last_frame_path)
    if preview is not None:
        data = _read_capped(job, preview, "preview", MAX_IMAGE_BYTES)
        blocks.append(ImageContent(type="image", data=base64.b64encode(data).decode(), mime_type="image/jpeg"))
    files = (
        (job.video_path, VIDEO_URI, "video/mp4", "Video"),
        (job.last_frame_path, LAST_FRAME_URI, "image/png", "Last frame"),
        (str(preview) if preview else None, PREVIEW_URI, "image/jpeg", "Preview"),
    )
    # Name, title and type say what each file is (its path is in the text and the structured content).
    for path, template, mime_type, title in files:
        size = _regular_size(path) if path is not None else None
        if path is None or size is None:
            continue
        blocks.append(
            ResourceLink(
                type="resource_link",
                uri=task_uri(template, task_id),
                name=Path(path).name,
                title=title,
                mime_type=mime_type,
                size=size,
            )
        )
    return blocks


def register(server: MCPServer[LazyRuntime], settings: Settings) -> None:
    """The resource templates of a task's saved files."""

    @server.resource(
        VIDEO_URI,
        name="task_video",
        title="A finished task's video",
        description=f"The saved MP4 of a finished video task (at most {MAX_VIDEO_BYTES // 2**20} MB).",
        mime_type="video/mp4",
    )
    async def task_video(task_id: str, ctx: ToolContext) -> bytes:
        job = await _job(ctx, task_id)
        return await _read(job, await _video_here(ctx, job), "video", MAX_VIDEO_BYTES)

    @server.resource(
        LAST_FRAME_URI,
        name="task_last_frame",
        title="A finished task's last frame",
        description="The last frame of a finished video task, as a PNG (to chain clips).",
        mime_type="image/png",
    )
    async def task_last_frame(task_id: str, ctx: ToolContext) -> bytes:
        job = await _job(ctx, task_id)
        return await _read(job, job.last_frame_path, "last frame", MAX_IMAGE_BYTES)

    @server.resource(
        PREVIEW_URI,
        name="task_preview",
        title="A finished task's preview",
        description="A small JPEG of a finished video task: frames spread over it, ending on its last frame.",
        mime_type="image/jpeg",
    )
    async def task_preview(task_id: str, ctx: ToolContext) -> bytes:
        from seedance_mcp.media.previews import prepare_preview

        job = await _job(ctx, task_id)
        preview = None
        if job.status == "succeeded":
            preview = await prepare_preview(job.video_path, job.last_frame_path)
        return await _read(job, str(preview) if preview else None, "preview", MAX_IMAGE_BYTES)


async def _job(ctx: ToolContext, task_id: str) -> Job:
    try:
        from mcp.server.auth.middleware.auth_context import get_access_token

        from seedance_mcp.principals import principal_of

        runtime = await ctx.request_context.lifespan_context.get()
        return await runtime.jobs.find(task_id, principal_of(get_access_token()))
    except TaskNotFound:
        raise ResourceNotFoundError(
            f"No task {task_id!r} in this server's journal. Call list_tasks for the task ids it has."
        ) from None
    except SeedanceError as exc:
        raise ResourceError(str(exc)) from exc


async def _video_here(ctx: ToolContext, job: Job) -> str | None:
    """The video's path on this server's disk. Replicas that share no disk: a video another replica saved is
    fetched once from the provider URL into this one's output directory (bounded by the download limits). A video
    not saved yet is left to the worker saving it (one download per video): None."""
    path = job.video_path
    if job.status != "succeeded" or not job.video_url or path is None:
        return path
    if await anyio.to_thread.run_sync(Path(path).is_file):
        return path
    from seedance_mcp.errors import DownloadFailed
    from seedance_mcp.jobs import video_filename

    runtime = await ctx.request_context.lifespan_context.get()
    local = runtime.settings.output_dir / video_filename(job, ".mp4")
    if not await anyio.to_thread.run_sync(local.is_file):
        try:
            await anyio.to_thread.run_sync(lambda: local.parent.mkdir(parents=True, exist_ok=True))
            await runtime.provider.download(job.video_url, local, authenticated=job.video_needs_auth)
        except (DownloadFailed, OSError) as exc:
            raise ResourceError(
                f"The video of task {job.handle} is not on this server's disk and fetching it from the provider "
                f"failed ({exc}); its URL lasts 24 h."
            ) from exc
    return str(local)


async def _read(job: Job, path: str | None, what: str, cap: int) -> bytes:
    """The bytes of one of a job's saved files, or a ResourceError that says why not and what to use instead."""
    if path is None:
        if job.status != "succeeded":
            state = f"it is `{job.status}`"
            advice = f'call get_task_status(task_id="{job.handle}", wait=true) until it has succeeded'
        else:
            state = "it is not saved on this server"
            advice = (
                "the provider sent no last frame (ask for one with return_last_frame=true)"
                if what == "last frame"
                else f'call get_task_status(task_id="{job.handle}") to retry the download'
            )
        raise ResourceError(f"Task {job.handle} has no {what} to read: {state}; {advice}.")
    return await anyio.to_thread.run_sync(_read_capped, job, Path(path), what, cap)


def _read_capped(job: Job, path: Path, what: str, cap: int) -> bytes:
    """The file's bytes, read through one descriptor: a link put where the file was is not followed, a FIFO or
    device is not waited on, and no more than `cap` bytes are ever read (a file that grew after its size was
    seen is refused by what the read returns)."""
    from seedance_mcp.media.files import FileRefused, read_regular_file

    try:
        return read_regular_file(path, cap)
    except FileRefused as refused:
        if refused.refusal == "missing":
            raise ResourceError(
                f"The {what} of task {job.handle} was saved at {path} but is no longer there (moved or deleted)."
            ) from None
        if refused.refusal == "link":
            raise ResourceError(
                f"The {what} of task {job.handle} at {path} has been replaced by a symbolic link, which is not "
                "followed; it was not read."
            ) from None
        if refused.refusal == "not_regular":
            raise ResourceError(
                f"The {what} of task {job.handle} at {path} is not a regular file any more; it was not read."
            ) from None
        if refused.refusal == "too_big":
            raise _over_cap(job, what, "still growing" if refused.growing else f"{refused.size:,} bytes", cap) from None
        raise ResourceError(f"The {what} of task {job.handle} at {path} cannot be read ({refused.detail}).") from None


def _over_cap(job: Job, what: str, size: str, cap: int) -> ResourceError:
    elsewhere = f"open video_path ({job.video_path})" if job.video_path else "use the saved file"
    if job.video_url:
        elsewhere += " or download video_url"
    return ResourceError(
        f"The {what} of task {job.handle} is {size}, over the {cap:,}-byte limit of resources/read: {elsewhere} "
        "instead."
    )


def _regular_size(path: str) -> int | None:
    """The size of the regular file at `path` (not following a link), or None."""
    import stat

    try:
        info = os.lstat(path)
    except OSError:
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


__all__ = ["LAST_FRAME_URI", "PREVIEW_URI", "VIDEO_URI", "register", "task_result", "task_uri"]
