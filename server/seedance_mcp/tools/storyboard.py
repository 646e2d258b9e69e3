"""`storyboard`: several shots, one film. One quote and one approval for the whole plan, every shot an ordinary job.

- Every shot is checked against its model's limits before anything is sent (a continuous shot with a stand-in first
  frame, since its real one is the previous shot's last frame); a refusal names `shots[i].argument`.
- The plan's cost is the sum of its shots'; the person approves it once (the approval id, or the question, is about
  the whole plan); the per-video limit applies to each shot and the daily budgets to the whole plan: the journal
  reserves the plan's cost in one step with the budget check as it records the plan (`TaskStore.record_plan`), and
  each shot's job takes over its shot's reservation in the transaction that inserts it.
- The plan runs in whichever process holds its lease in the journal (`claim_plans`); `plan_worker` takes over the
  running plans of a process that died, rebuilt from the journal's record, so a killed server's plan finishes by
  itself. Its state (running → stopped | done | cancelled) is a compare-and-set in the journal.
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
import weakref
from collections.abc import Callable, Coroutine, Mapping
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
from seedance_mcp.tools.context import Caller, ToolContext, caller, caller_of, reporter, unexpected_failure

if TYPE_CHECKING:
    from seedance_mcp.jobs import JobManager
    from seedance_mcp.journal import PlanRecord
    from seedance_mcp.journal.job import Job
    from seedance_mcp.media.join import JoinReport
    from seedance_mcp.principals import Principal
    from seedance_mcp.wire import HttpRequest, VideoRequest

Transition = Literal["continuous", "cut"]

_CLOCK_MARGIN = 5.0

logger = logging.getLogger(__name__)

_STAND_IN_FRAME = "https://storyboard.invalid/previous-shot-last-frame.png"
"""What a continuous shot's first frame is checked and quoted with: the real one exists only once the shot before
it is saved (the same size of request either way: only its URL differs)."""


class Shot(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt: str | None = None
    duration: Annotated[int | None, Field(strict=True)] = None
    transition: Transition | None = None
    model: Annotated[str | None, Field(description="Instead of the shared one.")] = None
    reference_images: MediaList = Field(default_factory=tuple, description="Instead of the shared ones.")
    clip: Annotated[
        str | None, Field(description="A finished clip of yours (task id) used as this shot, as it is: not paid.")
    ] = None
    takes: Annotated[int | None, Field(strict=True, description="1-4 renders of this shot; the film uses take 1.")] = (
        None
    )


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
    contact_sheet_path: str | None = Field(default=None, description="This shot's takes side by side.")


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
{settings.wait_seconds:.0f} s, then the plan goes on by itself (even after a restart): get_task_status(plan_id) says
where it stands. Shots made are never paid again. cancel_task(plan_id) cancels it. dry_run=true: plan and cost.
A shot may be a clip already made ({{"clip": task_id}}, e.g. a chosen take): used as is, not paid. A shot's
takes=2..4 renders it that many times (the film uses take 1)."""


@dataclass
class PlannedShot:
    """A shot to render (`args`, `request`), or a clip already made (`clip`: nothing is sent for it)."""

    index: int
    transition: Transition
    args: VideoArguments | None
    request: VideoRequest | None
    price: tuple[float, str] | None
    estimate: float | None
    job: Job | None = None
    """Take 1's job: the film's."""
    error: str | None = None
    clip: str | None = None
    takes: int = 1
    others: dict[int, Job] = field(default_factory=lambda: {})
    """The jobs of takes 2…`takes`, by take number."""
    take_errors: dict[int, str] = field(default_factory=lambda: {})
    sheet: str | None = None
    """The contact sheet of its takes, once every take is saved."""

    def job_of(self, take: int) -> Job | None:
        return self.job if take == 1 else self.others.get(take)

    def set_job(self, take: int, job: Job | None) -> None:
        if take == 1:
            self.job = job
        elif job is None:
            self.others.pop(take, None)
        else:
            self.others[take] = job

    @property
    def cost(self) -> float | None:
        """What the shot's takes are estimated to cost together."""
        return None if self.estimate is None else round(self.estimate * self.takes, 4)

    @property
    def seconds(self) -> float:
        if self.request is not None:
            return self.request.effective_seconds
        return self.job.duration or 0.0 if self.job is not None else 0.0


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
    recorded_id: str | None = None
    """The id the journal has it under (a plan rebuilt from its record)."""

    @property
    def plan_id(self) -> str:
        return self.recorded_id or f"sb-{self.fingerprint[:16]}"


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
            await _clips_of(runtime, plan, who.principal)
            quote = _quote(runtime, plan, who.principal)
            plan.fingerprint = quote.fingerprint  # the plan of this person on this provider
            for shot in plan.shots:
                if shot.request is None:
                    continue
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
            if stored is not None and stored.state == "cancelled":
                await _known_shots(runtime, plan, stored.takes, who.principal)
                return _result(plan, "cancelled", _CANCELLED)
            await _check_budgets(runtime, who, plan, stored)
            approved = await approval(ctx, who, quote, approval_id, approvals, runtime.jobs.now(), tool="storyboard")
            if isinstance(approved, InputRequiredResult):
                return approved
            if not approved.granted:
                return _result(plan, "declined", "The user declined; nothing was sent and nothing was charged.")
            # The plan is in the journal, its cost reserved against the budgets in the same step, before its first
            # shot is sent; an identical shot made since it was first written is that shot's job, so a call that
            # continues the plan pays only for shots never sent.
            record = await _record(runtime, plan, who)
            plan.since = record.created_at - _CLOCK_MARGIN
            if record.state == "cancelled":
                await _known_shots(runtime, plan, record.takes, who.principal)
                return _result(plan, "cancelled", _CANCELLED)
            report = _while_called(reporter(ctx))
            try:
                run = await _take(runtime, plan, record, who, report) if record.state == "running" else None
                await _wait_for(runtime, plan.plan_id, run, settings.wait_seconds, report)
                result = await _status(runtime, plan, who.principal, run)
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
    specs: list[tuple[Transition, VideoArguments | str, int]] = []
    for index, shot in enumerate(shots):
        transition: Transition = "cut" if index == 0 else (shot.transition or "continuous")
        if shot.clip is not None:
            specs.append(("cut", _clip_spec(index, shot), 1))
            continue
        if not shot.prompt:
            raise InvalidArgument(f"shots[{index}].prompt", "is missing", hint="Give the shot a prompt, or a clip.")
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
            specs.append((transition, VideoArguments.model_validate(fields), 1 if shot.takes is None else shot.takes))
        except InvalidArgument as exc:
            raise _of_shot(index, transition, exc) from exc
        except ValueError as exc:
            raise InvalidArgument(f"shots[{index}]", str(exc).splitlines()[0]) from exc
    return _planned(specs, preset, settings)


def _clip_spec(index: int, shot: Shot) -> str:
    """A shot that is a clip already made: used as it is, so nothing that would render it goes with it."""
    assert shot.clip is not None
    given = [name for name in ("prompt", "duration", "model", "takes") if getattr(shot, name) is not None]
    given += ["reference_images"] if shot.reference_images else []
    given += ["transition"] if shot.transition == "continuous" else []
    if given:
        raise InvalidArgument(
            f"shots[{index}].clip",
            f"a clip is used as it is, so {', '.join(given)} cannot go with it",
            hint=f"Leave {', '.join(given)} out of shots[{index}], or leave clip out to render the shot.",
        )
    return shot.clip


def plan_from_record(record: PlanRecord, preset: Preset, settings: Settings) -> Plan:
    """The plan the journal keeps (its shots' arguments and transitions, `_plan_record`), built as `plan_of` builds
    it from the call's shots: the same requests, prices and fingerprint."""
    shots: list[dict[str, Any]] = json.loads(record.data)["shots"]
    specs: list[tuple[Transition, VideoArguments | str, int]] = []
    for index, shot in enumerate(shots):
        fields = dict(shot)
        transition: Transition = "continuous" if fields.pop("transition", "cut") == "continuous" else "cut"
        if "clip" in fields:
            specs.append(("cut", str(fields["clip"]), 1))
            continue
        takes = int(fields.pop("takes", 1))
        try:
            specs.append((transition, VideoArguments.model_validate(fields), takes))
        except ValueError as exc:
            raise InvalidArgument(f"shots[{index}]", str(exc).splitlines()[0]) from exc
    plan = _planned(specs, preset, settings)
    plan.recorded_id = record.plan_id
    plan.since = record.created_at - _CLOCK_MARGIN
    return plan


def _of_shot(index: int, transition: Transition, exc: InvalidArgument) -> InvalidArgument:
    return InvalidArgument(
        f"shots[{index}].{exc.argument}",
        exc.problem + (" (it starts on the previous shot's last frame)" if transition == "continuous" else ""),
        allowed=exc.allowed,
        hint=exc.hint,
    )


def _planned(specs: list[tuple[Transition, VideoArguments | str, int]], preset: Preset, settings: Settings) -> Plan:
    from seedance_mcp.pricing import quote
    from seedance_mcp.results import money
    from seedance_mcp.tools.takes import check_takes
    from seedance_mcp.validation import validate_request

    planned: list[PlannedShot] = []
    for index, (transition, args, takes) in enumerate(specs):
        if isinstance(args, str):  # a clip already made: nothing to send, nothing to pay
            planned.append(PlannedShot(index, transition, None, None, None, 0.0, clip=args))
            continue
        try:
            request = validate_request(args, preset, settings.default_model, settings.model_map)
        except InvalidArgument as exc:
            raise _of_shot(index, transition, exc) from exc
        try:
            check_takes(takes, request)
        except InvalidArgument as exc:
            name = f"shots[{index}].takes" if exc.argument == "takes" else exc.argument
            raise InvalidArgument(
                name, f"{exc.problem} (shots[{index}].takes = {takes})", allowed=exc.allowed, hint=exc.hint
            ) from exc
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
        estimate = money(request.estimated_tokens, price[0]) if price is not None else None
        planned.append(PlannedShot(index, transition, args, request, price, estimate, takes=takes))
    known = [s.cost for s in planned]
    total = None if any(e is None for e in known) else round(sum(e or 0.0 for e in known), 4)
    currency = next((s.price[1] for s in planned if s.price is not None), "")
    canonical = json.dumps(
        [
            [s.transition, s.clip if s.args is None else s.args.model_dump(mode="json")]
            + ([s.takes] if s.takes > 1 else [])  # a plan of single takes keeps the fingerprint it always had
            for s in planned
        ],
        sort_keys=True,
        ensure_ascii=False,
    )
    return Plan(
        shots=planned,
        fingerprint=hashlib.sha256(canonical.encode()).hexdigest(),
        estimate=total,
        currency=currency,
        seconds=sum(s.seconds for s in planned),
    )


async def _clips_of(runtime: Runtime, plan: Plan, principal: str) -> None:
    """Each shot that is a clip already made becomes that clip's job: the caller's own, succeeded and saved, else a
    refusal naming `shots[i].clip` (nothing is sent)."""
    from seedance_mcp.errors import TaskNotFound

    for shot in plan.shots:
        if shot.clip is None:
            continue
        name = f"shots[{shot.index}].clip"
        try:
            job = await runtime.jobs.find(shot.clip, principal)
        except TaskNotFound:
            raise InvalidArgument(
                name, f"no clip {shot.clip!r} of yours in this server's journal", hint="Call list_tasks."
            ) from None
        if job.status != "succeeded" or not job.video_path or not await anyio.Path(job.video_path).is_file():
            state = f"it is `{job.status}`" if job.status != "succeeded" else "its video is not saved here"
            raise InvalidArgument(
                name,
                f"clip {shot.clip!r} is not a finished, saved video ({state})",
                hint=f'Wait for it with get_task_status(task_id="{job.handle}", wait=true), or choose another.',
            )
        shot.job = job
    plan.seconds = sum(s.seconds for s in plan.shots)


def _quote(runtime: Runtime, plan: Plan, principal: str) -> Quote:
    """The whole plan as one request to approve: its shots, in order, and their summed cost."""
    parts = f"storyboard\n{runtime.provider.preset.name}\n{principal}\n{plan.fingerprint}"
    fingerprint = hashlib.sha256(parts.encode()).hexdigest()
    cuts = sum(1 for s in plan.shots[1:] if s.transition == "cut")
    clips = sum(1 for s in plan.shots if s.clip is not None)
    film = (
        f"a film of {len(plan.shots)} shots, {plan.seconds:g} s "
        f"({len(plan.shots) - 1 - cuts} continuous and {cuts} cut transitions)"
    ) + (f", {clips} of them clips already made (not paid)" if clips else "")
    takes = [f"{s.takes} takes of shot {s.index + 1}" for s in plan.shots if s.takes > 1]
    film += f", {' and '.join(takes)}" if takes else ""
    if plan.estimate is None:
        return Quote(fingerprint, None, "", f"{film}, cost unknown (no list price for a shot's model here)")
    return Quote(fingerprint, plan.estimate, plan.currency, f"{film}, about {plan.estimate:.2f} {plan.currency}")


async def _check_budgets(runtime: Runtime, who: Caller, plan: Plan, stored: PlanRecord | None) -> None:
    """The daily budgets, before the person is asked to approve the plan: what is spent today and what other plans
    reserve, plus the shots of this plan that have no live job (a continuing call pays only for those). The journal
    decides again as it records the plan (`_record`), in one step with the reservation."""
    if plan.estimate is None:
        return
    from seedance_mcp.journal import start_of_day
    from seedance_mcp.journal.job import DEAD_STATUSES

    live: set[tuple[int, int]] = set()
    for key, job_id in (stored.takes if stored is not None else {}).items():
        job = await runtime.jobs.store.get(job_id)
        if job is not None and job.status not in DEAD_STATUSES:
            live.add(key)
    cost = sum(s.estimate or 0.0 for s in plan.shots for take in range(1, s.takes + 1) if (s.index, take) not in live)
    if cost <= 0:
        return
    today = start_of_day(runtime.jobs.now())
    for limit in spend_limits(who, runtime.preset.currency):
        rows = await runtime.jobs.store.spend(today, limit.principal)
        reserved = await runtime.jobs.store.reserved(today, limit.principal)
        spent = sum(row.cost for row in rows if row.currency == limit.currency) + sum(
            amount
            for plan_id, (currency, amount) in reserved.items()
            if plan_id != plan.plan_id and currency == limit.currency
        )
        if spent + cost > limit.limit:
            raise SpendRefused(
                f"This film would cost about {plan.estimate:.2f} {plan.currency} (the shots not made yet: {cost:.2f}), "
                f"and {spent:.2f} is already spent, in flight or reserved today: above {limit.name} = "
                f"{limit.limit:.2f}. Nothing was sent. Make it cheaper (fewer or shorter shots, a lower resolution) or "
                "ask the user to raise the limit."
            )


async def _record(runtime: Runtime, plan: Plan, who: Caller) -> PlanRecord:
    """Write the plan to the journal and reserve its cost there, in one step with the daily budgets' check: two
    plans (or a plan and other videos) started together cannot both pass it. A refusal sends nothing."""
    from seedance_mcp.journal import BudgetExceeded

    try:
        return await runtime.jobs.store.record_plan(
            plan.plan_id,
            who.principal,
            _plan_record(plan),
            currency=plan.currency,
            reserves=[s.estimate or 0.0 for s in plan.shots],
            takes=[s.takes for s in plan.shots],
            limits=spend_limits(who, runtime.preset.currency) if plan.estimate is not None else (),
            lease_owner=runtime.jobs.owner,  # this process runs the plan it records, unless another one runs it
            lease_seconds=runtime.jobs.settings.lease_seconds,
        )
    except BudgetExceeded as exc:
        raise SpendRefused(
            f"This film would cost about {plan.estimate or 0.0:.2f} {plan.currency} (the shots not made yet: "
            f"{exc.cost:.2f}), and {exc.spent:.2f} is already spent, in flight or reserved today: above "
            f"{exc.limit.name} = {exc.limit.limit:.2f}. Nothing was sent. Make it cheaper (fewer or shorter shots, a "
            "lower resolution) or ask the user to raise the limit."
        ) from exc


class _while_called:
    """A progress callback that goes silent once the call has returned (the plan may still be running)."""

    def __init__(self, report: Any) -> None:
        self.report = report
        self.call_returned = False

    async def __call__(self, value: float, message: str) -> None:
        if not self.call_returned:
            await self.report(value, message)


@dataclass(eq=False)
class _Run:
    """A plan this process runs (it holds the plan's lease): its shots as they go, who it is for, the progress
    callback of the call that started it (None for a plan taken over), and the film once joined."""

    plan: Plan
    who: Caller
    report: Any
    token: int
    """The claim of the plan's lease this process runs it under (a claim of its own expired lease raises it)."""
    finished: anyio.Event = field(default_factory=anyio.Event)
    film: JoinReport | None = None


_RUNS: weakref.WeakKeyDictionary[JobManager, dict[str, _Run]] = weakref.WeakKeyDictionary()
"""The plans each runtime (its job manager) runs, by plan id: a second call of a plan waits for the same run."""

PLAN_CLAIM_BATCH = 8
"""Running plans nobody runs (a dead process's) that one look takes over."""


def _runs(runtime: Runtime) -> dict[str, _Run]:
    return _RUNS.setdefault(runtime.jobs, {})


async def _take(runtime: Runtime, plan: Plan, record: PlanRecord, who: Caller, report: Any) -> _Run | None:
    """This process's run of the plan: the one already going here, or a new one when this process holds the plan's
    lease (taken as it recorded the plan) or can claim it; None while another process runs it."""
    run = _runs(runtime).get(plan.plan_id)
    if run is None and record.lease_owner == runtime.jobs.owner:
        run = _launch(runtime, plan, record.lease_token, who, report)
    elif run is None:
        jobs = runtime.jobs
        claimed = await jobs.store.claim_plans(jobs.owner, jobs.settings.lease_seconds, limit=1, plan_id=plan.plan_id)
        run = _runs(runtime).get(plan.plan_id)
        if run is None and claimed:
            run = _launch(runtime, plan, claimed[0][1], who, report)
    if run is not None:
        _listen(run, report)
    return run


def _listen(run: _Run, report: Any) -> None:
    """Tell this call the run's progress, unless another call still listens to it."""
    if report is not None and (run.report is None or getattr(run.report, "call_returned", False)):
        run.report = report


def _launch(runtime: Runtime, plan: Plan, token: int, who: Caller, report: Any) -> _Run:
    """Run a plan whose lease this process holds (`token`) in the runtime's task group, where it outlives the call
    that started it; the lease is renewed while it runs and given back when it ends."""
    run = _Run(plan, who, report, token)
    runs = _runs(runtime)
    runs[plan.plan_id] = run
    store, owner, lease = runtime.jobs.store, runtime.jobs.owner, runtime.jobs.settings.lease_seconds

    async def keep_lease(scope: anyio.CancelScope) -> None:
        while True:
            await anyio.sleep(lease / 3)
            try:
                kept = await store.renew_plans(owner, {plan.plan_id: run.token}, lease)
            except JournalUnavailable as exc:  # nobody can claim it while the journal is down either
                logger.warning("renewing the lease of %s: %s", plan.plan_id, exc)
                continue
            if plan.plan_id not in kept:
                logger.warning("%s is no longer this process's to run (cancelled, or taken over)", plan.plan_id)
                scope.cancel()
                return

    async def drive() -> None:
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(keep_lease, group.cancel_scope)
                await _run_to_end(runtime, run)
                group.cancel_scope.cancel()
        except Exception:  # what became of each shot is in the journal; the runtime must go on
            logger.exception("storyboard %s stopped", plan.plan_id)
        finally:
            with anyio.move_on_after(5, shield=True):
                try:
                    await store.release_plans(owner, {plan.plan_id: run.token})
                except Exception as exc:  # it runs out by itself
                    logger.warning("could not give back the lease of %s: %s", plan.plan_id, exc)
            runs.pop(plan.plan_id, None)
            run.finished.set()

    assert runtime.background is not None, "the runtime's task group runs plans"
    runtime.background.start_soon(drive, name=f"storyboard {plan.plan_id}")
    return run


async def _run_to_end(runtime: Runtime, run: _Run) -> None:
    """Send the shots that have no job, follow them all, join the film when every shot is saved; then the plan is
    `done`, or `stopped` when a shot failed (its reservation given up). A shot still rendering past the bound
    leaves the plan running: the lease goes back and a worker takes it up again."""
    plan, store = run.plan, runtime.jobs.store
    record = await store.get_plan(plan.plan_id)
    if record is None or record.state != "running":
        return
    await _known_shots(runtime, plan, record.takes, record.principal)
    await run_plan(runtime, plan, run)
    for shot in plan.shots:
        if shot.job is not None:
            shot.job = await runtime.jobs.current(shot.job)
    if all(s.job is not None and s.job.video_path for s in plan.shots):
        run.film = await _join(runtime.settings, plan)
        if not await store.set_plan_state(plan.plan_id, "done", allowed=("running",)):
            logger.warning("%s: its film is joined, but the plan was not running any more (cancelled?)", plan.plan_id)
    elif _failed(plan) and not await store.set_plan_state(plan.plan_id, "stopped", allowed=("running",)):
        logger.warning("%s: a shot failed, but the plan was not running any more (cancelled?)", plan.plan_id)


def _failed(plan: Plan) -> list[PlannedShot]:
    failed = [s for s in plan.shots if s.error is not None or (s.job is not None and s.job.is_terminal)]
    return [s for s in failed if not (s.job is not None and s.job.video_path)]


async def _wait_for(runtime: Runtime, plan_id: str, run: _Run | None, seconds: float, report: Any) -> None:
    """Wait up to `seconds` for the plan to end: this process's run (told this call's progress when it has no one
    to tell), or the journal's word on another's."""
    from seedance_mcp.jobs.worker import STORE_WAIT_INTERVAL

    with anyio.move_on_after(seconds):
        while run is None:
            record = await runtime.jobs.store.get_plan(plan_id)
            if record is None or record.state != "running":
                return
            await anyio.sleep(STORE_WAIT_INTERVAL)
            run = _runs(runtime).get(plan_id)
        _listen(run, report)
        await run.finished.wait()


def plan_worker(
    settings: Settings, preset: Preset, principals: Mapping[str, Principal]
) -> Callable[[Runtime], Coroutine[Any, Any, None]]:
    """What the runtime runs beside its job worker: take over running plans nobody runs (at start-up, then every
    claim interval), so a killed server's plan finishes by itself: rebuilt from the journal's record, for its
    principal's limits, only its shots without a job are sent."""

    async def work(runtime: Runtime) -> None:
        while True:
            try:
                await _take_over(runtime, settings, preset, principals)
            except JournalUnavailable as exc:  # the next look tries again
                logger.warning("looking for storyboard plans to resume: %s", exc)
            except Exception:  # a broken record must not stop the runtime
                logger.exception("looking for storyboard plans to resume failed")
            await anyio.sleep(runtime.jobs.settings.claim_interval)

    return work


async def _take_over(runtime: Runtime, settings: Settings, preset: Preset, principals: Mapping[str, Principal]) -> None:
    jobs = runtime.jobs
    for record, token in await jobs.store.claim_plans(jobs.owner, jobs.settings.lease_seconds, limit=PLAN_CLAIM_BATCH):
        running = _runs(runtime).get(record.plan_id)
        if running is not None:  # its lease ran out while this process still runs it (a stalled renewal): go on
            running.token = token
            continue
        try:
            plan = plan_from_record(record, preset, settings)
        except SeedanceError as exc:  # the catalog changed since: a storyboard call must decide
            logger.warning("%s cannot be resumed (%s); it is stopped", record.plan_id, exc)
            if not await jobs.store.set_plan_state(record.plan_id, "stopped", allowed=("running",)):
                logger.warning("%s: not stopped, its state changed meanwhile", record.plan_id)
            await jobs.store.release_plans(jobs.owner, {record.plan_id: token})
            continue
        logger.info("resuming storyboard %s", record.plan_id)
        _launch(runtime, plan, token, caller_of(record.principal, principals, settings), None)


async def run_plan(runtime: Runtime, plan: Plan, run: _Run) -> None:
    """Submit the shots that have no job and follow every shot: each chain of continuous shots in sequence, the
    chains (split at cuts) at once. A chain stops at a shot that did not end saved."""
    settings = runtime.settings
    who = run.who
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
            if value <= reported[0] or run.report is None:
                return
            reported[0] = value
            elapsed = time.monotonic() - started
            eta = f", about {elapsed / share * (1 - share):.0f} s left" if 0.05 < share < 1 else ""
            shot = min(done + 1, len(plan.shots))
            await run.report(value, f"{plan.plan_id}: shot {shot} of {len(plan.shots)}, {share:.0%} of the film{eta}")

    async def send(shot: PlannedShot, previous: PlannedShot | None, take: int) -> str | None:
        """Submit a take of the shot (its job linked to it): None when it was, else why not."""
        if shot.request is None:
            return shot.error or f"the clip {shot.clip!r} is not a finished, saved video of yours"
        frame = None
        if shot.transition == "continuous":
            frame = await _frame_after(runtime, previous)
            if frame is None:
                return "not started: the shot before it has no saved last frame"
        stored = await runtime.jobs.store.get_plan(plan.plan_id)
        if stored is not None and stored.state == "cancelled":
            return "not sent: the plan was cancelled"
        try:
            await _submit(runtime, plan, shot, frame, who, take)
        except SeedanceError as exc:  # a budget the journal refused at the insert, the provider's refusal, …
            return str(exc)
        return None

    async def follow_take(shot: PlannedShot, previous: PlannedShot | None, take: int) -> None:
        """Send a take (again only when its create was proven never made) and follow it to its end; take 1's
        progress is the shot's. Why it did not end saved is its error."""

        async def on_progress(value: float, _message: str) -> None:
            if take == 1:
                plan.progress[shot.index] = value / 100
                await tell()

        for _ in range(SHOT_SENDS):
            job = shot.job_of(take)
            if job is not None and _never_made(job):
                shot.set_job(take, None)  # proven never created (nothing charged): sending it again is safe
            if shot.job_of(take) is None:
                error = await send(shot, previous, take)
                if error is not None:
                    _take_error(shot, take, error)
                    return
            job = shot.job_of(take)
            assert job is not None
            job = await runtime.jobs.wait(job.job_id, settings.wait_seconds * 100, on_progress, who.principal)
            shot.set_job(take, job)
            if not _never_made(job):
                break
        job = shot.job_of(take)
        assert job is not None
        if job.status != "succeeded" or not job.video_path:
            _take_error(shot, take, job.error_message or f"the {'shot' if take == 1 else 'take'} ended `{job.status}`")

    async def follow_chain(chain: list[PlannedShot]) -> None:
        previous: PlannedShot | None = None
        for shot in chain:
            async with anyio.create_task_group() as takes:  # a shot's takes render at once; take 1 goes on
                for take in range(1, shot.takes + 1):
                    takes.start_soon(follow_take, shot, previous, take)
            if shot.job is not None:
                plan.progress[shot.index] = 1.0 if shot.job.video_path else plan.progress.get(shot.index, 0.0)
            await tell()
            if shot.error is not None or shot.job is None:
                return
            previous = shot

    async with anyio.create_task_group() as group:
        for chain in chains:
            group.start_soon(follow_chain, chain)


def _take_error(shot: PlannedShot, take: int, error: str) -> None:
    if take == 1:
        shot.error = error
    else:
        shot.take_errors[take] = error


async def _frame_after(runtime: Runtime, previous: PlannedShot | None) -> str | None:
    """The first frame of a continuous shot: the saved last frame of the shot before it, else (a clip made without
    one) that clip's last frame as generate_video's continue_from finds it (the saved MP4's final frame, …)."""
    from seedance_mcp.tools.takes import clip_last_frame

    if previous is None or previous.job is None:
        return None
    if previous.job.last_frame_path or previous.clip is None:
        return previous.job.last_frame_path
    return await clip_last_frame(runtime, previous.job)


SHOT_SENDS = 2
"""How often a plan's run sends one shot: again only when its create was proven never made (a kill mid-create, the
create looked for and not found), at most once more, so a provider that never makes it cannot loop the plan."""


def _never_made(job: Job) -> bool:
    """This job's create is proven to have made nothing (no task, nothing charged): a lost create the worker looked
    for in the provider's complete list and did not find (`transitions.not_created`)."""
    return job.task_id is None and (job.status == "not_submitted" or job.error_code == "NotCreated")


async def _submit(
    runtime: Runtime, plan: Plan, shot: PlannedShot, frame: str | None, who: Caller, take: int = 1
) -> None:
    """A take of a shot as an ordinary job, linked to its plan's shot and take as it is journaled (its reservation
    becomes the job's spend in that step): an identical job within the dedupe window (an earlier call's) is reused,
    and linked. Each take has its own fingerprint (`take_fingerprint`), so takes are never one job."""
    from seedance_mcp.tools.generate import _resolve_media  # pyright: ignore[reportPrivateUsage]

    request = shot.request
    assert request is not None, "a clip already made is never sent"
    if frame is not None:
        request = request.model_copy(update={"first_frame": frame})
    settings = runtime.settings
    if request.first_frame is not None or request.reference_images:
        spec = runtime.preset.model(request.model_key)
        request = await anyio.to_thread.run_sync(_resolve_media, request, settings, spec)  # images only: no upload
    http_request: HttpRequest = runtime.provider.create_request(request)
    spec = runtime.preset.model(request.model_key)
    try:
        job, _ = await runtime.jobs.submit(
            request,
            http_request,
            expected_render=runtime.expected_render(spec, request),
            price=shot.price,
            limits=spend_limits(who, runtime.preset.currency),
            principal=who.principal,
            dedupe_since=plan.since,
            plan_shot=(plan.plan_id, shot.index, take),
            take=(take, shot.takes),
        )
    except DuplicateSubmission as exc:  # this shot's create (an earlier call's) is unanswered or being looked for
        job = await runtime.jobs.find(exc.job_id, who.principal)
    shot.set_job(take, job)


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
    if stored.state == "done":
        return False, "The plan is done: its film is joined, every shot was made; there is nothing to cancel."
    lines: list[str] = []
    for (index, take), job_id in sorted(stored.takes.items()):
        which = f"shot {index + 1}" + (f" take {take}" if take > 1 or (index, 2) in stored.takes else "")
        try:
            job, cancelled, why = await runtime.jobs.cancel(job_id, principal)
        except SeedanceError as exc:
            lines.append(f"{which} ({job_id}): {exc}")
            continue
        lines.append(f"{which} ({job.handle}): {'cancelled' if cancelled else why}")
    head = "The plan was already cancelled." if already else "The plan is cancelled: no more of its shots are sent."
    return True, " ".join([head, *lines])


async def _known_shots(runtime: Runtime, plan: Plan, takes: dict[tuple[int, int], str], principal: str) -> None:
    """The jobs the journal links to the plan's shots' takes (`PlanRecord.takes`), and the clips' own."""
    from seedance_mcp.errors import TaskNotFound

    for shot in plan.shots:
        for take in range(1, shot.takes + 1):
            if (shot.index, take) in takes:
                shot.set_job(take, await runtime.jobs.find(takes[(shot.index, take)], principal))
        if shot.clip is not None and shot.job is None:
            try:
                shot.job = await runtime.jobs.find(shot.clip, principal)
            except TaskNotFound:
                shot.error = f"the clip {shot.clip!r} is not in this server's journal any more"
    plan.seconds = sum(s.seconds for s in plan.shots)


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
        listening = _while_called(report) if report is not None else None
        try:
            await _wait_for(runtime, plan_id, _runs(runtime).get(plan_id), wait, listening)
        finally:
            if listening is not None:
                listening.call_returned = True
        record = await runtime.jobs.store.get_plan(plan_id) or record
    plan = plan_from_record(record, runtime.preset, runtime.settings)
    run = _runs(runtime).get(plan_id)
    if run is not None:  # what only the run knows: why a shot was not sent, each shot's progress
        for mine, theirs in zip(plan.shots, run.plan.shots, strict=True):
            mine.error, mine.take_errors = theirs.error, dict(theirs.take_errors)
        plan.progress = dict(run.plan.progress)
    result = await _status(runtime, plan, principal, run)
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


async def _status(runtime: Runtime, plan: Plan, principal: str, run: _Run | None) -> CallToolResult:
    """The result: every shot's state; when all are saved, the joined film and the contact sheet."""
    record = await runtime.jobs.store.get_plan(plan.plan_id)
    if record is not None:
        await _known_shots(runtime, plan, record.takes, principal)
    for shot in plan.shots:
        if shot.job is not None:
            shot.job = await runtime.jobs.current(shot.job)
        for take, job in list(shot.others.items()):
            shot.others[take] = await runtime.jobs.current(job)
        await _sheet_of_takes(shot)
    if record is not None and record.state == "cancelled":
        return _result(plan, "cancelled", _CANCELLED)
    if not all(s.job is not None and s.job.video_path for s in plan.shots):
        if _failed(plan) or (record is not None and record.state == "stopped"):
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
        return _result(plan, status, step)
    film = runtime.settings.output_dir / f"{plan.plan_id}.mp4"
    sheet = runtime.settings.output_dir / f"{plan.plan_id}-shots.png"
    joined = run.film if run is not None else None
    if joined is None or not film.exists() or not sheet.exists():
        joined = await _join(runtime.settings, plan)  # joined elsewhere (another process) or not yet
    extra = {
        "film_path": str(film),
        "film_seconds": round(joined.seconds, 3),
        "film_video": joined.video,
        "contact_sheet_path": str(sheet),
    }
    return _result(plan, "succeeded", f"The film is saved at {film}.{_other_takes(plan)}", extra)


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


async def _join(settings: Settings, plan: Plan) -> JoinReport:
    """Join the saved shots into the film and draw the contact sheet. Each is written beside its place and renamed
    over it, so two joins of one plan (two calls, two processes) leave one whole film."""
    from seedance_mcp.media.join import join

    paths = [Path(s.job.video_path) for s in plan.shots if s.job is not None and s.job.video_path]
    film = settings.output_dir / f"{plan.plan_id}.mp4"
    sheet = settings.output_dir / f"{plan.plan_id}-shots.png"
    report = await anyio.to_thread.run_sync(join, paths, film)
    await anyio.to_thread.run_sync(_write_sheet, paths, sheet)
    return report


def _write_sheet(paths: list[Path], sheet: Path) -> None:
    import os
    import secrets

    from seedance_mcp.media.contact_sheet import contact_sheet, video_frames

    frames = [video_frames(path, 3)[1] for path in paths]
    partial = sheet.with_name(f".{sheet.name}.{os.getpid()}.{secrets.token_hex(4)}.part")
    partial.write_bytes(contact_sheet(frames, [f"shot {i + 1}" for i in range(len(paths))]))
    os.replace(partial, sheet)


def _plan_record(plan: Plan) -> str:
    """What the journal keeps of a plan: its shots' arguments and transitions, in order."""
    shots = [
        {"transition": s.transition, "clip": s.clip}
        if s.args is None
        else {
            "transition": s.transition,
            **s.args.model_dump(mode="json", exclude_none=True),
            **({"takes": s.takes} if s.takes > 1 else {}),
        }
        for s in plan.shots
    ]
    return json.dumps({"shots": shots, "estimate": plan.estimate, "currency": plan.currency}, ensure_ascii=False)


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


def _shots_note(plan: Plan | None) -> str:
    if plan is None or not any(s.job is not None for s in plan.shots):
        return ""
    sent = ", ".join(f"shot {s.index + 1}: {s.job.handle} `{s.job.status}`" for s in plan.shots if s.job is not None)
    return f" Shots already submitted (calling storyboard again reuses them): {sent}."
