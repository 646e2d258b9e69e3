"""`get_task_status`, `list_tasks`, `cancel_task`: following and managing jobs already submitted; all free."""

from __future__ import annotations

import time
from typing import Annotated, Literal

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from seedance_mcp.config import Settings
from seedance_mcp.errors import SeedanceError
from seedance_mcp.models import CancelResult, ModelSpend, Spend, TaskList, VideoTask
from seedance_mcp.results import job_result
from seedance_mcp.runtime import LazyRuntime
from seedance_mcp.tools.approval import start_of_today
from seedance_mcp.tools.context import ToolContext, caller, reporter, runtime_of
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
        """Get the state of a video job started by generate_video; free.

        Returns the status (queued, running, succeeded, failed, cancelled, expired, unknown), the saved MP4's
        video_path once done, the error when it failed, and the billed tokens. With wait=true it keeps waiting,
        reporting progress, and returns when the video is saved or the wait bound passes; call it again if the
        status is still queued or running.
        """
        runtime = await runtime_of(ctx)
        try:
            principal = caller(ctx, settings).principal
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
    ) -> TaskList:
        """List the video jobs this server has submitted, newest first, from its journal; free.

        Each has its task_id, prompt excerpt, model, status, saved video_path and created time; `spend` sums the
        cost of today and this week, per model. Use it to find a task id again, or to check for a job before
        submitting one that may already exist.
        """
        runtime = await runtime_of(ctx)
        store = runtime.jobs.store
        who = caller(ctx, settings)
        jobs, more = await store.recent(status, limit, who.principal)
        live = [await runtime.jobs.current(job) for job in jobs]
        today = start_of_today(await store.now())  # the day the journal's clock says, as the daily budget counts
        week = today - 86400 * time.localtime(today).tm_wday
        week_rows = await store.spend(week, who.principal)
        today_rows = await store.spend(today, who.principal)
        spend = Spend(
            currency=next((row.currency for row in week_rows if row.currency), None),
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
            spend.team_today = round(sum(row.cost for row in everyone), 4)
        return TaskList(tasks=[job_result(job) for job in live], more=more, spend=spend)

    @server.tool(
        annotations=ToolAnnotations(
            title="Cancel a queued video task",
            read_only_hint=False,
            destructive_hint=True,
            idempotent_hint=True,
            open_world_hint=True,
        ),
    )
    async def cancel_task(task_id: TaskId, ctx: ToolContext) -> CancelResult:
        """Cancel a video job that is still queued, so it is not rendered or billed; a storyboard's `sb-…` plan id
        cancels the plan as a whole.

        A task that is already rendering cannot be cancelled on Ark (it finishes, is billed, and is still saved);
        the answer says so. Some gateways have no cancel call at all.
        """
        runtime = await runtime_of(ctx)
        try:
            if task_id.strip().startswith("sb-"):  # a storyboard's plan: cancelled as a whole
                from seedance_mcp.tools.storyboard import cancel_plan

                cancelled, message = await cancel_plan(runtime, task_id.strip(), caller(ctx, settings).principal)
                return CancelResult(task_id=task_id.strip(), cancelled=cancelled, status="cancelled", message=message)
            job, cancelled, message = await runtime.jobs.cancel(task_id, caller(ctx, settings).principal)
        except SeedanceError as exc:
            raise ToolError(str(exc)) from exc
        return CancelResult(task_id=job.handle, cancelled=cancelled, status=job.status, message=message)
