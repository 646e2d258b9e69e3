"""The 2025-11-25 protocol's experimental tasks (SEP-1686), for the clients that speak them: the TypeScript SDK 1.x's
`client.experimental.tasks` (`callToolStream`, `getTask`, `getTaskResult`, `cancelTask`, `listTasks`).

A 2025-11-25 `tools/call` of generate_video with `params.task` is answered with `{"task": {...}}` once its job is
journaled and sent; `tasks/get`, `tasks/result` (blocks until the job ends), `tasks/list` and `tasks/cancel` read
the same journal jobs as the 2026 extension (task_extension.py), with the same ids and the same owner check.

mcp 2.3.0 has no tasks runtime for this wire, and it turns a task-shaped tools/call result into -32603 (its
per-version sieve only knows CallToolResult there), so this is server middleware (MCPServer's public
`middleware=`): it runs outside the sieve and owns what it returns. A task-augmented call that makes no job (a
refusal, a dry run, a declined cost) is a task born completed, kept in this process's memory only (the call is
free and can be made again). Clients that do not send `params.task` see nothing of this.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import anyio
from mcp import MCPError
from mcp.types import INTERNAL_ERROR, INVALID_PARAMS

from seedance_mcp.config import Settings
from seedance_mcp.errors import SeedanceError
from seedance_mcp.tools.task_extension import (
    NOT_FOUND,
    TASK_TOOLS,
    answering_as_task,
    cancel_job,
    iso,
    job_of_task,
    result_of,
    runtime_for,
    task_fields,
    tasks_defined,
)

if TYPE_CHECKING:
    from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

    from seedance_mcp.journal.job import Job
    from seedance_mcp.runtime import Runtime

CAPABILITY: dict[str, Any] = {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}
"""What `initialize` advertises on 2025-11-25: task-augmented tools/call, tasks/list and tasks/cancel."""
RELATED_TASK = "io.modelcontextprotocol/related-task"
METHODS = frozenset({"tasks/get", "tasks/result", "tasks/list", "tasks/cancel"})
KEEP_PLAIN = 256
"""How many born-completed tasks (calls that made no job) this process remembers."""
RESULT_WAIT_SECONDS = 30.0
"""tasks/result waits for the job in steps this long, until it ends."""


def _principal() -> str:
    from mcp.server.auth.middleware.auth_context import get_access_token

    from seedance_mcp.principals import principal_of

    return principal_of(get_access_token())


class LegacyTasks:
    """Server middleware answering SEP-1686 tasks on 2025-11-25 connections from the journal's jobs."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._plain: OrderedDict[str, tuple[str, dict[str, Any], float]] = OrderedDict()

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method == "initialize":
            result = await call_next(ctx)
            if isinstance(result, dict) and not tasks_defined(str(result.get("protocolVersion", ""))):
                result.setdefault("capabilities", {})["tasks"] = CAPABILITY
            return result
        if tasks_defined(ctx.protocol_version):
            return await call_next(ctx)
        params: dict[str, Any] = dict(ctx.params or {})
        if ctx.method == "tools/list":
            result = await call_next(ctx)
            tools: list[dict[str, Any]] = result.get("tools", []) if isinstance(result, dict) else []
            for tool in tools:
                if tool.get("name") in TASK_TOOLS:
                    tool["execution"] = {"taskSupport": "optional"}
            return result
        if ctx.method == "tools/call" and params.get("task") is not None and params.get("name") in TASK_TOOLS:
            return await self._create(ctx, call_next)
        if ctx.method in METHODS:
            return await self._serve(ctx, params)
        return await call_next(ctx)

    async def _create(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> dict[str, Any]:
        with answering_as_task() as answer:
            result = await call_next(ctx)
        wire: dict[str, Any] = result if isinstance(result, dict) else {}
        job = answer.job
        if job is not None and job.task_secret is not None and not wire.get("isError"):
            runtime = await runtime_for(ctx)
            return {"task": self._task(await runtime.jobs.current(job), runtime)}
        return {"task": self._remember(wire)}

    def _remember(self, result: dict[str, Any]) -> dict[str, Any]:
        """A call that made no job (refused, a dry run, declined): a task born completed, with that result."""
        task_id = f"plain.{secrets.token_urlsafe(16)}"
        now = time.time()
        self._plain[task_id] = (_principal(), result, now)
        while len(self._plain) > KEEP_PLAIN:
            self._plain.popitem(last=False)
        return self._plain_task(task_id, now)

    def _plain_task(self, task_id: str, created: float) -> dict[str, Any]:
        return {
            "taskId": task_id,
            "status": "completed",
            "statusMessage": "answered at once: no job was made",
            "createdAt": iso(created),
            "lastUpdatedAt": iso(created),
            "ttl": None,
        }

    def _task(self, job: Job, runtime: Runtime) -> dict[str, Any]:
        fields = task_fields(job, runtime, self._settings)
        poll = fields.pop("pollIntervalMs")
        fields.pop("ttlMs")
        return {**fields, "ttl": None, "pollInterval": poll}

    async def _serve(self, ctx: ServerRequestContext[Any, Any], params: dict[str, Any]) -> dict[str, Any]:
        if ctx.method == "tasks/list":
            runtime = await runtime_for(ctx)
            try:
                jobs, _ = await runtime.jobs.store.recent(None, 100, _principal())
            except SeedanceError as exc:
                raise MCPError(INTERNAL_ERROR, str(exc)) from exc
            tasks = [self._task(await runtime.jobs.current(job), runtime) for job in jobs if job.task_secret]
            return {"tasks": tasks}
        task_id = str(params.get("taskId", ""))
        plain = self._plain.get(task_id)
        if task_id.startswith("plain."):
            if plain is None or plain[0] != _principal():
                raise MCPError(INVALID_PARAMS, NOT_FOUND)
            if ctx.method == "tasks/result":
                return _related(plain[1], task_id)
            if ctx.method == "tasks/cancel":
                raise MCPError(INVALID_PARAMS, "Cannot cancel task: already in terminal status 'completed'")
            return self._plain_task(task_id, plain[2])
        runtime, job = await job_of_task(ctx, task_id)
        if ctx.method == "tasks/get":
            return self._task(job, runtime)
        if ctx.method == "tasks/cancel":
            if not job.has_work:
                raise MCPError(INVALID_PARAMS, f"Cannot cancel task: already in terminal status '{job.status}'")
            await cancel_job(runtime, job)
            return self._task((await job_of_task(ctx, task_id))[1], runtime)
        while job.has_work:  # tasks/result: block until the job ends
            try:
                job = await runtime.jobs.wait(job.job_id, RESULT_WAIT_SECONDS, None, job.principal)
            except SeedanceError:  # a poll failing now: the worker goes on; so does this wait
                await anyio.sleep(self._settings.poll_interval)
                job = (await job_of_task(ctx, task_id))[1]
        return _related(await result_of(job), task_id)


def _related(result: dict[str, Any], task_id: str) -> dict[str, Any]:
    meta = {**result.get("_meta", {}), RELATED_TASK: {"taskId": task_id}}
    return {**result, "_meta": meta}


__all__ = ["LegacyTasks"]
