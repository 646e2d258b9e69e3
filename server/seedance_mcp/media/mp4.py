"""The ISO-BMFF (MP4/MOV) box check: whether a saved video is whole, without decoding it.

A download is renamed into place only after this check (providers/download.py), and a video found on disk counts
as saved only when it passes (the job worker): a body cut short is never taken for a video.
"""

from __future__ import annotations

import struct
from typing import BinaryIO


def video_structure_problem(handle: BinaryIO, size: int) -> tuple[str, bool] | None:
    """What is wrong with an MP4/MOV (ISO-BMFF) file of `size` bytes, and whether it is permanent; None if sound.

    Walks the top-level boxes by seeking from header to header (never reading the media): each box's 32-bit
    size, or its 64-bit `largesize` when the size is 1, or "to the end of the file" when it is 0. The boxes must
    add up exactly to the file size, start with `ftyp`, and include `moov` and `mdat`. A box running past the
    end, or a file that stops before `moov` or `mdat`, is a body cut short (worth downloading again); a file
    that does not start with `ftyp` is no MP4/MOV at all (permanent).
    """
    position = 0
    seen: set[bytes] = set()
    while position < size:
        handle.seek(position)
        header = handle.read(16)
        if len(header) < 8:
            return f"it ends inside a box header at byte {position}", False
        box_size, box_type = struct.unpack(">I4s", header[:8])
        header_size = 8
        if box_size == 1:
            if len(header) < 16:
                return f"it ends inside a box header at byte {position}", False
            (box_size,) = struct.unpack(">Q", header[8:16])
            header_size = 16
        elif box_size == 0:
            box_size = size - position
        if position == 0 and box_type != b"ftyp":
            return f"it does not start with an `ftyp` box (starts with {header[:8]!r}): not an MP4/MOV video", True
        name = box_type.decode("latin-1")
        if box_size < header_size:
            return f"the `{name}` box at byte {position} declares an impossible size {box_size}", False
        if position + box_size > size:
            return f"the `{name}` box at byte {position} needs {box_size} bytes but the file ends at {size}", False
        seen.add(box_type)
        position += box_size
    if size == 0:
        return "it is empty", False
    missing = [f"`{box.decode()}`" for box in (b"moov", b"mdat") if box not in seen]
    if missing:
        return f"it has no {' or '.join(missing)} box (the rest of the file is missing)", False
    return None
