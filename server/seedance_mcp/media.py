"""Image, video and audio arguments: URLs pass through, local files become checked `data:` URLs.

Local files are only read from the directories the user allows, after the size and the format are checked
from the file's header, so a model cannot make the server read (and upload) anything else.
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from seedance_mcp.errors import InvalidArgument

IMAGE_FORMATS = ("jpeg", "png", "webp", "bmp", "tiff", "gif")
MAX_IMAGE_BYTES = 30 * 1024 * 1024
MIN_SIDE, MAX_SIDE = 300, 6000
MIN_ASPECT, MAX_ASPECT = 0.4, 2.5
AUDIO_FORMATS = {"wav": "wav", "mp3": "mpeg"}
MAX_AUDIO_BYTES = 15 * 1024 * 1024

MediaKind = Literal["image", "video", "audio"]


def sniff_image(head: bytes) -> tuple[str, int, int] | None:
    """Format, width and height from an image's first bytes (64 KiB is plenty), or None if not an image we take."""
    if head.startswith(b"\x89PNG\r\n\x1a\n") and len(head) >= 24:
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


def _tiff_size(head: bytes) -> tuple[str, int, int] | None:
    endian = "<" if head[:2] == b"II" else ">"
    try:
        (offset,) = struct.unpack(endian + "I", head[4:8])
        (count,) = struct.unpack(endian + "H", head[offset : offset + 2])
        found: dict[int, int] = {}
        for i in range(count):
            entry = head[offset + 2 + 12 * i : offset + 14 + 12 * i]
            tag, kind = struct.unpack(endian + "HH", entry[:4])
            if tag in (256, 257):
                value = struct.unpack(endian + ("H" if kind == 3 else "I"), entry[8:10] if kind == 3 else entry[8:12])
                found[tag] = value[0]
    except (struct.error, IndexError):
        return None
    if 256 in found and 257 in found:
        return "tiff", found[256], found[257]
    return None


def _jpeg_size(head: bytes) -> tuple[str, int, int] | None:
    i = 2
    while i + 9 < len(head):
        if head[i] != 0xFF:
            i += 1
            continue
        marker = head[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", head[i + 2 : i + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", head[i + 5 : i + 9])
            return "jpeg", width, height
        i += 2 + length
    return None


def check_image(argument: str, head: bytes, size: int) -> str:
    """The image's format after checking it against Seedance's input limits (protocol.md §3.4)."""
    if size >= MAX_IMAGE_BYTES:
        raise InvalidArgument(argument, f"the image is {size / 1e6:.1f} MB", allowed="under 30 MB")
    sniffed = sniff_image(head)
    if sniffed is None:
        raise InvalidArgument(
            argument, "this is not an image Seedance accepts", allowed=", ".join(IMAGE_FORMATS), hint="Convert it."
        )
    fmt, width, height = sniffed
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


def resolve_media(value: str, argument: str, kind: MediaKind, allowed_dirs: Sequence[Path]) -> str:
    """The URL to send for an image/video/audio argument: URLs pass, local files are read and inlined."""
    text = value.strip()
    if not text:
        raise InvalidArgument(argument, "it is empty", allowed="an https URL, a data: URL or a local file path")
    lowered = text.lower()
    if lowered.startswith(("https://", "http://", "asset://")):
        return text
    if lowered.startswith("data:"):
        return _check_data_url(text, argument, kind)
    if lowered.startswith("file://"):
        text = text[7:]
    if kind == "video":
        raise InvalidArgument(
            argument,
            "local video files cannot be sent (Seedance takes video references as URLs only)",
            allowed="an https URL or an asset:// id",
            hint="Upload the video somewhere public and pass its https URL.",
        )
    path = _allowed_path(text, argument, allowed_dirs)
    if kind == "audio":
        return _audio_data_url(path, argument)
    with path.open("rb") as handle:
        size = path.stat().st_size
        fmt = check_image(argument, handle.read(65536), size)
        handle.seek(0)
        data = handle.read(MAX_IMAGE_BYTES)
    return f"data:image/{fmt};base64,{base64.b64encode(data).decode('ascii')}"


def _allowed_path(text: str, argument: str, allowed_dirs: Sequence[Path]) -> Path:
    path = Path(text).expanduser()
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        raise InvalidArgument(
            argument,
            f"no file at {text!r}",
            allowed="an https URL, a data: URL or the path of an existing local file",
        ) from None
    # resolve() has followed every symlink, so a link inside an allowed directory pointing outside it is refused.
    if not any(real.is_relative_to(root) for root in allowed_dirs):
        raise InvalidArgument(
            argument,
            f"{text!r} is outside the directories this server may read",
            allowed=", ".join(str(d) for d in allowed_dirs) or "(none)",
            hint="Move the file into one of them, or add its directory to SEEDANCE_ALLOWED_DIRS.",
        )
    if not real.is_file():
        raise InvalidArgument(argument, f"{text!r} is not a regular file")
    return real


def _check_data_url(text: str, argument: str, kind: MediaKind) -> str:
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
        fmt = check_image(argument, raw[:65536], len(raw))
        if mime != f"image/{fmt}":
            return f"data:image/{fmt};base64,{payload}"
    elif len(raw) > MAX_AUDIO_BYTES:
        raise InvalidArgument(argument, f"the audio is {len(raw) / 1e6:.1f} MB", allowed="at most 15 MB")
    return text


def _audio_data_url(path: Path, argument: str) -> str:
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in AUDIO_FORMATS:
        raise InvalidArgument(argument, f"{path.name} is not wav or mp3", allowed="wav, mp3")
    size = path.stat().st_size
    if size > MAX_AUDIO_BYTES:
        raise InvalidArgument(argument, f"the audio is {size / 1e6:.1f} MB", allowed="at most 15 MB")
    data = path.read_bytes()
    return f"data:audio/{AUDIO_FORMATS[suffix]};base64,{base64.b64encode(data).decode('ascii')}"
