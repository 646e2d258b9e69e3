"""Partial downloads: `.{name}.{host}-{pid}-{nonce}.part` beside the destination, and the sweep of abandoned ones.

A download streams into a hidden file named after the final name, the machine, the downloading process's id and a
nonce of its own, then renames it into place; servers sharing an output directory, and two downloads in one
process, each write their own. A process killed mid-way
leaves its part file behind: `sweep_partial_files` removes those of this machine whose process is gone, and any
older than a day (a pid may have been reused since; another machine's processes cannot be checked from here).
"""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path

logger = logging.getLogger(__name__)

MAX_AGE = 24 * 3600.0
"""Seconds after which a part file is abandoned whoever wrote it (no download runs that long)."""
_PART = re.compile(r"^\.(?P<name>.+)\.(?:(?P<host>[A-Za-z0-9_]+)-)?(?P<pid>\d+)(?:-[0-9a-f]{8})?\.part$")


def this_host() -> str:
    """This machine's name as it appears in part files (replicas on several machines may share a disk)."""
    import socket

    return re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())[:64] or "host"


def partial_path(destination: Path, pid: int | None = None) -> Path:
    """Where a download to `destination` streams its bytes before the rename: `.{name}.{host}-{pid}-{nonce}.part`,
    its own whoever else downloads the same file at the same time."""
    nonce = os.urandom(4).hex()
    return destination.with_name(
        f".{destination.name}.{this_host()}-{os.getpid() if pid is None else pid}-{nonce}.part"
    )


def process_is_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (signal 0 checks without signalling)."""
    if pid == os.getpid():
        return True
    if pid <= 0 or os.name == "nt":
        return True  # Windows' os.kill(pid, 0) would send CTRL_C_EVENT: there only the age rule applies
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    except OSError:
        return True  # cannot tell: keep the file, the age rule will get it
    return True


def sweep_partial_files(directory: Path, *, max_age: float = MAX_AGE, now: float | None = None) -> int:
    """Delete the part files in `directory` whose process is dead, and those older than `max_age` seconds
    whoever wrote them; the number deleted. A directory that does not exist holds none. Blocking: call it at
    start-up or through `anyio.to_thread.run_sync`."""
    now = time.time() if now is None else now
    try:
        entries = list(directory.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return 0
    removed = 0
    host = this_host()
    for path in entries:
        found = _PART.match(path.name)
        if found is None:
            continue
        try:
            age = now - path.stat().st_mtime
            # Another machine's process cannot be checked from here: its files wait for the age rule.
            elsewhere = found["host"] is not None and found["host"] != host
            if age <= max_age and (elsewhere or process_is_alive(int(found["pid"]))):
                continue
            path.unlink()
        except FileNotFoundError:
            continue  # its writer renamed or removed it meanwhile
        except OSError as exc:
            logger.warning("could not remove the abandoned partial download %s: %s", path, exc)
            continue
        removed += 1
    if removed:
        logger.info("removed %d abandoned partial download(s) from %s", removed, directory)
    return removed
