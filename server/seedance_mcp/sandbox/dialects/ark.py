"""Ark (and BytePlus, and kkiai's /volc/v1 path): create, status, the filtered task list and delete, in Ark's own
answer shapes. A create on Ark's path with aiid's fields is aiid's (dialects/aiid.py), and a task answers its
status in the dialect it was created in."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from seedance_mcp.sandbox.checks import ArkRejection, check_ark, read_inline_flags, without_nulls
from seedance_mcp.sandbox.dialects import aiid
from seedance_mcp.sandbox.dialects.common import (
    TaskMaker,
    ark_task,
    base_of,
    configure_task,
    create_task,
    query_int,
    read_json,
    read_task,
    render_draft,
)
from seedance_mcp.sandbox.http import (
    apply_fault,
    ark_error,
    auth_error,
    delay_if_slow,
    new_request_id,
    sandbox_of,
    take,
)
from seedance_mcp.sandbox.state import SandboxState, SandboxTask

_ARK_STATUSES = frozenset({"queued", "running", "cancelled", "succeeded", "failed", "expired"})


def ark_task_maker(dialect: str) -> TaskMaker:
    """The create of an Ark-shaped body (ark, kkiai, and the gateways that forward one: gpt.ge, YEScale): checked
    as Ark checks it, strictly for Ark itself; a gateway also lifts `--flag value` pairs out of the prompt."""
    strict = dialect in ("ark", "kkiai")

    async def make(state: SandboxState, request: Request) -> SandboxTask:
        # The Ark SDK sends every create field, the unset ones as null: Ark reads null as absent.
        body = without_nulls(await read_json(request))
        checked = check_ark(state, body, strict_fields=strict)
        task = state.new_task(dialect, checked.spec, checked.model, checked.prompt, body)
        if checked.draft is not None:
            render_draft(task, checked.draft, body)
        else:
            configure_task(task, dict(body) if strict else {**read_inline_flags(checked.prompt), **body})
        return task

    return make


async def ark_create(request: Request) -> Response:
    dialect = "kkiai" if request.url.path.startswith("/volc/") else "ark"
    if dialect == "ark" and aiid.is_aiid_create(await request.body()):
        return await aiid.aiid_create(request)
    try:
        early, task = await create_task(request, ark_task_maker(dialect))
    except ArkRejection as exc:
        return ark_error(exc.status, exc.code, exc.message, exc.param)
    if early is not None:
        return early
    assert task is not None
    body: dict[str, Any] = {"id": task.id}
    if task.body.get("safety_identifier") is not None:
        body["safety_identifier"] = task.body["safety_identifier"]
    if dialect == "kkiai":
        body["status"] = "submitted"
    return JSONResponse(body, headers={"X-Request-Id": new_request_id()})


async def ark_get(request: Request) -> Response:
    early, task = await read_task(request)
    if early is not None:
        return early
    assert task is not None
    state, base = sandbox_of(request), base_of(request)
    if task.dialect == "aiid":
        return JSONResponse(aiid.aiid_task(task, state, base))
    return JSONResponse(ark_task(task, state, base), headers={"X-Request-Id": new_request_id()})


async def ark_delete(request: Request) -> Response:
    """Ark: queued → cancelled, running or cancelled → 400, finished → record deleted; 200 with no body."""
    state = sandbox_of(request)
    if (denied := auth_error(request)) is not None:
        return denied
    task = state.task(request.path_params["task_id"])
    if task is None:
        return ark_error(404, "NotFound.TaskId", "The specified task does not exist.", "id")
    status = task.status(state.clock())
    if status == "queued":
        task.cancelled_at = state.clock()
        state.save_task(task)
        return Response(status_code=200, headers={"X-Request-Id": new_request_id()})
    if status in ("running", "cancelled"):
        return ark_error(400, "InvalidParameter.TaskStatus", f"A {status} task cannot be cancelled.", "id")
    del state.tasks[task.id]
    state.save_deleted(task.id)
    return Response(status_code=200, headers={"X-Request-Id": new_request_id()})


async def ark_list(request: Request) -> Response:
    state = sandbox_of(request)
    state.list_polls += 1
    if (denied := auth_error(request)) is not None:
        return denied
    ids = request.query_params.getlist("filter.task_ids")
    if state.tasks_file is not None and any(i not in state.tasks for i in ids):
        state.load_tasks()  # made before a restart, or by another process sharing the state dir
    if take(state, "status", "bad_status"):
        return JSONResponse({"items": [{"id": i, "status": "levitating"} for i in ids], "total": len(ids)})
    if (faulted := await apply_fault(state, "status")) is not None:
        return faulted
    await delay_if_slow(state, "status")
    query = request.query_params
    wanted = query.get("filter.status")
    if wanted and wanted not in _ARK_STATUSES:
        return ark_error(400, "InvalidParameter.filter.status", f"{wanted} is not a task status", "filter.status")
    model = query.get("filter.model")
    # As Ark: flex tasks are listed only when asked for by tier, default-tier ones otherwise.
    tier = query.get("filter.service_tier") or "default"
    size = query_int(query.get("page_size"), 10)
    page_num = query_int(query.get("page_num"), 1)
    if size is None or not 1 <= size <= 500:
        return ark_error(400, "InvalidParameter.page_size", "page_size must be in [1, 500]", "page_size")
    if page_num is None or page_num < 1:
        return ark_error(400, "InvalidParameter.page_num", "page_num must be 1 or more", "page_num")
    start = (page_num - 1) * size
    chosen = [
        t
        for t in sorted(state.tasks.values(), key=lambda t: t.created_at, reverse=True)
        if (not ids or t.id in ids)
        and (not wanted or t.status(state.clock()) == wanted)
        and (not model or t.model == model)
        and (t.body.get("service_tier") or "default") == tier
    ]
    page = chosen[start : start + size]
    for task in page:
        task.polls += 1
    state.statuses_read += len(page)
    items = [ark_task(t, state, base_of(request)) for t in page]
    return JSONResponse({"items": items, "total": len(chosen)}, headers={"X-Request-Id": new_request_id()})
