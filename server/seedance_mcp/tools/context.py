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
    """Their own daily budget: their tokens-file `daily_budget`, else SEEDANCE_DAILY_BUDGET_PER_PERSON."""
    team_daily_budget: float | None
    """SEEDANCE_DAILY_BUDGET: everyone's spend together."""
    max_cost_per_video: float | None
    confirm_above: float | None
    daily_budget_name: str = "SEEDANCE_DAILY_BUDGET_PER_PERSON"
    """Where their own daily budget is set, as the user would look for it."""


def caller(ctx: ToolContext, settings: Settings) -> Caller:
    """The principal of this request (`""` on stdio or with the single SEEDANCE_HTTP_TOKEN) and their limits."""
    from mcp.server.auth.middleware.auth_context import get_access_token

    from seedance_mcp.principals import principal_of

    principal = principal_of(get_access_token())
    own = ctx.request_context.lifespan_context.principals.get(principal)

    def pick(name: str, default: float | None) -> float | None:
        value: float | None = getattr(own, name) if own is not None else None
        return value if value is not None else default

    own_budget = own is not None and own.daily_budget is not None
    return Caller(
        principal,
        daily_budget=pick("daily_budget", settings.daily_budget_per_person),
        team_daily_budget=settings.daily_budget,
        max_cost_per_video=pick("max_cost_per_video", settings.max_cost_per_video),
        confirm_above=pick("confirm_above", settings.confirm_above),
        daily_budget_name=(
            f"the daily budget of {principal} (SEEDANCE_TOKENS_FILE)"
            if own_budget
            else "SEEDANCE_DAILY_BUDGET_PER_PERSON"
        ),
    )
