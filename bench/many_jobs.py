"""#7 many jobs: 2,000 generate_video(wait=false) calls at once through the official MCP client over streamable
HTTP to a `seedance-mcp serve --http` process, against the sandbox in its own process (`seedance-mcp sandbox`, Ark
dialect at `{url}/api/v3`, renders of 10 s), until every MP4 is saved. The server talks to the sandbox through
httpx's own transport and pools, as for any provider.

Figures: wall time from the first call to the last saved MP4, over the render time (a server that kept up would
need the time to send the 2,000 creates plus one render); the CPU time of the server process (all threads, from
/proc) over the same span, split at the moment every call had answered, and of this process (the client); the
creates the sandbox saw (each exactly once), its polls and the MP4s saved. The calls leave `return_last_frame` out,
as a model usually does (the frame's URL is in each result; only the MP4 is saved); the figure also gives the wall
time of a second run where every call asks for the last frame, a second download and file per job.
`python -m bench.many_jobs --profile out.prof` runs the server under cProfile (`bench/profiled_server.py`: the
event loop's thread, where nearly all the Python work runs; the journal's SQLite calls run in a worker thread).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client

from bench.common import Row, clean_env, cpu_seconds, free_port, sandbox_process, sandbox_stats, temp_dirs, wait_http

JOBS = 2000
RENDER_SECONDS = 10.0
WALL_LIMIT = 2.0
"""Target: wall time ≤ this × the render time."""


def _saved(videos: Path) -> int:
    try:
        return sum(1 for entry in os.scandir(videos) if entry.name.endswith(".mp4"))
    except FileNotFoundError:
        return 0


async def measure(jobs: int = JOBS, render_seconds: float = RENDER_SECONDS, profile: Path | None = None) -> Row:
    row = await _measure(jobs, render_seconds, profile)
    # The same with the last frame asked for and saved on every call: a second download and file per job.
    framed = await _measure(jobs, render_seconds, None, last_frame=True)
    ratio = framed.figure.split(" = ", 1)[1].split(" ", 1)[0]
    row.figure += f"; with return_last_frame=true on every call: {ratio} ×"
    return row


async def _measure(jobs: int, render_seconds: float, profile: Path | None, *, last_frame: bool = False) -> Row:
    with (
        temp_dirs() as (state, videos),
        sandbox_process(render_seconds=render_seconds) as sandbox,
        tempfile.TemporaryDirectory() as scratch,
    ):
        port = free_port()
        env = clean_env(
            SEEDANCE_PROVIDER="sandbox",
            SEEDANCE_BASE_URL=f"{sandbox}/api/v3",
            SEEDANCE_SANDBOX_RENDER_SECONDS=str(render_seconds),
            SEEDANCE_STATE_DIR=str(state),
            SEEDANCE_OUTPUT_DIR=str(videos),
            SEEDANCE_POLL_INTERVAL="2",
            SEEDANCE_STARTUP_DELAY="0",
            SEEDANCE_LOG_LEVEL="WARNING",
        )
        command = ["-m", "seedance_mcp", "serve", "--http", "--port", str(port)]
        if profile is not None:
            command = ["-m", "bench.profiled_server", str(profile.resolve()), *command[2:]]
        log_path = Path(scratch) / "server.log"
        with log_path.open("w") as log:
            server = subprocess.Popen([sys.executable, *command], env=env, stdout=subprocess.DEVNULL, stderr=log)
        failures: list[str] = []
        try:
            wait_http(f"http://127.0.0.1:{port}/mcp")
            async with Client(f"http://127.0.0.1:{port}/mcp") as client:
                await client.call_tool("list_tasks", {})  # the runtime (journal, HTTP clients, worker) is open

                async def submit(index: int) -> None:
                    arguments: dict[str, object] = {
                        "prompt": f"job {index}: a paper boat on a rainy street",
                        "wait": False,
                    }
                    if last_frame:
                        arguments["return_last_frame"] = True
                    result = await client.call_tool("generate_video", arguments)
                    if result.is_error:
                        failures.append(str(result.content))

                ours, theirs = server.pid, os.getpid()
                cpu_start, client_start = cpu_seconds(ours), cpu_seconds(theirs)
                started, started_epoch = time.perf_counter(), time.time()
                async with anyio.create_task_group() as group:
                    for index in range(jobs):
                        group.start_soon(submit, index)
                cpu_submitted, submitted = cpu_seconds(ours), time.perf_counter()
                with anyio.fail_after(150 + 3 * render_seconds):
                    while _saved(videos) < jobs and len(failures) < jobs:
                        await anyio.sleep(0.1)
                cpu_done, client_done, done = cpu_seconds(ours), cpu_seconds(theirs), time.perf_counter()
                stats = sandbox_stats(sandbox)
                # The journal records a job as saved just after its file lands: it must agree within moments.
                with anyio.move_on_after(30):
                    while True:
                        listed = await client.call_tool("list_tasks", {"status": "succeeded", "limit": 1})
                        if int(str((listed.structured_content or {}).get("total", 0))) >= jobs:
                            break
                        await anyio.sleep(0.05)
                journal_lag = time.perf_counter() - done
        finally:
            server.terminate()
            server.wait(timeout=60)
        saved = _saved(videos)
    finished_at: dict[str, float] = stats["finished_at"]  # type: ignore[assignment]
    finished = list(finished_at.values())
    creates = int(stats["creates"])  # type: ignore[arg-type]
    content: dict[str, object] = listed.structured_content or {}
    succeeded = int(str(content.get("total", 0)))
    wall = done - started
    ratio = wall / render_seconds
    # The first create reached the sandbox at (last render's end − R) at the latest; an ideal server saves the last
    # video as that render ends.
    last_render_end = max(finished) - started_epoch if finished else float("nan")
    ok = ratio <= WALL_LIMIT and creates == jobs and saved == jobs and succeeded == jobs and not failures
    return Row(
        7,
        f"many jobs ({jobs} generate_video at once, streamable HTTP, {render_seconds:.0f} s renders)",
        f"wall {wall:.1f} s = {ratio:.2f} × render; all {jobs} calls answered after {submitted - started:.1f} s, "
        f"last render ended at {last_render_end:.1f} s, last MP4 saved {wall - last_render_end:.1f} s later; "
        f"server CPU {cpu_done - cpu_start:.1f} s ({cpu_submitted - cpu_start:.1f} s submitting, "
        f"{(cpu_done - cpu_start) / jobs * 1000:.1f} ms per job), client CPU {client_done - client_start:.1f} s; "
        f"sandbox saw {creates} creates, {stats['list_polls']} list + {stats['status_polls']} status polls, "
        f"{stats['downloads']} downloads; {saved} MP4s saved, the journal agreeing {journal_lag:.1f} s later",
        f"≤ {WALL_LIMIT} × render; creates = saved = {jobs}",
        ok,
        note="; ".join(failures[:2]),
    )


if __name__ == "__main__":
    out = Path(sys.argv[sys.argv.index("--profile") + 1]) if "--profile" in sys.argv else None
    print(anyio.run(lambda: measure(profile=out)))
