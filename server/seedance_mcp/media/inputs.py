"""Image, video and audio arguments: URLs pass through, local files become checked `data:` URLs, or, for the
provider to fetch by URL (videos always; audios and images over 10 MB when one is configured), are checked with a
PyAV probe and handed to an upload (`media/uploads.py`).

Local files are only read from the directories the user allows. A file is opened once, without following a link
in its last component and without blocking (a FIFO or a device is refused, never waited on); the opened
descriptor itself is checked (a regular file, really inside an allowed directory) and read with a hard bound, so
nothing swapped in between a check and the read can make the server read, upload or wait on anything else.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import re
import struct
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from seedance_mcp.errors import InvalidArgument
from seedance_mcp.media.files import FileRefused, read_regular_file

if TYPE_CHECKING:
    from seedance_mcp.media.uploads import Uploads

IMAGE_FORMATS = ("jpeg", "png", "webp", "bmp", "tiff", "gif")
MAX_IMAGE_BYTES = 30 * 1024 * 1024
MIN_SIDE, MAX_SIDE = 300, 6000
MIN_ASPECT, MAX_ASPECT = 0.4, 2.5
AUDIO_FORMATS = {"wav": "wav", "mp3": "mpeg"}
MAX_AUDIO_BYTES = 15 * 1024 * 1024
MAX_VIDEO_BYTES = 50 * 1024 * 1024
MIN_VIDEO_PIXELS, MAX_VIDEO_PIXELS = 409_600, 2_086_876
MIN_FPS, MAX_FPS = 24, 60
MIN_REFERENCE_SECONDS = 1.8
"""The provider's shortest reference video or audio (protocol.md §12.2), when the model does not say."""
VIDEO_CODECS = {"h264": "H.264", "hevc": "H.265"}
SOUND_IN_VIDEO = {"aac", "mp3", "mp3float"}
INLINE_IMAGE_BYTES = 10 * 1024 * 1024
"""A local image larger than this goes through the upload path when one is configured: some gateways refuse
`data:` images over 10 MB, and a 30 MB image inlined is 40 MB of the 64 MB request body."""
UPLOAD_HINT = (
    "Configure an upload in the server's environment and restart it: SEEDANCE_UPLOAD_URL=s3://bucket/prefix (AWS S3, "
    "Volcengine TOS, Cloudflare R2, MinIO; SEEDANCE_UPLOAD_ENDPOINT and SEEDANCE_UPLOAD_REGION for a bucket outside "
    "AWS) with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or AWS_PROFILE; or run `serve --http` with "
    "SEEDANCE_PUBLIC_URL. Or pass an https URL of the file instead."
)
MAX_REQUEST_BYTES = 64 * 1024 * 1024
"""The provider refuses a create body over 64 MB (protocol.md §3.4), base64 media included."""
_BODY_HEADROOM = 64 * 1024
"""Room for the provider body's own structure (model, content types, roles) around the values counted."""

MediaKind = Literal["image", "video", "audio"]
ReferenceKind = Literal["video", "audio"]

_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def sniff_image(head: bytes) -> tuple[str, int, int] | None:
    """Format, width and height from an image's header, or None if not an image we take.

    JPEG markers are walked up to the frame header however large the EXIF blocks before it, so pass the whole
    file (it is read whole anyway, bounded by the size limit).
    """
    if head.startswith(b"\x89PNG\r\n\x1a\n") and len(head) >= 24 and head[12:16] == b"IHDR":
        width, height = struct.unpack(">II", head[16:24])
        return "png", width, height
    if head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
        width, height = struct.unpack("<HH", head[6:10])
        return "gif", width, height
    if head.startswith(b"BM") and len(head) >= 26:
        width, height = struct.unpack("<ii", head[18:26])
        return "bmp", abs(width), abs(height)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _webp_size(head)
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return _tiff_size(head)
    if head.startswith(b"\xff\xd8"):
        return _jpeg_size(head)
    return None


def _webp_size(head: bytes) -> tuple[str, int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8 " and len(head) >= 30:
        width, height = struct.unpack("<HH", head[26:30])
        return "webp", width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(head) >= 25:
        bits = int.from_bytes(head[21:25], "little")
        return "webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(head) >= 30:
        return "webp", int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1
    return None


def _tiff_tags(data: bytes) -> tuple[str, dict[int, list[int]]] | None:
    """The byte order and the integer tags of a TIFF's first directory, or None if it is damaged."""
    endian = "<" if data[:2] == b"II" else ">"
    sizes = {3: ("H", 2), 4: ("I", 4)}
    try:
        (offset,) = struct.unpack(endian + "I", data[4:8])
        (count,) = struct.unpack(endian + "H", data[offset : offset + 2])
        tags: dict[int, list[int]] = {}
        for i in range(count):
            entry = data[offset + 2 + 12 * i : offset + 14 + 12 * i]
            tag, kind, n = struct.unpack(endian + "HHI", entry[:8])
            if kind not in sizes or n > len(data):
                continue
            code, width = sizes[kind]
            values = entry[8:12]
            if n * width > 4:  # the values live elsewhere in the file
                (start,) = struct.unpack(endian + "I", entry[8:12])
                values = data[start : start + n * width]
            tags[tag] = list(struct.unpack(endian + code * n, values[: n * width]))
    except (struct.error, IndexError):
        return None
    return endian, tags


def _tiff_size(head: bytes) -> tuple[str, int, int] | None:
    parsed = _tiff_tags(head)
    if parsed is None:
        return None
    tags = parsed[1]
    if tags.get(256) and tags.get(257):
        return "tiff", tags[256][0], tags[257][0]
    return None


def _jpeg_segments(data: bytes) -> Iterator[tuple[int, int]]:
    """(marker, offset) of each JPEG segment, by walking segment lengths, up to the start of scan (SOS)."""
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            i += 1  # stray bytes between segments: decoders skip them too
            continue
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        yield marker, i
        if marker in (0xD9, 0xDA):
            return
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if length < 2:
            return
        i += 2 + length


def _jpeg_size(head: bytes) -> tuple[str, int, int] | None:
    for marker, i in _jpeg_segments(head):
        if marker in _SOF_MARKERS and i + 9 <= len(head):
            height, width = struct.unpack(">HH", head[i + 5 : i + 9])
            return "jpeg", width, height
    return None


def image_is_complete(fmt: str, data: bytes) -> bool:
    """Whether a file whose header sniffed as `fmt` also holds its image data, not just a header."""
    if fmt == "png":
        return _png_complete(data)
    if fmt == "jpeg":
        return _jpeg_complete(data)
    if fmt == "gif":
        flags = data[10] if len(data) > 10 else 0
        table = 3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0
        start = 13 + table
        # at least one image descriptor (0x2C, 10 bytes) with its LZW code size and a data block
        return len(data) >= start + 12 and b"\x2c" in data[start:]
    if fmt == "bmp":
        return _bmp_complete(data)
    if fmt == "webp":
        return _webp_complete(data)
    if fmt == "tiff":
        return _tiff_complete(data)
    return False


def _png_complete(data: bytes) -> bool:
    i, seen_data = 8, False
    while i + 12 <= len(data):
        (length,) = struct.unpack(">I", data[i : i + 4])
        kind = data[i + 4 : i + 8]
        end = i + 12 + length
        if end > len(data):
            return False
        if kind == b"IDAT":
            seen_data = seen_data or length > 0
        if kind == b"IEND":
            return seen_data
        i = end
    return False


def _jpeg_complete(data: bytes) -> bool:
    frame = False
    for marker, i in _jpeg_segments(data):
        frame = frame or marker in _SOF_MARKERS
        if marker == 0xDA and i + 4 <= len(data):
            (length,) = struct.unpack(">H", data[i + 2 : i + 4])
            return frame and len(data) > i + 2 + length  # some entropy-coded data after the scan header
    return False


def _bmp_complete(data: bytes) -> bool:
    if len(data) < 34:
        return False
    (offset,) = struct.unpack("<I", data[10:14])
    width, height = struct.unpack("<ii", data[18:26])
    (bits,) = struct.unpack("<H", data[28:30])
    (compression,) = struct.unpack("<I", data[30:34])
    need = offset + 1
    if compression in (0, 3) and bits:  # uncompressed rows, each padded to 4 bytes
        need = max(need, offset + (bits * abs(width) + 31) // 32 * 4 * abs(height))
    return len(data) >= need


def _webp_complete(data: bytes) -> bool:
    if len(data) < 20:
        return False
    (riff_size,) = struct.unpack("<I", data[4:8])
    if len(data) < 8 + riff_size:
        return False
    i = 12
    while i + 8 <= len(data):
        kind = data[i : i + 4]
        (size,) = struct.unpack("<I", data[i + 4 : i + 8])
        if i + 8 + size > len(data):
            return False
        if kind in (b"VP8 ", b"VP8L", b"ANMF") and size > 0:
            return True
        i += 8 + size + (size & 1)
    return False


def _tiff_complete(data: bytes) -> bool:
    parsed = _tiff_tags(data)
    if parsed is None:
        return False
    tags = parsed[1]
    for offsets_tag, counts_tag in ((273, 279), (324, 325)):
        offsets, counts = tags.get(offsets_tag), tags.get(counts_tag)
        if offsets and counts and len(offsets) == len(counts):
            return all(count > 0 and offset + count <= len(data) for offset, count in zip(offsets, counts, strict=True))
    return False


def check_image(argument: str, data: bytes, size: int | None = None) -> str:
    """The image's format after checking the whole file against Seedance's input limits (protocol.md §3.4)."""
    size = len(data) if size is None else size
    if size >= MAX_IMAGE_BYTES:
        raise InvalidArgument(argument, f"the image is {size / 1e6:.1f} MB", allowed="under 30 MB")
    sniffed = sniff_image(data)
    if sniffed is None:
        raise InvalidArgument(
            argument, "this is not an image Seedance accepts", allowed=", ".join(IMAGE_FORMATS), hint="Convert it."
        )
    fmt, width, height = sniffed
    if not image_is_complete(fmt, data):
        raise InvalidArgument(
            argument,
            f"the {fmt} file is incomplete or damaged (its image data is missing)",
            hint="Export or save the image again and pass the new file.",
        )
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise InvalidArgument(
            argument,
            f"the image is {width}×{height} px",
            allowed=f"each side {MIN_SIDE}-{MAX_SIDE} px",
            hint="Resize the image first.",
        )
    aspect = width / height
    if not (MIN_ASPECT <= aspect <= MAX_ASPECT):
        raise InvalidArgument(
            argument,
            f"the image's width/height is {aspect:.2f}",
            allowed=f"width/height between {MIN_ASPECT} and {MAX_ASPECT}",
            hint="Crop the image first.",
        )
    return fmt


def resolve_media(
    value: str,
    argument: str,
    kind: MediaKind,
    allowed_dirs: Sequence[Path],
    *,
    min_seconds: float | None = None,
    max_seconds: float | None = None,
    uploads: Uploads | None = None,
    lengths: list[float] | None = None,
) -> str:
    """The URL to send for an image/video/audio argument: URLs and `asset://` ids pass untouched, local files are
    read, checked and inlined, or (a video; an audio or a large image when `uploads` is given) uploaded and sent as
    a link that expires. A reference shorter than `min_seconds` (the provider's minimum, 1.8 s) or, uploaded, longer
    than `max_seconds` is refused here, before anything is paid for; its length is added to `lengths`. Blocking:
    call from a thread."""
    text = value.strip()
    if not text:
        raise InvalidArgument(argument, "it is empty", allowed="an https URL, a data: URL or a local file path")
    if "\x00" in text:
        raise InvalidArgument(
            argument,
            "it contains a NUL character, which no URL or file path can hold",
            allowed="an https URL, a data: URL or a local file path",
        )
    lowered = text.lower()
    if lowered.startswith(("https://", "http://", "asset://")):
        return text
    if lowered.startswith("data:"):
        return _check_data_url(text, argument, kind, min_seconds)
    if lowered.startswith("file://"):
        text = text[7:]
    if kind in ("video", "audio") and uploads is not None:
        limit = MAX_VIDEO_BYTES if kind == "video" else MAX_AUDIO_BYTES
        data = read_allowed_file(text, argument, allowed_dirs, limit, what=kind)
        ext, seconds = check_reference(
            argument, data, kind, Path(text).name, min_seconds=min_seconds, max_seconds=max_seconds
        )
        url = uploads.share(argument, data, ext)
        if lengths is not None:
            lengths.append(seconds)
        return url
    if kind == "video":
        raise InvalidArgument(
            argument,
            "a local video reaches the provider only through an upload (Seedance takes video references as URLs), "
            "and this server has none configured",
            allowed="an https URL, an asset:// id, or a local file once an upload is configured",
            hint=UPLOAD_HINT,
        )
    if kind == "audio":
        suffix = Path(text).suffix.lower().lstrip(".")
        if suffix not in AUDIO_FORMATS:
            raise InvalidArgument(argument, f"{Path(text).name} is not wav or mp3", allowed="wav, mp3")
        data = read_allowed_file(text, argument, allowed_dirs, MAX_AUDIO_BYTES, what="audio")
        check_media_length(argument, data, "audio", min_seconds)
        return f"data:audio/{AUDIO_FORMATS[suffix]};base64,{base64.b64encode(data).decode('ascii')}"
    data = read_allowed_file(text, argument, allowed_dirs, MAX_IMAGE_BYTES - 1, what="image")
    fmt = check_image(argument, data)
    if uploads is not None and len(data) > INLINE_IMAGE_BYTES:
        return uploads.share(argument, data, fmt)
    return f"data:image/{fmt};base64,{base64.b64encode(data).decode('ascii')}"


def read_allowed_file(text: str, argument: str, allowed_dirs: Sequence[Path], limit: int, *, what: str) -> bytes:
    """The bytes of a regular file inside an allowed directory, at most `limit` of them, read through one open."""
    real = _resolved(text, argument)
    if not _inside(real, allowed_dirs):
        raise _outside(text, argument, allowed_dirs)
    try:
        return read_regular_file(
            real, limit, opened_where=lambda fd, info: _opened_inside(fd, info, real, allowed_dirs)
        )
    except FileRefused as refused:
        if refused.refusal == "link":
            raise InvalidArgument(
                argument,
                f"{text!r} was replaced by a symbolic link while it was being opened",
                hint="Pass the path of the file itself.",
            ) from None
        if refused.refusal == "missing":
            raise _missing(text, argument) from None
        if refused.refusal == "not_regular":
            raise InvalidArgument(
                argument, f"{text!r} is not a regular file", hint="Pass the path of an image file."
            ) from None
        if refused.refusal == "elsewhere":
            raise _outside(text, argument, allowed_dirs) from None
        if refused.refusal == "too_big":
            raise _too_big(argument, what, refused.size or 0, limit, growing=refused.growing) from None
        raise InvalidArgument(argument, f"{text!r} cannot be read ({refused.detail})") from None


def _resolved(text: str, argument: str) -> Path:
    try:
        return Path(text).expanduser().resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        raise _missing(text, argument) from None


def _inside(path: Path, allowed_dirs: Sequence[Path]) -> bool:
    return any(path.is_relative_to(root) for root in allowed_dirs)


def _opened_inside(fd: int, info: os.stat_result, real: Path, allowed_dirs: Sequence[Path]) -> bool:
    """Whether the file behind `fd` lies in an allowed directory, whatever happened to the path since it was checked.

    The descriptor's own path comes from the kernel where it tells it (Linux, macOS); elsewhere the file opened
    must still be the very file (device and inode) at the checked path.
    """
    opened: str | None = None
    if sys.platform.startswith("linux"):
        try:
            opened = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            opened = None
    elif sys.platform == "darwin":
        import fcntl

        try:
            opened = os.fsdecode(fcntl.fcntl(fd, fcntl.F_GETPATH, bytes(1024)).split(b"\0", 1)[0])
        except OSError:
            opened = None
    if opened is not None and opened.startswith("/"):
        return _inside(Path(opened.removesuffix(" (deleted)")), allowed_dirs)
    try:
        now = os.stat(real, follow_symlinks=False)
    except OSError:
        return False
    return (now.st_dev, now.st_ino) == (info.st_dev, info.st_ino)


def _missing(text: str, argument: str) -> InvalidArgument:
    return InvalidArgument(
        argument,
        f"no file at {text!r}",
        allowed="an https URL, a data: URL or the path of an existing local file",
    )


def _outside(text: str, argument: str, allowed_dirs: Sequence[Path]) -> InvalidArgument:
    where = f"Copy the file into {allowed_dirs[0]}, or add" if allowed_dirs else "Add"
    return InvalidArgument(
        argument,
        f"{text!r} is outside the directories this server may read",
        allowed=", ".join(str(d) for d in allowed_dirs) or "(none)",
        hint=(
            f"{where} its directory to SEEDANCE_ALLOWED_DIRS in the server's environment (several directories "
            f"separated by {os.pathsep!r}; it replaces the defaults) and restart the server."
        ),
    )


def _too_big(argument: str, what: str, size: int, limit: int, *, growing: bool = False) -> InvalidArgument:
    allowed = {"image": "under 30 MB", "video": "at most 50 MB"}.get(what, "at most 15 MB")
    problem = f"the {what} is {size / 1e6:.1f} MB"
    if growing:
        problem = f"the {what} is over {limit / 1e6:.1f} MB (it grew while it was read)"
    return InvalidArgument(argument, problem, allowed=allowed)


def media_seconds(data: bytes | Path) -> float | None:
    """How long an audio or video file (its bytes, or its path) plays, from its container's header (nothing is
    decoded); None when the container does not say. Raises ValueError when it is not a container PyAV can open."""
    import io

    import av  # imported only when a local reference is checked
    from av.error import FFmpegError

    try:
        with av.open(io.BytesIO(data) if isinstance(data, bytes) else str(data), mode="r") as container:
            if container.duration is not None:
                return container.duration / av.time_base
            for stream in container.streams:
                if stream.duration is not None and stream.time_base is not None:
                    return float(stream.duration * stream.time_base)
    except (FFmpegError, OSError) as exc:
        raise ValueError(str(exc)) from exc
    return None


def check_media_length(argument: str, data: bytes, what: str, min_seconds: float | None) -> None:
    """Refuse a reference video or audio shorter than the provider's minimum (protocol.md §12.2: 1.8 s)."""
    if min_seconds is None:
        return
    try:
        seconds = media_seconds(data)
    except ValueError:
        raise InvalidArgument(
            argument,
            f"the {what} cannot be read (not a playable file)",
            allowed="wav or mp3" if what == "audio" else "mp4 or mov",
            hint="Export it again and pass the new file.",
        ) from None
    if seconds is not None and seconds < min_seconds:
        raise InvalidArgument(
            argument,
            f"the {what} plays for {seconds:.2f} s; the provider refuses reference {what}s under {min_seconds:g} s",
            allowed=f"at least {min_seconds:g} s",
            hint=f"Use a longer {what} (or loop or pad this one).",
        )


# -- checking a local reference video or audio ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """What a container's header says, read without decoding a frame."""

    container: str
    brand: str | None
    seconds: float | None
    video_codec: str | None
    width: int
    height: int
    fps: float | None
    audio_codec: str | None


def probe(data: bytes) -> MediaInfo:
    """The container, streams and length of a video or audio file; ValueError if PyAV cannot open it."""
    import av  # imported only when a local reference is checked
    from av.error import FFmpegError
    from av.stream import Disposition

    try:
        with av.open(io.BytesIO(data), mode="r", metadata_errors="ignore") as container:
            videos = [s for s in container.streams.video if not (s.disposition & Disposition.attached_pic)]
            video = videos[0] if videos else None
            audio = container.streams.audio[0] if container.streams.audio else None
            seconds: float | None = None
            for stream in (video, audio):
                if stream is not None and stream.duration and stream.time_base:
                    seconds = max(seconds or 0.0, float(stream.duration * stream.time_base))
            if seconds is None and container.duration:
                seconds = container.duration / av.time_base
            return MediaInfo(
                container=container.format.name,
                brand=container.metadata.get("major_brand"),
                seconds=seconds,
                video_codec=video.codec_context.name if video else None,
                width=video.codec_context.width if video else 0,
                height=video.codec_context.height if video else 0,
                fps=float(video.average_rate) if video and video.average_rate else None,
                audio_codec=audio.codec_context.name if audio else None,
            )
    except (FFmpegError, OSError, ValueError) as exc:
        raise ValueError(str(exc)) from exc


def check_reference(
    argument: str,
    data: bytes,
    kind: ReferenceKind,
    name: str,
    *,
    min_seconds: float | None = None,
    max_seconds: float | None = None,
) -> tuple[str, float]:
    """The file's extension (mp4, mov, wav, mp3) and length after Seedance's input checks (protocol.md §3.4,
    §12.2), or an InvalidArgument naming the argument, what is wrong and the limit."""
    try:
        info = probe(data)
    except ValueError:
        raise InvalidArgument(
            argument,
            f"{name} cannot be read as a {kind} (not a playable file)",
            allowed="mp4 or mov (H.264/H.265)" if kind == "video" else "wav or mp3",
            hint="Export it again and pass the new file.",
        ) from None
    ext = _check_video(argument, name, info) if kind == "video" else _check_audio(argument, name, info)
    low = MIN_REFERENCE_SECONDS if min_seconds is None else min_seconds
    seconds = info.seconds
    allowed = f"{low:g}-{max_seconds:g} s" if max_seconds is not None else f"at least {low:g} s"
    if seconds is None:
        raise InvalidArgument(argument, f"{name} does not say how long it plays", allowed=allowed)
    if seconds < low or (max_seconds is not None and seconds > max_seconds):
        raise InvalidArgument(
            argument,
            f"{name} plays for {seconds:.2f} s; the provider takes reference {kind}s of {allowed}",
            allowed=allowed,
            hint=f"Trim or extend the {kind} first.",
        )
    return ext, seconds


def _check_video(argument: str, name: str, info: MediaInfo) -> str:
    if not info.container.startswith("mov,mp4") or info.brand in ("M4A ", "M4B "):
        raise InvalidArgument(argument, f"{name} is not an MP4 or MOV video", allowed="mp4, mov")
    if info.video_codec not in VIDEO_CODECS:
        raise InvalidArgument(
            argument, f"{name}'s video is {info.video_codec or 'missing'}", allowed="H.264 or H.265 video"
        )
    if info.audio_codec is not None and info.audio_codec not in SOUND_IN_VIDEO:
        raise InvalidArgument(argument, f"{name}'s sound is {info.audio_codec}", allowed="AAC or MP3 sound, or none")
    width, height = info.width, info.height
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise InvalidArgument(argument, f"{name} is {width}×{height} px", allowed=f"each side {MIN_SIDE}-{MAX_SIDE} px")
    if not MIN_VIDEO_PIXELS <= width * height <= MAX_VIDEO_PIXELS:
        raise InvalidArgument(
            argument,
            f"{name} has {width * height:,} pixels a frame ({width}×{height})",
            allowed=f"{MIN_VIDEO_PIXELS:,}-{MAX_VIDEO_PIXELS:,} pixels a frame (480p-1080p)",
        )
    if not MIN_ASPECT <= width / height <= MAX_ASPECT:
        raise InvalidArgument(
            argument, f"{name}'s width/height is {width / height:.2f}", allowed=f"{MIN_ASPECT}-{MAX_ASPECT}"
        )
    if info.fps is not None and not MIN_FPS - 0.5 <= info.fps <= MAX_FPS + 0.5:
        raise InvalidArgument(argument, f"{name} runs at {info.fps:.2f} fps", allowed=f"{MIN_FPS}-{MAX_FPS} fps")
    return "mov" if info.brand == "qt  " else "mp4"


def _check_audio(argument: str, name: str, info: MediaInfo) -> str:
    fmt = {"wav": "wav", "mp3": "mp3"}.get(info.container)
    if fmt is None or info.video_codec is not None or info.audio_codec is None:
        raise InvalidArgument(argument, f"{name} is not a WAV or MP3 audio file", allowed="wav, mp3")
    return fmt


def _check_data_url(text: str, argument: str, kind: MediaKind, min_seconds: float | None = None) -> str:
    header, sep, payload = text.partition(",")
    if not sep or ";base64" not in header:
        raise InvalidArgument(argument, "a data: URL must be base64", allowed=f"data:{kind}/<format>;base64,<data>")
    mime = header[5:].split(";")[0]
    if not mime.startswith(f"{kind}/") or mime != mime.lower():
        raise InvalidArgument(argument, f"the data: URL says {mime!r}", allowed=f"a lowercase {kind}/<format> type")
    if kind == "video":
        raise InvalidArgument(argument, "Seedance takes no base64 video", allowed="an https URL or an asset:// id")
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgument(argument, "the base64 data is corrupt") from None
    if kind == "image":
        fmt = check_image(argument, raw)
        if mime != f"image/{fmt}":
            return f"data:image/{fmt};base64,{payload}"
    elif len(raw) > MAX_AUDIO_BYTES:
        raise InvalidArgument(argument, f"the audio is {len(raw) / 1e6:.1f} MB", allowed="at most 15 MB")
    else:
        check_media_length(argument, raw, "audio", min_seconds)
    return text


# Sizing a create body without serialising it: only strings can be large, and base64 needs no JSON escaping.
_NEEDS_ESCAPE = re.compile(r'[\x00-\x1f"\\]')
_ROLE_ARGUMENT = {
    "first_frame": "first_frame",
    "last_frame": "last_frame",
    "reference_image": "reference_images",
    "reference_video": "reference_videos",
    "reference_audio": "reference_audios",
}


def check_request_size(body: Mapping[str, Any], limit: int = MAX_REQUEST_BYTES) -> None:
    """Refuse a create body whose JSON would exceed the provider's limit, naming the biggest media argument.

    `body` is either the validated request's fields (argument names as keys) or the provider's JSON body (media
    named by their `role`). Sizes are counted, not serialised: the base64 strings are never copied.
    """
    leaves: list[tuple[str, int]] = []
    total = _json_size(body, "", leaves) + _BODY_HEADROOM
    if total <= limit:
        return
    name, biggest = max(leaves, key=lambda leaf: leaf[1], default=("prompt", 0))
    mb = 1024 * 1024  # the provider's "64 MB" is 64 MiB
    raise InvalidArgument(
        name,
        f"with every file inlined as base64 the request would be {total / mb:.1f} MB; {name} alone is "
        f"{biggest / mb:.1f} MB",
        allowed=f"a request body of at most {limit / mb:.0f} MB (base64 adds a third to each file)",
        hint=f"Pass {name} as an https URL (or an asset:// id) instead of a file, or use smaller or fewer files.",
    )


def _json_size(value: Any, path: str, leaves: list[tuple[str, int]]) -> int:
    if isinstance(value, str):
        size = len(value) + 2 if value.isascii() and not _NEEDS_ESCAPE.search(value) else _dumped_size(value)
        leaves.append((path or "body", size))
        return size
    if isinstance(value, Mapping):
        items: list[tuple[Any, Any]] = list(value.items())  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
        size = 2 + max(len(items) - 1, 0) * 2
        for key, item in items:
            size += _dumped_size(str(key)) + 2 + _json_size(item, _child(path, str(key)), leaves)
        return size
    if isinstance(value, list | tuple):
        entries: list[Any] = list(value)  # pyright: ignore[reportUnknownArgumentType]
        size = 2 + max(len(entries) - 1, 0) * 2
        counters: dict[str, int] = {}
        for index, item in enumerate(entries):
            size += _json_size(item, _item_path(path, index, item, counters), leaves)
        return size
    return _dumped_size(value)


def _child(path: str, key: str) -> str:
    if not path:
        return key
    if "[" in path or path in _ROLE_ARGUMENT.values():
        return path  # inside a media item named by its role, the nested keys (`image_url.url`) tell the caller nothing
    return f"{path}.{key}"


def _item_path(path: str, index: int, item: Any, counters: dict[str, int]) -> str:
    if isinstance(item, Mapping):
        role = item.get("role")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if isinstance(role, str) and role in _ROLE_ARGUMENT:
            argument = _ROLE_ARGUMENT[role]
            if argument in ("first_frame", "last_frame"):
                return argument
            counters[argument] = counters.get(argument, -1) + 1
            return f"{argument}[{counters[argument]}]"
    return f"{path}[{index}]"


def _dumped_size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False).encode("utf-8"))
