"""What every tool needs from its call context: the runtime, a progress reporter, who is calling, and the text of
a failure nothing expected."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from seedance_mcp.config import Settings
from seedance_mcp.errors import SeedanceError
from seedance_mcp.runtime import LazyRuntime, Runtime

ToolContext = Context[LazyRuntime, Any]

logger = logging.getLogger(__name__)


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


def unexpected_failure(tool: str, exc: BaseException, known: str, secrets: Iterable[str]) -> ToolError:
    """A tool error for a failure no code path expected: what it was (scrubbed of secrets), `known` (what it means
    for the user's money and what to do next), and where the details are. The traceback goes to the server's log."""
    from seedance_mcp.errors import redact, trim

    exc = _innermost(exc)
    logger.error("%s failed unexpectedly", tool, exc_info=exc)
    detail = trim(redact(str(exc), *secrets), 300) or "no message"
    return ToolError(
        f"Error executing tool {tool}: an unexpected failure in the server ({type(exc).__name__}: {detail}). "
        f"{known} The details are in the server's log (stderr); tell the user if it keeps failing."
    )


def _innermost(exc: BaseException) -> BaseException:
    """A task group's one failure, out of its group (and out of the SDK's wrappers around a crash)."""
    from mcp.server.mcpserver.exceptions import UnexpectedResourceError, UnexpectedToolError

    while True:
        if isinstance(exc, BaseExceptionGroup):
            group = cast("BaseExceptionGroup[BaseException]", exc)
            if len(group.exceptions) != 1:
                return group
            exc = group.exceptions[0]
        elif isinstance(exc, UnexpectedToolError | UnexpectedResourceError) and exc.__cause__ is not None:
            exc = exc.__cause__
        else:
            return exc
