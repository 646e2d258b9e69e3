"""What every tool needs from its call context: the runtime, and a progress reporter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from seedance_mcp.config import Settings
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


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a tool call acts for, and the limits that apply to them (their own, else the server's)."""

    principal: str
    daily_budget: float | None
    max_cost_per_video: float | None
    confirm_above: float | None


def caller(ctx: ToolContext, settings: Settings) -> Caller:
    """The principal of this request (`""` on stdio or with the single SEEDANCE_HTTP_TOKEN) and their limits."""
    from mcp.server.auth.middleware.auth_context import get_access_token

    from seedance_mcp.principals import principal_of

    principal = principal_of(get_access_token())
    own = ctx.request_context.lifespan_context.principals.get(principal)

    def pick(name: str) -> float | None:
        value: float | None = getattr(own, name) if own is not None else None
        return value if value is not None else getattr(settings, name)

    return Caller(principal, pick("daily_budget"), pick("max_cost_per_video"), pick("confirm_above"))
