"""A storyboard plan's run, in the process that holds its lease: its shots (and their takes) submitted as ordinary
jobs linked to the plan, each chain of continuous shots in order and the chains at once, followed to their end, and
the film joined with a contact sheet; cancelling a plan as a whole."""

from __future__ import annotations

import logging
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from seedance_mcp.config import Settings
from seedance_mcp.errors import DuplicateSubmission, InvalidArgument, JournalUnavailable, SeedanceError
from seedance_mcp.runtime import Runtime
from seedance_mcp.storyboards.plan import Plan, PlannedShot
from seedance_mcp.tools.approval import spend_limits
from seedance_mcp.tools.context import Caller

if TYPE_CHECKING:
    from seedance_mcp.jobs import JobManager
    from seedance_mcp.journal import PlanRecord
    from seedance_mcp.journal.job import Job
    from seedance_mcp.media.join import JoinReport
    from seedance_mcp.wire import HttpRequest


logger = logging.getLogger(__name__)


async def clips_of(runtime: Runtime, plan: Plan, principal: str) -> None:
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


class while_called:
    """A progress callback that goes silent once the call has returned (the plan may still be running)."""

    def __init__(self, report: Any) -> None:
        self.report = report
        self.call_returned = False

    async def __call__(self, value: float, message: str) -> None:
        if not self.call_returned:
            await self.report(value, message)


@dataclass(eq=False)
class Run:
    """A plan this process runs (it holds the plan's lease): its shots as they go, who it is for, the progress
    callback of the call that started it (None for a plan taken over), and the film once joined."""

    plan: Plan
    who: Caller
    report: Any
    token: int
    """The claim of the plan's lease this process runs it under (a claim of its own expired lease raises it)."""
    finished: anyio.Event = field(default_factory=anyio.Event)
    film: JoinReport | None = None
    join_error: str | None = None


_RUNS: weakref.WeakKeyDictionary[JobManager, dict[str, Run]] = weakref.WeakKeyDictionary()
"""The plans each runtime (its job manager) runs, by plan id: a second call of a plan waits for the same run."""


def runs_of(runtime: Runtime) -> dict[str, Run]:
    return _RUNS.setdefault(runtime.jobs, {})


async def take_plan(runtime: Runtime, plan: Plan, record: PlanRecord, who: Caller, report: Any) -> Run | None:
    """This process's run of the plan: the one already going here, or a new one when this process holds the plan's
    lease (taken as it recorded the plan) or can claim it; None while another process runs it."""
    run = runs_of(runtime).get(plan.plan_id)
    if run is None and record.lease_owner == runtime.jobs.owner:
        run = launch(runtime, plan, record.lease_token, who, report)
    elif run is None:
        jobs = runtime.jobs
        claimed = await jobs.store.claim_plans(jobs.owner, jobs.settings.lease_seconds, limit=1, plan_id=plan.plan_id)
        run = runs_of(runtime).get(plan.plan_id)
        if run is None and claimed:
            run = launch(runtime, plan, claimed[0][1], who, report)
    if run is not None:
        _listen(run, report)
    return run


def _listen(run: Run, report: Any) -> None:
    """Tell this call the run's progress, unless another call still listens to it."""
    if report is not None and (run.report is None or getattr(run.report, "call_returned", False)):
        run.report = report


def launch(runtime: Runtime, plan: Plan, token: int, who: Caller, report: Any) -> Run:
    """Run a plan whose lease this process holds (`token`) in the runtime's task group, where it outlives the call
    that started it; the lease is renewed while it runs and given back when it ends."""
    run = Run(plan, who, report, token)
    runs = runs_of(runtime)
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


async def _run_to_end(runtime: Runtime, run: Run) -> None:
    """Send the shots that have no job, follow them all, join the film when every shot is saved; then the plan is
    `done`, or `stopped` when a shot failed (its reservation given up). A shot is followed to its end however long
    it renders, while this process holds the plan's lease. A film that cannot be joined (a full disk, its path taken,
    a shot's file gone) stops the plan, saying why, rather than leaving it running for every worker to join again."""
    plan, store = run.plan, runtime.jobs.store
    record = await store.get_plan(plan.plan_id)
    if record is None or record.state != "running":
        return
    await known_shots(runtime, plan, record.takes, record.principal)
    await run_plan(runtime, plan, run)
    for shot in plan.shots:
        if shot.job is not None:
            shot.job = await runtime.jobs.current(shot.job)
    if all(s.job is not None and s.job.video_path for s in plan.shots):
        try:
            run.film = await join_film(runtime.settings, plan)
        except Exception as exc:  # lasting (re-joining every claim interval would not help): stop, say why
            logger.exception("%s: the film could not be joined", plan.plan_id)
            run.join_error = join_error(exc)
            if not await store.set_plan_state(plan.plan_id, "stopped", allowed=("running",)):
                logger.warning("%s: its film failed, but the plan was not running any more", plan.plan_id)
            return
        if not await store.set_plan_state(plan.plan_id, "done", allowed=("running",)):
            logger.warning("%s: its film is joined, but the plan was not running any more (cancelled?)", plan.plan_id)
    elif failed_shots(plan) and not await store.set_plan_state(plan.plan_id, "stopped", allowed=("running",)):
        logger.warning("%s: a shot failed, but the plan was not running any more (cancelled?)", plan.plan_id)


def failed_shots(plan: Plan) -> list[PlannedShot]:
    """Shots that ended without a saved video: an error, or a job settled (ended, its files saved or given up)
    with no video. A shot the provider finished whose video is still being saved has not failed."""
    failed = [s for s in plan.shots if s.error is not None or (s.job is not None and s.job.settled)]
    return [s for s in failed if not (s.job is not None and s.job.video_path)]


async def wait_for(runtime: Runtime, plan_id: str, run: Run | None, seconds: float, report: Any) -> None:
    """Wait up to `seconds` for the plan to end: this process's run (told this call's progress when it has no one
    to tell), or the journal's word on another's."""
    from seedance_mcp.jobs.worker import STORE_WAIT_INTERVAL

    with anyio.move_on_after(seconds):
        while run is None:
            record = await runtime.jobs.store.get_plan(plan_id)
            if record is None or record.state != "running":
                return
            await anyio.sleep(STORE_WAIT_INTERVAL)
            run = runs_of(runtime).get(plan_id)
        _listen(run, report)
        await run.finished.wait()


async def run_plan(runtime: Runtime, plan: Plan, run: Run) -> None:
    """Submit the shots that have no job and follow every shot: each chain of continuous shots in sequence, the
    chains (split at cuts) at once. A chain stops at a shot that did not end saved."""
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
            # Followed to its end however long it renders: the run holds the plan's lease meanwhile (a lost lease
            # cancels the run), so only the take's own end stops the chain.
            job = await runtime.jobs.wait(job.job_id, _SHOT_WAIT, on_progress, who.principal)
            while not (job.settled or _never_made(job)):
                job = await runtime.jobs.wait(job.job_id, _SHOT_WAIT, on_progress, who.principal)
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


_SHOT_WAIT = 600.0
"""One wait of a plan's run for a take; the run waits again until the take ends."""

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
            repeat=shot.repeat,
        )
    except DuplicateSubmission as exc:  # this shot's create (an earlier call's) is unanswered or being looked for
        job = await runtime.jobs.find(exc.job_id, who.principal)
    shot.set_job(take, job)


async def cancel_plan(runtime: Runtime, plan_id: str, principal: str) -> tuple[bool, str, str]:
    """Cancel a storyboard as a whole: no more shots are sent, and each shot still queued is cancelled. Whether the
    plan was cancelled, its state as storyboard names it (`cancelled`, or `succeeded` for a plan already done), and
    what became of its shots."""
    from seedance_mcp.errors import TaskNotFound

    stored = await runtime.jobs.store.get_plan(plan_id)
    if stored is None or stored.principal != principal:
        raise TaskNotFound(plan_id)
    already = stored.cancelled_at is not None
    stored = await runtime.jobs.store.cancel_plan(plan_id) or stored
    if stored.state == "done":
        return False, "succeeded", "The plan is done: its film is joined, every shot was made; nothing to cancel."
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
    return True, "cancelled", " ".join([head, *lines])


async def known_shots(runtime: Runtime, plan: Plan, takes: dict[tuple[int, int], str], principal: str) -> None:
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


def join_error(exc: Exception) -> str:
    """Why a film could not be joined, in a few words a person can act on (no traceback, no key: paths only)."""
    if isinstance(exc, OSError):
        return f"{exc.strerror or type(exc).__name__}: {exc.filename}" if exc.filename else str(exc)
    return f"{type(exc).__name__}: {exc}"


async def join_film(settings: Settings, plan: Plan) -> JoinReport:
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
