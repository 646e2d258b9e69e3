"""A small picture of a finished video, for the model to look at: a JPEG of at most 100 KB.

The picture is a 2×2 contact sheet: three frames spread over the clip and its last frame (the provider's own
last-frame PNG when it sent one, else the video's final frame). When the video cannot be decoded, the last-frame
PNG alone is the picture. Frames are decoded with PyAV (its wheels bundle FFmpeg) and scaled and encoded with
Pillow; both are imported only when a preview is made, never at start-up. The sheet is cached next to the video
(`<video>.preview.jpg`), so a later status call reads the file instead of decoding again.

Everything here is synchronous and blocking: call `prepare_preview` from the event loop (it runs in a worker
thread), the rest from a thread.
"""

from __future__ import annotations

import io
import logging
import math
import os
import stat
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

import anyio.to_thread

if TYPE_CHECKING:
    from PIL.Image import Image

logger = logging.getLogger(__name__)

PREVIEW_MAX_BYTES = 100_000
"""The JPEG's size bound: small enough to hand a model inline."""
PREVIEW_SUFFIX = ".preview.jpg"
SHEET_MAX_SIDE = 768
"""The contact sheet's longer side, in pixels, before any shrinking for size."""
SHEET_FRAMES = 4
SHEET_COLUMNS = 2
SHEET_GAP = 4
SHEET_BACKGROUND = (24, 24, 24)
_QUALITIES = (85, 75, 65, 55, 45, 35)
_SCALES = (1.0, 0.75, 0.5, 0.35, 0.25)


class PreviewError(Exception):
    """No preview can be made from these files."""


def preview_path_for(video_path: str | None, last_frame_path: str | None) -> Path | None:
    """Where the preview of a job's files is cached: next to the video, else next to the last frame."""
    base = video_path or last_frame_path
    return Path(base + PREVIEW_SUFFIX) if base else None


def sample_frames(video: Path, count: int = SHEET_FRAMES, *, need_last: bool = True) -> list[Image]:
    """`count - 1` frames spread over the video (at 1/8, 3/8, 5/8 of it for 4), then its final frame.

    With `need_last=False` decoding stops once the spread frames are found and the final frame is left out (the
    caller has the provider's own). Frames are decoded in order (FFmpeg's threads), and only the chosen ones are
    converted to pictures.
    """
    import av  # lazily: PyAV loads FFmpeg's libraries
    from av.error import FFmpegError

    wanted = max(count - 1, 0)
    picked: list[Image] = []
    try:
        with av.open(str(video)) as container:
            if not container.streams.video:
                raise PreviewError(f"{video.name} has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            seconds = _duration_seconds(stream.duration, stream.time_base, container.duration)
            targets = [seconds * (2 * i + 1) / (2 * wanted) for i in range(wanted)] if seconds and wanted else []
            last = None
            for frame in container.decode(stream):
                at = cast("float | None", frame.time)  # None without a timestamp, whatever the stubs say
                while len(picked) < len(targets) and at is not None and at >= targets[len(picked)]:
                    picked.append(_picture(frame))
                if not need_last and len(picked) == len(targets):
                    break
                last = frame
            if need_last:
                if last is None:
                    raise PreviewError(f"{video.name} has no decodable frame")
                picked.append(_picture(last))
    except FFmpegError as exc:
        raise PreviewError(f"{video.name} cannot be decoded: {exc}") from exc
    return picked


def _picture(frame: object) -> Image:
    """A decoded frame as an RGB picture (PyAV's `to_image` is untyped)."""
    return cast("Image", frame.to_image())  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]


def _duration_seconds(duration: int | None, time_base: object, container_duration: int | None) -> float | None:
    """The stream's length in seconds, from the stream (in its time base) or the container (in microseconds)."""
    from fractions import Fraction

    if duration and isinstance(time_base, Fraction):
        return float(duration * time_base)
    if container_duration:
        return container_duration / 1_000_000
    return None


def contact_sheet(frames: Sequence[Image], *, max_side: int = SHEET_MAX_SIDE) -> Image:
    """The frames in a grid of SHEET_COLUMNS, in order, each tile the first frame's shape; one frame is itself.

    The sheet's longer side is `max_side`.
    """
    from PIL import Image as PILImage
    from PIL import ImageOps

    if not frames:
        raise PreviewError("no frames to show")
    if len(frames) == 1:
        single = frames[0].convert("RGB")
        single.thumbnail((max_side, max_side), PILImage.Resampling.LANCZOS)
        return single
    columns = min(SHEET_COLUMNS, len(frames))
    rows = math.ceil(len(frames) / columns)
    width, height = frames[0].size
    # The largest tile of the frame's shape whose grid fits in a max_side square, never enlarged.
    scale = min(
        1.0,
        (max_side - SHEET_GAP * (columns - 1)) / (columns * width),
        (max_side - SHEET_GAP * (rows - 1)) / (rows * height),
    )
    tile = (max(1, round(width * scale)), max(1, round(height * scale)))
    sheet = PILImage.new(
        "RGB",
        (columns * tile[0] + SHEET_GAP * (columns - 1), rows * tile[1] + SHEET_GAP * (rows - 1)),
        SHEET_BACKGROUND,
    )
    for i, frame in enumerate(frames):
        fitted = ImageOps.fit(frame.convert("RGB"), tile, PILImage.Resampling.LANCZOS)
        row, column = divmod(i, columns)
        sheet.paste(fitted, (column * (tile[0] + SHEET_GAP), row * (tile[1] + SHEET_GAP)))
    return sheet


def encode_jpeg(image: Image, max_bytes: int = PREVIEW_MAX_BYTES) -> bytes:
    """The image as a JPEG of at most `max_bytes`: lower quality first, then smaller, until it fits."""
    from PIL import Image as PILImage

    rgb = image.convert("RGB")
    for scale in _SCALES:
        size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
        scaled = rgb if scale == 1.0 else rgb.resize(size, PILImage.Resampling.LANCZOS)  # pyright: ignore[reportUnknownMemberType]
        for quality in _QUALITIES:
            buffer = io.BytesIO()
            scaled.save(buffer, "JPEG", quality=quality, optimize=True)
            if buffer.tell() <= max_bytes:
                return buffer.getvalue()
    raise PreviewError(f"no JPEG of this picture fits in {max_bytes} bytes")


def make_preview(video: Path | None, last_frame: Path | None, *, max_bytes: int = PREVIEW_MAX_BYTES) -> bytes:
    """The preview JPEG of a video and/or its last-frame PNG: a contact sheet, or the last frame alone."""
    from PIL import Image as PILImage

    last_image: Image | None = None
    if last_frame is not None:
        try:
            with PILImage.open(last_frame) as opened:
                last_image = opened.convert("RGB")
        except (OSError, ValueError) as exc:
            logger.warning("the last frame %s cannot be read: %s", last_frame, exc)
    frames: list[Image] = []
    if video is not None:
        try:
            frames = sample_frames(video, need_last=last_image is None)
        except PreviewError as exc:
            logger.warning("no frames from %s: %s", video, exc)
    if last_image is not None:
        frames.append(last_image)
    if not frames:
        raise PreviewError("neither the video nor a last frame could be read")
    return encode_jpeg(contact_sheet(frames), max_bytes)


def ensure_preview(video_path: str | None, last_frame_path: str | None) -> Path | None:
    """The cached preview of a job's saved files, made now if missing or older than them; None if none can be.

    Blocking (decoding, encoding, file writes): run it in a worker thread. The file is written whole (a temporary
    file renamed into place), so two callers at once both end with a complete preview.
    """
    target = preview_path_for(video_path, last_frame_path)
    if target is None:
        return None
    sources = [Path(p) for p in (video_path, last_frame_path) if p and Path(p).is_file()]
    if not sources:
        return None
    try:
        cached = target.lstat()  # a link put in its place is not the preview: it is made again over the link
        if stat.S_ISREG(cached.st_mode) and cached.st_mtime >= max(source.stat().st_mtime for source in sources):
            return target
    except OSError:
        pass  # not made yet (or unreadable): make it
    video = Path(video_path) if video_path and Path(video_path).is_file() else None
    frame = Path(last_frame_path) if last_frame_path and Path(last_frame_path).is_file() else None
    try:
        data = make_preview(video, frame)
    except (PreviewError, ImportError) as exc:
        logger.warning("no preview for %s: %s", video_path or last_frame_path, exc)
        return None
    # A part file of this call's own (`.{name}.{pid}.part`, the form the start-up sweep removes when abandoned).
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.{os.getpid()}.part")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, target)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        logger.warning("the preview %s cannot be written: %s", target, exc)
        return None
    logger.info("made the preview %s (%d bytes)", target, len(data))
    return target


async def prepare_preview(video_path: str | None, last_frame_path: str | None) -> Path | None:
    """`ensure_preview` in a worker thread: the path of the cached preview JPEG, or None. Never raises (it logs
    why there is none), so the worker may call it as a best-effort step right after a download."""
    if not video_path and not last_frame_path:
        return None
    try:
        return await anyio.to_thread.run_sync(ensure_preview, video_path, last_frame_path)
    except Exception:
        logger.exception("the preview of %s failed", video_path or last_frame_path)
        return None
