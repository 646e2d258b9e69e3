"""Run every benchmark, print the table, and write it to bench/RESULTS.md with the machine and the date.

    python -m bench.run            # all of them
    python -m bench.run 6 7        # some of them (the other rows of RESULTS.md are kept, marked as earlier)

Benchmarks are not tests: CI does not run them. Each figure is a ratio or a count measured side by side in one
run, because the machines are shared and noisy.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import anyio

from bench import (
    cold_start,
    concurrency,
    download,
    journal_growth,
    many_jobs,
    per_call,
    polling,
    replicas,
    result_size,
    tool_list,
)
from bench.common import Row, machine

BENCHMARKS: dict[int, Callable[[], Awaitable[Row]]] = {
    1: cold_start.measure,
    2: per_call.measure,
    3: concurrency.measure,
    4: polling.measure,
    5: download.measure,
    6: journal_growth.measure,
    7: many_jobs.measure,
    8: replicas.measure,
    9: tool_list.measure,
    10: result_size.measure,
}
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def table(rows: list[Row], earlier: dict[int, str] | None = None) -> str:
    """The results table; `earlier` rows (from RESULTS.md, by number) fill in the benchmarks not run now."""
    lines = {
        row.number: f"| {row.number} | {row.what} | {row.figure + (f' ({row.note})' if row.note else '')} | "
        f"{row.target} | {'pass' if row.passed else '**miss**'} |"
        for row in rows
    }
    for number, line in (earlier or {}).items():
        lines.setdefault(number, line)
    return "\n".join(
        ["| # | what | figure | target | result |", "|---|---|---|---|---|"] + [lines[n] for n in sorted(lines)]
    )


def earlier_rows(numbers: list[int]) -> dict[int, str]:
    """The rows of RESULTS.md for benchmarks not in `numbers`, marked with the date of the run that made them."""
    if not RESULTS.exists():
        return {}
    text = RESULTS.read_text()
    stamp = re.search(r"^Run (.+?) on ", text, re.MULTILINE)
    rows: dict[int, str] = {}
    for line in text.splitlines():
        found = re.match(r"^\| (\d+) \| (.*)$", line)
        if found and int(found[1]) not in numbers:
            marked = "" if "(earlier run" in line or stamp is None else f" (earlier run: {stamp[1]})"
            rows[int(found[1])] = f"| {found[1]} | {found[2].split(' |', 1)[0]}{marked} |{found[2].split(' |', 1)[1]}"
    return rows


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
    earlier = earlier_rows(numbers) if argv else {}
    rows = anyio.run(run, numbers)
    text = table(rows, earlier)
    print(text)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    RESULTS.write_text(
        "# Benchmark results\n\n"
        f"Run {stamp} on {machine()} with `python -m bench.run`.\n\n"
        f"{text}\n\n"
        "How each is measured: the docstring at the top of `bench/<name>.py`. #1 and #2 compare against "
        "`bench/hello_server.py`, a one-tool MCPServer on the same SDK, in alternating runs. #3-#5 run the sandbox "
        "as a separate process (`seedance-mcp sandbox`) and read the server process's RSS and CPU time from /proc. #6 "
        "builds journals of 1k-100k finished jobs and starts stdio servers on them; #7 runs 2,000 jobs through the "
        "official MCP client over streamable HTTP to a `serve --http` process, against the sandbox process; #8 "
        "runs 500 jobs through 1, 2 and 3 `serve --http` replicas on one throwaway PostgreSQL server, behind a "
        "round-robin proxy; #10 makes 20 videos on the embedded sandbox over stdio and measures the default answers "
        "as the client receives them.\n"
    )
    return 0 if all(row.passed for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
