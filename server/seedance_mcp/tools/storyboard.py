"""`storyboard`: several shots, one film. One quote and one approval for the whole plan, every shot an ordinary job.
This module is the tool (its arguments, the quote, the budgets and the approval, the call); the plan, its run, the
plan worker and the result are in `seedance_mcp/storyboards/`.

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
from typing import TYPE_CHECKING, Annotated, Any

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, InputRequiredResult, ToolAnnotations
from pydantic import Field

from seedance_mcp.catalog import Preset, Resolution
from seedance_mcp.config import Settings
from seedance_mcp.errors import ConfigurationError, JournalUnavailable, ProviderError, SeedanceError, SpendRefused
from seedance_mcp.requests import RatioArg
from seedance_mcp.runtime import LazyRuntime, Runtime
from seedance_mcp.storyboards.plan import CLOCK_MARGIN, Plan, PlannedShot, Shot, plan_of, plan_record
from seedance_mcp.storyboards.run import clips_of, known_shots, runs_of, take_plan, wait_for, while_called
from seedance_mcp.storyboards.status import CANCELLED, StoryboardResult, result_of, shots_note, status_of
from seedance_mcp.tools.approval import Approvals, Quote, approval, check_cost, spend_limits
from seedance_mcp.tools.context import Caller, ToolContext, caller, reporter, unexpected_failure

if TYPE_CHECKING:
    from seedance_mcp.journal import PlanRecord


def description(settings: Settings) -> str:
    return f"""Make a film: shots joined into one MP4, one approval for the whole plan. COSTS MONEY (its shots' sum).

Shot transition: `continuous` (default) starts on the previous shot's last frame; `cut` is independent. Shared
settings apply to every shot; shared reference_images keep characters consistent. Waits up to
{settings.wait_seconds:.0f} s, then the plan goes on by itself (even after a restart): get_task_status(plan_id) says
where it stands. Shots made are never paid again. cancel_task(plan_id) cancels it. dry_run=true: plan and cost.
A shot may be {{"clip": task_id}} (e.g. a chosen take: not paid again), or have takes 2-4."""


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
            await clips_of(runtime, plan, who.principal)
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
                return result_of(plan, "dry_run", f"Nothing was sent. The plan: {quote.what}.")
            if not runtime.provider.has_key:
                raise ConfigurationError(
                    "No API key is configured, so nothing was sent. Set SEEDANCE_API_KEY (or ARK_API_KEY) in the MCP "
                    "server's environment and restart it; or set SEEDANCE_PROVIDER=sandbox to try it for free."
                )
            stored = await runtime.jobs.store.get_plan(plan.plan_id)
            if stored is not None and stored.state == "cancelled":
                await known_shots(runtime, plan, stored.takes, who.principal)
                return result_of(plan, "cancelled", CANCELLED)
            if stored is not None and stored.state == "done":  # nothing to pay or approve: its film
                return await status_of(runtime, plan, who.principal, runs_of(runtime).get(plan.plan_id))
            unpaid = _unpaid(plan, await _live_takes(runtime, stored))
            if unpaid:  # else every take to render has its job: nothing left to pay or approve
                await _check_budgets(runtime, who, plan, unpaid)
                approved = await approval(
                    ctx, who, quote, approval_id, approvals, runtime.jobs.now(), tool="storyboard"
                )
                if isinstance(approved, InputRequiredResult):
                    return approved
                if not approved.granted:
                    return result_of(plan, "declined", "The user declined; nothing was sent and nothing was charged.")
            # The plan is in the journal, its cost reserved against the budgets in the same step, before its first
            # shot is sent; an identical shot made since it was first written is that shot's job, so a call that
            # continues the plan pays only for shots never sent.
            record = await _record(runtime, plan, who)
            plan.since = record.created_at - CLOCK_MARGIN
            if record.state == "cancelled":
                await known_shots(runtime, plan, record.takes, who.principal)
                return result_of(plan, "cancelled", CANCELLED)
            report = while_called(reporter(ctx))
            try:
                run = await take_plan(runtime, plan, record, who, report) if record.state == "running" else None
                await wait_for(runtime, plan.plan_id, run, settings.wait_seconds, report)
                result = await status_of(runtime, plan, who.principal, run)
                data: dict[str, Any] = result.structured_content or {}
                if data.get("status") == "succeeded":
                    await report(100.0, f"{plan.plan_id}: the film is joined")
            finally:
                report.call_returned = True  # the plan may go on; no one listens to its progress any more
            return result
        except ProviderError as exc:
            raise ToolError(str(exc) + shots_note(plan)) from exc
        except SeedanceError as exc:
            raise ToolError(str(exc) + shots_note(plan)) from exc
        except Exception as exc:
            known = "Nothing was sent to the provider and nothing was charged."
            if plan is not None and any(s.job is not None for s in plan.shots):
                known = "Some shots were submitted and may be paid:" + shots_note(plan)
            raise ToolError(unexpected_failure("storyboard", exc, settings.secrets(), known)) from exc


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


async def _live_takes(runtime: Runtime, stored: PlanRecord | None) -> set[tuple[int, int]]:
    """The (shot, take) pairs of a plan the journal holds whose job is alive or made (they cost nothing more)."""
    from seedance_mcp.journal.job import DEAD_STATUSES

    live: set[tuple[int, int]] = set()
    for key, job_id in (stored.takes if stored is not None else {}).items():
        job = await runtime.jobs.store.get(job_id)
        if job is not None and job.status not in DEAD_STATUSES:
            live.add(key)
    return live


def _unpaid(plan: Plan, live: set[tuple[int, int]]) -> list[tuple[PlannedShot, int]]:
    """The takes this call would pay for: every take of a shot to render (not a clip) that has no live job."""
    return [
        (s, take) for s in plan.shots if s.clip is None for take in range(1, s.takes + 1) if (s.index, take) not in live
    ]


async def _check_budgets(runtime: Runtime, who: Caller, plan: Plan, unpaid: list[tuple[PlannedShot, int]]) -> None:
    """The daily budgets, before the person is asked to approve the plan: what is spent today and what other plans
    reserve, plus the takes of this plan that have no live job (a continuing call pays only for those). The journal
    decides again as it records the plan (`_record`), in one step with the reservation."""
    if plan.estimate is None:
        return
    from seedance_mcp.journal import start_of_day

    cost = sum(s.estimate or 0.0 for s, _take in unpaid)
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
            plan_record(plan),
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
