"""Following a job this process holds, from wherever it stands until its video is on disk.

`start` puts a job in this process's hands (after its create, or claimed from the journal); `work` takes it through
its steps — an outcome the journal has not taken yet, a create cut off by a process that died, a lost create's
search (`reconcile.py`), polling (`follow_until_settled`), the download (`downloads.py`) — waiting out a journal
that is unavailable, and gives the lease back when done.
"""

from __future__ import annotations

import logging

import anyio

from seedance_mcp import metrics
from seedance_mcp.errors import (
    AuthenticationFailed,
    JournalUnavailable,
    ProviderError,
    ProviderUnreachable,
    RateLimited,
    UnexpectedResponse,
)
from seedance_mcp.jobs.downloads import download, download_due
from seedance_mcp.jobs.reconcile import search
from seedance_mcp.jobs.transitions import (
    MAX_FOLLOW_SECONDS,
    Refused,
    apply_answer,
    gave_up,
    no_video_url,
    orphaned,
    poll_failed,
    polled,
    task_id_kept,
)
from seedance_mcp.jobs.worker import JOURNAL_RETRY_CAP, JOURNAL_RETRY_FIRST, Live, Unrecorded, Worker, or_current
from seedance_mcp.journal import LeaseLost, TaskIdTaken
from seedance_mcp.journal.job import Job
from seedance_mcp.wire import TaskSnapshot

logger = logging.getLogger(__name__)

POLL_ERROR_BACKOFF_CAP = 300.0
MISSING_URL_PATIENCE = 3600.0
"""How long a task reported `succeeded` without a video URL keeps being asked for one."""
RELEASE_SECONDS = 5.0
"""How long giving a lease back may take; past that it is left to run out by itself."""


def start(
    worker: Worker,
    job: Job,
    token: int,
    *,
    confirmed: float | None = None,
    taken_over: bool = False,
    unrecorded: Unrecorded | None = None,
) -> None:
    """Work on a job whose lease this process holds with `token`, confirmed by the journal at `confirmed` (the
    work under way, if any, carries on with it: this process claimed the job again)."""
    worker.hold(job.job_id, token, confirmed=confirmed)
    if job.job_id in worker.live:
        return
    live = worker.live[job.job_id] = Live(job, unrecorded=unrecorded, taken_over=taken_over)
    assert worker.task_group is not None, "JobManager.run() must be running"
    worker.task_group.start_soon(work, worker, live, name=f"follow {job.handle}")


async def work(worker: Worker, live: Live) -> None:
    try:
        with live.scope:
            await _work_through_outages(worker, live)
    except LeaseLost:
        logger.info("another process holds the lease of %s now; leaving it to that one", live.job.job_id)
    except Exception:  # the last line of defence for one job: never let it take the worker down
        logger.exception("working on job %s failed", live.job.job_id)
    finally:
        if live.unrecorded is not None and live.job.task_id is not None:
            # The lease went to another process before the journal took the task id: a fact it must not lose.
            await write_kept_task_id(worker, live.unrecorded.job, live.job.task_id)
        job_id = live.job.job_id
        worker.live.pop(job_id, None)
        token = worker.let_go(job_id)
        # A write that leaves a job without work clears its lease in the same statement.
        if token is not None and live.job.has_work:
            with anyio.move_on_after(RELEASE_SECONDS, shield=True):
                try:
                    await worker.store.release(worker.owner, {job_id: token})
                except Exception as exc:  # it runs out by itself; never let cleaning up take the worker down
                    logger.warning("could not give back the lease of %s (%s); it runs out by itself", job_id, exc)
        live.publish(live.job)


async def write_kept_task_id(worker: Worker, job: Job, task_id: str, *, patient: bool = True) -> Job | None:
    """Write a created task's id that the journal could not take while this process held the job's lease, whoever
    holds it now: not fenced (the id is a fact, and a lease is no reason to drop it), compare-and-set, and only onto
    a job still without one (`submitting`, or given up as `unknown` by whoever claimed it mid-create), which then has
    work again, so whoever holds or claims it follows it. Tried again while the journal is unavailable, for as long
    as this process lives (unless not `patient`: then JournalUnavailable). The job as written, or as the journal has
    it when it knows the task already."""
    delay = JOURNAL_RETRY_FIRST
    while True:
        try:
            written = await worker.change(job, task_id_kept(task_id, worker.now()))
        except JournalUnavailable as exc:
            if not patient:
                raise
            level = logging.WARNING if delay == JOURNAL_RETRY_FIRST else logging.DEBUG
            logger.log(level, "could not record task %s of %s (%s); trying again", task_id, job.job_id, exc)
            try:
                await anyio.sleep(delay)
            except anyio.get_cancelled_exc_class():
                logger.error("stopping before the journal took task %s of job %s: look for it", task_id, job.job_id)
                raise
            delay = min(delay * 2, JOURNAL_RETRY_CAP)
            continue
        except Refused as moved:  # it found its task meanwhile (adopted), or it ended
            if moved.job.task_id != task_id:
                logger.error(
                    "job %s is `%s` in the journal; its task %s was not recorded", job.job_id, moved.job.status, task_id
                )
            return moved.job
        except TaskIdTaken:
            logger.error("task %s of job %s already belongs to another job in the journal", task_id, job.job_id)
            return None
        logger.warning("recorded task %s of %s, which another process had taken over meanwhile", task_id, job.job_id)
        worker.nudge.set()  # whoever holds no lease on it now: claim it and follow it
        return written


async def _work_through_outages(worker: Worker, live: Live) -> None:
    """A job's work; when the journal becomes unavailable it waits, then takes the work up where it stood.
    Writes wait in place (`Worker.record`); a read that failed starts the step again from the job in memory."""
    delay = JOURNAL_RETRY_FIRST
    while True:
        try:
            if live.unrecorded is not None:
                # Written to the job as the journal has it; refused if the journal took it after all.
                unrecorded = live.unrecorded
                live.publish(await or_current(worker.record(unrecorded.job, unrecorded.transition)))
                live.unrecorded = None
                logger.info("the journal has recorded %s now", live.job.handle)
            if live.job.status == "submitting":
                # Its creating process died mid-create (its lease ran out): a paid task may exist.
                live.publish(await or_current(worker.record(live.job, orphaned())))
            if live.job.status == "unknown":
                await search(worker, live)
            if live.job.task_id is not None and live.job.has_work:
                await follow_until_settled(worker, live)
            return
        except JournalUnavailable as exc:
            level = logging.WARNING if delay == JOURNAL_RETRY_FIRST else logging.DEBUG
            logger.log(level, "working on %s: %s", live.job.handle, exc)
            await anyio.sleep(delay)
            delay = min(delay * 2, JOURNAL_RETRY_CAP)


async def follow_until_settled(worker: Worker, live: Live) -> None:
    """Poll the job's task until it ends (adaptive delays, `PollPolicy`), then save its files."""
    settings = worker.settings
    job = live.job
    task_id = job.task_id
    assert task_id is not None
    failures = 0
    last_progress: tuple[float, float] | None = None
    while not job.is_terminal or _waiting_for_url(job):
        elapsed = worker.now() - (job.submitted_at or job.created_at)
        if elapsed > MAX_FOLLOW_SECONDS or (_waiting_for_url(job) and _url_overdue(worker, job)):
            ending = no_video_url() if job.status == "succeeded" else gave_up(worker.now())
            job = await or_current(worker.record(job, ending))
            live.publish(job)
            break
        if failures:
            delay = min(settings.poll.interval * 2**failures, POLL_ERROR_BACKOFF_CAP)
        elif job.poll_count == 0:
            delay = max(0.0, settings.poll.first_delay(job.expected_render_seconds) - elapsed)
        else:
            rate = None
            if last_progress is not None and job.progress is not None and elapsed > last_progress[1]:
                rate = (job.progress - last_progress[0]) / (elapsed - last_progress[1])
            delay = settings.poll.next_delay(elapsed, job.progress, rate, job.expected_render_seconds)
        await anyio.sleep(delay)
        asked = anyio.current_time()
        try:
            snapshot = await worker.batcher.fetch(task_id, job.model_key)
            metrics.observe_poll(anyio.current_time() - asked)
        except RateLimited as exc:
            # Not the job's fault: wait as long as asked, and do not count it as a failure.
            live.publish(job, None)
            await anyio.sleep(exc.retry_after or settings.poll.interval)
            continue
        except (ProviderError, ProviderUnreachable, UnexpectedResponse) as exc:
            failures += 1
            logger.warning("polling %s failed (%d in a row): %s", job.task_id, failures, exc)
            message = str(exc)
            if isinstance(exc, AuthenticationFailed) or failures == 3:
                job = await or_current(worker.record(job, poll_failed(message)))
            else:
                job.last_poll_error = message
            live.publish(job, exc)
            continue
        failures = 0
        worker.heard(job, snapshot)
        if job.progress is not None:
            last_progress = (job.progress, elapsed)
        downloads_next = snapshot.status == "succeeded" and snapshot.video_url is not None
        if differs(job, snapshot) and not downloads_next:
            job = await or_current(worker.record(job, polled(snapshot, worker.now())))
        else:
            # Unchanged, or about to be downloaded: the download's own write records it (if this process dies
            # first, whoever takes the job over polls again and sees the same answer).
            apply_answer(job, snapshot, worker.now())
            if downloads_next:
                live.unwritten = snapshot
        job.poll_count += 1
        live.publish(job)
    while job.needs_download:
        if job.download_error is not None and not await download_due(worker, live, job):
            job = live.job
            continue
        job = await download(worker, live, live.job)
        live.publish(job)


def differs(job: Job, snapshot: TaskSnapshot) -> bool:
    """Whether a status answer changes what the journal must know (progress alone is kept in memory)."""
    return (
        job.status != snapshot.status
        or (snapshot.video_url is not None and snapshot.video_url != job.video_url)
        or (snapshot.error_code is not None and snapshot.error_code != job.error_code)
        or (snapshot.usage_tokens is not None and snapshot.usage_tokens != job.usage_tokens)
    )


def _waiting_for_url(job: Job) -> bool:
    """Succeeded, but the provider has not given the video's address yet (seen in list answers)."""
    return job.status == "succeeded" and job.video_url is None and job.video_path is None


def _url_overdue(worker: Worker, job: Job) -> bool:
    return worker.now() - (job.finished_at or job.updated_at) > MISSING_URL_PATIENCE
