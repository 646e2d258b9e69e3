"""`seedance-mcp demo "a prompt"`: the whole product on the free sandbox, driven by a real MCP client over stdio.

It launches `seedance-mcp` as a subprocess exactly as Claude Desktop or Cursor would, calls generate_video, shows
the progress notifications as they arrive, and prints the path of the saved MP4.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio


def run_demo(prompt: str, output_dir: str | None) -> int:
    data = anyio.run(_demo, prompt, Path(output_dir or "seedance-demo").resolve())
    if data is None:
        return 1
    print(f"status: {data.get('status')} · task {data.get('task_id')} · {data.get('usage_tokens')} tokens billed")
    path = data.get("video_path")
    if not path or not Path(path).is_file():
        print(f"no video was saved: {data.get('next_step')}", file=sys.stderr)
        return 1
    print(
        f"Saved MP4 ({Path(path).stat().st_size:,} bytes; the sandbox's 2-second sample clip stands in for a render):"
    )
    print(path)
    return 0


async def _demo(prompt: str, output_dir: Path) -> dict[str, Any] | None:
    from mcp import Client, StdioServerParameters

    with tempfile.TemporaryDirectory(prefix="seedance-demo-state-") as state_dir:
        env = {
            **os.environ,
            "SEEDANCE_PROVIDER": "sandbox",
            "SEEDANCE_OUTPUT_DIR": str(output_dir),
            "SEEDANCE_STATE_DIR": state_dir,
            "SEEDANCE_SANDBOX_RENDER_SECONDS": "8",
            "SEEDANCE_POLL_INTERVAL": "1",
            "SEEDANCE_LOG_LEVEL": "WARNING",
        }
        env.pop("SEEDANCE_BASE_URL", None)
        params = StdioServerParameters(command=sys.executable, args=["-m", "seedance_mcp"], env=env)
        print("Starting seedance-mcp on the embedded sandbox (no key, no cost) through an MCP stdio client…")
        started = time.monotonic()
        async with Client(params, read_timeout_seconds=120) as client:
            tools = await client.list_tools()
            print(f"Connected in {time.monotonic() - started:.1f} s; tools: {', '.join(t.name for t in tools.tools)}")
            print(f'generate_video(prompt="{prompt}", duration=5)')

            async def show(progress: float, total: float | None, message: str | None) -> None:
                width = 30
                filled = int(width * progress / (total or 100))
                print(f"  [{'#' * filled}{'.' * (width - filled)}] {progress:5.1f}%  {message or ''}", flush=True)

            result = await client.call_tool("generate_video", {"prompt": prompt, "duration": 5}, progress_callback=show)
        if result.is_error:
            text = " ".join(getattr(block, "text", "") for block in result.content)
            print(f"generate_video failed: {text}", file=sys.stderr)
            return None
        return result.structured_content or {}
