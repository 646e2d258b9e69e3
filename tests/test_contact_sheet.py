"""The labelled contact sheet (media/contact_sheet.py) on the sandbox's real H.264 MP4 and PNG."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from seedance_mcp.media.contact_sheet import (
    ContactSheetError,
    contact_sheet,
    last_video_frame,
    video_frames,
)
from seedance_mcp.sandbox.media import last_frame_png, sample_mp4


def solid(colour: tuple[int, int, int], size: tuple[int, int] = (320, 180)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_sheet_holds_each_picture_in_its_own_tile_with_a_label_under_it() -> None:
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]
    data = contact_sheet([solid(c) for c in colours], ["take 1", "take 2", "take 3"])
    sheet = Image.open(io.BytesIO(data))
    assert sheet.format == "PNG"
    assert sheet.width > sheet.height  # three tiles in one row
    rgb = sheet.convert("RGB")
    third = sheet.width // 3
    for i, colour in enumerate(colours):  # each tile's centre is its picture's colour
        assert rgb.getpixel((i * third + third // 2, 6 + 90)) == colour
    # Under each tile, the label: light pixels on the dark band (a blank band would be all background).
    for i in range(3):
        band = rgb.crop((i * third + 8, 6 + 180 + 2, i * third + 90, 6 + 180 + 20)).convert("L")
        assert band.getextrema()[1] > 150  # pyright: ignore[reportOperatorIssue]


def test_more_pictures_than_columns_wrap_to_a_second_row() -> None:
    data = contact_sheet([solid((i * 40, 0, 0)) for i in range(6)], [f"{i}" for i in range(6)])
    sheet = Image.open(io.BytesIO(data))
    assert sheet.height > 2 * 180  # two rows of tiles (each 180 px plus its label)


def test_bad_input_is_refused_with_what_is_wrong() -> None:
    with pytest.raises(ContactSheetError, match="no pictures"):
        contact_sheet([], [])
    with pytest.raises(ContactSheetError, match="2 pictures but 1 labels"):
        contact_sheet([solid((0, 0, 0)), solid((1, 1, 1))], ["one"])
    with pytest.raises(ContactSheetError, match=r"picture 2 \('b'\) cannot be read"):
        contact_sheet([solid((0, 0, 0)), b"not a picture"], ["a", "b"])


def test_first_middle_and_last_frames_of_a_real_mp4(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(sample_mp4())
    frames = video_frames(video)
    assert len(frames) == 3
    pictures = [Image.open(io.BytesIO(frame)) for frame in frames]
    assert all(p.format == "PNG" and p.size == (320, 180) for p in pictures)
    assert len({p.tobytes() for p in pictures}) == 3  # three different moments of the clip
    assert last_video_frame(video) == frames[-1]
    sheet = Image.open(io.BytesIO(contact_sheet([*frames, last_frame_png()], ["first", "middle", "last", "png"])))
    assert sheet.size[0] > 4 * 300


def test_a_file_that_is_not_a_video_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\0" * 1000)
    with pytest.raises(ContactSheetError, match=r"broken\.mp4"):
        video_frames(broken)
