"""A labelled contact sheet: several pictures side by side in one PNG, each with a caption under it.

Used to compare takes of one request (and the shots of a storyboard). Pictures arrive as encoded bytes (PNG, JPEG,
whatever Pillow reads); `video_frames` gives the first, middle and last frames of a saved MP4 as PNG bytes. Pillow
and PyAV are imported only when a sheet is made. Everything here is synchronous and blocking: call it from a
worker thread.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from PIL.Image import Image

TILE_MAX_SIDE = 320
"""Each tile's longer side, in pixels (a tile keeps its picture's shape, never enlarged)."""
MAX_COLUMNS = 4
GAP = 6
LABEL_HEIGHT = 22
BACKGROUND = (24, 24, 24)
LABEL_COLOUR = (235, 235, 235)


class ContactSheetError(ValueError):
    """No sheet can be made from these pictures."""


def contact_sheet(images: Sequence[bytes], labels: Sequence[str], *, columns: int | None = None) -> bytes:
    """A PNG of the pictures in a grid, in order, each fitted into a tile with its label under it.

    Tiles have the first picture's shape (others are letter-boxed into it, never cropped), at most `columns` to a
    row (by default up to MAX_COLUMNS). Raises ContactSheetError when there is nothing to show, the labels do not
    match the pictures one to one, or a picture cannot be read.
    """
    from PIL import Image as PILImage
    from PIL import ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

    if not images:
        raise ContactSheetError("no pictures to show")
    if len(labels) != len(images):
        raise ContactSheetError(f"{len(images)} pictures but {len(labels)} labels")
    pictures: list[Image] = []
    for index, data in enumerate(images):
        try:
            with PILImage.open(io.BytesIO(data)) as opened:
                pictures.append(opened.convert("RGB"))
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise ContactSheetError(f"picture {index + 1} ({labels[index]!r}) cannot be read: {exc}") from exc
    across = max(1, min(columns or MAX_COLUMNS, len(pictures)))
    rows = math.ceil(len(pictures) / across)
    width, height = pictures[0].size
    scale = min(1.0, TILE_MAX_SIDE / max(width, height))
    tile = (max(1, round(width * scale)), max(1, round(height * scale)))
    cell = (tile[0], tile[1] + LABEL_HEIGHT)
    sheet = PILImage.new("RGB", (across * cell[0] + GAP * (across + 1), rows * cell[1] + GAP * (rows + 1)), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=LABEL_HEIGHT - 8)
    for index, (picture, label) in enumerate(zip(pictures, labels, strict=True)):
        row, column = divmod(index, across)
        left = GAP + column * (cell[0] + GAP)
        top = GAP + row * (cell[1] + GAP)
        fitted = ImageOps.pad(picture, tile, PILImage.Resampling.LANCZOS, color=BACKGROUND)
        sheet.paste(fitted, (left, top))
        text = _fit_text(draw, label, font, tile[0])
        draw.text((left + 2, top + tile[1] + 3), text, fill=LABEL_COLOUR, font=font)
    buffer = io.BytesIO()
    sheet.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def _fit_text(draw: object, text: str, font: object, width: int) -> str:
    """The label, shortened with an ellipsis until it fits the tile's width."""
    from PIL import ImageDraw

    measure = cast("ImageDraw.ImageDraw", draw)
    candidate = text
    while candidate and measure.textlength(candidate, font=font) > width - 4:  # pyright: ignore[reportArgumentType]
        candidate = candidate[:-2] + "…" if len(candidate) > 2 else ""
        text = candidate
    return candidate


def video_frames(video: Path, count: int = 3) -> list[bytes]:
    """`count` frames of a saved video as PNG bytes: its first, its last, and the rest spread evenly between.

    For 3: first, middle, last. Frames are decoded in order and only the chosen ones (and the latest, which may
    turn out to be the last) are kept. Raises ContactSheetError when the file has no decodable video.
    """
    import av  # lazily: PyAV loads FFmpeg's libraries
    from av.error import FFmpegError

    from seedance_mcp.media.previews import _duration_seconds  # pyright: ignore[reportPrivateUsage]

    inner = max(count - 2, 0)  # frames between the first and the last
    picked: list[object] = []
    last: object | None = None
    try:
        with av.open(str(video)) as container:
            if not container.streams.video:
                raise ContactSheetError(f"{video.name} has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            seconds = _duration_seconds(stream.duration, stream.time_base, container.duration) or 0.0
            targets = [seconds * (i + 1) / (inner + 1) for i in range(inner)]
            for frame in container.decode(stream):
                if last is None and count >= 2:
                    picked.append(frame)  # the first frame
                at = cast("float | None", frame.time)
                while 1 <= len(picked) <= len(targets) and at is not None and at >= targets[len(picked) - 1]:
                    picked.append(frame)
                last = frame
    except FFmpegError as exc:
        raise ContactSheetError(f"{video.name} cannot be decoded: {exc}") from exc
    if last is None:
        raise ContactSheetError(f"{video.name} has no decodable frame")
    picked.append(last)
    pictures: list[bytes] = []
    for frame in picked:
        image = cast("Image", frame.to_image())  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        pictures.append(buffer.getvalue())
    return pictures


def last_video_frame(video: Path) -> bytes:
    """The final frame of a saved video as PNG bytes (to start a new clip from it)."""
    return video_frames(video, 1)[0]
