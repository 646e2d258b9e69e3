"""`storyboard`: several shots, one film. One quote and one approval for the whole plan, every shot an ordinary job.

- Every shot is checked against its model's limits before anything is sent (a continuous shot with a stand-in first
  frame, since its real one is the previous shot's last frame); a refusal names `shots[i].argument`.
- The plan's cost is the sum of its shots'; the person approves it once (the approval id, or the question, is about
  the whole plan); the per-video limit applies to each shot and the daily budgets to the whole plan, checked before
  the first shot is sent (and again by the journal at each shot's insert).
- Shots after a `cut` start together; a `continuous` shot waits for the previous one and starts from its saved last
  frame. Each shot is submitted like generate_video's job (journal first, lost-create safety), and an identical
  shot within the dedupe window is that job: a repeated call (after a timeout, a kill, a failed shot) continues
  the plan and pays only for shots that have no job yet.
- When every shot is saved, they are joined into one MP4 (`media/join.py`) beside a contact sheet of the shots.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import anyio
import anyio.to_thread
from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, InputRequiredResult, TextContent, ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field

from seedance_mcp.catalog import Preset, Resolution
from seedance_mcp.config import Settings
from seedance_mcp.errors import (
    ConfigurationError,
    DuplicateSubmission,
    InvalidArgument,
    JournalUnavailable,
    ProviderError,
    SeedanceError,
    SpendRefused,
)
from seedance_mcp.requests import MediaList, RatioArg, VideoArguments
from seedance_mcp.runtime import LazyRuntime, Runtime
from seedance_mcp.tools.approval import Approvals, Quote, approval, check_cost, spend_limits
from seedance_mcp.tools.context import Caller, ToolContext, caller, reporter, unexpected_failure

if TYPE_CHECKING:
    from seedance_mcp.journal.job import Job
    from seedance_mcp.wire import HttpRequest, VideoRequest

Transition = Literal["continuous", "cut"]

_CLOCK_MARGIN = 5.0

logger = logging.getLogger(__name__)

_STAND_IN_FRAME = "https://storyboard.invalid/previous-shot-last-frame.png"
"""What a continuous shot's first frame is checked and quoted with: the real one exists only once the shot before
it is saved (the same size of request either way: only its URL differs)."""


class Shot(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt: str
    duration: Annotated[int | None, Field(strict=True)] = None
    transition: Transition | None = None
    model: Annotated[str | None, Field(description="Instead of the shared one.")] = None
    reference_images: MediaList = Field(default_factory=tuple, description="Instead of the shared ones.")


class ShotState(BaseModel):
    shot: int
    transition: Transition
    prompt: str
    status: str = Field(description="`not_sent`, or the shot's job status.")
    estimated_cost: float | None = None
    task_id: str | None = None
    paid: bool = False
    may_be_paid: bool = False
    saved: bool = False
    video_path: str | None = None
    error: str | None = None


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


def description(settings: Settings) -> str:
    return f"""Make a film: shots joined into one MP4, one approval for the whole plan. COSTS MONEY (its shots' sum).

Shot transition: `continuous` (default) starts on the previous shot's last frame; `cut` is independent. Shared
settings apply to every shot; shared reference_images keep characters consistent. Waits up to
{settings.wait_seconds:.0f} s, then goes on in the background: call storyboard again with the same arguments for the
result (shots made are reused, never paid again). cancel_task(plan_id) cancels it. dry_run=true: plan and cost."""


@dataclass
class PlannedShot:
    index: int
    transition: Transition
    args: VideoArguments
    request: VideoRequest
    price: tuple[float, str] | None
    estimate: float | None
    job: Job | None = None
    error: str | None = None


@dataclass
class Plan:
    shots: list[PlannedShot]
    fingerprint: str
    estimate: float | None
    currency: str
    seconds: float
    progress: dict[int, float] = field(default_factory=lambda: {})
    since: float | None = None
    """When the plan was first written to the journal (its clock): shots identical to one made since are reused."""

    @property
    def plan_id(self) -> str:
        return f"sb-{self.fingerprint[:16]}"


def register(server: MCPServer[LazyRuntime], settings: Settings, preset: Preset) -> None:
    approvals = Approvals(settings)

    @server.tool(
        description=description(settings),
        annotations=ToolAnnotations(
            title="Make a film from several Seedance shots (paid)",
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=False,
            open_world_hint=True,
        ),
    )
    async def storyboard(
        ctx: ToolContext,
        shots: Annotated[list[Shot], Field(min_length=1, max_length=12)],
        model: str | None = None,
        ratio: RatioArg | None = None,
        resolution: Resolution | None = None,
        seed: Annotated[int | None, Field(strict=True)] = None,
        reference_images: list[str] | None = None,
        generate_audio: Annotated[bool | None, Field(strict=True)] = None,
        approval_id: Annotated[str | None, Field(description="From a refusal asking for approval.")] = None,
        dry_run: Annotated[bool, Field(strict=True)] = False,
    ) -> Annotated[CallToolResult, StoryboardResult] | InputRequiredResult:
        shared = {
            "model": model,
            "ratio": ratio,
            "resolution": resolution,
            "seed": seed,
            "reference_images": tuple(reference_images or ()),
            "generate_audio": generate_audio,
        }
        runtime: Runtime | None = None
        plan: Plan | None = None
        try:
            plan = plan_of(shots, shared, preset, settings)
            try:
                runtime = await ctx.request_context.lifespan_context.get()
            except JournalUnavailable as exc:
                raise exc.refusing_a_video() from exc
            who = caller(ctx, settings)
            quote = _quote(runtime, plan, who.principal)
            plan.fingerprint = quote.fingerprint  # the plan of this person on this provider
            for shot in plan.shots:
                try:
                    check_cost(who, shot.request, shot.price)
                except SpendRefused as exc:
                    raise SeedanceError(f"Shot {shot.index + 1} (shots[{shot.index}]): {exc}") from exc
            if dry_run:
                return _result(plan, "dry_run", f"Nothing was sent. The plan: {quote.what}.")
            if not runtime.provider.has_key:
                raise ConfigurationError(
                    "No API key is configured, so nothing was sent. Set SEEDANCE_API_KEY (or ARK_API_KEY) in the MCP "
                    "server's environment and restart it; or set SEEDANCE_PROVIDER=sandbox to try it for free."
                )
            stored = await runtime.jobs.store.get_plan(plan.plan_id)
            if stored is not None and stored.cancelled_at is not None:
                await _known_shots(runtime, plan, stored.shots, who.principal)
                return _result(plan, "cancelled", _CANCELLED)
            await _check_budgets(runtime, who, plan)
            approved = await approval(ctx, who, quote, approval_id, approvals, runtime.jobs.now(), tool="storyboard")
            if isinstance(approved, InputRequiredResult):
                return approved
            if not approved.granted:
                return _result(plan, "declined", "The user declined; nothing was sent and nothing was charged.")
            # The plan is in the journal before its first shot is sent; an identical shot made since it was first
            # written is that shot's job, so a call that continues the plan pays only for shots never sent.
            record = await runtime.jobs.store.record_plan(plan.plan_id, who.principal, _plan_record(plan))
            # A little earlier: this process's reading of the journal's clock may lag it by a few milliseconds, and
            # the first shot is inserted right after the plan.
            plan.since = record.created_at - _CLOCK_MARGIN
            report = _while_called(reporter(ctx))
            try:
                await _run_in_background(runtime, plan, who, settings, report)
                result = await _finish(runtime, plan, settings)
                data: dict[str, Any] = result.structured_content or {}
                if data.get("status") == "succeeded":
                    await report(100.0, f"{plan.plan_id}: the film is joined")
            finally:
                report.call_returned = True  # the plan may go on; no one listens to its progress any more
            return result
        except ProviderError as exc:
            raise ToolError(str(exc) + _shots_note(plan)) from exc
        except SeedanceError as exc:
            raise ToolError(str(exc) + _shots_note(plan)) from exc
        except Exception as exc:
            known = "Nothing was sent to the provider and nothing was charged."
            if plan is not None and any(s.job is not None for s in plan.shots):
                known = "Some shots were submitted and may be paid:" + _shots_note(plan)
            raise ToolError(unexpected_failure("storyboard", exc, settings.secrets(), known)) from exc


def plan_of(shots: list[Shot], shared: dict[str, Any], preset: Preset, settings: Settings) -> Plan:
    """Every shot checked against its model's limits and priced; InvalidArgument names `shots[i].argument`."""
    from seedance_mcp.pricing import quote
    from seedance_mcp.validation import validate_request

    planned: list[PlannedShot] = []
    for index, shot in enumerate(shots):
        transition: Transition = "cut" if index == 0 else (shot.transition or "continuous")
        continues = index + 1 < len(shots) and (shots[index + 1].transition or "continuous") == "continuous"
        fields = {
            **shared,
            "prompt": shot.prompt,
            "duration": shot.duration,
            "model": shot.model or shared["model"],
            "reference_images": shot.reference_images or shared["reference_images"],
            "first_frame": _STAND_IN_FRAME if transition == "continuous" else None,
            "return_last_frame": True if continues else None,
        }
        if transition == "continuous" and fields["ratio"] is None:
            fields["ratio"] = "adaptive"  # the shot takes the shape of the frame it starts from
        try:
            args = VideoArguments.model_validate(fields)
            request = validate_request(args, preset, settings.default_model, settings.model_map)
        except InvalidArgument as exc:
            raise InvalidArgument(
                f"shots[{index}].{exc.argument}",
                exc.problem + (" (it starts on the previous shot's last frame)" if transition == "continuous" else ""),
                allowed=exc.allowed,
                hint=exc.hint,
            ) from exc
        except ValueError as exc:
            raise InvalidArgument(f"shots[{index}]", str(exc).splitlines()[0]) from exc
        spec = preset.model(request.model_key)
        price = quote(
            spec,
            preset.currency,
            resolution=request.effective_resolution,
            with_video_input=False,
            generate_audio=request.generate_audio,
            flex=request.service_tier == "flex",
            draft=bool(request.draft),
        )
        from seedance_mcp.results import money

        estimate = money(request.estimated_tokens, price[0]) if price is not None else None
        planned.append(PlannedShot(index, transition, args, request, price, estimate))
    known = [s.estimate for s in planned]
    total = None if any(e is None for e in known) else round(sum(e or 0.0 for e in known), 4)
    currency = next((s.price[1] for s in planned if s.price is not None), "")
    canonical = json.dumps(
        [[s.transition, s.args.model_dump(mode="json")] for s in planned], sort_keys=True, ensure_ascii=False
    )
    return Plan(
        shots=planned,
        fingerprint=hashlib.sha256(canonical.encode()).hexdigest(),
        estimate=total,
        currency=currency,
        seconds=sum(s.request.effective_seconds for s in planned),
    )


def _quote(runtime: Runtime, plan: Plan, principal: str) -> Quote:
    """The whole plan as one request to approve: its shots, in order, and their summed cost."""
    parts = f"storyboard\n{runtime.provider.preset.name}\n{principal}\n{plan.fingerprint}"
    fingerprint = hashlib.sha256(parts.encode()).hexdigest()
    cuts = sum(1 for s in plan.shots[1:] if s.transition == "cut")
    film = (
        f"a film of {len(plan.shots)} shots, {plan.seconds:g} s "
        f"({len(plan.shots) - 1 - cuts} continuous and {cuts} cut transitions)"
    )
    if plan.estimate is None:
        return Quote(fingerprint, None, "", f"{film}, cost unknown (no list price for a shot's model here)")
    return Quote(fingerprint, plan.estimate, plan.currency, f"{film}, about {plan.estimate:.2f} {plan.currency}")


async def _check_budgets(runtime: Runtime, who: Caller, plan: Plan) -> None:
    """The daily budgets for the whole plan, before its first shot is sent: what is spent today plus the plan."""
    if plan.estimate is None:
        return
    from seedance_mcp.journal import start_of_day

    today = start_of_day(runtime.jobs.now())
    for limit in spend_limits(who, runtime.preset.currency):
        rows = await runtime.jobs.store.spend(today, limit.principal)
        spent = sum(row.cost for row in rows if row.currency == limit.currency)
        if spent + plan.estimate > limit.limit:
            raise SpendRefused(
                f"This film would cost about {plan.estimate:.2f} {plan.currency}, and {spent:.2f} is already spent "
                f"or in flight today: above {limit.name} = {limit.limit:.2f}. Make it cheaper (fewer or shorter "
                "shots, a lower resolution) or ask the user to raise the limit."
            )


class _while_called:
    """A progress callback that goes silent once the call has returned (the plan may still be running)."""

    def __init__(self, report: Any) -> None:
        self.report = report
        self.call_returned = False

    async def __call__(self, value: float, message: str) -> None:
        if not self.call_returned:
            await self.report(value, message)


async def _run_in_background(runtime: Runtime, plan: Plan, who: Caller, settings: Settings, report: Any) -> None:
    """Run the plan where it outlives this call (the runtime's task group), waiting for it up to the wait bound:
    a continuous shot is sent as soon as the one before it is saved, whether or not anyone is still waiting."""
    finished = anyio.Event()

    async def runner() -> None:
        try:
            await run_plan(runtime, plan, who, settings, report)
        except Exception:  # the next call of the plan says what became of each shot; the runtime must go on
            logger.exception("storyboard %s stopped", plan.plan_id)
        finally:
            finished.set()

    if runtime.background is None:
        with anyio.move_on_after(settings.wait_seconds):
            await runner()
        return
    runtime.background.start_soon(runner, name=f"storyboard {plan.plan_id}")
    with anyio.move_on_after(settings.wait_seconds):
        await finished.wait()


async def run_plan(runtime: Runtime, plan: Plan, who: Caller, settings: Settings, report: Any) -> None:
    """Submit and follow every shot: each chain of continuous shots in sequence, the chains (split at cuts) at
    once. A chain stops at a shot that did not end saved."""
    chains: list[list[PlannedShot]] = []
    for shot in plan.shots:
        if shot.transition == "cut" or not chains:
            chains.append([])
        chains[-1].append(shot)
    started = time.monotonic()
    reporting = anyio.Lock()
    reported = [0.0]  # progress must only grow, whichever shot moved

    async def tell() -> None:
        async with reporting:
            done = sum(1 for s in plan.shots if s.job is not None and s.job.video_path)
            share = sum(plan.progress.values()) / len(plan.shots)
            value = round(min(99.0, share * 100), 1)  # 100 once the film is joined
            if value <= reported[0]:
                return
            reported[0] = value
            elapsed = time.monotonic() - started
            eta = f", about {elapsed / share * (1 - share):.0f} s left" if 0.05 < share < 1 else ""
            shot = min(done + 1, len(plan.shots))
            await report(value, f"{plan.plan_id}: shot {shot} of {len(plan.shots)}, {share:.0%} of the film{eta}")

    async def follow_chain(chain: list[PlannedShot]) -> None:
        previous: PlannedShot | None = None
        for shot in chain:
            frame = None
            if shot.transition == "continuous":
                frame = previous.job.last_frame_path if previous is not None and previous.job is not None else None
                if frame is None:
                    shot.error = "not started: the shot before it has no saved last frame"
                    return
            stored = await runtime.jobs.store.get_plan(plan.plan_id)
            if stored is not None and stored.cancelled_at is not None:
                shot.error = "not sent: the plan was cancelled"
                return
            try:
                await _submit(runtime, shot, frame, who, plan.since)
            except SeedanceError as exc:  # a budget the journal refused at the insert, the provider's refusal, …
                shot.error = str(exc)
                return
            assert shot.job is not None
            await runtime.jobs.store.plan_shot(plan.plan_id, shot.index, shot.job.job_id)

            async def on_progress(value: float, _message: str, shot: PlannedShot = shot) -> None:
                plan.progress[shot.index] = value / 100
                await tell()

            shot.job = await runtime.jobs.wait(shot.job.job_id, settings.wait_seconds * 100, on_progress, who.principal)
            plan.progress[shot.index] = 1.0 if shot.job.video_path else plan.progress.get(shot.index, 0.0)
            await tell()
            if shot.job.status != "succeeded" or not shot.job.video_path:
                shot.error = shot.job.error_message or f"the shot ended `{shot.job.status}`"
                return
            previous = shot

    async with anyio.create_task_group() as group:
        for chain in chains:
            group.start_soon(follow_chain, chain)


async def _submit(runtime: Runtime, shot: PlannedShot, frame: str | None, who: Caller, since: float | None) -> None:
    """One shot as an ordinary job: an identical job within the dedupe window (an earlier call's) is reused."""
    from seedance_mcp.tools.generate import _resolve_media  # pyright: ignore[reportPrivateUsage]

    request = shot.request
    if frame is not None:
        request = request.model_copy(update={"first_frame": frame})
    settings = runtime.settings
    if request.first_frame is not None or request.reference_images:
        spec = runtime.preset.model(request.model_key)
        request = await anyio.to_thread.run_sync(_resolve_media, request, settings, spec)  # images only: no upload
    http_request: HttpRequest = runtime.provider.create_request(request)
    spec = runtime.preset.model(request.model_key)
    try:
        shot.job, _ = await runtime.jobs.submit(
            request,
            http_request,
            expected_render=runtime.expected_render(spec, request),
            price=shot.price,
            limits=spend_limits(who, runtime.preset.currency),
            principal=who.principal,
            dedupe_since=since,
        )
    except DuplicateSubmission as exc:  # this shot's create (an earlier call's) is unanswered or being looked for
        shot.job = await runtime.jobs.find(exc.job_id, who.principal)


_CANCELLED = (
    "This plan was cancelled: no more of its shots are sent. To make it anyway, change it (a seed, a prompt) and "
    "call storyboard again; shots already made are listed here."
)


async def cancel_plan(runtime: Runtime, plan_id: str, principal: str) -> tuple[bool, str]:
    """Cancel a storyboard as a whole: no more shots are sent, and each shot still queued is cancelled. Whether the
    plan was cancelled, and what became of its shots."""
    from seedance_mcp.errors import TaskNotFound

    stored = await runtime.jobs.store.get_plan(plan_id)
    if stored is None or stored.principal != principal:
        raise TaskNotFound(plan_id)
    already = stored.cancelled_at is not None
    stored = await runtime.jobs.store.cancel_plan(plan_id) or stored
    lines: list[str] = []
    for index, job_id in sorted(stored.shots.items()):
        try:
            job, cancelled, why = await runtime.jobs.cancel(job_id, principal)
        except SeedanceError as exc:
            lines.append(f"shot {index + 1} ({job_id}): {exc}")
            continue
        lines.append(f"shot {index + 1} ({job.handle}): {'cancelled' if cancelled else why}")
    head = "The plan was already cancelled." if already else "The plan is cancelled: no more of its shots are sent."
    return True, " ".join([head, *lines])


async def _known_shots(runtime: Runtime, plan: Plan, shots: dict[int, str], principal: str) -> None:
    for shot in plan.shots:
        if shot.index in shots:
            shot.job = await runtime.jobs.find(shots[shot.index], principal)


async def _finish(runtime: Runtime, plan: Plan, settings: Settings) -> CallToolResult:
    """The result: every shot's state; when all are saved, the joined film and the contact sheet."""
    for shot in plan.shots:
        if shot.job is not None:
            shot.job = await runtime.jobs.current(shot.job)
    stored = await runtime.jobs.store.get_plan(plan.plan_id)
    if stored is not None and stored.cancelled_at is not None:
        return _result(plan, "cancelled", _CANCELLED)
    if not all(s.job is not None and s.job.video_path for s in plan.shots):
        failed = [s for s in plan.shots if s.error is not None or (s.job is not None and s.job.is_terminal)]
        failed = [s for s in failed if not (s.job is not None and s.job.video_path)]
        if failed:
            status = "failed"
            step = (
                "Some shots failed (see `shots`). Fix or keep the plan and call storyboard again with the same "
                "arguments: saved shots are reused, only the failed ones and those after them are sent."
            )
        else:
            status = "running"
            step = (
                "Shots are still rendering. Call storyboard again with the same arguments to continue: shots already "
                "submitted are reused, never paid again."
            )
        return _result(plan, status, step)
    paths = [Path(s.job.video_path) for s in plan.shots if s.job is not None and s.job.video_path]
    film = settings.output_dir / f"{plan.plan_id}.mp4"
    sheet = settings.output_dir / f"{plan.plan_id}-shots.png"
    from seedance_mcp.media.join import join

    report = await anyio.to_thread.run_sync(join, paths, film)
    await anyio.to_thread.run_sync(_write_sheet, paths, sheet)
    extra = {
        "film_path": str(film),
        "film_seconds": round(report.seconds, 3),
        "film_video": report.video,
        "contact_sheet_path": str(sheet),
    }
    return _result(plan, "succeeded", f"The film is saved at {film}.", extra)


def _write_sheet(paths: list[Path], sheet: Path) -> None:
    from seedance_mcp.media.contact_sheet import contact_sheet, video_frames

    frames = [video_frames(path, 3)[1] for path in paths]
    sheet.write_bytes(contact_sheet(frames, [f"shot {i + 1}" for i in range(len(paths))]))


def _plan_record(plan: Plan) -> str:
    """What the journal keeps of a plan: its shots' arguments and transitions, in order."""
    shots = [{"transition": s.transition, **s.args.model_dump(mode="json", exclude_none=True)} for s in plan.shots]
    return json.dumps({"shots": shots, "estimate": plan.estimate, "currency": plan.currency}, ensure_ascii=False)


def _shot_state(shot: PlannedShot) -> dict[str, Any]:
    job = shot.job
    state: dict[str, Any] = {
        "shot": shot.index + 1,
        "transition": shot.transition,
        "prompt": shot.args.prompt,
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
    return state


def _result(plan: Plan, status: str, next_step: str, extra: dict[str, Any] | None = None) -> CallToolResult:
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
    if data.get("film_path"):
        lines.append(f"Film: {data['film_path']} ({data.get('film_seconds', '?')} s)")
    if data.get("contact_sheet_path"):
        lines.append(f"Contact sheet: {data['contact_sheet_path']}")
    lines.append(str(data["next_step"]))
    return "\n".join(lines)


def _shots_note(plan: Plan | None) -> str:
    if plan is None or not any(s.job is not None for s in plan.shots):
        return ""
    sent = ", ".join(f"shot {s.index + 1}: {s.job.handle} `{s.job.status}`" for s in plan.shots if s.job is not None)
    return f" Shots already submitted (calling storyboard again reuses them): {sent}."
