"""#3 concurrency: 500 jobs at once through streamable HTTP against the sandbox (renders of ~10 s), one server
process. Measured on that process from /proc: peak RSS; CPU time per status poll while it only polls (from the
last submission to the first finished render), and for context its CPU per job up to the saved MP4."""

from __future__ import annotations

import subprocess
import sys
import time

import anyio
from mcp import Client

from bench.common import (
    Row,
    clean_env,
    cpu_seconds,
    free_port,
    rss_kb,
    sandbox_process,
    sandbox_stats,
    succeeded_in_journal,
    temp_dirs,
    wait_http,
)

JOBS = 500
RENDER_SECONDS = 10.0


async def measure(jobs: int = JOBS) -> Row:
    with temp_dirs() as (state, videos), sandbox_process(render_seconds=RENDER_SECONDS) as sandbox:
        port = free_port()
        env = clean_env(
            SEEDANCE_PROVIDER="sandbox",
            SEEDANCE_BASE_URL=f"{sandbox}/api/v3",
            SEEDANCE_SANDBOX_RENDER_SECONDS=str(RENDER_SECONDS),
            SEEDANCE_STATE_DIR=str(state),
            SEEDANCE_OUTPUT_DIR=str(videos),
            SEEDANCE_POLL_INTERVAL="2",
            SEEDANCE_LOG_LEVEL="WARNING",
        )
        server = subprocess.Popen(
            [sys.executable, "-m", "seedance_mcp", "serve", "--http", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_http(f"http://127.0.0.1:{port}/mcp")
            failures: list[str] = []
            async with Client(f"http://127.0.0.1:{port}/mcp") as client:

                async def submit(index: int) -> None:
                    result = await client.call_tool("generate_video", {"prompt": f"job {index}", "wait": False})
                    if result.is_error:
                        failures.append(str(result.content))

                async with anyio.create_task_group() as group:
                    for index in range(jobs):
                        group.start_soon(submit, index)
                cpu_start = cpu_seconds(server.pid)
                stats = sandbox_stats(sandbox)
                reads_start = int(stats["statuses_read"])  # type: ignore[arg-type]
                first_finish = min(stats["finished_at"].values())  # type: ignore[union-attr]
                # Phase 1, polling only: until the first render finishes nothing is downloaded.
                await anyio.sleep(max(0.0, first_finish - time.time() - 0.2))
                cpu_polling = cpu_seconds(server.pid) - cpu_start
                stats = sandbox_stats(sandbox)
                reads = int(stats["statuses_read"]) - reads_start  # type: ignore[arg-type]
                with anyio.fail_after(180):
                    while len(list(videos.glob("*.mp4"))) < jobs:
                        await anyio.sleep(0.25)
                cpu_all = cpu_seconds(server.pid) - cpu_start
                stats = sandbox_stats(sandbox)
                reads_all = int(stats["statuses_read"]) - reads_start  # type: ignore[arg-type]
                requests = int(stats["status_polls"]) + int(stats["list_polls"])  # type: ignore[arg-type]
                done = await succeeded_in_journal(state)
            peak_mb = rss_kb(server.pid, "VmHWM") / 1024
        finally:
            server.terminate()
            server.wait(timeout=10)
    per_poll_ms = cpu_polling / max(reads, 1) * 1000
    ok = done == jobs and not failures and peak_mb <= 200 and per_poll_ms <= 0.5
    return Row(
        3,
        f"concurrency ({jobs} jobs, streamable HTTP)",
        f"{done}/{jobs} saved; peak RSS {peak_mb:.0f} MB; {per_poll_ms:.3f} ms CPU per status poll "
        f"({cpu_polling:.2f} s / {reads} statuses while only polling; {reads_all} statuses in {requests} requests "
        f"in all; {cpu_all / jobs * 1000:.1f} ms CPU per job from submitted to saved)",
        "all finish; ≤ 200 MB; ≤ 0.5 ms/poll",
        ok,
        note="; ".join(failures[:2]),
    )


if __name__ == "__main__":
    print(anyio.run(measure))
