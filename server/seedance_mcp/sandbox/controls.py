"""Sandbox-only controls under /_sandbox: planned faults, counters, the log of create bodies, and settings."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from seedance_mcp.sandbox.http import sandbox_of
from seedance_mcp.sandbox.state import Fault


async def put_faults(request: Request) -> Response:
    state = sandbox_of(request)
    body = await request.json()
    for item in body.get("faults", []):
        state.faults.append(Fault(**item))
    return JSONResponse({"faults": len(state.faults)})


async def clear_faults(request: Request) -> Response:
    state = sandbox_of(request)
    state.faults.clear()
    return JSONResponse({"faults": 0})


async def stats(request: Request) -> Response:
    state = sandbox_of(request)
    now = state.clock()
    by_status: dict[str, int] = {}
    for task in state.tasks.values():
        by_status[task.status(now)] = by_status.get(task.status(now), 0) + 1
    return JSONResponse(
        {
            "speaks": state.speaks,
            "model_map": state.model_map,
            "creates": state.creates,
            "create_attempts": state.create_attempts,
            "creates_by_dialect": state.creates_by_dialect,
            "status_polls": state.status_polls,
            "list_polls": state.list_polls,
            "statuses_read": state.statuses_read,
            "downloads": state.downloads,
            "tasks": len(state.tasks),
            "by_status": by_status,
            "polls_by_task": {t.id: t.polls for t in state.tasks.values()},
            "finished_at": {t.id: t.finished_at() for t in state.tasks.values()},
        }
    )


async def requests_log(request: Request) -> Response:
    state = sandbox_of(request)
    return JSONResponse({"requests": state.requests})


async def configure(request: Request) -> Response:
    state = sandbox_of(request)
    body = await request.json()
    if "render_seconds" in body:
        state.render_seconds = float(body["render_seconds"])
    if "inactive_models" in body:  # catalog keys this account has not activated (404 ModelNotOpen)
        state.inactive_models = {str(key) for key in body["inactive_models"]}
    if "sample_clips" in body:  # the shipped sample for every task (no per-task encoding): for benchmarks
        state.sample_clips = bool(body["sample_clips"])
    return JSONResponse(
        {
            "render_seconds": state.render_seconds,
            "inactive_models": sorted(state.inactive_models),
            "sample_clips": state.sample_clips,
        }
    )
