"""Money the person approves: per-video and daily limits, and asking before a costly video.

The daily budget is enforced by the journal itself, atomically with the insert of the job (`SpendLimit`), so two
server processes cannot both spend its last part; this module builds those limits and does the asking.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from seedance_mcp.errors import SpendRefused
from seedance_mcp.results import money

if TYPE_CHECKING:
    from seedance_mcp.store import SpendLimit
    from seedance_mcp.tools.context import Caller, ToolContext
    from seedance_mcp.wire import VideoRequest


class CostApproval(BaseModel):
    """What the person is asked before a video above SEEDANCE_CONFIRM_ABOVE."""

    approve: bool = Field(description="Make this video and pay for it")


def start_of_today(now: float | None = None) -> float:
    """Local midnight: a daily budget is the person's day, not UTC's."""
    local = time.localtime(now)
    return time.mktime((local.tm_year, local.tm_mon, local.tm_mday, 0, 0, 0, 0, 0, -1))


def spend_limits(who: Caller, now: float | None = None) -> list[SpendLimit]:
    """The daily budgets the journal checks at the insert of this caller's job: everyone's spend together
    (SEEDANCE_DAILY_BUDGET), and the caller's own (SEEDANCE_DAILY_BUDGET_PER_PERSON, or their tokens-file entry)."""
    from seedance_mcp.store import SpendLimit

    since = start_of_today(now)
    limits: list[SpendLimit] = []
    if who.team_daily_budget is not None:
        name = "SEEDANCE_DAILY_BUDGET (everyone's spend together)" if who.principal else "SEEDANCE_DAILY_BUDGET"
        limits.append(SpendLimit(since=since, limit=who.team_daily_budget, name=name, principal=None))
    if who.daily_budget is not None:
        limits.append(
            SpendLimit(since=since, limit=who.daily_budget, name=who.daily_budget_name, principal=who.principal)
        )
    return limits


def check_cost(who: Caller, request: VideoRequest, price: tuple[float, str] | None) -> float | None:
    """The estimated cost, after the per-video limit; refuses when a limit is set but no price is known."""
    limits = (who.max_cost_per_video, who.daily_budget, who.team_daily_budget, who.confirm_above)
    if price is None:
        if any(limit is not None for limit in limits):
            raise SpendRefused(
                f"No price is known for {request.model_id} on this provider, so the cost limits set on this server "
                "cannot be checked. Tell the user to add its price with SEEDANCE_PRICES."
            )
        return None
    estimate = money(request.estimated_tokens, price[0]) or 0.0
    if who.max_cost_per_video is not None and estimate > who.max_cost_per_video:
        raise SpendRefused(
            f"This video would cost about {estimate:.2f} {price[1]} ({request.estimated_tokens:,} output tokens), "
            f"above SEEDANCE_MAX_COST_PER_VIDEO = {who.max_cost_per_video:.2f} {price[1]}. Make it cheaper "
            "(shorter, lower resolution, a cheaper model: see list_models) or ask the user to raise the limit."
        )
    return estimate


async def approved(
    ctx: ToolContext,
    who: Caller,
    request: VideoRequest,
    estimate: float | None,
    currency: str,
    approve_cost: float | None,
) -> bool:
    """Whether the person approved a video above SEEDANCE_CONFIRM_ABOVE (True when none is needed).

    Asked through elicitation where the client can show a form; otherwise refused with the cost, so the model
    asks the person and calls again with `approve_cost`."""
    threshold = who.confirm_above
    if threshold is None or estimate is None or estimate <= threshold:
        return True
    if approve_cost is not None and approve_cost >= estimate - 0.005:
        return True
    capabilities = ctx.client_capabilities
    can_ask = (
        capabilities is not None
        and capabilities.elicitation is not None
        and ctx.request_context.session.can_send_request
    )
    what = (
        f"{request.model_id}, {request.effective_seconds:g} s at {request.effective_resolution}, "
        f"about {estimate:.2f} {currency} ({request.estimated_tokens:,} output tokens at list price)"
    )
    if not can_ask:
        raise SpendRefused(
            f"This video needs the user's approval: {what}, above SEEDANCE_CONFIRM_ABOVE = {threshold:.2f} "
            f"{currency}. Ask the user; if they agree, call generate_video again with the same arguments and "
            f"approve_cost={estimate:.2f}."
        )
    from mcp.server.elicitation import AcceptedElicitation

    answer = await ctx.elicit(f"Make this Seedance video? {what}. Prompt: {request.prompt[:200]}", CostApproval)
    return isinstance(answer, AcceptedElicitation) and answer.data.approve
