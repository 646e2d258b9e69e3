"""What every tool needs from its call context: the runtime, and a progress reporter."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from seedance_mcp.errors import SeedanceError
from seedance_mcp.runtime import LazyRuntime, Runtime

ToolContext = Context[LazyRuntime, Any]


async def runtime_of(ctx: ToolContext) -> Runtime:
    try:
        return await ctx.request_context.lifespan_context.get()
    except SeedanceError as exc:
        raise ToolError(str(exc)) from exc


def reporter(ctx: ToolContext) -> Callable[[float, str], Any]:
    async def report(progress: float, message: str) -> None:
        await ctx.report_progress(progress, 100.0, message)

    return report
