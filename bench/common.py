"""Shared pieces of the benchmarks: processes to start, /proc readings, the result row."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Row:
    number: int
    what: str
    figure: str
    target: str
    passed: bool
    note: str = ""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def clean_env(**variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEEDANCE_") and k != "ARK_API_KEY"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "server"), env.get("PYTHONPATH")]))
    env.update(variables)
    return env


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (and its finished threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@contextmanager
def sandbox_process(render_seconds: float = 6.0) -> Iterator[str]:
    """`seedance-mcp sandbox` in its own process; yields its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "seedance_mcp", "sandbox", "--port", str(port), "--render-seconds", str(render_seconds)],
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/_sandbox/stats")
        # The server is what is measured: the sandbox serves its shipped sample rather than encoding a clip a task.
        httpx.post(f"{url}/_sandbox/config", json={"sample_clips": True})
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def wait_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def sandbox_stats(url: str) -> dict[str, object]:
    return httpx.get(f"{url}/_sandbox/stats").json()


def add_faults(url: str, *faults: dict[str, object]) -> None:
    httpx.post(f"{url}/_sandbox/faults", json={"faults": list(faults)})


@contextmanager
def temp_dirs() -> Iterator[tuple[Path, Path]]:
    with tempfile.TemporaryDirectory(prefix="seedance-bench-") as root:
        yield Path(root) / "state", Path(root) / "videos"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        total_kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {total_kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    system = f"{platform.system()} {platform.machine()}"
    return f"{system}, {os.cpu_count()} cores ({cpu}){memory}, Python {platform.python_version()}"


async def succeeded_in_journal(state_dir: Path) -> int:
    """How many jobs the SQLite journal in `state_dir` holds as succeeded, read by a store of its own (list_tasks
    counts nothing: it shows a page and whether more match)."""
    from seedance_mcp.journal.sqlite import SqliteTaskStore

    store = await SqliteTaskStore.open(state_dir / "jobs.sqlite3")
    try:
        return (await store.count_by_status()).get("succeeded", 0)
    finally:
        await store.close()
