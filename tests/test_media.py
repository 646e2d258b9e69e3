"""Image inputs: formats sniffed from headers, Seedance's size and aspect limits, data URLs checked."""

from __future__ import annotations

import base64
import struct
from pathlib import Path

import pytest

from seedance_mcp.errors import InvalidArgument
from seedance_mcp.media import resolve_media, sniff_image
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
