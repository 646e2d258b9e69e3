"""gpt.ge: an Ark body (inline `--flags` in the prompt allowed) on its own paths; the create answer in its
`{"code": 0, "data": {"task_id": …}}` envelope, statuses as Ark's with `submitted` for queued."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from seedance_mcp.sandbox.checks import ArkRejection
from seedance_mcp.sandbox.dialects.ark import ark_task_maker
from seedance_mcp.sandbox.dialects.common import ark_task, base_of, create_task, read_task
from seedance_mcp.sandbox.http import new_request_id, sandbox_of


async def gptge_create(request: Request) -> Response:
    try:
        early, task = await create_task(request, ark_task_maker("gptge"))
    except ArkRejection as exc:
        return JSONResponse({"code": exc.code, "message": exc.message}, status_code=exc.status)
    if early is not None:
        return early
    assert task is not None
    millis = int(task.created_at * 1000)
    request_id = new_request_id()
    return JSONResponse(
        {
            "code": 0,
            "message": "SUCCEED",
            "request_id": request_id,
            "data": {"task_id": task.id, "task_status": "submitted", "created_at": millis, "updated_at": millis},
        }
    )


async def gptge_get(request: Request) -> Response:
    early, task = await read_task(request)
    if early is not None:
        return early
    assert task is not None
    return JSONResponse(ark_task(task, sandbox_of(request), base_of(request), queued_word="submitted"))
