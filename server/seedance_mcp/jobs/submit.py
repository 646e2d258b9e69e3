"""Submitting a video: journal the job, send its create request once, record what it came to, start following.

- The job is in the journal (leased to this process) before its create request leaves, and the request runs
  shielded from cancellation, so a task id the provider hands back is always recorded.
- An identical call within the dedupe window returns the earlier job instead of paying again (the check and the
  insert are one step in the journal, so two servers sharing it pay once).
- A create whose answer was lost is kept as `unknown` and never sent again by us (`reconcile.py` looks for it).
- When the journal cannot take the outcome of a create, the change is kept in memory and the worker writes it
  (retried) before anything else, so a paid task's id is never lost while this process lives.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Literal
from urllib.parse import urlsplit

import anyio

from seedance_mcp.errors import (
    CreateAnswerLost,
    DuplicateSubmission,
    JournalUnavailable,
    ProviderError,
    ProviderUnreachable,
    SpendRefused,
    SubmitOutcomeUnknown,
    TaskNotRecorded,
)
from seedance_mcp.jobs.follow import start, write_kept_task_id
from seedance_mcp.jobs.lost_creates import identity_of
from seedance_mcp.jobs.reconcile import can_search
from seedance_mcp.jobs.transitions import (
    Refused,
    Transition,
    clashed,
    created,
    interrupted,
    lost,
    refused,
    task_id_kept,
    unreachable,
    want_last_frame,
)
from seedance_mcp.jobs.worker import STORE_WAIT_INTERVAL, Unrecorded, Worker
from seedance_mcp.journal import FIRST_TOKEN, BudgetExceeded, LeaseLost, PlanShot, SpendLimit, TaskIdTaken
from seedance_mcp.journal.job import Job, new_job_id
from seedance_mcp.wire import HttpRequest, VideoRequest

logger = logging.getLogger(__name__)

Recorded = Literal["recorded", "kept", "taken over"]
"""What became of a change after a create: in the journal; kept in memory and retried; another process's now."""


def fingerprint_of(provider: str, request: HttpRequest, principal: str = "") -> str:
    """Identical calls (same caller, same provider, same path, same request body) share a fingerprint.

    The host is left out: the embedded sandbox gets a new port on every start. The principal is in, so one
    person's call never returns another's job. A link to an uploaded file counts without its signature and expiry:
    the same file signed again a minute later is the same request (for dedupe and for approval ids).
    """
    from seedance_mcp.media.uploads import stable_link

    path = urlsplit(request.url).path
    parts: list[object] = [provider, path, _without_link_signatures(request.json_body, stable_link)]
    if principal:
        parts.append(principal)
    canonical = json.dumps(parts, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _without_link_signatures(value: Any, stable: Callable[[str], str]) -> Any:
    if isinstance(value, dict):
        return {k: _without_link_signatures(v, stable) for k, v in value.items()}  # pyright: ignore[reportUnknownVariableType]
    if isinstance(value, list):
        return [_without_link_signatures(v, stable) for v in value]  # pyright: ignore[reportUnknownVariableType]
    if isinstance(value, str) and value.startswith(("https://", "http://")):
        return stable(value)
    return value


async def submit_video(
    worker: Worker,
    request: VideoRequest,
    http_request: HttpRequest,
    *,
    expected_render: float,
    force_new: bool = False,
    price: tuple[float, str] | None = None,
    limits: Sequence[SpendLimit] = (),
    principal: str = "",
    approval_id: str | None = None,
    wait: float | None = None,
    dedupe_since: float | None = None,
    plan_shot: PlanShot | None = None,
    take: tuple[int, int] = (1, 1),
    repeat: int = 0,
) -> tuple[Job, bool]:
    """Journal the job, send the create request once, start following. The job, and whether it was reused.
    `take` (take, of how many) gives take k of several its own fingerprint (`take_fingerprint`), as `repeat` does
    the n-th repeat of one request within a storyboard (two identical shots are two videos).

    `wait` bounds this call, never the provider's request: the create runs in the worker's task group, and when its
    outcome takes longer the job is returned `submitting` (its outcome is recorded when it comes). An identical
    job still being created is waited for within the same bound.

    `approval_id` (the person's approval of exactly this request) is recorded on the job, and pays for one video:
    while a job it paid for is live, the journal returns that job instead, `force_new` or not."""
    settings = worker.settings
    fingerprint = fingerprint_of(worker.provider.preset.name, http_request, principal)  # a small body: no thread
    fingerprint = take_fingerprint(fingerprint, *take, repeat=repeat)
    job = _new_job(worker, request, fingerprint, expected_render, price, principal, approval_id)
    dedupe_window = _dedupe_window(worker, force_new, dedupe_since)
    deadline = anyio.current_time() + (wait if wait is not None else settings.reconcile_window)
    for _ in range(3):
        sent = anyio.current_time()
        try:
            earlier = await worker.store.insert(
                job,
                dedupe_window=dedupe_window,
                lease_owner=worker.owner,
                lease_seconds=settings.lease_seconds,
                limits=limits,
                plan_shot=plan_shot,
            )
        except BudgetExceeded as exc:
            currency = exc.limit.currency
            raise SpendRefused(
                f"This video (about {exc.cost:.2f} {currency}) would take the {currency} spend counted against "
                f"{exc.limit.name} ({exc.spent:.2f} {currency} billed, in flight or reserved) past its limit of "
                f"{exc.limit.limit:.2f} {currency}. Tell the user; they can raise {exc.limit.name} in the "
                "server's environment, or wait."
            ) from exc
        if earlier is None:
            worker.hold(job.job_id, FIRST_TOKEN, confirmed=sent)
            break
        if earlier.status == "submitting":
            # The same call is being created right now (by this or another process): wait for its answer.
            earlier = await _create_outcome(worker, earlier, deadline)
        if earlier.status in ("unknown", "submitting"):
            raise DuplicateSubmission(earlier.job_id, earlier.status)
        if earlier.status in ("failed", "not_submitted") and not earlier.task_id:
            continue  # that create was refused or never sent: this call may go ahead
        logger.info("identical request within the dedupe window: reusing %s", earlier.handle)
        if request.save_last_frame and not earlier.want_last_frame:
            earlier = await _want_last_frame(worker, earlier)
        return worker.current(earlier), True
    else:
        raise DuplicateSubmission(job.job_id, "submitting")
    safety_identifier = job.marker or settings.safety_identifier
    if safety_identifier is not None:
        http_request = worker.provider.with_safety_identifier(http_request, safety_identifier)
    task_group = worker.task_group
    if task_group is None:  # no worker running (a bare JobManager): the create runs here, shielded
        with anyio.CancelScope(shield=True):
            job = await _send_create(worker, job, http_request)
        return job, False
    # In the worker's task group: if the caller cancels or stops waiting, the create may already be at the provider,
    # and its answer must be kept.
    create = _Create()
    task_group.start_soon(create.run, worker, job, http_request, name=f"create {job.job_id}")
    with anyio.move_on_after(deadline - anyio.current_time()):
        await create.done.wait()
    if not create.done.is_set():
        logger.info("%s: its create request outlasts the call's wait; its outcome will be recorded", job.job_id)
        return job, False
    if create.error is not None:
        raise create.error
    assert create.job is not None
    return create.job, False


class _Create:
    """A create request running in the worker's task group, and what it came to, for a caller still waiting."""

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.job: Job | None = None
        self.error: Exception | None = None

    async def run(self, worker: Worker, job: Job, http_request: HttpRequest) -> None:
        try:
            self.job = await _send_create(worker, job, http_request)
        except Exception as exc:  # what the create came to is recorded; the caller, if still waiting, is told
            self.error = exc
            logger.debug("the create of %s: %s", job.job_id, exc)
        finally:
            self.done.set()


def take_fingerprint(fingerprint: str, take: int, takes: int, *, repeat: int = 0) -> str:
    """Take `take` (from 1) of `takes` of one request, and its `repeat`-th repeat within one storyboard (from 0):
    its own fingerprint, so the takes (and identical shots) are not deduplicated into one, while a repeat of the
    whole call finds each again. A single take, not repeated, is the request's own."""
    if takes > 1:
        fingerprint = hashlib.sha256(f"{fingerprint}\ntake {take} of {takes}".encode()).hexdigest()
    if repeat:
        fingerprint = hashlib.sha256(f"{fingerprint}\nrepeat {repeat}".encode()).hexdigest()
    return fingerprint


async def submit_takes(
    worker: Worker,
    request: VideoRequest,
    http_request: HttpRequest,
    takes: int,
    *,
    expected_render: float,
    force_new: bool = False,
    price: tuple[float, str] | None = None,
    limits: Sequence[SpendLimit] = (),
    principal: str = "",
    dedupe_since: float | None = None,
) -> list[tuple[Job, bool]]:
    """`takes` jobs of one request, each an ordinary job: journaled together in one step (one budget check for
    all of them, so either every new take fits or none is inserted), then their create requests sent in parallel.
    Each take has its own fingerprint (`take_fingerprint`): a repeat of the call finds every take again and pays
    for none; a take whose earlier create was refused or never sent is journaled and sent again.

    Each take with whether it was reused. A take whose create fails is returned as the journal has it (its error
    recorded), so the others still stand; a create whose answer was lost stays `unknown`, as for one video."""
    provider_name = worker.provider.preset.name
    base = fingerprint_of(provider_name, http_request, principal)
    fingerprints = [take_fingerprint(base, take, takes) for take in range(1, takes + 1)]
    dedupe_window = _dedupe_window(worker, force_new, dedupe_since)
    results: list[tuple[Job, bool] | None] = [None] * takes
    pending = list(range(takes))
    jobs: dict[int, Job] = {}
    for _ in range(3):
        jobs = {i: _new_job(worker, request, fingerprints[i], expected_render, price, principal) for i in pending}
        sent = anyio.current_time()
        try:
            found = await worker.store.insert_all(
                list(jobs.values()),
                dedupe_window=dedupe_window,
                lease_owner=worker.owner,
                lease_seconds=worker.settings.lease_seconds,
                limits=limits,
            )
        except BudgetExceeded as exc:
            currency = price[1] if price else ""
            raise SpendRefused(
                f"These {len(jobs)} takes (about {exc.cost:.2f} {currency}) would take the spend counted against "
                f"{exc.limit.name} ({exc.spent:.2f} {currency} billed, in flight or reserved) past its limit of "
                f"{exc.limit.limit:.2f} {currency}; none was sent. Ask for fewer takes, or tell the user; they can "
                f"raise {exc.limit.name} in the server's environment, or wait."
            ) from exc
        except JournalUnavailable as exc:
            raise exc.refusing_a_video() from exc
        again: list[int] = []
        new: dict[int, Job] = {}
        for i, earlier in zip(jobs, found, strict=True):
            if earlier is None:
                worker.hold(jobs[i].job_id, FIRST_TOKEN, confirmed=sent)
                new[i] = jobs[i]
                continue
            if earlier.status == "submitting":
                earlier = await _create_outcome(
                    worker, earlier, anyio.current_time() + worker.settings.reconcile_window
                )
            if earlier.status in ("failed", "not_submitted") and not earlier.task_id:
                again.append(i)  # that create was refused or never sent: this take may go ahead
                continue
            if request.save_last_frame and not earlier.want_last_frame and earlier.status != "unknown":
                earlier = await _want_last_frame(worker, earlier)
            results[i] = (worker.current(earlier), True)
        if new:
            await _send_creates(worker, new, http_request, results)
        pending = again
        if not pending:
            break
    done = [result for result in results if result is not None]
    if pending:
        raise DuplicateSubmission(jobs[pending[0]].job_id, "submitting")
    return done


async def _send_creates(
    worker: Worker, jobs: dict[int, Job], http_request: HttpRequest, results: list[tuple[Job, bool] | None]
) -> None:
    """Send the journaled takes' create requests at once (the worker's create limiter still bounds them), each
    shielded from cancellation; a take whose create fails keeps the journal's record of it. When the provider
    refused every one of them (or could not be reached), that failure is raised, with its code and request id, as
    for a single video: nothing was created."""
    refusals: list[ProviderError | ProviderUnreachable] = []

    async def send(i: int, job: Job) -> None:
        request = http_request
        identifier = job.marker or worker.settings.safety_identifier
        if identifier is not None:
            request = worker.provider.with_safety_identifier(http_request, identifier)
        try:
            results[i] = (await _send_create(worker, job, request), False)
        except (ProviderError, ProviderUnreachable, SubmitOutcomeUnknown, TaskNotRecorded) as exc:
            logger.warning("take %d (%s) was not created: %s", i + 1, job.job_id, exc)
            if isinstance(exc, ProviderError | ProviderUnreachable):
                refusals.append(exc)
            results[i] = (await worker.find(job.job_id), False)

    with anyio.CancelScope(shield=True):
        async with anyio.create_task_group() as group:
            for i, job in jobs.items():
                group.start_soon(send, i, job)
    if refusals and len(refusals) == len(jobs):
        raise refusals[0]


def _dedupe_window(worker: Worker, force_new: bool, dedupe_since: float | None) -> float | None:
    window = worker.settings.dedupe_window
    dedupe_window = None if force_new or window <= 0 else window
    if dedupe_since is not None:
        # A moment on the journal's clock (`now()`) becomes a window the journal measures from its own now.
        dedupe_window = max(dedupe_window or 0.0, worker.now() - dedupe_since)
    return dedupe_window


def _new_job(
    worker: Worker,
    request: VideoRequest,
    fingerprint: str,
    expected_render: float,
    price: tuple[float, str] | None,
    principal: str,
    approval_id: str | None = None,
) -> Job:
    """A job for this request, as it is journaled before its create request leaves."""
    settings = worker.settings
    now = worker.now()  # provisional: the journal stamps the job with its own clock as it takes it
    job_id = new_job_id()
    marker = None
    if worker.provider.can_mark(request.model_key) and settings.safety_identifier is None:
        marker = f"seedance-mcp-{job_id.rsplit('-', 1)[-1]}{uuid.uuid4().hex[:8]}"
    return Job(
        job_id=job_id,
        provider=worker.provider.preset.name,
        model=request.model_id,
        model_key=request.model_key,
        prompt=request.prompt,
        status="submitting",
        fingerprint=fingerprint,
        created_at=now,
        updated_at=now,
        expected_render_seconds=expected_render,
        want_last_frame=request.save_last_frame,
        estimated_tokens=request.estimated_tokens,
        cost_rate=price[0] if price else None,
        currency=price[1] if price else None,
        resolution=request.effective_resolution,
        ratio=request.ratio or request.effective_ratio,
        duration=request.effective_seconds,
        frames=request.frames,
        seed=request.seed,
        service_tier=request.service_tier,
        marker=marker,
        simulated=settings.simulated,
        principal=principal,
        approval_id=approval_id,
        task_secret=secrets.token_urlsafe(16),
        identity=identity_of(
            resolution=request.resolution,
            ratio=request.ratio,
            duration=request.duration,
            frames=request.frames,
            seed=request.seed,
            service_tier=request.service_tier,
        ),
    )


async def _want_last_frame(worker: Worker, job: Job) -> Job:
    """An identical call asked for the last frame the first one did not: the job saves it too (a job already
    settled has work again, and a worker fetches it)."""
    job = await worker.change(job, want_last_frame())
    worker.nudge.set()
    return job


async def _create_outcome(worker: Worker, job: Job, deadline: float) -> Job:
    """An identical job's state once its create request has been answered, or as it is at `deadline` (the call's
    wait)."""
    with anyio.move_on_after(deadline - anyio.current_time()):
        while job.status == "submitting":
            await anyio.sleep(STORE_WAIT_INTERVAL / 5)
            job = await worker.find(job.job_id)
    return job


async def _send_create(worker: Worker, job: Job, http_request: HttpRequest) -> Job:
    try:
        async with worker.create_limiter:
            task_id = await worker.provider.submit(http_request)
    except CreateAnswerLost as exc:
        searching = can_search(worker, job)
        await _after_create(worker, job, lost(str(exc), searchable=searching), follow=True)
        raise SubmitOutcomeUnknown(job.job_id, worker.provider.display_name, exc.reason, searching=searching) from exc
    except ProviderError as exc:
        await _after_create(worker, job, refused(exc, worker.now()))
        raise
    except ProviderUnreachable as exc:
        await _after_create(worker, job, unreachable(str(exc), worker.now()))
        raise
    except BaseException:
        # Anything else (a bug, a shutdown): whether the request left cannot be known.
        with anyio.CancelScope(shield=True):
            await _after_create(worker, job, interrupted())
        raise
    try:
        job, recorded, why = await _after_create(worker, job, created(task_id, worker.now()), follow=True)
    except TaskIdTaken:
        # The provider handed back an id the journal already gives another job: never follow one task twice.
        job, _, _ = await _after_create(worker, job, clashed(task_id))
        return job
    if recorded != "recorded":
        raise TaskNotRecorded(job, worker.store.describe, why, kept=recorded == "kept")
    logger.info("submitted %s as %s", job.job_id, task_id)
    return job


async def _after_create(
    worker: Worker, job: Job, outcome: Transition, *, follow: bool = False
) -> tuple[Job, Recorded, str]:
    """Record what the create request came to (fenced by the lease the job was inserted with), and follow the
    job from here when `follow`. The job as it now is, whether the journal has it, and why not: when the journal
    is unavailable the change is kept in memory and the worker writes it (retried) before anything else, so a
    paid task's id is never lost while this process lives."""
    pending = outcome.apply(job)
    try:
        written = await worker.change(job, outcome, lease=worker.lease(job.job_id))
    except JournalUnavailable as exc:
        token = worker.held.get(job.job_id)
        logger.warning(
            "the journal did not take the outcome of %s's create (task %s): %s; kept in memory and retried until "
            "it does",
            job.job_id,
            pending.task_id or "unknown",
            exc,
        )
        if token is None:
            if pending.task_id is None:
                return pending, "taken over", exc.reason
            # The lease ran out meanwhile: the id is written unfenced, in the background, until the journal takes it.
            assert worker.task_group is not None, "JobManager.run() must be running"
            worker.task_group.start_soon(write_kept_task_id, worker, job, pending.task_id)
            return pending, "kept", exc.reason
        if pending.task_id is not None:
            # Written later, the id goes onto the job whatever became of it meanwhile (claimed, given up).
            outcome = task_id_kept(pending.task_id, worker.now())
        start(worker, pending, token, unrecorded=Unrecorded(job, outcome))
        return pending, "kept", exc.reason
    except (LeaseLost, Refused) as exc:
        # The create outlived the lease and another process took the job over (and will look for its task).
        logger.warning(
            "%s (task %s) was taken over by another process while its create was in flight",
            job.job_id,
            pending.task_id or "unknown",
        )
        current = exc.job if isinstance(exc, Refused) else pending
        if isinstance(exc, LeaseLost):
            worker.let_go(job.job_id)
        if pending.task_id is None:
            return current, "taken over", "its lease ran out while the request was in flight"
        try:
            kept = await write_kept_task_id(worker, job, pending.task_id, patient=False)
        except JournalUnavailable as unavailable:
            assert worker.task_group is not None, "JobManager.run() must be running"
            worker.task_group.start_soon(write_kept_task_id, worker, job, pending.task_id)
            return pending, "kept", unavailable.reason
        if kept is not None and kept.task_id == pending.task_id:
            return kept, "recorded", ""
        return current, "taken over", "its lease ran out while the request was in flight"
    token = worker.held.get(job.job_id)
    if follow and written.has_work and token is not None:
        start(worker, written, token)
    else:
        worker.let_go(job.job_id)
    return written, "recorded", ""
