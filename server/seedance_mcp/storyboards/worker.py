"""`plan_worker`: what the runtime runs beside its job worker: it takes over running plans whose lease ran out
(a killed server's), rebuilt from the journal's record, so they finish by themselves."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any

import anyio

from seedance_mcp.catalog import Preset
from seedance_mcp.config import Settings
from seedance_mcp.errors import JournalUnavailable, SeedanceError
from seedance_mcp.runtime import Runtime
from seedance_mcp.storyboards.plan import plan_from_record
from seedance_mcp.storyboards.run import launch, runs_of
from seedance_mcp.tools.context import caller_of

if TYPE_CHECKING:
    from seedance_mcp.principals import Principal


logger = logging.getLogger(__name__)


PLAN_CLAIM_BATCH = 8
"""Running plans nobody runs (a dead process's) that one look takes over."""


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
        running = runs_of(runtime).get(record.plan_id)
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
        launch(runtime, plan, token, caller_of(record.principal, principals, settings), None)
