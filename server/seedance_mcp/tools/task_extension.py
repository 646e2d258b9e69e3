"""The MCP tasks extension (`io.modelcontextprotocol/tasks`, SEP-2663) over the journal's jobs.

A 2026-07-28 request that declares the extension in its own capabilities gets `generate_video` answered as a task
as soon as its job is journaled and its create request sent; `tasks/get` reads the job, `tasks/cancel` cancels it.
Nothing lives in memory: a task created before a restart, or on another replica, is answered from the journal.
Every other client (2025-11-25 sessions, 2026 requests that do not declare it) keeps the plain tools. Refusals, dry
runs, approvals asked for and dedupe hits already settled stay plain results: the server decides per call.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Generator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mcp import MCPError
from mcp.server.mcpserver import Extension, MethodBinding, require_client_extension
from mcp.types import (
    HEADER_MISMATCH,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    LATEST_PROTOCOL_VERSION,
    CallToolRequestParams,
    CallToolResult,
)
from mcp.types import RequestParams as McpRequestParams
from pydantic import Field

from seedance_mcp.config import Settings
from seedance_mcp.errors import SeedanceError, TaskNotFound

if TYPE_CHECKING:
    from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

    from seedance_mcp.journal.job import Job
    from seedance_mcp.runtime import Runtime

logger = logging.getLogger(__name__)

TASKS = "io.modelcontextprotocol/tasks"
TASK_TOOLS = frozenset({"generate_video"})
"""The tools a declaring client gets as tasks: the ones that start a paid job and would otherwise wait on it."""

NOT_FOUND = "Failed to retrieve task: Task not found"
TASKS_SINCE = "2026-07-28"
"""The protocol version the extension is defined from (versions are dates, so they compare as strings)."""


def tasks_defined(protocol_version: str) -> bool:
    """SEP-2663 exists from the 2026-07-28 protocol (per-request envelopes) on; 2025-11-25 has SEP-1686 instead."""
    return protocol_version >= TASKS_SINCE


@dataclass(slots=True)
class TaskAnswer:
    """Set around a task tool's call: the tool submits, records its job here, and returns without waiting."""

    job: Job | None = None


_ANSWER: ContextVar[TaskAnswer | None] = ContextVar("seedance_task_answer", default=None)


def task_answer() -> TaskAnswer | None:
    """The answer being made as a task for this call, if it is one (the tool then skips its bounded wait)."""
    return _ANSWER.get()


@contextmanager
def answering_as_task() -> Generator[TaskAnswer]:
    """Around a task tool's call: the tool submits, records its job in the answer, and returns without waiting."""
    answer = TaskAnswer()
    reset = _ANSWER.set(answer)
    try:
        yield answer
    finally:
        _ANSWER.reset(reset)


def declared_tasks(ctx: ServerRequestContext[Any, Any]) -> bool:
    """Only a 2026-07-28 request whose own capabilities name the extension: SEP-2663 is not defined on 2025-11-25,
    so a legacy session that listed it in `initialize` still gets plain results."""
    if not tasks_defined(ctx.protocol_version):
        return False
    capabilities = ctx.session.client_capabilities
    return bool(capabilities and capabilities.extensions and TASKS in capabilities.extensions)


class TaskIdParams(McpRequestParams):
    task_id: str = Field(alias="taskId")


class UpdateTaskParams(TaskIdParams):
    input_responses: dict[str, Any] = Field(default_factory=dict[str, Any], alias="inputResponses")


def task_id_of(job: Job) -> str:
    """The job id and the job's secret: unguessable, and found in the journal without an index of its own."""
    return f"{job.job_id}.{job.task_secret}"


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SeedanceTasks(Extension):
    """SEP-2663 tasks whose state, progress, result and cancellation are the journal's job."""

    identifier = TASKS

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def methods(self) -> list[MethodBinding]:
        # A 2025-11-25 caller gets -32601 here, as SEP-2663 asks (its own tasks/* are legacy_tasks.py's).
        modern = frozenset({TASKS_SINCE, LATEST_PROTOCOL_VERSION})
        return [
            MethodBinding("tasks/get", TaskIdParams, self.get, protocol_versions=modern),
            MethodBinding("tasks/update", UpdateTaskParams, self.update, protocol_versions=modern),
            MethodBinding("tasks/cancel", TaskIdParams, self.cancel, protocol_versions=modern),
        ]

    async def intercept_tool_call(
        self, params: CallToolRequestParams, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        if params.name not in TASK_TOOLS or not declared_tasks(ctx):
            return await call_next(ctx)
        with answering_as_task() as answer:
            result = await call_next(ctx)
        job = await running_job(ctx, answer, result)
        if job is None:
            return result  # refused, dry run, approval asked or declined, a settled dedupe hit: plain
        # The job is in the journal and its create request was sent: a tasks/get for this id resolves.
        return {"resultType": "task", **task_fields(job, await runtime_for(ctx), self._settings)}

    async def get(self, ctx: ServerRequestContext[Any, Any], params: TaskIdParams) -> dict[str, Any]:
        runtime, job = await self._job(ctx, params.task_id)
        task = task_fields(job, runtime, self._settings)
        if task["status"] == "completed":
            task["result"] = await result_of(job)
        return {"resultType": "complete", **task}

    async def update(self, ctx: ServerRequestContext[Any, Any], params: UpdateTaskParams) -> dict[str, Any]:
        await self._job(ctx, params.task_id)  # no input is ever outstanding on a render: an ack
        return {"resultType": "complete"}

    async def cancel(self, ctx: ServerRequestContext[Any, Any], params: TaskIdParams) -> dict[str, Any]:
        runtime, job = await self._job(ctx, params.task_id)
        await cancel_job(runtime, job)
        return {"resultType": "complete"}  # an ack; tasks/get tells whether it was cancelled

    async def _job(self, ctx: ServerRequestContext[Any, Any], task_id: str) -> tuple[Runtime, Job]:
        from mcp.shared.inbound import decode_header_value

        require_client_extension(ctx, TASKS)  # a 2026 request that did not declare it: -32021
        # On streamable HTTP, Mcp-Name must be the task id (SEP-2663 via SEP-2243), so a proxy can route by task;
        # the SDK checks that header only for the spec's own methods.
        headers = getattr(ctx.request, "headers", None)  # the HTTP request; None on stdio and in memory
        if headers is not None and decode_header_value(headers.get("mcp-name")) != task_id:
            raise MCPError(HEADER_MISMATCH, "Mcp-Name header does not match the request body's 'taskId' parameter")
        return await job_of_task(ctx, task_id)


async def running_job(ctx: ServerRequestContext[Any, Any], answer: TaskAnswer, result: Any) -> Job | None:
    """The job a task tool's call started, if the call's answer is a task: a job was journaled and sent (not a
    refusal, dry run or approval round), it has a task secret, and it still has work."""
    job = answer.job
    if job is None or job.task_secret is None or not isinstance(result, CallToolResult) or result.is_error:
        return None
    job = await (await runtime_for(ctx)).jobs.current(job)
    return job if job.has_work else None


async def result_of(job: Job) -> dict[str, Any]:
    """A settled job's CallToolResult, on the wire: exactly what get_task_status answers."""
    from seedance_mcp.results import job_result
    from seedance_mcp.tools.resources import task_result

    result = await task_result(job_result(job), job)
    return result.model_dump(by_alias=True, mode="json", exclude_none=True)


async def cancel_job(runtime: Runtime, job: Job) -> str | None:
    """Ask for the job to be cancelled; why it was not, if it was not (cancel is cooperative: the task goes on)."""
    if not job.has_work:
        return f"the job already ended `{job.status}`"
    try:
        _, cancelled, why = await runtime.jobs.cancel(job.job_id, job.principal)
    except SeedanceError as exc:
        cancelled, why = False, str(exc)
    if cancelled:
        return None
    logger.info("cancel of task %s: %s", job.job_id, why)
    return why


def task_fields(job: Job, runtime: Runtime, settings: Settings) -> dict[str, Any]:
    """The wire Task of a job (SEP-2663 names; without the inlined result)."""
    from seedance_mcp.jobs.polling import progress_message
    from seedance_mcp.results import progress_of

    if job.has_work:
        status = "working"
        now = runtime.jobs.now()
        percent = progress_of(job, now)
        message = progress_message(job, now - (job.submitted_at or job.created_at))
        message = f"{percent:.0f}% · {message}" if percent is not None else message
    elif job.status == "cancelled":
        status, message = "cancelled", "the job was cancelled; nothing was rendered"
    else:  # failed, expired and the rest are tool results too (`completed`); SEP-2663's `failed` is for RPC errors
        status, message = "completed", f"the job ended `{job.status}`"
    return {
        "taskId": task_id_of(job),
        "status": status,
        "statusMessage": message,
        "createdAt": iso(job.created_at),
        "lastUpdatedAt": iso(job.updated_at),
        "ttlMs": None,  # the journal keeps every job
        "pollIntervalMs": round(settings.poll_interval * 1000),
    }


async def runtime_for(ctx: ServerRequestContext[Any, Any]) -> Runtime:
    try:
        return await ctx.lifespan_context.get()
    except SeedanceError as exc:
        raise MCPError(INTERNAL_ERROR, str(exc)) from exc


async def job_of_task(ctx: ServerRequestContext[Any, Any], task_id: str) -> tuple[Runtime, Job]:
    """The caller's job for a task id, as this process knows it now; another principal's is not found."""
    from mcp.server.auth.middleware.auth_context import get_access_token

    from seedance_mcp.principals import principal_of

    job_id, _, secret = task_id.rpartition(".")
    runtime = await runtime_for(ctx)
    try:
        job = await runtime.jobs.find(job_id, principal_of(get_access_token()))
    except TaskNotFound:
        raise MCPError(INVALID_PARAMS, NOT_FOUND) from None
    except SeedanceError as exc:
        raise MCPError(INTERNAL_ERROR, str(exc)) from exc
    if job.job_id != job_id or not job.task_secret or not hmac.compare_digest(job.task_secret, secret):
        raise MCPError(INVALID_PARAMS, NOT_FOUND)
    return runtime, await runtime.jobs.current(job)


__all__ = ["TASKS", "TASK_TOOLS", "SeedanceTasks", "TaskAnswer", "declared_tasks", "task_answer", "task_id_of"]
