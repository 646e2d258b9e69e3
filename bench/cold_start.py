"""#1 cold start: spawn → initialize → tools/list answered over stdio, seedance-mcp vs a one-tool hello-world."""

from __future__ import annotations

import compileall
import statistics
import sys
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

from bench.common import ROOT, Row, clean_env, temp_dirs

RUNS = 21


async def _once(args: list[str], env: dict[str, str]) -> float:
    """Seconds from spawning the process to the tools/list answer (the process's exit is not counted)."""
    started = time.perf_counter()
    async with Client(StdioServerParameters(command=sys.executable, args=args, env=env), mode="legacy") as client:
        await client.list_tools()
        answered = time.perf_counter()
    return answered - started


async def measure(runs: int = RUNS) -> Row:
    # As `pip install` leaves it: bytecode compiled. (Under PYTHONDONTWRITEBYTECODE an editable install would
    # otherwise recompile every module of the package at each start, which no installed copy does.)
    compileall.compile_dir(ROOT / "server" / "seedance_mcp", quiet=1)
    with temp_dirs() as (state, videos):
        # The configuration a client launches with: the default provider, a key, the user's directories.
        env = clean_env(SEEDANCE_STATE_DIR=str(state), SEEDANCE_OUTPUT_DIR=str(videos), SEEDANCE_API_KEY="bench-key")
        hello_args = [str(ROOT / "bench" / "hello_server.py")]
        # What an MCP host launches: the installed console script, run by the same interpreter.
        script = Path(sys.executable).parent / "seedance-mcp"
        ours_args = [str(script)] if script.exists() else ["-m", "seedance_mcp"]
        await _once(hello_args, env)  # warm the file cache for both
        await _once(ours_args, env)
        hello: list[float] = []
        ours: list[float] = []
        for _ in range(runs):  # alternating, so drift on a shared machine hits both alike
            hello.append(await _once(hello_args, env))
            ours.append(await _once(ours_args, env))
    ratio = statistics.median(ours) / statistics.median(hello)
    return Row(
        1,
        "cold start (spawn → tools/list, stdio)",
        f"{ratio:.3f} × hello-world (median {statistics.median(ours) * 1000:.0f} ms vs "
        f"{statistics.median(hello) * 1000:.0f} ms, {runs} alternating runs)",
        "≤ 1.10 ×",
        ratio <= 1.10,
    )


if __name__ == "__main__":
    print(anyio.run(measure))
