"""Which jobs this process works on: claiming jobs nobody follows, keeping the leases it holds, giving them back.

Following and downloading belong to whichever server process holds a job's lease, not to any tool call: a caller
that gives up, or a server that is killed, still gets the video on disk, once. `claim_loop` takes jobs with work
left whose lease is free or ran out (a new job another process inserted, a dead process's), `renew_loop` renews
every lease held a few times per lease and stops the work of a job whose lease another process has taken, and
`release_all` gives every lease back when the worker stops. The fence on each write is `Worker.lease`.
"""

from __future__ import annotations

import contextlib
import logging

import anyio
import anyio.to_thread

from seedance_mcp.errors import JournalUnavailable
from seedance_mcp.jobs.downloads import SWEEP_INTERVAL, sweep_partial_downloads
from seedance_mcp.jobs.follow import start
from seedance_mcp.jobs.transitions import orphaned
from seedance_mcp.jobs.worker import Worker, or_current
from seedance_mcp.journal import Lease

logger = logging.getLogger(__name__)

CLAIM_BATCH = 500
"""Jobs claimed per statement; a claim that fills it is followed at once by another."""
CLOCK_SYNC_SECONDS = 60.0
"""How often the offset between this process's clock and the journal's is measured again."""
RELEASE_SECONDS = 5.0
"""How long giving the leases back may take when the worker stops; past that they are left to run out."""


async def claim(worker: Worker) -> None:
    """Take every job with work left whose lease is free or ran out, and follow it."""
    while True:
        sent = anyio.current_time()
        claimed = await worker.store.claim(worker.owner, worker.settings.lease_seconds, limit=CLAIM_BATCH)
        for job, token in claimed:
            if job.status == "submitting":
                # Its creating process died mid-create (its lease ran out): a paid task may exist. Said at once
                # where the journal takes it, else by the worker as its first write.
                with contextlib.suppress(JournalUnavailable):
                    job = await or_current(worker.change(job, orphaned(), lease=Lease(worker.owner, token)))
            start(worker, job, token, confirmed=sent, taken_over=True)
        if len(claimed) < CLAIM_BATCH:
            return


async def claim_loop(worker: Worker) -> None:
    """Claim, every `claim_interval` or when nudged; sweep partial files and measure the clock now and then."""
    swept_at = synced_at = anyio.current_time()
    while True:
        with anyio.move_on_after(worker.settings.claim_interval):
            await worker.nudge.wait()
        worker.nudge = anyio.Event()
        if anyio.current_time() - swept_at > SWEEP_INTERVAL:
            # A process that died mid-download left a part file; whoever took its job over saved its own.
            swept_at = anyio.current_time()
            await anyio.to_thread.run_sync(sweep_partial_downloads, worker)
        try:
            if anyio.current_time() - synced_at > CLOCK_SYNC_SECONDS:
                await worker.sync_clock()
                synced_at = anyio.current_time()
            await claim(worker)
            worker.journal_answers()
        except JournalUnavailable as exc:  # the next round tries again; work in hand carries on meanwhile
            worker.journal_trouble("claiming jobs", exc)
        except Exception:  # a broken journal must not stop the worker; the next round tries again
            logger.exception("claiming jobs from the journal failed")


async def renew_loop(worker: Worker) -> None:
    """Renew every lease held, three times per lease; stop working on a job whose lease another process took."""
    while True:
        await anyio.sleep(worker.settings.lease_seconds / 3)
        held = dict(worker.held)
        sent = anyio.current_time()
        try:
            kept = await worker.store.renew(worker.owner, held, worker.settings.lease_seconds)
        except JournalUnavailable as exc:  # nobody can claim our jobs while it is down either
            worker.journal_trouble("renewing leases", exc)
            continue
        except Exception:  # the next renewal tries again well before the leases run out
            logger.exception("renewing leases failed")
            continue
        if held:
            worker.journal_answers()
        for job_id, token in held.items():
            if worker.held.get(job_id) != token:
                continue  # given back (or claimed again) meanwhile
            if job_id in kept:
                worker.confirmed[job_id] = sent
                continue
            worker.let_go(job_id)
            live = worker.live.get(job_id)
            # A job that just finished gave its lease back with its last write: nothing was lost.
            if live is not None and live.job.has_work:
                logger.warning("lost the lease of %s to another process; leaving it to that one", job_id)
                live.scope.cancel()


async def release_all(worker: Worker) -> None:
    """Give back every lease this process holds (it is stopping), so another process may take the jobs at once."""
    with anyio.move_on_after(RELEASE_SECONDS, shield=True):
        held = dict(worker.held)
        worker.held.clear()
        worker.confirmed.clear()
        try:
            await worker.store.release(worker.owner, held)
        except JournalUnavailable as exc:
            logger.warning("could not give back %d leases (%s); they run out by themselves", len(held), exc)
