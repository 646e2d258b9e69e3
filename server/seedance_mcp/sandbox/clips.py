"""The clip the sandbox serves for a finished task: an H.264 MP4 made with PyAV that follows the request.

Its length is the one asked for (`duration` or `frames`, at 24 fps), its shape the ratio asked for at a small size
(short side 180 px), it has an AAC track when `generate_audio` is on (a beep on every whole second), and every
frame carries its number and a code strip (the task's tag, the frame's index) that survives H.264 exactly, so a
test reads "this is task X's frame 119" off a decoded frame. With a first frame, frame 0 is that picture.
The last-frame PNG is the clip's last picture at twice its size (each side ≥ 360 px: the server's own image check
then takes it back as the next shot's first frame). Deterministic: the same task gives the same bytes, so a
restarted sandbox makes them again; PyAV and Pillow are imported on the first clip, never at start-up.
"""

from __future__ import annotations

import base64
import hashlib
import io
import math
import re
import struct
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from PIL import Image

FPS = 24
SMALL_SIZES: dict[str, tuple[int, int]] = {
    "16:9": (320, 180),
    "4:3": (240, 180),
    "1:1": (180, 180),
    "3:4": (180, 240),
    "9:16": (180, 320),
    "21:9": (420, 180),
}
"""Sizes whose ratio is the asked one, short side 180 (even sides, as yuv420p needs)."""

CODE_BITS = 24
"""Black/white blocks along the bottom: 12 bits of the task's tag, then 12 bits of the frame index."""

_SANDBOX_MEDIA = re.compile(r"^https?://(?:127\.0\.0\.1|localhost|\[::1\])(?::\d+)?/media/([\w-]+)\.png(?:\?|$)")


@dataclass(frozen=True)
class Clip:
    mp4: bytes
    last_frame_png: bytes
    """The last picture at twice the clip's size (nearest neighbour: the same picture)."""
    frames: int
    width: int
    height: int

    @property
    def seconds(self) -> float:
        return self.frames / FPS


def clip_size(ratio: str) -> tuple[int, int]:
    return SMALL_SIZES.get(ratio, SMALL_SIZES["16:9"])


def nearest_ratio(width: int, height: int) -> str:
    """The fixed ratio closest to a picture's shape (on a log scale), as `adaptive` picks it."""
    shape = width / height
    return min(SMALL_SIZES, key=lambda r: abs(math.log(shape * SMALL_SIZES[r][1] / SMALL_SIZES[r][0])))


def shot_tag(seed: str) -> int:
    """The 12-bit tag a clip made from `seed` (its task id) carries in its code strip."""
    return int.from_bytes(hashlib.sha256(seed.encode()).digest()[4:6], "big") & 0xFFF


def shot_colour(seed: str) -> tuple[int, int, int]:
    digest = hashlib.sha256(seed.encode()).digest()
    return (64 + digest[0] % 160, 64 + digest[1] % 160, 64 + digest[2] % 160)


def first_frame_url(body: dict[str, Any]) -> str | None:
    """The first-frame image of an Ark-shaped create body: the `first_frame` item, or a lone role-less image."""
    content = body.get("content")
    if not isinstance(content, list):
        return None
    images = [
        cast("dict[str, Any]", item)
        for item in cast("list[Any]", content)
        if isinstance(item, dict) and cast("dict[str, Any]", item).get("type") == "image_url"
    ]
    chosen = [i for i in images if i.get("role") == "first_frame"] or (
        images if len(images) == 1 and images[0].get("role") in (None, "") else []
    )
    if not chosen:
        return None
    image = chosen[0].get("image_url")
    url = cast("dict[str, Any]", image).get("url") if isinstance(image, dict) else None
    return url if isinstance(url, str) else None


def first_frame_source(url: str | None, ratio: str) -> tuple[str | None, str]:
    """What a task keeps of its first frame, and the ratio its clip takes: `task:<id>` for the sandbox's own
    last-frame link (resolved when the clip is made), a small PNG data URL fitted to the clip for an inline image,
    nothing for any other URL (the sandbox fetches nothing). `adaptive` takes the image's shape."""
    if url is None:
        return None, ratio if ratio in SMALL_SIZES else "16:9"
    own = _SANDBOX_MEDIA.match(url)
    if own is not None:
        return f"task:{own.group(1)}", ratio if ratio in SMALL_SIZES else ""
    if not url.startswith("data:image/"):
        return None, ratio if ratio in SMALL_SIZES else "16:9"
    from PIL import Image, ImageOps

    header, _, payload = url.partition(",")
    try:
        data = base64.b64decode(payload) if header.endswith(";base64") else payload.encode()
        with Image.open(io.BytesIO(data)) as opened:
            picture = opened.convert("RGB")
    except (ValueError, OSError):
        return None, ratio if ratio in SMALL_SIZES else "16:9"
    chosen = ratio if ratio in SMALL_SIZES else nearest_ratio(*picture.size)
    fitted = ImageOps.fit(picture, clip_size(chosen), Image.Resampling.LANCZOS)
    return _data_url(_png(fitted)), chosen


def _png(picture: Image.Image, *, compress_level: int = 6) -> bytes:
    out = io.BytesIO()
    picture.save(out, "PNG", compress_level=compress_level)
    return out.getvalue()


def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


@lru_cache(maxsize=16)
def make_clip(seed: str, frames: int, ratio: str, audio: bool, first_png: bytes | None = None) -> Clip:
    """The clip of task `seed`: `frames` frames at 24 fps (~75 ms CPU for 5 s with sound; kept, it is ~60 KB)."""
    import av as pyav
    from PIL import Image, ImageOps

    av = cast("Any", pyav)  # PyAV's stubs leave its encoders' packet types unknown
    width, height = clip_size(ratio)
    colour, tag = shot_colour(seed), shot_tag(seed)
    digits = _digits(height)
    base = Image.new("RGB", (width, height), colour)
    first = None
    if first_png is not None:
        with Image.open(io.BytesIO(first_png)) as opened:
            first = ImageOps.fit(opened.convert("RGB"), (width, height), Image.Resampling.LANCZOS)
    fade = FPS // 2
    sample_rate = 24000
    buffer = io.BytesIO()
    last: Image.Image = base
    with av.open(buffer, "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        # threads=1: faster than x264's threads at this size, and one clip stays on one core.
        video.options = {"preset": "ultrafast", "crf": "23", "tune": "zerolatency", "threads": "1"}
        sound = None
        if audio:
            sound = container.add_stream("aac", rate=sample_rate)
            sound.layout = "mono"
            sound.bit_rate = 48_000
            sound.options = {"aac_coder": "fast"}
        tone = _one_second_of_tone(sample_rate) if sound is not None else b""
        sent = 0  # audio samples encoded so far, kept up with the video so the packets interleave
        for index in range(frames):
            if first is not None and index == 0:
                picture = first  # untouched: a continuous cut is checkable on the decoded frame 0
            else:
                picture = Image.blend(first, base, index / fade) if first is not None and index < fade else base.copy()
                digits.draw(picture, f"{index:04d}", (8, 6))
                draw_code(picture, tag, index)
            frame = av.VideoFrame.from_image(picture)
            frame.pts = index
            frame.time_base = Fraction(1, FPS)
            container.mux(video.encode(frame))
            last = picture
            if sound is not None:
                until = (index + 1) * sample_rate // FPS
                while sent < until:
                    n = min(1024, until - sent)
                    at = sent % sample_rate
                    chunk = av.AudioFrame(format="s16", layout="mono", samples=n)
                    chunk.sample_rate = sample_rate
                    chunk.planes[0].update((tone[at * 2 :] + tone)[: n * 2])
                    chunk.pts = sent
                    chunk.time_base = Fraction(1, sample_rate)
                    container.mux(sound.encode(chunk))
                    sent += n
        container.mux(video.encode(None))
        if sound is not None:
            container.mux(sound.encode(None))
    doubled = last.resize((width * 2, height * 2), Image.Resampling.NEAREST)  # pyright: ignore[reportUnknownMemberType]
    return Clip(buffer.getvalue(), _png(doubled, compress_level=1), frames, width, height)


def draw_code(picture: Image.Image, tag: int, index: int) -> None:
    from PIL import ImageDraw

    block = _code_block(picture.width)
    value = (tag << 12) | (index & 0xFFF)
    draw = ImageDraw.Draw(picture)
    top = picture.height - block
    for bit in range(CODE_BITS):
        on = (value >> (CODE_BITS - 1 - bit)) & 1
        left = block + bit * block
        draw.rectangle((left, top, left + block - 1, picture.height - 1), fill=(255, 255, 255) if on else (0, 0, 0))


def read_code(picture: Image.Image) -> tuple[int, int]:
    """(task tag, frame index) read back from a decoded sandbox frame: each block's centre, light or dark."""
    block = _code_block(picture.width)
    grey = picture.convert("L")
    top = picture.height - block
    value = 0
    for bit in range(CODE_BITS):
        left = block + bit * block
        inner = grey.crop((left + block // 4, top + block // 4, left + block - block // 4, picture.height - block // 4))
        from PIL import ImageStat

        value = (value << 1) | (ImageStat.Stat(inner).mean[0] >= 128)
    return value >> 12, value & 0xFFF


def _code_block(width: int) -> int:
    return max(4, min(12, width // (CODE_BITS + 2)))


def _one_second_of_tone(sample_rate: int, hz: int = 440) -> bytes:
    """s16 mono: a quiet 0.1 s beep, then silence to the second; repeated, it beeps on every whole second."""
    beep = sample_rate // 10
    values = [int(8000 * math.sin(2 * math.pi * hz * n / sample_rate)) if n < beep else 0 for n in range(sample_rate)]
    return struct.pack(f"<{sample_rate}h", *values)


class _Digits:
    """The ten digits drawn once (FreeType is the slowest part of a frame), pasted per frame."""

    def __init__(self, height: int) -> None:
        from PIL import Image, ImageDraw, ImageFont

        font = ImageFont.load_default(size=max(12, height // 6))
        _, _, right, bottom = font.getbbox("0", stroke_width=2)
        self.size = (int(right), int(bottom))
        self.glyphs: list[tuple[Image.Image, Image.Image]] = []
        for digit in "0123456789":
            mask = Image.new("L", self.size, 0)
            ImageDraw.Draw(mask).text((0, 0), digit, font=font, fill=255, stroke_width=2, stroke_fill=255)
            ink = Image.new("RGB", self.size, (0, 0, 0))
            ImageDraw.Draw(ink).text((0, 0), digit, font=font, fill=(255, 255, 255), stroke_width=2, stroke_fill=0)
            self.glyphs.append((ink, mask))

    def draw(self, picture: Image.Image, text: str, at: tuple[int, int]) -> None:
        x, y = at
        for ch in text:
            ink, mask = self.glyphs[int(ch)]
            picture.paste(ink, (x, y), mask)
            x += self.size[0]


@lru_cache(maxsize=8)
def _digits(height: int) -> _Digits:
    return _Digits(height)
