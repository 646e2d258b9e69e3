"""A SEP-2663 tasks client on the mcp 2.3.0 Client (which has the seam, `ResultClaim`, but no tasks runtime).

`Client(target, extensions=[TasksClient()])` declares `io.modelcontextprotocol/tasks` on every 2026-07-28 request;
`client.session.call_tool(..., allow_claimed=True)` hands back a `CreateTaskResult` to drive by hand, and a plain
`client.call_tool` polls `tasks/get` to the final CallToolResult (the claim's resolver).
"""

from __future__ import annotations

from typing import Any, Literal

import anyio
from mcp.client import ClientExtension
from mcp.client.extension import ClaimContext, ResultClaim
from mcp.client.session import ClientSession
from mcp.types import CallToolResult, EmptyResult, Request, RequestParams, Result

TASKS = "io.modelcontextprotocol/tasks"
TERMINAL = ("completed", "failed", "cancelled")


class CreateTaskResult(Result):
    result_type: Literal["task"] = "task"
    task_id: str
    status: str
    status_message: str | None = None
    created_at: str
    last_updated_at: str
    ttl_ms: int | None
    poll_interval_ms: int | None = None


class GetTaskResult(Result):
    task_id: str
    status: str
    status_message: str | None = None
    created_at: str
    last_updated_at: str
    ttl_ms: int | None
    poll_interval_ms: int | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class TaskIdParams(RequestParams):
    task_id: str


class GetTaskRequest(Request[TaskIdParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    params: TaskIdParams
    name_param = "taskId"  # streamable HTTP sends Mcp-Name: <taskId>


class CancelTaskRequest(Request[TaskIdParams, Literal["tasks/cancel"]]):
    method: Literal["tasks/cancel"] = "tasks/cancel"
    params: TaskIdParams
    name_param = "taskId"


async def get_task(session: ClientSession, task_id: str) -> GetTaskResult:
    return await session.send_request(GetTaskRequest(params=TaskIdParams(task_id=task_id)), GetTaskResult)


async def cancel_task(session: ClientSession, task_id: str) -> None:
    await session.send_request(CancelTaskRequest(params=TaskIdParams(task_id=task_id)), EmptyResult)


async def wait_task(session: ClientSession, task_id: str, seen: list[GetTaskResult] | None = None) -> GetTaskResult:
    """Poll tasks/get (at the server's pollIntervalMs, at most a second apart) until the task is terminal."""
    while True:
        task = await get_task(session, task_id)
        if seen is not None:
            seen.append(task)
        if task.status in TERMINAL:
            return task
        await anyio.sleep(min(task.poll_interval_ms or 1000, 1000) / 1000)


async def _resolve(created: CreateTaskResult, ctx: ClaimContext) -> CallToolResult:
    task = await wait_task(ctx.session, created.task_id)
    if task.status == "completed" and task.result is not None:
        return CallToolResult.model_validate(task.result)
    raise RuntimeError(f"task {created.task_id} ended {task.status}: {task.error or task.status_message}")


class TasksClient(ClientExtension):
    identifier = TASKS

    def claims(self) -> list[ResultClaim[Any]]:
        return [ResultClaim(result_type="task", model=CreateTaskResult, resolve=_resolve)]
