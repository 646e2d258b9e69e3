"""Deciding what happened to a create request whose answer was lost, from one look at the provider's task list.

Pure: the look itself is done by `ProviderClient.search_tasks`; this module only judges it. The rules, because a
wrong answer costs a person money:

- A task is **adopted** only when it is certainly this job's: it carries the job's own marker (the
  `safety_identifier` Ark echoes), or — for jobs sent without a marker, because the user set their own
  `safety_identifier` — it is the only task whose identity (model, tier, and every setting the caller chose:
  resolution, ratio, duration or frames, seed) fits, created while the request was in flight, owned by no other
  job, and fitting no other job whose answer was lost.
- **Nothing was created** is said only after a complete, successful look (every page back past the moment the
  request left, in the provider's clock, with the job's tier and model filters) made late enough that an in-flight
  create would have shown up, which found no task that could be the job's.
- Anything else leaves the job `unknown`, naming the candidates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from seedance_mcp.journal.job import Job
from seedance_mcp.wire import TaskSnapshot

CLOCK_SLACK = 10.0
"""Seconds of doubt around the provider's clock once its offset is measured (the Date header has 1 s steps)."""


@dataclass(frozen=True, slots=True)
class TaskSearch:
    """One look at the provider's task list, as far back as `since` (this server's clock)."""

    tasks: Sequence[TaskSnapshot]
    complete: bool
    """Every task created since `since` is in `tasks` (the list was read to the end, or past that moment)."""
    clock_offset: float | None
    """The provider's clock minus ours, from its Date header; None when it sent none."""
    looked_at: float
    """When the look was made (this server's clock)."""
    why_incomplete: str = ""


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: str
    """`found`, `not_created`, `wait` (nothing yet, look again later) or `ambiguous`."""
    task: TaskSnapshot | None = None
    candidates: tuple[TaskSnapshot, ...] = field(default=())
    reason: str = ""


def identity_of(
    *,
    resolution: str | None,
    ratio: str | None,
    duration: int | None,
    frames: int | None,
    seed: int | None,
    service_tier: str | None,
) -> dict[str, str]:
    """The settings a caller chose explicitly, as a provider's task shows them (left out: what the model picks)."""
    identity: dict[str, str] = {"service_tier": service_tier or "default"}
    if resolution is not None:
        identity["resolution"] = resolution
    if ratio is not None and ratio != "adaptive":
        identity["ratio"] = ratio
    if frames is not None:
        identity["frames"] = str(frames)
    elif duration is not None and duration != -1:
        identity["duration"] = str(duration)
    if seed is not None and seed != -1:
        identity["seed"] = str(seed)
    return identity


def _shown(task: TaskSnapshot, name: str) -> str | None:
    if name == "service_tier":
        return task.service_tier or "default"
    value = getattr(task, name)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def fits(job: Job, task: TaskSnapshot) -> bool:
    """Whether the task could be this job's, from what the list shows of it (unknown values never exclude)."""
    if task.model and not job.model.startswith("ep-") and task.model != job.model:
        return False
    for name, wanted in job.identity.items():
        shown = _shown(task, name)
        if shown is not None and shown != wanted:
            return False
    return not (job.marker and task.safety_identifier is not None and task.safety_identifier != job.marker)


def in_window(job: Job, task: TaskSnapshot, search: TaskSearch, margin: float) -> bool:
    """Created (in the provider's clock) after the request left and before the look."""
    if task.created_at is None:
        return True
    offset = search.clock_offset or 0.0
    slack = CLOCK_SLACK if search.clock_offset is not None else margin
    return job.created_at + offset - slack <= task.created_at <= search.looked_at + offset + slack


def judge(
    job: Job,
    search: TaskSearch,
    *,
    owners: Mapping[str, str],
    rivals: Iterable[Job],
    settle_after: float,
    margin: float,
    markers_echoed: bool = False,
) -> Verdict:
    """What one look says about `job`. `owners`: task id → job id for the listed tasks the journal knows;
    `rivals`: the other jobs whose create answers were lost; `settle_after`: the moment (our clock) from which an
    in-flight create would be visible, so an empty look counts; `markers_echoed`: this provider was seen to echo a
    job's marker on its task."""
    echoes = markers_echoed or any(task.safety_identifier for task in search.tasks)
    candidates = [
        task
        for task in search.tasks
        if task.task_id not in owners and in_window(job, task, search, margin) and fits(job, task)
    ]
    if job.marker:
        marked = [task for task in candidates if task.safety_identifier == job.marker]
        if len(marked) == 1:
            return Verdict("found", task=marked[0], reason="the task carries this job's marker")
        if echoes:
            # The provider echoes markers: an unmarked task, or one marked for another job, is not this job's.
            candidates = marked
        elif candidates:
            # Sent with a marker that no listed task shows: whether this provider drops markers or the tasks are
            # someone else's cannot be told, so none is taken on its settings alone.
            return Verdict("ambiguous", candidates=tuple(candidates), reason="no listed task shows this job's marker")
    if not candidates:
        if not search.complete:
            return Verdict(
                "wait", reason=f"the provider's task list could not be read in full ({search.why_incomplete})"
            )
        if search.looked_at < settle_after:
            return Verdict("wait", reason="no task yet; the create may still be in flight at the provider")
        return Verdict("not_created", reason="a complete look at the provider's task list found no such task")
    if len(candidates) == 1 and not job.marker:
        contested = [rival for rival in rivals if rival.job_id != job.job_id and fits(rival, candidates[0])]
        if not contested:
            return Verdict("found", task=candidates[0], reason="the only task with this job's settings")
    return Verdict("ambiguous", candidates=tuple(candidates), reason="several tasks could be this job's")
