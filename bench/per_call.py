"""#2 per-call overhead: get_task_status of a finished task (a journal hit) vs the hello-world's one tool,
1,000 calls each over stdio, alternating call by call so both see the same machine."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

from bench.common import ROOT, Row, clean_env, temp_dirs

CALLS = 1000


async def measure(calls: int = CALLS) -> Row:
    with temp_dirs() as (state, videos):
        env = clean_env(
            SEEDANCE_PROVIDER="sandbox",
            SEEDANCE_STATE_DIR=str(state),
            SEEDANCE_OUTPUT_DIR=str(videos),
            SEEDANCE_SANDBOX_RENDER_SECONDS="0.5",
            SEEDANCE_POLL_INTERVAL="0.2",
            SEEDANCE_LOG_LEVEL="WARNING",
        )
        script = Path(sys.executable).parent / "seedance-mcp"
        ours = StdioServerParameters(command=sys.executable, args=[str(script)], env=env)
        hello = StdioServerParameters(command=sys.executable, args=[str(ROOT / "bench" / "hello_server.py")], env=env)
        async with Client(ours, mode="legacy") as client:
            made = await client.call_tool("generate_video", {"prompt": "a finished task to look up"})
        task_id = (made.structured_content or {})["task_id"]
        # A new server process: the finished job comes from the journal, as after any restart.
        ours_times: list[float] = []
        hello_times: list[float] = []
        async with Client(ours, mode="legacy") as mine, Client(hello, mode="legacy") as theirs:
            for _ in range(50):  # warm both
                await mine.call_tool("get_task_status", {"task_id": task_id})
                await theirs.call_tool("hello", {"name": "x"})
            for _ in range(calls):
                started = time.perf_counter()
                result = await mine.call_tool("get_task_status", {"task_id": task_id})
                ours_times.append(time.perf_counter() - started)
                started = time.perf_counter()
                await theirs.call_tool("hello", {"name": "x"})
                hello_times.append(time.perf_counter() - started)
            assert (result.structured_content or {})["status"] == "succeeded"
    ours_ms = statistics.median(ours_times) * 1000
    hello_ms = statistics.median(hello_times) * 1000
    return Row(
        2,
        "per-call overhead (get_task_status, journal hit)",
        f"median {ours_ms:.2f} ms vs hello-world {hello_ms:.2f} ms (+{ours_ms - hello_ms:.2f} ms, {calls} calls each)",
        "≤ hello-world + 1 ms",
        ours_ms <= hello_ms + 1.0,
    )


if __name__ == "__main__":
    print(anyio.run(measure))
