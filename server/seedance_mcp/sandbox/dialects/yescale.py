"""YEScale: an Ark body (inline `--flags` in the prompt allowed) on /seedance/generations; its answers are Ark's
with a `message` (and, for a status, the `request` it was asked)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from seedance_mcp.sandbox.checks import ArkRejection
from seedance_mcp.sandbox.dialects.ark import ark_task_maker
from seedance_mcp.sandbox.dialects.common import ark_task, base_of, create_task, read_task
from seedance_mcp.sandbox.http import ark_error, sandbox_of


async def yescale_create(request: Request) -> Response:
    try:
        early, task = await create_task(request, ark_task_maker("yescale"))
    except ArkRejection as exc:
        return ark_error(exc.status, exc.code, exc.message, exc.param)
    if early is not None:
        return early
    assert task is not None
    return JSONResponse({"id": task.id, "message": "YEScale - Seedance Video Generation - Submit"})


async def yescale_get(request: Request) -> Response:
    early, task = await read_task(request)
    if early is not None:
        return early
    assert task is not None
    body = ark_task(task, sandbox_of(request), base_of(request))
    body["message"] = "YEScale - Seedance Video Generation - Query"
    body["request"] = {"model": task.model, "content": task.body.get("content")}
    return JSONResponse(body)
