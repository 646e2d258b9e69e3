"""#7 many jobs: 2,000 generate_video(wait=false) calls at once through the real MCP client in memory
(`mcp.Client(create_app(settings))`), against the sandbox in its own process (`seedance-mcp sandbox`, Ark dialect at
`{url}/api/v3`, renders of 10 s), until every MP4 is saved. The server (and the client) run in this process.

Figures: wall time from the first call to the last saved MP4, over the render time (a server that kept up would
need the time to send the 2,000 creates plus one render); the CPU time of this process (all threads, from /proc)
over the same span, split at the moment every call had answered; the creates the sandbox saw (each exactly once)
and the MP4s saved. The calls leave `return_last_frame` out, as a model usually does (the frame's URL is in each
result; only the MP4 is saved); the figure also gives the wall time of a second run where every call asks for
the last frame, a second download and file per job. `python -m bench.many_jobs --profile out.prof` also writes a
cProfile of the event loop's thread (where nearly all the Python work runs; the journal's SQLite calls run in a
worker thread).
"""

from __future__ import annotations

import cProfile
import os
import sys
import time
from pathlib import Path

import anyio
from mcp import Client

from bench.common import Row, cpu_seconds, sandbox_process, sandbox_stats, succeeded_in_journal, temp_dirs

JOBS = 2000
RENDER_SECONDS = 10.0
WALL_LIMIT = 1.5
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
    from seedance_mcp.app import create_app
    from seedance_mcp.config import Settings
    from seedance_mcp.logs import configure_logging
    from seedance_mcp.process import tune_garbage_collector

    pid = os.getpid()
    with temp_dirs() as (state, videos), sandbox_process(render_seconds=render_seconds) as sandbox:
        settings = Settings(
            provider="sandbox",
            base_url=f"{sandbox}/api/v3",
            sandbox_render_seconds=render_seconds,
            state_dir=state,
            output_dir=videos,
            poll_interval=2.0,
            startup_delay=0.0,
            log_level="WARNING",
        )
        # As the command line sets it up for the server (the SDK's own logging setup would log every request).
        configure_logging(settings.log_level, [settings.key])
        app = create_app(settings)
        tune_garbage_collector()
        failures: list[str] = []
        async with Client(app) as client:
            await client.call_tool("list_tasks", {})  # the runtime (journal, HTTP client, worker) is open

            async def submit(index: int) -> None:
                arguments: dict[str, object] = {"prompt": f"job {index}: a paper boat on a rainy street", "wait": False}
                if last_frame:
                    arguments["return_last_frame"] = True
                result = await client.call_tool("generate_video", arguments)
                if result.is_error:
                    failures.append(str(result.content))

            profiler = cProfile.Profile() if profile else None
            if profiler:
                profiler.enable()
            cpu_start, started, started_epoch = cpu_seconds(pid), time.perf_counter(), time.time()
            async with anyio.create_task_group() as group:
                for index in range(jobs):
                    group.start_soon(submit, index)
            cpu_submitted, submitted = cpu_seconds(pid), time.perf_counter()
            with anyio.fail_after(150 + 3 * render_seconds):
                while _saved(videos) < jobs and len(failures) < jobs:
                    await anyio.sleep(0.1)
            cpu_done, done = cpu_seconds(pid), time.perf_counter()
            if profiler:
                profiler.disable()
                assert profile is not None
                profiler.dump_stats(profile)
            stats = sandbox_stats(sandbox)
            # The journal records a job as saved just after its file lands: it must agree within moments.
            succeeded = 0
            with anyio.move_on_after(30):
                while (succeeded := await succeeded_in_journal(state)) < jobs:
                    await anyio.sleep(0.05)
            journal_lag = time.perf_counter() - done
        saved = _saved(videos)
    finished_at: dict[str, float] = stats["finished_at"]  # type: ignore[assignment]
    finished = list(finished_at.values())
    creates = int(stats["creates"])  # type: ignore[arg-type]
    wall = done - started
    ratio = wall / render_seconds
    # The first create reached the sandbox at (last render's end − R) at the latest; an ideal server saves the last
    # video as that render ends.
    last_render_end = max(finished) - started_epoch if finished else float("nan")
    ok = ratio <= WALL_LIMIT and creates == jobs and saved == jobs and succeeded == jobs and not failures
    return Row(
        7,
        f"many jobs ({jobs} generate_video at once, in-memory client, {render_seconds:.0f} s renders)",
        f"wall {wall:.1f} s = {ratio:.2f} × render; all {jobs} calls answered after {submitted - started:.1f} s, "
        f"last render ended at {last_render_end:.1f} s, last MP4 saved {wall - last_render_end:.1f} s later; "
        f"CPU {cpu_done - cpu_start:.1f} s ({cpu_submitted - cpu_start:.1f} s submitting, "
        f"{(cpu_done - cpu_start) / jobs * 1000:.1f} ms per job); sandbox saw {creates} creates, "
        f"{stats['list_polls']} list + {stats['status_polls']} status polls, {stats['downloads']} downloads; "
        f"{saved} MP4s saved, the journal agreeing {journal_lag:.1f} s later (was 3.4-4.1 ×)",
        f"≤ {WALL_LIMIT} × render; creates = saved = {jobs}",
        ok,
        note="; ".join(failures[:2]),
    )


if __name__ == "__main__":
    out = Path(sys.argv[sys.argv.index("--profile") + 1]) if "--profile" in sys.argv else None
    print(anyio.run(lambda: measure(profile=out)))
