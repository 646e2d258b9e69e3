"""A storyboard's result and status: every shot's (and take's) state, the film and its contact sheets, the text a
model reads (`status_of`, and `plan_status` for get_task_status(plan_id))."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import anyio
import anyio.to_thread
from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel, Field

from seedance_mcp.runtime import Runtime
from seedance_mcp.storyboards.plan import Plan, PlannedShot, Transition, plan_from_record
from seedance_mcp.storyboards.run import (
    Run,
    failed_shots,
    join_error,
    join_film,
    known_shots,
    runs_of,
    wait_for,
    while_called,
)

if TYPE_CHECKING:
    pass


logger = logging.getLogger(__name__)


class TakeState(BaseModel):
    take: int
    task_id: str | None = None
    status: str
    video_path: str | None = None
    error: str | None = None


class ShotState(BaseModel):
    shot: int
    transition: Transition
    prompt: str | None = None
    clip: str | None = None
    status: str = Field(description="`not_sent`, or the shot's job status.")
    estimated_cost: float | None = None
    task_id: str | None = None
    paid: bool = False
    may_be_paid: bool = False
    saved: bool = False
    video_path: str | None = None
    error: str | None = None
    takes: list[TakeState] | None = None
    contact_sheet_path: str | None = None


class StoryboardResult(BaseModel):
    plan_id: str
    status: Literal["dry_run", "declined", "running", "failed", "cancelled", "succeeded"]
    shots: list[ShotState]
    seconds: float
    estimated_cost: float | None = None
    currency: str | None = None
    film_path: str | None = None
    film_seconds: float | None = None
    film_video: str | None = Field(default=None, description="`copied` (remuxed) or `encoded`.")
    contact_sheet_path: str | None = None
    next_step: str


CANCELLED = (
    "This plan was cancelled: no more of its shots are sent. To make it anyway, change it (a seed, a prompt) and "
    "call storyboard again; shots already made are listed here."
)


async def plan_status(
    runtime: Runtime, plan_id: str, principal: str, *, wait: float = 0.0, report: Any = None
) -> CallToolResult:
    """A plan's state as the journal (and this process's run of it) has it, in storyboard's result shape; nothing
    is sent (`get_task_status(plan_id)`). With `wait`, after waiting up to that long for the plan to end."""
    from seedance_mcp.errors import TaskNotFound

    record = await runtime.jobs.store.get_plan(plan_id)
    if record is None or record.principal != principal:
        raise TaskNotFound(plan_id)
    if wait > 0 and record.state == "running":
        listening = while_called(report) if report is not None else None
        try:
            await wait_for(runtime, plan_id, runs_of(runtime).get(plan_id), wait, listening)
        finally:
            if listening is not None:
                listening.call_returned = True
        record = await runtime.jobs.store.get_plan(plan_id) or record
    plan = plan_from_record(record, runtime.preset, runtime.settings)
    run = runs_of(runtime).get(plan_id)
    if run is not None:  # what only the run knows: why a shot was not sent, each shot's progress
        for mine, theirs in zip(plan.shots, run.plan.shots, strict=True):
            mine.error, mine.take_errors = theirs.error, dict(theirs.take_errors)
        plan.progress = dict(run.plan.progress)
    result = await status_of(runtime, plan, principal, run)
    data: dict[str, Any] = result.structured_content or {}
    # Also in get_task_status's own shape (a video task's required fields), so its output schema holds.
    saved = sum(1 for s in plan.shots if s.job is not None and s.job.video_path)
    task = {
        "task_id": plan.plan_id,
        "job_id": plan.plan_id,
        "provider": runtime.provider.preset.name,
        "model": next((s.request.model_id for s in plan.shots if s.request is not None), ""),
        "progress_percent": round(100.0 * saved / len(plan.shots), 1),
    }
    if data.get("film_path"):
        task["video_path"] = data["film_path"]
    result.structured_content = {**task, **data}
    return result


async def status_of(runtime: Runtime, plan: Plan, principal: str, run: Run | None) -> CallToolResult:
    """The result: every shot's state; when all are saved, the joined film and the contact sheet."""
    record = await runtime.jobs.store.get_plan(plan.plan_id)
    if record is not None:
        await known_shots(runtime, plan, record.takes, principal)
    for shot in plan.shots:
        if shot.job is not None:
            shot.job = await runtime.jobs.current(shot.job)
        for take, job in list(shot.others.items()):
            shot.others[take] = await runtime.jobs.current(job)
        await _sheet_of_takes(shot)
    if record is not None and record.state == "cancelled":
        return result_of(plan, "cancelled", CANCELLED)
    if not all(s.job is not None and s.job.video_path for s in plan.shots):
        if failed_shots(plan) or (record is not None and record.state == "stopped"):
            status = "failed"
            step = (
                "Some shots failed (see `shots`). Fix or keep the plan and call storyboard again with the same "
                "arguments: saved shots are reused, only the failed ones and those after them are sent (and paid)."
            )
        else:
            status = "running"
            step = (
                f"Shots are still rendering; the plan goes on by itself, even if the server restarts. "
                f"get_task_status(task_id='{plan.plan_id}') says where it stands (free; nothing is sent)."
            )
        return result_of(plan, status, step)
    film = runtime.settings.output_dir / f"{plan.plan_id}.mp4"
    sheet = runtime.settings.output_dir / f"{plan.plan_id}-shots.png"
    state = record.state if record is not None else "running"
    joined = run.film if run is not None else None
    if state == "stopped" or (run is not None and run.join_error is not None):  # every shot saved, no film
        why = run.join_error if run is not None and run.join_error else "it was not joined"
        return result_of(
            plan,
            "failed",
            f"Every shot is saved, but the film could not be joined ({why}). Call storyboard again with the same "
            "arguments to join it again (nothing is sent or paid); the shots' videos are listed here.",
        )
    if state == "done" and joined is None and (not film.exists() or not sheet.exists()):
        try:  # removed since it was joined: made again from the saved shots (nothing is sent or paid)
            joined = await join_film(runtime.settings, plan)
        except Exception as exc:
            logger.exception("%s: the film could not be joined again", plan.plan_id)
            return result_of(plan, "failed", f"The film is gone and could not be joined again ({join_error(exc)}).")
    if state != "done":  # only the plan's run joins it
        return result_of(
            plan,
            "running",
            f"Every shot is saved; the film is being joined. get_task_status(task_id='{plan.plan_id}') says when.",
        )
    extra: dict[str, Any] = {"film_path": str(film), "contact_sheet_path": str(sheet)}
    if joined is not None:
        extra.update(film_seconds=round(joined.seconds, 3), film_video=joined.video)
    else:  # joined before (another call, process or replica): read, never written again
        from seedance_mcp.media.inputs import media_seconds

        try:
            seconds = await anyio.to_thread.run_sync(media_seconds, film)
        except ValueError:
            seconds = None
        extra["film_seconds"] = round(seconds, 3) if seconds is not None else None
    return result_of(plan, "succeeded", f"The film is saved at {film}.{_other_takes(plan)}", extra)


async def _sheet_of_takes(shot: PlannedShot) -> None:
    """The contact sheet of a shot's takes (generate_video's: each take's first, middle and last frames), once
    every take is saved."""
    from seedance_mcp.tools.takes import SHEET_SUFFIX, takes_sheet

    jobs = [shot.job_of(take) for take in range(1, shot.takes + 1)]
    saved = [job for job in jobs if job is not None and job.status == "succeeded" and job.video_path]
    if shot.takes < 2 or len(saved) < shot.takes or shot.sheet is not None:
        return
    first = Path(str(saved[0].video_path))
    sheet = first.with_name(first.stem + SHEET_SUFFIX)
    if not await anyio.Path(sheet).is_file():
        try:
            sheet, _ = await anyio.to_thread.run_sync(takes_sheet, saved)
        except Exception:  # the sheet is a bonus: the takes stand without it
            logger.exception("the contact sheet of shot %d's takes could not be made", shot.index + 1)
            return
    shot.sheet = str(sheet)


def _other_takes(plan: Plan) -> str:
    """How to use another take of a shot than take 1 (the film's)."""
    shot = next((s for s in plan.shots if s.takes > 1), None)
    if shot is None:
        return ""
    sheets = "; ".join(f"shot {s.index + 1}: {s.sheet}" for s in plan.shots if s.sheet is not None)
    compare = f" Compare the takes on their contact sheets ({sheets})." if sheets else ""
    return (
        f" The film uses take 1 of each shot.{compare} To use another take instead, call storyboard again with that "
        f'shot as {{"clip": "<the take\'s task_id>"}} (e.g. shots[{shot.index}]): the take is not paid again, only the '
        "shots after it that start from it are rendered anew."
    )


def _shot_state(shot: PlannedShot) -> dict[str, Any]:
    job = shot.job
    state: dict[str, Any] = {
        "shot": shot.index + 1,
        "transition": shot.transition,
        "prompt": shot.args.prompt if shot.args is not None else None,
        "clip": shot.clip,
        "estimated_cost": shot.estimate,
    }
    if job is None:
        state["status"] = "not_sent"
        state["paid"] = False
    else:
        state.update(
            task_id=job.handle,
            status=job.status,
            paid=job.status == "succeeded",
            may_be_paid=job.status in ("submitting", "unknown", "queued", "running"),
            saved=job.video_path is not None,
            video_path=job.video_path,
        )
    if shot.error is not None:
        state["error"] = shot.error
    if shot.takes > 1:
        state["estimated_cost"] = shot.cost
        takes: list[dict[str, Any]] = []
        for take in range(1, shot.takes + 1):
            job = shot.job_of(take)
            entry: dict[str, Any] = {"take": take, "status": "not_sent" if job is None else job.status}
            if job is not None:
                entry.update(task_id=job.handle, video_path=job.video_path)
            error = shot.error if take == 1 else shot.take_errors.get(take)
            if error is not None:
                entry["error"] = error
            takes.append(entry)
        state.update(takes=takes, contact_sheet_path=shot.sheet)
    return state


def result_of(plan: Plan, status: str, next_step: str, extra: dict[str, Any] | None = None) -> CallToolResult:
    data: dict[str, Any] = {
        "plan_id": plan.plan_id,
        "status": status,
        "shots": [_shot_state(s) for s in plan.shots],
        "seconds": plan.seconds,
        "estimated_cost": plan.estimate,
        "currency": plan.currency or None,
        **(extra or {}),
        "next_step": next_step,
    }
    data = _without_nulls(data)
    return CallToolResult(content=[TextContent(type="text", text=_summary(data))], structured_content=data)


def _without_nulls(value: Any) -> Any:
    """Structured content as the lean output schema publishes it: no nulls (an absent field is unknown)."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}  # pyright: ignore[reportUnknownVariableType]
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]  # pyright: ignore[reportUnknownVariableType]
    return value


def _summary(data: dict[str, Any]) -> str:
    """The text a model reads: a line per shot and the film, not the structured content again as JSON."""
    lines = [f"{data['plan_id']}: {data['status']}."]
    for i, shot in enumerate(data.get("shots", [])):
        where = f" {shot['video_path']}" if shot.get("video_path") else ""
        error = f" ({shot['error']})" if shot.get("error") else ""
        task = f" {shot['task_id']}" if shot.get("task_id") else ""
        lines.append(f"shot {i + 1}:{task} {shot['status']}{', paid' if shot.get('paid') else ''}{where}{error}")
        for take in shot.get("takes", [])[1:]:
            where = f" {take['video_path']}" if take.get("video_path") else ""
            error = f" ({take['error']})" if take.get("error") else ""
            lines.append(f"  take {take['take']}: {take.get('task_id', '')} {take['status']}{where}{error}")
        if shot.get("contact_sheet_path"):
            lines.append(f"  its takes: {shot['contact_sheet_path']}")
    if data.get("film_path"):
        lines.append(f"Film: {data['film_path']} ({data.get('film_seconds', '?')} s)")
    if data.get("contact_sheet_path"):
        lines.append(f"Contact sheet: {data['contact_sheet_path']}")
    lines.append(str(data["next_step"]))
    return "\n".join(lines)


def shots_note(plan: Plan | None) -> str:
    if plan is None or not any(s.job is not None for s in plan.shots):
        return ""
    sent = ", ".join(f"shot {s.index + 1}: {s.job.handle} `{s.job.status}`" for s in plan.shots if s.job is not None)
    return f" Shots already submitted (calling storyboard again reuses them): {sent}."
