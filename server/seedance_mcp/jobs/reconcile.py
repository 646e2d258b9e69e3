"""Lost creates: looking for the task a create request whose answer was lost may have made, until it is found or
proven not made.

A job whose create answer was lost is `unknown`: a paid task may exist, and it is never sent again by us. Where the
provider lists tasks, the worker holding the job reads the list (`task_search.search_tasks`) at
`JobSettings.reconcile_delays`, then every minute while looks fail or stay inconclusive, for at most
`reconcile_patience`. What each look means is decided by the pure `lost_creates.judge`: adopt the task, say nothing
was created (only after a complete look made once `reconcile_window` has passed), or keep the job `unknown` naming
the candidates, and stop looking once a person must check.
"""

from __future__ import annotations

import dataclasses
import logging

import anyio

from seedance_mcp.errors import SeedanceError
from seedance_mcp.jobs.lost_creates import TaskSearch, Verdict, judge
from seedance_mcp.jobs.task_search import search_tasks
from seedance_mcp.jobs.transitions import adopted, no_task_list, not_created, search_noted, search_stopped
from seedance_mcp.jobs.worker import Live, Worker, or_current
from seedance_mcp.journal import TaskIdTaken
from seedance_mcp.journal.job import Job
from seedance_mcp.wire import TaskSnapshot

logger = logging.getLogger(__name__)


def can_search(worker: Worker, job: Job) -> bool:
    """Whether a lost create of this job can be looked for: the provider lists its tasks, and looks are on."""
    return bool(worker.settings.reconcile_delays) and worker.provider.can_search(job.model_key)


async def search(worker: Worker, live: Live) -> None:
    """Look for the task a lost create answer may have made, until it is found or proven not made.

    Looks come at `reconcile_delays`, then every minute while they fail or stay inconclusive, for at most
    `reconcile_patience`; an empty look counts only after `reconcile_window`. What each look means is
    decided by `lost_creates.judge`.
    """
    settings = worker.settings
    if not can_search(worker, live.job):
        live.publish(await or_current(worker.record(live.job, no_task_list())))
        return
    settle_after = live.job.created_at + settings.reconcile_window
    give_up_at = live.job.created_at + max(settings.reconcile_patience, settings.reconcile_window)
    delays = list(settings.reconcile_delays)
    while True:
        if delays:
            delay = delays.pop(0)
        else:
            now = worker.now()
            due = settle_after if now < settle_after else give_up_at
            delay = max(0.0, min(60.0, due - now)) if due > now else 60.0
        await anyio.sleep(delay)
        job = await worker.store.get(live.job.job_id)
        if job is None or job.status != "unknown":
            if job is not None:
                live.publish(job)
            return
        live.job = job
        try:
            look = await search_tasks(
                worker.provider,
                job.model_key,
                model=job.model,
                service_tier=job.service_tier,
                since=job.created_at - worker.offset,  # the search reads times on this process's clock
                margin=settings.clock_margin,
            )
            look = _on_journal_clock(look, worker.offset)
        except SeedanceError as exc:
            logger.info("could not list the provider's tasks to find job %s: %s", job.job_id, exc)
            verdict = Verdict("wait", reason=f"the provider's task list could not be read ({exc})")
        else:
            owners = await worker.store.owner_of([task.task_id for task in look.tasks])
            # Jobs whose answer was lost, and jobs whose create is still in flight (here or in another
            # process), may each own a task that fits: none of them is taken on settings alone.
            lost, _ = await worker.store.recent("unknown", 500)
            in_flight, _ = await worker.store.recent("submitting", 500)
            rivals = [*lost, *in_flight]
            verdict = judge(
                job,
                look,
                owners=owners,
                rivals=rivals,
                settle_after=settle_after,
                margin=settings.clock_margin,
                markers_echoed=worker.markers_echoed,
            )
        if verdict.kind == "found" and verdict.task is not None:
            if await _adopt(worker, live, verdict.task):
                return
            continue
        if verdict.kind == "not_created":
            live.publish(await or_current(worker.record(job, not_created(worker.now()))))
            return
        out_of_time = worker.now() >= give_up_at and not delays
        message = _search_message(verdict, final=out_of_time)
        if out_of_time or (verdict.kind == "ambiguous" and not delays and worker.now() >= settle_after):
            live.publish(await or_current(worker.record(job, search_stopped(message))))
            return
        if message != job.error_message:
            live.publish(await or_current(worker.record(job, search_noted(message))))


async def _adopt(worker: Worker, live: Live, task: TaskSnapshot) -> bool:
    """Make the found task the job's own; False when another job took it first."""
    logger.info("found the task of job %s whose create answer was lost: %s", live.job.job_id, task.task_id)
    worker.heard(live.job, task)
    try:
        live.publish(await or_current(worker.record(live.job, adopted(task, worker.now()))))
    except TaskIdTaken:
        return False
    return True


def _on_journal_clock(search: TaskSearch, offset: float) -> TaskSearch:
    """A look at the provider's list, its times moved from this process's clock to the journal's (`offset`)."""
    clock_offset = None if search.clock_offset is None else search.clock_offset - offset
    return dataclasses.replace(search, looked_at=search.looked_at + offset, clock_offset=clock_offset)


def _search_message(verdict: Verdict, *, final: bool) -> str:
    head = "the create answer was lost and a paid task may exist"
    if verdict.kind == "ambiguous":
        ids = ", ".join(task.task_id for task in verdict.candidates[:10])
        what = f"; the provider shows tasks that could be this job's ({ids}): check them in the provider console"
    else:
        what = f"; {verdict.reason}"
    tail = "; the server has stopped looking, so check the provider console" if final else "; still looking"
    return head + what + (tail if verdict.kind != "ambiguous" or final else "")
