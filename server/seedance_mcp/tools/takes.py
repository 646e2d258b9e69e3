"""generate_video's takes and continuations.

- `takes`: several takes of one request, each an ordinary job (jobs/submit.py `submit_takes`), waited on together
  and shown as one result: take 1's fields, every take's id and state, and a contact sheet of their first, middle
  and last frames (media/contact_sheet.py) once all are saved.
- `continue_from` on a model without extend: the clip's last frame becomes the new clip's first frame: the saved
  PNG, else the provider's last-frame URL while it is good, else the saved MP4's final frame (PyAV).
"""

from __future__ import annotations

import base64
import logging
import os
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
from mcp.types import CallToolResult, ImageContent

from seedance_mcp.errors import InvalidArgument, PollFailed, TaskNotFound
from seedance_mcp.models import Take
from seedance_mcp.results import job_result, money
from seedance_mcp.tools.resources import task_result

if TYPE_CHECKING:
    from seedance_mcp.jobs import ProgressCallback
    from seedance_mcp.journal.job import Job
    from seedance_mcp.runtime import Runtime
    from seedance_mcp.wire import VideoRequest

logger = logging.getLogger(__name__)

MAX_TAKES = 4
SHEET_SUFFIX = ".takes.png"


def check_takes(takes: int, request: VideoRequest) -> None:
    """Refuse a number of takes this server does not make, or takes that could only be the same video."""
    if not 1 <= takes <= MAX_TAKES:
        raise InvalidArgument("takes", f"{takes} is out of range", allowed=f"1-{MAX_TAKES}")
    if takes > 1 and request.seed is not None and request.seed != -1:
        raise InvalidArgument(
            "seed",
            "with a fixed seed every take would be the same video",
            allowed="-1 or leave it out (each take then gets its own random seed)",
        )


async def last_frame_of(runtime: Runtime, request: VideoRequest, principal: str) -> VideoRequest:
    """The request with the clip it continues (`continue_from`, held in `first_frame` by validation) replaced by
    that clip's last frame, for a model that starts from a frame."""
    clip = request.continue_from
    if clip is None or request.first_frame != clip:
        return request  # extended by task id (2.5): the reference video is resolved like any other
    from seedance_mcp.validation import CONTINUE_FORMS

    try:
        job = await runtime.jobs.find(clip, principal)
    except TaskNotFound:
        raise InvalidArgument(
            "continue_from",
            f"no clip {clip!r} in this server's journal",
            allowed=CONTINUE_FORMS,
            hint="Call list_tasks.",
        ) from None
    if job.status != "succeeded":
        raise InvalidArgument(
            "continue_from",
            f"clip {clip!r} has no finished video (it is `{job.status}`)",
            allowed=CONTINUE_FORMS,
            hint=f'Wait for it with get_task_status(task_id="{job.handle}", wait=true).',
        )
    frame = await clip_last_frame(runtime, job)
    if frame is None:
        raise InvalidArgument(
            "continue_from",
            f"clip {clip!r} has neither a saved video nor a last frame the provider still serves",
            hint="Pass its last frame as first_frame yourself, or ask for return_last_frame=true next time.",
        )
    return request.model_copy(update={"first_frame": frame})


async def clip_last_frame(runtime: Runtime, job: Job) -> str | None:
    """The clip's last frame to send: a data: URL of the saved PNG, the provider's URL while it is good, or a
    data: URL of the saved MP4's final frame; None when none of them is left."""
    from seedance_mcp.media.contact_sheet import ContactSheetError

    if job.last_frame_path:
        try:
            return await anyio.to_thread.run_sync(_png_data_url, job.last_frame_path, False)
        except (OSError, ContactSheetError) as exc:
            logger.warning("the saved last frame of %s cannot be read: %s", job.handle, exc)
    fresh = (job.video_url_expires_at or float("inf")) > time.time() + 300
    if job.last_frame_url and fresh:
        return job.last_frame_url
    if job.video_path:
        try:
            return await anyio.to_thread.run_sync(_png_data_url, job.video_path, True)
        except (OSError, ContactSheetError) as exc:
            logger.warning("no last frame from %s's video: %s", job.handle, exc)
    if job.task_id is not None:
        snapshot = await runtime.provider.fetch(job.task_id, job.model_key)
        return snapshot.last_frame_url
    return None


def _png_data_url(path: str, from_video: bool) -> str:
    from seedance_mcp.media.contact_sheet import first_frame_png, last_video_frame
    from seedance_mcp.media.inputs import MIN_SIDE

    data = last_video_frame(Path(path)) if from_video else Path(path).read_bytes()
    return "data:image/png;base64," + base64.b64encode(first_frame_png(data, MIN_SIDE)).decode()


async def wait_for_takes(
    runtime: Runtime, jobs: Sequence[Job], seconds: float, report: ProgressCallback, principal: str
) -> list[Job]:
    """Wait (bounded by `seconds`) for every take at once; progress is reported from take 1."""
    waited = list(jobs)

    async def wait(i: int) -> None:
        try:
            waited[i] = await runtime.jobs.wait(jobs[i].job_id, seconds, report if i == 0 else None, principal)
        except PollFailed as exc:  # this take's state is shown as the journal has it; the others go on
            logger.warning("waiting for take %d (%s): %s", i + 1, jobs[i].handle, exc)
            waited[i] = await runtime.jobs.find(jobs[i].job_id, principal)

    async with anyio.create_task_group() as group:
        for i, job in enumerate(jobs):
            if not job.settled:
                group.start_soon(wait, i)
    return waited


async def takes_result(takes: Sequence[tuple[Job, bool]], request: VideoRequest) -> CallToolResult:
    """One result for every take: take 1's fields, each take's id, state and cost, and once all are saved, the
    contact sheet (its path, and as the picture the model sees)."""
    jobs = [job for job, _ in takes]
    first = job_result(jobs[0], reused=takes[0][1])
    listed = [
        Take(
            task_id=job.handle,
            status=job.status,
            video_path=job.video_path,
            cost=money(job.usage_tokens if job.usage_tokens is not None else job.estimated_tokens, job.cost_rate),
        )
        for job in jobs
    ]
    sheet: Path | None = None
    jpeg: bytes | None = None
    if all(job.status == "succeeded" and job.video_path for job in jobs):
        try:
            sheet, jpeg = await anyio.to_thread.run_sync(takes_sheet, jobs)
        except Exception:  # the sheet is a bonus: the takes stand without it
            logger.exception("the contact sheet of %s could not be made", jobs[0].handle)
    task = first.model_copy(
        update={
            "takes": listed,
            "contact_sheet_path": str(sheet) if sheet else None,
            "next_step": _takes_next_step(jobs, request, sheet),
        }
    )
    result = await task_result(task)
    if jpeg is not None:
        image = ImageContent(type="image", data=base64.b64encode(jpeg).decode(), mime_type="image/jpeg")
        result = result.model_copy(update={"content": [*result.content, image]})
    return result


def _takes_next_step(jobs: Sequence[Job], request: VideoRequest, sheet: Path | None) -> str:
    ids = ", ".join(f'"{job.handle}"' for job in jobs)
    waiting = [job.handle for job in jobs if not job.settled]
    failed = [job.handle for job in jobs if job.status in ("failed", "expired", "cancelled")]
    if waiting:
        return (
            f"{len(waiting)} of {len(jobs)} takes are not finished: call get_task_status(task_id=…, wait=true) for "
            f"{', '.join(waiting)}. Do not call generate_video again for them (an identical call returns these takes)."
        )
    saved = [job for job in jobs if job.video_path]
    if not saved:
        return f"No take was made ({', '.join(failed) or ids}): see each take's status."
    compare = f"Show the user the contact sheet at {sheet} (one row per take) and ask which to keep. " if sheet else ""
    draft = " or render it for real with draft_task_id" if request.draft else ""
    failures = f" Takes {', '.join(failed)} failed." if failed else ""
    return (
        f"{len(saved)} takes saved ({', '.join(str(job.video_path) for job in saved)}). {compare}Carry the chosen "
        f"take on with generate_video(continue_from=<its task_id>){draft}.{failures}"
    )


def takes_sheet(jobs: Sequence[Job]) -> tuple[Path, bytes]:
    """The takes' contact sheet, saved next to take 1's video (written whole), and a small JPEG of it."""
    import io

    from PIL import Image as PILImage

    from seedance_mcp.media.contact_sheet import contact_sheet, video_frames
    from seedance_mcp.media.previews import encode_jpeg

    pictures: list[bytes] = []
    labels: list[str] = []
    for number, job in enumerate(jobs, 1):
        frames = video_frames(Path(str(job.video_path)), 3)
        pictures.extend(frames)
        labels.extend(f"take {number} · {where}" for where in ("first", "middle", "last")[: len(frames)])
    png = contact_sheet(pictures, labels, columns=3)
    video = Path(str(jobs[0].video_path))
    target = video.with_name(video.stem + SHEET_SUFFIX)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.{os.getpid()}.part")
    try:
        temporary.write_bytes(png)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    with PILImage.open(io.BytesIO(png)) as opened:
        jpeg = encode_jpeg(opened)
    return target, jpeg
