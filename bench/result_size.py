"""#10 result sizes: what a model (and the client) is handed by the default answers, over stdio as a host sees it.

The real server is started as a subprocess on the embedded sandbox; 20 videos are made one after another (prompts
of a realistic length), then `list_tasks()` and `list_models()` are called with their default arguments. A
result's size is the characters of the whole `CallToolResult` as the client receives it: every content block as
JSON (text, resource links) plus the structured content as JSON; an image block counts without its base64 data,
which is shown apart (a picture is not read as text). JSON is counted as the SDK sends it (no spaces after
separators, non-ASCII as is). The sandbox's signed links are ~190 characters; a real provider's run longer (each
link appears in the text and in the structured content). The finished `generate_video` result is the 20th.
`tools/list` is measured alongside (its output schemas count there, see #9).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters

from bench.common import Row, clean_env, temp_dirs

JOBS = 20
LIST_LIMIT = 4_000
"""Targets from issue 19: `list_tasks()` with 20 jobs and `list_models()` each ≤ 4,000 characters."""
VIDEO_LIMIT = 2_500
"""A finished `generate_video` result ≤ 2,500 characters."""
PROMPT = (
    "Video {n}: a red fox trots through fresh snow at dawn, breath steaming, low golden light; slow dolly-in, "
    "shallow depth of field, cinematic colour grade."
)


WIRE = (",", ":")
"""JSON as the SDK sends it: no spaces after separators."""


def result_chars(result: Any) -> tuple[int, int]:
    """(characters as text, bytes of base64 image data) of a CallToolResult as the client received it."""
    blocks: list[dict[str, Any]] = []
    images = 0
    for block in result.content:
        data = block.model_dump(by_alias=True, exclude_none=True, mode="json")
        if data.get("type") == "image":
            images += len(data.pop("data", ""))
        blocks.append(data)
    chars = len(json.dumps(blocks, ensure_ascii=False, separators=WIRE))
    if result.structured_content is not None:
        chars += len(json.dumps(result.structured_content, ensure_ascii=False, separators=WIRE))
    return chars, images


async def measure() -> Row:
    with temp_dirs() as (state, videos):
        env = clean_env(
            SEEDANCE_PROVIDER="sandbox",
            SEEDANCE_STATE_DIR=str(state),
            SEEDANCE_OUTPUT_DIR=str(videos),
            SEEDANCE_SANDBOX_RENDER_SECONDS="0.3",
            SEEDANCE_POLL_INTERVAL="0.1",
            SEEDANCE_LOG_LEVEL="WARNING",
        )
        script = Path(sys.executable).parent / "seedance-mcp"
        params = StdioServerParameters(command=sys.executable, args=[str(script)], env=env)
        async with Client(params, mode="legacy") as client:
            made: Any = None
            for n in range(JOBS):
                made = await client.call_tool("generate_video", {"prompt": PROMPT.format(n=n + 1)})
            finished: dict[str, Any] = made.structured_content or {} if made is not None else {}
            assert finished.get("status") == "succeeded", made
            listed = await client.call_tool("list_tasks", {})
            models = await client.call_tool("list_models", {})
            tools = (await client.list_tools()).tools
    listed_data: dict[str, Any] = listed.structured_content or {}
    assert len(listed_data["tasks"]) == JOBS
    video, video_image = result_chars(made)
    tasks, _ = result_chars(listed)
    catalog, _ = result_chars(models)
    listing = {"tools": [t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in tools]}
    tool_list = len(json.dumps(listing, ensure_ascii=False, separators=WIRE))
    schemas = sum(len(json.dumps(t.output_schema, separators=WIRE)) for t in tools if t.output_schema)
    return Row(
        10,
        "result sizes (stdio, sandbox, default arguments)",
        f"list_tasks() with {JOBS} jobs {tasks:,} chars; list_models() {catalog:,} chars; finished generate_video "
        f"{video:,} chars (+ a {video_image:,}-byte preview image); tools/list {tool_list:,} chars, of which output "
        f"schemas {schemas:,} (before issue 19: 68,419, 28,525, 3,683 and 9,069 chars, of which 1,893 in schemas, "
        'four of them {"type":"object"})',
        f"list_tasks, list_models ≤ {LIST_LIMIT:,}; generate_video ≤ {VIDEO_LIMIT:,}",
        tasks <= LIST_LIMIT and catalog <= LIST_LIMIT and video <= VIDEO_LIMIT,
    )


if __name__ == "__main__":
    import anyio

    print(anyio.run(measure))
