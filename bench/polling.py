"""#4 polling economy: how many status reads each job costs and how soon its result reaches the caller, against
the sandbox with renders of 5-120 s; then the same under 429s with Retry-After."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters

from bench.common import Row, add_faults, clean_env, sandbox_process, sandbox_stats, temp_dirs

RENDERS = (5, 10, 20, 40, 60, 90, 120)
INTERVAL = 2.0


async def _run_jobs(sandbox: str, renders: tuple[int, ...], tag: str) -> list[dict[str, Any]]:
    with temp_dirs() as (state, videos):
        env = clean_env(
            SEEDANCE_PROVIDER="sandbox",
            SEEDANCE_BASE_URL=f"{sandbox}/api/v3",
            SEEDANCE_SANDBOX_RENDER_SECONDS=str(min(renders)),  # the shortest typical render of this "model"
            SEEDANCE_POLL_INTERVAL=str(INTERVAL),
            SEEDANCE_WAIT_SECONDS="600",
            SEEDANCE_STATE_DIR=str(state),
            SEEDANCE_OUTPUT_DIR=str(videos),
            SEEDANCE_LOG_LEVEL="WARNING",
        )
        script = Path(sys.executable).parent / "seedance-mcp"
        params = StdioServerParameters(command=sys.executable, args=[str(script)], env=env)
        results: list[dict[str, Any]] = []
        async with Client(params, mode="legacy", read_timeout_seconds=900) as client:

            async def one(render: int) -> None:
                prompt = f"{tag} render {render} s [[render={render}]]"
                result = await client.call_tool("generate_video", {"prompt": prompt})
                data = dict(result.structured_content or {})
                data["received_at"] = time.time()
                data["render"] = render
                results.append(data)

            async with anyio.create_task_group() as group:
                for render in renders:
                    group.start_soon(one, render)
        return results


async def measure() -> Row:
    with sandbox_process(render_seconds=5) as sandbox:
        results = await _run_jobs(sandbox, RENDERS, "economy")
        stats = sandbox_stats(sandbox)
        polls: dict[str, int] = stats["polls_by_task"]  # type: ignore[assignment]
        finished: dict[str, float] = stats["finished_at"]  # type: ignore[assignment]
        lines: list[str] = []
        ok = True
        for data in sorted(results, key=lambda d: d["render"]):
            task, render = data["task_id"], data["render"]
            budget_polls = render / INTERVAL + 2
            budget_latency = max(2.0, 0.1 * render)
            latency = data["received_at"] - finished[task]
            good = data["status"] == "succeeded" and polls[task] <= budget_polls and latency <= budget_latency
            ok = ok and good
            lines.append(f"{render}s: {polls[task]} polls (≤ {budget_polls:g}), {latency:.1f} s (≤ {budget_latency:g})")

        add_faults(sandbox, {"route": "status", "kind": "http_429", "times": 6, "retry_after": 1.5})
        limited = await _run_jobs(sandbox, (5, 10, 20), "rate-limited")
        saved = sum(1 for d in limited if d["status"] == "succeeded" and d.get("video_path"))
        ok = ok and saved == 3
    return Row(
        4,
        "polling economy (renders 5-120 s)",
        "; ".join(lines) + f"; under 6 × 429: {saved}/3 saved",
        f"polls ≤ render/{INTERVAL:g} s + 2; result ≤ max(2 s, 10 % render) after the provider finished; "
        "429 loses nothing",
        ok,
    )


if __name__ == "__main__":
    print(anyio.run(measure))
