"""Image inputs: formats sniffed from headers, Seedance's size and aspect limits, data URLs checked."""

from __future__ import annotations

import base64
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest

from seedance_mcp.errors import InvalidArgument
from seedance_mcp.media.inputs import MAX_REQUEST_BYTES, check_image, check_request_size, resolve_media, sniff_image
from tests.conftest import png_bytes


def jpeg_header(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof


def test_sniff_reads_sizes_from_every_accepted_format() -> None:
    assert sniff_image(png_bytes(640, 360)) == ("png", 640, 360)
    assert sniff_image(jpeg_header(1024, 768)) == ("jpeg", 1024, 768)
    assert sniff_image(b"GIF89a" + struct.pack("<HH", 500, 400)) == ("gif", 500, 400)
    bmp = b"BM" + bytes(16) + struct.pack("<ii", 800, -600)
    assert sniff_image(bmp) == ("bmp", 800, 600)
    webp = b"RIFF" + bytes(4) + b"WEBPVP8X" + bytes(8) + (799).to_bytes(3, "little") + (449).to_bytes(3, "little")
    assert sniff_image(webp) == ("webp", 800, 450)
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 2)
    tiff += struct.pack("<HHII", 256, 4, 1, 1000) + struct.pack("<HHII", 257, 4, 1, 700)
    assert sniff_image(tiff) == ("tiff", 1000, 700)
    assert sniff_image(b"%PDF-1.7") is None


def test_urls_pass_through_untouched(tmp_path: Path) -> None:
    for url in ("https://example.com/a.png", "asset://asset-123"):
        assert resolve_media(url, "first_frame", "image", [tmp_path]) == url


def test_data_urls_are_checked(tmp_path: Path) -> None:
    good = "data:image/png;base64," + base64.b64encode(png_bytes(640, 360)).decode()
    assert resolve_media(good, "first_frame", "image", [tmp_path]) == good
    with pytest.raises(InvalidArgument, match="lowercase"):
        resolve_media(good.replace("image/png", "image/PNG"), "first_frame", "image", [tmp_path])
    with pytest.raises(InvalidArgument, match="corrupt"):
        resolve_media("data:image/png;base64,@@@", "first_frame", "image", [tmp_path])
    with pytest.raises(InvalidArgument, match=r"width/height"):
        resolve_media(
            "data:image/png;base64," + base64.b64encode(png_bytes(1800, 400)).decode(), "x", "image", [tmp_path]
        )


def test_local_videos_are_refused_with_what_to_do(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42")
    with pytest.raises(InvalidArgument) as caught:
        resolve_media(str(clip), "reference_videos[0]", "video", [tmp_path])
    assert caught.value.argument == "reference_videos[0]"
    assert "https URL" in str(caught.value)


def test_missing_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="no file at"):
        resolve_media(str(tmp_path / "nope.png"), "first_frame", "image", [tmp_path])


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def jpeg_file(width: int, height: int, *, exif_bytes: int = 0) -> bytes:
    """A structurally complete JPEG: SOI, APP0, optional APP1 segments, SOF0, SOS, some scan data, EOI."""
    app1 = b""
    while exif_bytes > 0:
        size = min(exif_bytes, 65000)
        app1 += b"\xff\xe1" + struct.pack(">H", size + 2) + (b"Exif\x00\x00" + bytes(size))[:size]
        exif_bytes -= size
    sos = b"\xff\xda" + struct.pack(">HB", 8, 1) + b"\x01\x00\x00\x3f\x00"
    return jpeg_header(width, height)[:20] + app1 + jpeg_header(width, height)[20:] + sos + bytes(64) + b"\xff\xd9"


def complete_images() -> dict[str, bytes]:
    """One small but complete file of every accepted format, 400×300."""
    gif = b"GIF89a" + struct.pack("<HHBBB", 400, 300, 0x80, 0, 0) + bytes(6)
    gif += b"\x2c" + struct.pack("<HHHHB", 0, 0, 400, 300, 0) + b"\x02\x02\x4c\x01\x00\x3b"
    pixels = bytes((24 * 400 + 31) // 32 * 4 * 300)
    bmp = b"BM" + struct.pack("<IHHI", 54 + len(pixels), 0, 0, 54)
    bmp += struct.pack("<IiiHHIIiiII", 40, 400, 300, 1, 24, 0, len(pixels), 2835, 2835, 0, 0) + pixels
    vp8l = b"\x2f" + (399 | (299 << 14)).to_bytes(4, "little") + bytes(27)
    webp_body = b"WEBP" + b"VP8L" + struct.pack("<I", len(vp8l)) + vp8l
    webp = b"RIFF" + struct.pack("<I", len(webp_body)) + webp_body
    strip = bytes(400 * 300)
    entries = [(256, 4, 1, 400), (257, 4, 1, 300), (273, 4, 1, 8 + 2 + 12 * 4 + 4), (279, 4, 1, len(strip))]
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(entries))
    tiff += b"".join(struct.pack("<HHII", *entry) for entry in entries) + bytes(4) + strip
    return {"png": png_bytes(400, 300), "jpeg": jpeg_file(400, 300), "gif": gif, "bmp": bmp, "webp": webp, "tiff": tiff}


def test_complete_images_of_every_format_are_accepted() -> None:
    """The completeness check does not refuse real files."""
    for fmt, data in complete_images().items():
        assert check_image("first_frame", data) == fmt


def test_header_only_and_truncated_images_are_refused_as_incomplete() -> None:
    """A valid signature and size header without the image data is not an image Seedance can use."""
    png_header = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 640, 360, 8, 2, 0, 0, 0))
    full_png = png_bytes(640, 360)
    cases: dict[str, bytes] = {
        "png header only": png_header,
        "png without IEND": full_png[:-12],
        "png cut inside IDAT": full_png[: len(png_header) + 20],
        "png with an empty IDAT": png_header + png_chunk(b"IDAT", b"") + png_chunk(b"IEND", b""),
        "jpeg without a scan": jpeg_header(640, 360),
    }
    for fmt, data in complete_images().items():
        if fmt not in ("png", "jpeg"):
            cases[f"{fmt} cut short"] = data[: len(data) // 2] if fmt != "gif" else data[:19]
    for name, data in cases.items():
        with pytest.raises(InvalidArgument, match="incomplete") as caught:
            check_image("first_frame", data)
        assert caught.value.argument == "first_frame", name


def test_a_jpeg_with_100_kb_of_exif_before_its_frame_header_is_accepted(tmp_path: Path) -> None:
    """The JPEG markers are walked through the whole file, not only its first 64 KiB."""
    data = jpeg_file(1024, 768, exif_bytes=100_000)
    assert data.index(b"\xff\xc0") > 100_000
    image = tmp_path / "photo.jpg"
    image.write_bytes(data)
    url = resolve_media(str(image), "first_frame", "image", [tmp_path])
    assert url == "data:image/jpeg;base64," + base64.b64encode(data).decode()
    data_url = "data:image/jpeg;base64," + base64.b64encode(data).decode()
    assert resolve_media(data_url, "first_frame", "image", [tmp_path]) == data_url


def test_a_nul_byte_in_a_path_is_a_clear_invalid_argument(tmp_path: Path) -> None:
    """No bare ValueError: the refusal names the argument."""
    for argument, kind in (("first_frame", "image"), ("reference_audios[0]", "audio")):
        with pytest.raises(InvalidArgument, match="NUL") as caught:
            resolve_media(f"{tmp_path}/a\x00b.png", argument, kind, [tmp_path])  # type: ignore[arg-type]
        assert caught.value.argument == argument


def test_a_request_over_64_mb_is_refused_naming_its_biggest_file() -> None:
    """The base64 strings are counted; the biggest media argument is named, by key or by role."""
    big, bigger = "data:image/png;base64," + "A" * 30_000_000, "data:image/png;base64," + "A" * 40_000_000
    check_request_size({"prompt": "a cat", "reference_images": [big]})
    with pytest.raises(InvalidArgument) as caught:
        check_request_size({"prompt": "a cat", "first_frame": None, "reference_images": [big, bigger]})
    assert caught.value.argument == "reference_images[1]" and "64 MB" in str(caught.value)
    body: dict[str, Any] = {
        "model": "doubao-seedance-2-0-260128",
        "content": [
            {"type": "text", "text": "a cat"},
            {"type": "image_url", "image_url": {"url": bigger}, "role": "reference_image"},
            {"type": "audio_url", "audio_url": {"url": big}, "role": "reference_audio"},
        ],
    }
    with pytest.raises(InvalidArgument) as caught:
        check_request_size(body)
    assert caught.value.argument == "reference_images[0]"
    exact = "x" * (MAX_REQUEST_BYTES - 100_000)
    check_request_size({"prompt": exact})
