"""Reading a file someone else may be changing: one open that follows no link, a check that it is a regular file,
and a read that never takes more than the cap. Used for the caller's inputs, the saved videos and frames a
resource read returns, and the state directory's approval key; each caller words the refusal for its own reader.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Literal

SAFE_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)  # a link swapped into the last component fails with ELOOP instead of being followed
    | getattr(os, "O_NONBLOCK", 0)  # opening a FIFO or a device never waits for a writer
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_BINARY", 0)
)
"""How a file is opened for reading: a link, FIFO or device put in its place cannot stand in for it."""

Refusal = Literal["missing", "link", "unreadable", "not_regular", "elsewhere", "too_big"]


class FileRefused(Exception):
    """Why a file was not read, for the caller to word: `missing` (no such file), `link` (a symbolic link is in
    its place), `unreadable` (`detail`: the system's reason), `not_regular` (a FIFO, device or directory),
    `elsewhere` (the file opened is not where it was checked to be), `too_big` (`size` bytes, or `growing`: it
    grew past the cap while being read)."""

    def __init__(self, refusal: Refusal, detail: str = "", *, size: int | None = None, growing: bool = False) -> None:
        super().__init__(f"{refusal}: {detail}" if detail else refusal)
        self.refusal: Refusal = refusal
        self.detail = detail
        self.size = size
        self.growing = growing


def read_regular_file(
    path: Path, cap: int, *, opened_where: Callable[[int, os.stat_result], bool] | None = None
) -> bytes:
    """The bytes of the regular file at `path`, at most `cap` of them, read through one descriptor: a link put
    where the file was is not followed, a FIFO or device is not waited on, and a file that grew after its size was
    seen is refused by what the read returns. `opened_where(fd, stat)` may check the file opened is where it should
    be. Raises FileRefused."""
    try:
        fd = os.open(path, SAFE_OPEN_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise FileRefused("link") from None
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            raise FileRefused("missing") from None
        raise FileRefused("unreadable", exc.strerror or type(exc).__name__) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileRefused("not_regular")
        if opened_where is not None and not opened_where(fd, info):
            raise FileRefused("elsewhere")
        if info.st_size > cap:
            raise FileRefused("too_big", size=info.st_size)
        data = read_at_most(fd, cap + 1)
    finally:
        os.close(fd)
    if len(data) > cap:  # it grew after the size check: the read, not the stat, decides
        raise FileRefused("too_big", size=len(data), growing=True)
    return data


def read_at_most(fd: int, count: int) -> bytes:
    """Up to `count` bytes from `fd` (fewer at its end; a non-blocking descriptor with nothing to give ends it)."""
    chunks: list[bytes] = []
    remaining = count
    while remaining > 0:
        try:
            chunk = os.read(fd, min(remaining, 1 << 20))
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)
