"""Run every benchmark, print the table, and write it to bench/RESULTS.md with the machine and the date.

    python -m bench.run            # all five
    python -m bench.run 1 2        # some of them

Benchmarks are not tests: CI does not run them. Each figure is a ratio or a count measured side by side in one
run, because the machines are shared and noisy.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import anyio

from bench import cold_start, concurrency, download, per_call, polling
from bench.common import Row, machine

BENCHMARKS: dict[int, Callable[[], Awaitable[Row]]] = {
    1: cold_start.measure,
    2: per_call.measure,
    3: concurrency.measure,
    4: polling.measure,
    5: download.measure,
}
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def table(rows: list[Row]) -> str:
    lines = ["| # | what | figure | target | result |", "|---|---|---|---|---|"]
    for row in rows:
        verdict = "pass" if row.passed else "**miss**"
        figure = row.figure + (f" ({row.note})" if row.note else "")
        lines.append(f"| {row.number} | {row.what} | {figure} | {row.target} | {verdict} |")
    return "\n".join(lines)


async def run(numbers: list[int]) -> list[Row]:
    rows: list[Row] = []
    for number in numbers:
        started = time.monotonic()
        print(f"running #{number}…", file=sys.stderr, flush=True)
        row = await BENCHMARKS[number]()
        print(f"  #{number} {'pass' if row.passed else 'MISS'} in {time.monotonic() - started:.0f} s", file=sys.stderr)
        rows.append(row)
    return rows


def main(argv: list[str]) -> int:
    numbers = [int(a) for a in argv] or sorted(BENCHMARKS)
    rows = anyio.run(run, numbers)
    text = table(rows)
    print(text)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    RESULTS.write_text(
        "# Benchmark results\n\n"
        f"Run {stamp} on {machine()} with `python -m bench.run`.\n\n"
        f"{text}\n\n"
        "How each is measured: the docstring at the top of `bench/<name>.py`. #1 and #2 compare against "
        "`bench/hello_server.py`, a one-tool MCPServer on the same SDK, in alternating runs. #3-#5 run the sandbox "
        "as a separate process (`seedance-mcp sandbox`) and read the server process's RSS and CPU time from /proc.\n"
    )
    return 0 if all(row.passed for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
