"""`get_task_status`, `list_tasks`, `cancel_task`: following and managing jobs already submitted; all free."""

from __future__ import annotations

import time
from typing import Annotated, Literal

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from seedance_mcp.config import Settings
from seedance_mcp.errors import SeedanceError
from seedance_mcp.journal import start_of_day
from seedance_mcp.models import CancelResult, ModelSpend, Spend, TaskList, VideoTask
from seedance_mcp.results import cancel_result, job_result, task_line, task_list_result
from seedance_mcp.runtime import LazyRuntime
from seedance_mcp.tools.context import ToolContext, caller, check_journal, reporter, runtime_of
from seedance_mcp.tools.resources import task_result

TaskId = Annotated[str, Field(description="A task id from generate_video or list_tasks (`cgt-…` or `job-…`).")]


def register(server: MCPServer[LazyRuntime], settings: Settings) -> None:
    @server.tool(
        annotations=ToolAnnotations(
            title="Get a video task's status", read_only_hint=True, idempotent_hint=True, open_world_hint=True
        ),
        meta={"ui": {"resourceUri": "ui://seedance/player"}},
    )
    async def get_task_status(
        task_id: TaskId,
        ctx: ToolContext,
        wait: Annotated[
            bool, Field(description="Wait (bounded, with progress notifications) for the video to finish.")
        ] = False,
    ) -> Annotated[CallToolResult, VideoTask]:
        """Get the state of a video job started by generate_video, or of a storyboard (`sb-…`); free.

        The status, the saved MP4's path and links once done, the error if it failed, and the cost. wait=true
        waits (bounded, reporting progress) until the video is saved; call again while queued or running.
        """
        runtime = await runtime_of(ctx)
        try:
            principal = caller(ctx, settings).principal
            if task_id.strip().startswith("sb-"):  # a storyboard's plan: its state as storyboard answers it
                from seedance_mcp.storyboards.status import plan_status

                bound = settings.wait_seconds if wait else 0.0
                return await plan_status(runtime, task_id.strip(), principal, wait=bound, report=reporter(ctx))
            job = await runtime.jobs.find(task_id, principal)
            job = await runtime.jobs.retry_download(job)
            if wait and settings.wait_seconds > 0 and not job.settled:
                job = await runtime.jobs.wait(job.job_id, settings.wait_seconds, reporter(ctx), principal)
            return await task_result(job_result(job), job)
        except SeedanceError as exc:
            raise ToolError(str(exc)) from exc

    @server.tool(
        annotations=ToolAnnotations(
            title="List video tasks", read_only_hint=True, idempotent_hint=True, open_world_hint=False
        ),
        meta={"ui": {"resourceUri": "ui://seedance/player"}},
    )
    async def list_tasks(
        ctx: ToolContext,
        status: Annotated[
            Literal["queued", "running", "succeeded", "failed", "cancelled", "expired", "unknown"] | None,
            Field(description="Only tasks in this state."),
        ] = None,
        limit: Annotated[int, Field(ge=1, le=200, description="How many, newest first.")] = 20,
        detail: Annotated[bool, Field(description="Each task in full, as get_task_status shows it.")] = False,
    ) -> Annotated[CallToolResult, TaskList]:
        """List this server's video jobs, newest first, from its journal; free.

        A line each (task_id, status, model, prompt start, time) and the spend of today and this week. Use it to
        find a task id again, or to check for a job before submitting one that may exist; get_task_status(task_id)
        gives its path and links.
        """
        runtime = await runtime_of(ctx)
        check_journal(runtime)  # a SeedanceError here or below is said as it is (SeedanceServer.call_tool)
        store = runtime.jobs.store
        who = caller(ctx, settings)
        jobs, more = await store.recent(status, limit, who.principal)
        live = [await runtime.jobs.current(job) for job in jobs]
        today = start_of_day(await store.now())  # the day the journal's clock says, as the daily budget counts
        week = today - 86400 * time.localtime(today).tm_wday
        # In the currency this server's provider bills in, as its budgets count (another host on the same state
        # dir may speak to a provider that bills in another).
        currency = runtime.provider.preset.currency
        week_rows = [row for row in await store.spend(week, who.principal) if row.currency == currency]
        today_rows = [row for row in await store.spend(today, who.principal) if row.currency == currency]
        spend = Spend(
            currency=currency,
            today=round(sum(row.cost for row in today_rows), 4),
            today_billed_tokens=sum(row.billed_tokens for row in today_rows),
            this_week=round(sum(row.cost for row in week_rows), 4),
            this_week_billed_tokens=sum(row.billed_tokens for row in week_rows),
            this_week_by_model=[
                ModelSpend(model=row.model, jobs=row.jobs, billed_tokens=row.billed_tokens, cost=round(row.cost, 4))
                for row in week_rows
            ],
            daily_budget=who.daily_budget,
        )
        if who.team_daily_budget is not None:
            everyone = await store.spend(today)
            spend.team_daily_budget = who.team_daily_budget
            spend.team_today = round(sum(row.cost for row in everyone if row.currency == currency), 4)
        return task_list_result([task_line(job) for job in live], more, spend, live if detail else None)

    @server.tool(
        annotations=ToolAnnotations(
            title="Cancel a queued video task",
            read_only_hint=False,
            destructive_hint=True,
            idempotent_hint=True,
            open_world_hint=True,
        ),
    )
    async def cancel_task(task_id: TaskId, ctx: ToolContext) -> Annotated[CallToolResult, CancelResult]:
        """Cancel a video job that is still queued, so it is not rendered or billed; a storyboard's `sb-…` plan id
        cancels the plan as a whole.

        A task that is already rendering cannot be cancelled on Ark (it finishes, is billed, and is still saved);
        the answer says so. Some gateways have no cancel call at all.
        """
        runtime = await runtime_of(ctx)
        principal = caller(ctx, settings).principal
        bound = settings.wait_seconds or settings.http_timeout  # the call's wait bounds it, not the provider's retries
        try:
            if task_id.strip().startswith("sb-"):  # a storyboard's plan: cancelled as a whole
                from seedance_mcp.storyboards.run import cancel_plan

                cancelled, state, message = await cancel_plan(runtime, task_id.strip(), principal)
                return cancel_result(
                    CancelResult(task_id=task_id.strip(), cancelled=cancelled, status=state, message=message)
                )
            with anyio.move_on_after(bound):
                job, cancelled, message = await runtime.jobs.cancel(task_id, principal)
                return cancel_result(
                    CancelResult(task_id=job.handle, cancelled=cancelled, status=job.status, message=message)
                )
            job = await runtime.jobs.find(task_id, principal)
        except SeedanceError as exc:
            raise ToolError(str(exc)) from exc
        message = (
            f"The provider did not answer within {bound:.0f} s, so whether the task was cancelled is not known yet. "
            f'Call get_task_status(task_id="{job.handle}") in a minute: its status will say (a cancelled task is not '
            "billed; one that renders is, and its video is saved)."
        )
        return cancel_result(CancelResult(task_id=job.handle, cancelled=False, status=job.status, message=message))
