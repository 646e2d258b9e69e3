"""`lost_creates.judge` as a decision table: what one look at the provider's task list says about a job whose create
answer was lost. A wrong `found` follows someone else's task; a wrong `not_created` tells a person that submitting
again is safe when a paid task exists. Each row is one situation, its verdict and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from seedance_mcp.jobs.lost_creates import CLOCK_SLACK, TaskSearch, judge
from seedance_mcp.journal.job import Job
from seedance_mcp.wire import TaskSnapshot
from tests.conftest import make_job

CREATED = 1_750_000_000.0
"""When the job was journaled, just before its create request left (the journal's clock)."""
SETTLE = CREATED + 90.0
"""From then on an in-flight create would show in the list, so an empty complete look counts."""
MARGIN = 600.0
"""Clock doubt when the provider sends no Date header."""
MARK = "seedance-mcp-aaaa"
IDENTITY = {"service_tier": "default", "resolution": "720p", "ratio": "16:9", "duration": "5"}


def lost_job(*, marker: str | None = MARK, **fields: Any) -> Job:
    return make_job(status="unknown", created_at=CREATED, marker=marker, identity=dict(IDENTITY), **fields)


def task(task_id: str, *, at: float | None = CREATED + 2, mark: str | None = None, **fields: Any) -> TaskSnapshot:
    """A listed task, created `at` (the provider's clock), with the job's settings unless `fields` say otherwise."""
    values: dict[str, Any] = {
        "task_id": task_id,
        "status": "running",
        "raw_status": "running",
        "model": "seedance-1-0-pro-250528",
        "resolution": "720p",
        "ratio": "16:9",
        "duration": 5.0,
        "created_at": at,
        "safety_identifier": mark,
    }
    return TaskSnapshot.model_validate({**values, **fields})


@dataclass(frozen=True)
class Row:
    case: str
    verdict: str
    """`found`, `not_created`, `wait` or `ambiguous`."""
    tasks: tuple[TaskSnapshot, ...] = ()
    marker: str | None = MARK
    """The job's own marker, or None: sent without one (the user set their own safety_identifier)."""
    echoed: bool = False
    """This provider was seen to echo markers on its tasks."""
    owners: dict[str, str] = field(default_factory=dict[str, str])
    rivals: tuple[Job, ...] = ()
    complete: bool = True
    looked: float = SETTLE + 1
    offset: float | None = 0.0
    """The provider's clock minus ours (from its Date header), or None when it sent none."""
    adopted: str | None = None
    """The task a `found` verdict adopts."""
    candidates: tuple[str, ...] = ()
    """The tasks an `ambiguous` verdict names."""


RIVAL = lost_job(marker=None)
ROWS = [
    # -- a job sent with its own marker ------------------------------------------------------------------------
    Row("its marker on one task: adopted", "found", (task("t1", mark=MARK), task("t2")), adopted="t1"),
    Row(
        "its marker on one task, whatever else fits",
        "found",
        (task("t1", mark=MARK), task("t2", mark="x")),
        adopted="t1",
    ),
    Row(
        "its marker on two tasks: a person checks",
        "ambiguous",
        (task("t1", mark=MARK), task("t2", mark=MARK)),
        candidates=("t1", "t2"),
    ),
    Row("markers echoed, only unmarked tasks fit: not created", "not_created", (task("t1"),), echoed=True),
    Row("a task marked for another job is never this one's", "not_created", (task("t1", mark="seedance-mcp-other"),)),
    Row(
        "markers never seen echoed, an unmarked task fits: a person checks",
        "ambiguous",
        (task("t1"),),
        candidates=("t1",),
    ),
    Row("an empty complete look after the settle time: not created", "not_created"),
    Row("an empty look before the settle time: wait", "wait", looked=SETTLE - 1),
    Row("an empty look that could not read the whole list: wait", "wait", complete=False),
    # -- a job sent without a marker (the user's own safety_identifier) ----------------------------------------
    Row("the only task with its settings: adopted", "found", (task("t1"),), marker=None, adopted="t1"),
    Row(
        "a task created before the request left is not it",
        "not_created",
        (task("t1", at=CREATED - CLOCK_SLACK - 1),),
        marker=None,
    ),
    Row(
        "a task created after the look is not it",
        "not_created",
        (task("t1", at=SETTLE + 1 + CLOCK_SLACK + 1),),
        marker=None,
    ),
    Row("a task without a creation time may be it", "found", (task("t1", at=None),), marker=None, adopted="t1"),
    Row(
        "two tasks with its settings: a person checks",
        "ambiguous",
        (task("t1"), task("t2")),
        marker=None,
        candidates=("t1", "t2"),
    ),
    Row(
        "another lost job fits the only task too: a person checks",
        "ambiguous",
        (task("t1"),),
        marker=None,
        rivals=(RIVAL,),
        candidates=("t1",),
    ),
    Row("a task another job owns is not it", "not_created", (task("t1"),), marker=None, owners={"t1": "job-other"}),
    Row("a task with another resolution is not it", "not_created", (task("t1", resolution="1080p"),), marker=None),
    Row("a task of another model is not it", "not_created", (task("t1", model="seedance-1-0-lite-t2v"),), marker=None),
    Row(
        "a task on the flex tier is not a default-tier job's",
        "not_created",
        (task("t1", service_tier="flex"),),
        marker=None,
    ),
    Row(
        "a task that does not show a setting may be it",
        "found",
        (task("t1", resolution=None, ratio=None),),
        marker=None,
        adopted="t1",
    ),
    Row(
        "the only fitting task of an incomplete look is adopted (what is unread is not weighed)",
        "found",
        (task("t1"),),
        marker=None,
        complete=False,
        adopted="t1",
    ),
    # -- the provider's clock ------------------------------------------------------------------------------------
    Row(
        "provider clock an hour behind, measured: its task is in the window",
        "found",
        (task("t1", at=CREATED - 3600 + 2),),
        marker=None,
        offset=-3600.0,
        adopted="t1",
    ),
    Row(
        "provider clock an hour behind, measured: a task an hour older than that is not it",
        "not_created",
        (task("t1", at=CREATED - 7200 + 2),),
        marker=None,
        offset=-3600.0,
    ),
    Row(
        "no Date header: the margin of doubt admits a task minutes early",
        "found",
        (task("t1", at=CREATED - MARGIN + 1),),
        marker=None,
        offset=None,
        adopted="t1",
    ),
    Row(
        "no Date header: a task older than the margin is not it",
        "not_created",
        (task("t1", at=CREATED - MARGIN - 1),),
        marker=None,
        offset=None,
    ),
    Row(
        "the measured offset is trusted to seconds, not to the margin",
        "not_created",
        (task("t1", at=CREATED - CLOCK_SLACK - 60),),
        marker=None,
        offset=0.0,
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[row.case for row in ROWS])
def test_one_look_at_the_task_list_gives_the_verdict_of_its_row(row: Row) -> None:
    job = lost_job(marker=row.marker)
    search = TaskSearch(
        row.tasks, complete=row.complete, clock_offset=row.offset, looked_at=row.looked, why_incomplete="page 3 failed"
    )
    verdict = judge(
        job,
        search,
        owners=row.owners,
        rivals=[job, *row.rivals],  # the job itself is always among the lost jobs; it is never its own rival
        settle_after=SETTLE,
        margin=MARGIN,
        markers_echoed=row.echoed,
    )
    assert verdict.kind == row.verdict, verdict.reason
    assert (verdict.task.task_id if verdict.task else None) == row.adopted
    if row.verdict == "ambiguous":
        assert tuple(candidate.task_id for candidate in verdict.candidates) == row.candidates
    assert verdict.reason


def test_an_endpoint_job_is_matched_on_its_settings_not_its_model_name() -> None:
    """A job sent to an endpoint id (`ep-…`) lists with the model's name: the name cannot rule a task out."""
    job = lost_job(marker=None, model="ep-20250101-abcd")
    search = TaskSearch((task("t1"),), complete=True, clock_offset=0.0, looked_at=SETTLE + 1)
    verdict = judge(job, search, owners={}, rivals=[], settle_after=SETTLE, margin=MARGIN)
    assert verdict.kind == "found" and verdict.task is not None and verdict.task.task_id == "t1"


def test_an_incomplete_look_says_why_it_waits() -> None:
    search = TaskSearch(
        (), complete=False, clock_offset=0.0, looked_at=SETTLE + 1, why_incomplete="more than 2000 tasks"
    )
    verdict = judge(lost_job(), search, owners={}, rivals=[], settle_after=SETTLE, margin=MARGIN)
    assert verdict.kind == "wait" and "more than 2000 tasks" in verdict.reason
