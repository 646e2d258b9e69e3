"""What every tool needs from its call context: the runtime, a progress reporter, who is calling, and the text of
a failure nothing expected."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import anyio
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from seedance_mcp.config import Settings
from seedance_mcp.errors import JournalUnavailable, SeedanceError
from seedance_mcp.runtime import LazyRuntime, Runtime

if TYPE_CHECKING:
    from seedance_mcp.journal.job import Job
    from seedance_mcp.principals import Principal

ToolContext = Context[LazyRuntime, Any]

logger = logging.getLogger(__name__)


async def runtime_of(ctx: ToolContext) -> Runtime:
    try:
        return await ctx.request_context.lifespan_context.get()
    except SeedanceError as exc:
        raise ToolError(str(exc)) from exc


def check_journal(runtime: Runtime) -> None:
    """Refuse at once while this process's worker knows the journal is unavailable (it checks every second or
    two), rather than after the journal's own time-out on every call."""
    outage = runtime.jobs.journal_outage
    if outage is not None:
        raise JournalUnavailable(outage.journal, outage.reason)


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

    return caller_of(principal_of(get_access_token()), ctx.request_context.lifespan_context.principals, settings)


def caller_of(principal: str, principals: Mapping[str, Principal], settings: Settings) -> Caller:
    """The limits of `principal` (their tokens-file entry in `principals`, else the server's)."""
    own = principals.get(principal)

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


UNEXPECTED_FAILURE_MEANS = {
    "generate_video": (
        "If the call got as far as submitting, a paid task may exist: do not call generate_video again for this "
        "video; check list_tasks first."
    ),
    "cancel_task": "Whether the cancel reached the provider is not known: check get_task_status.",
}
"""What an unexpected failure of a tool means for the user's money when nothing more is known (the others are
free); generate_video knows more once it has reached the journal (`what_a_video_call_cost`)."""


def unexpected_failure(tool: str, exc: BaseException, secrets: Iterable[str], known: str | None = None) -> str:
    """The text of a failure no code path expected: what it was (scrubbed of secrets), `known` (what it means for
    the user's money and what to do next; by default the tool's entry in UNEXPECTED_FAILURE_MEANS), and where the
    details are. The traceback goes to the server's log. No "Error executing tool" prefix: the SDK adds it to a
    ToolError raised in a tool's body, and `SeedanceServer.call_tool` to one it raises itself."""
    from seedance_mcp.errors import redact, trim

    exc = _innermost(exc)
    logger.error("%s failed unexpectedly", tool, exc_info=exc)
    detail = trim(redact(str(exc), *secrets), 300) or "no message"
    if known is None:
        known = UNEXPECTED_FAILURE_MEANS.get(tool, "This tool is free: nothing was charged.")
    return (
        f"an unexpected failure in the server ({type(exc).__name__}: {detail}). {known} The details are in the "
        "server's log (stderr); tell the user if it keeps failing."
    )


async def what_a_video_call_cost(
    runtime: Runtime | None, fingerprint: str | None, started: float | None, principal: str, job: Job | None
) -> str:
    """What a failure of a generate_video call may have cost, as far as the journal can tell: a create request
    leaves only after its job is in the journal, so no job means nothing was sent. `started` is when the call
    reached the runtime, on the journal's clock (`runtime.jobs.now()`), which stamps the jobs it is compared with."""
    do_not_repeat = "a paid task may exist. Do not call generate_video again for this video"
    if job is not None:
        return (
            f"Job {job.job_id} was submitted (`{job.status}`): {do_not_repeat}; follow it with "
            f'get_task_status(task_id="{job.handle}").'
        )
    if runtime is None or fingerprint is None or started is None:
        return "Nothing was sent to the provider and nothing was charged."
    window = 50
    try:
        with anyio.fail_after(5):
            recent, _ = await runtime.jobs.store.recent(None, window, principal)
    except Exception:  # the journal itself is failing: nothing more can be told
        return f"Whether its request reached the provider cannot be told: {do_not_repeat}; check list_tasks first."
    for earlier in recent:
        if earlier.fingerprint == fingerprint and earlier.created_at >= started:
            return (
                f"Its job {earlier.job_id} is in the journal (`{earlier.status}`): {do_not_repeat}; follow it with "
                f'get_task_status(task_id="{earlier.handle}").'
            )
    if len(recent) < window or recent[-1].created_at < started:
        return "No job for it reached the journal, so nothing was sent to the provider and nothing was charged."
    return f"Whether its request reached the provider cannot be told: {do_not_repeat}; check list_tasks first."


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
