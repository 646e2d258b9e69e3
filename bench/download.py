"""#5 download: a 500 MB video served by the sandbox, saved by the server (streamed to disk), against plain httpx
streaming the same URL to a file (`async with client.stream(...)`, `f.write(chunk)` for each of `aiter_bytes()`,
in a process of its own) and against curl, in turn in every round. The server's time is the one it logs for the download
(request to renamed file). RSS of the server process is sampled every 20 ms during each call, after a first small
video has opened the runtime and imported what a result needs."""

from __future__ import annotations

import contextlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client

from bench.common import Row, clean_env, free_port, rss_kb, sandbox_process, temp_dirs, wait_http

SIZE_MB = 500
ROUNDS = 5
_SAVED = re.compile(r"saved (\S+): (\d+) bytes in ([\d.]+) s")
PLAIN_SHARE = 0.95
"""Target: the server saves at ≥ this share of plain httpx's speed."""


PLAIN_HTTPX = """
import sys, time, anyio, httpx

async def main(url, target):
    async with httpx.AsyncClient(timeout=60) as client:
        print("ready", flush=True)
        sys.stdin.readline()
        started = time.perf_counter()
        async with client.stream("GET", url) as response:
            with open(target, "wb") as file:
                async for chunk in response.aiter_bytes():
                    file.write(chunk)
        print(time.perf_counter() - started, flush=True)

anyio.run(main, *sys.argv[1:])
"""
"""Plain httpx streaming a URL to a file as its documentation shows it, timed from the request on (like the
server's figure; the interpreter and the client start before)."""


async def plain_httpx(url: str, target: Path) -> tuple[float, float]:
    """Seconds plain httpx takes in a process of its own, and how much that process's RSS grew meanwhile (sampled
    every 20 ms from here, as the server's is: both downloads share the machine with the same sampler)."""
    process = subprocess.Popen(
        [sys.executable, "-c", PLAIN_HTTPX, url, str(target)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=clean_env(),
        text=True,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    assert await anyio.to_thread.run_sync(process.stdout.readline) == "ready\n"
    baseline = peak = rss_kb(process.pid)
    process.stdin.write("go\n")
    process.stdin.flush()
    while process.poll() is None:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            peak = max(peak, rss_kb(process.pid))
        await anyio.sleep(0.02)
    assert process.returncode == 0
    return float(process.stdout.read()), (peak - baseline) / 1024


async def measure(size_mb: int = SIZE_MB, rounds: int = ROUNDS) -> Row:
    curl = shutil.which("curl")
    with temp_dirs() as (state, videos), sandbox_process() as sandbox, tempfile.TemporaryDirectory() as scratch:
        log_path = Path(scratch) / "server.log"
        port = free_port()
        env = clean_env(
            SEEDANCE_PROVIDER="sandbox",
            SEEDANCE_BASE_URL=f"{sandbox}/api/v3",
            SEEDANCE_SANDBOX_RENDER_SECONDS="1",
            SEEDANCE_POLL_INTERVAL="0.5",
            SEEDANCE_STATE_DIR=str(state),
            SEEDANCE_OUTPUT_DIR=str(videos),
            SEEDANCE_LOG_LEVEL="INFO",
        )
        with log_path.open("w") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "seedance_mcp", "serve", "--http", "--port", str(port)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        growth_mb: list[float] = []
        ours: list[float] = []
        plain: list[float] = []
        plain_growth_mb: list[float] = []
        theirs: list[float] = []
        try:
            wait_http(f"http://127.0.0.1:{port}/mcp")
            async with Client(f"http://127.0.0.1:{port}/mcp") as client:
                # A first small video opens the runtime and imports what a result needs (the preview's PyAV):
                # one-time growth that is not the download's.
                warm = await client.call_tool("generate_video", {"prompt": "warm up [[size_mb=1]] [[render=1]]"})
                Path(str((warm.structured_content or {})["video_path"])).unlink()
                for round_number in range(rounds):
                    baseline = rss_kb(server.pid)
                    peak = baseline
                    prompt = f"big {round_number} [[size_mb={size_mb}]] [[render=1]]"
                    async with anyio.create_task_group() as group:
                        result_box: list[dict[str, object]] = []

                        async def call(prompt: str = prompt, box: list[dict[str, object]] = result_box) -> None:
                            result = await client.call_tool("generate_video", {"prompt": prompt})
                            box.append(dict(result.structured_content or {}))
                            group.cancel_scope.cancel()

                        group.start_soon(call)
                        while True:
                            peak = max(peak, rss_kb(server.pid))
                            await anyio.sleep(0.02)
                    data = result_box[0]
                    path = Path(str(data["video_path"]))
                    assert path.stat().st_size == size_mb * 1024 * 1024, path.stat().st_size
                    path.unlink()
                    growth_mb.append((peak - baseline) / 1024)
                    seconds = [float(m.group(3)) for m in _SAVED.finditer(log_path.read_text())]
                    ours.append(size_mb / seconds[-1])
                    target = Path(scratch) / "plain.mp4"
                    seconds_plain, plain_growth = await plain_httpx(str(data["video_url"]), target)
                    plain.append(size_mb / seconds_plain)
                    plain_growth_mb.append(plain_growth)
                    assert target.stat().st_size == size_mb * 1024 * 1024
                    target.unlink()
                    if curl:
                        target = Path(scratch) / "curl.mp4"
                        started = time.perf_counter()
                        subprocess.run([curl, "-s", "-o", str(target), str(data["video_url"])], check=True)
                        theirs.append(size_mb / (time.perf_counter() - started))
                        target.unlink()
        finally:
            server.terminate()
            server.wait(timeout=10)
    ours_rate = statistics.median(ours)
    plain_rate = statistics.median(plain)
    # Per round, side by side: the noise of a shared machine hits the three alike within a round.
    to_plain = statistics.median(o / p for o, p in zip(ours, plain, strict=True))
    to_curl = statistics.median(o / c for o, c in zip(ours, theirs, strict=True)) if theirs else float("nan")
    curl_rate = statistics.median(theirs) if theirs else float("nan")
    growth = max(growth_mb)
    return Row(
        5,
        f"download ({size_mb} MB)",
        f"RSS grew ≤ {growth:.1f} MB (by round: {', '.join(f'{g:.1f}' for g in growth_mb)}); "
        f"{ours_rate:.0f} MB/s vs plain httpx {plain_rate:.0f} MB/s (its RSS grew ≤ {max(plain_growth_mb):.1f} MB) "
        f"= {to_plain:.0%}, "
        f"vs curl {curl_rate:.0f} MB/s = {to_curl:.0%} (medians of {rounds} rounds, ratios taken per round)",
        f"RSS growth ≤ 16 MB; ≥ {PLAIN_SHARE:.0%} of plain httpx",
        growth <= 16 and to_plain >= PLAIN_SHARE,
        note="" if theirs else "curl not found: not compared with curl",
    )


if __name__ == "__main__":
    print(anyio.run(measure))
