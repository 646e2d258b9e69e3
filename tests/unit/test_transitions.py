"""The job state machine (`seedance_mcp.jobs.transitions`), walked whole: every transition against every state.

The cases are generated from the table (`RULES`) and the status vocabulary (`STATUSES`), so a new state is tried
against every transition, and a new transition fails here until it has an example and its effects below.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from seedance_mcp.errors import DownloadFailed, JournalUnavailable, ProviderError
from seedance_mcp.jobs import transitions as t
from seedance_mcp.jobs.polling import PollPolicy
from seedance_mcp.jobs.transitions import RULES, Download, Refused, Transition
from seedance_mcp.jobs.worker import JobSettings, Worker
from seedance_mcp.journal import FIRST_TOKEN
from seedance_mcp.journal.job import STATUSES, Job
from seedance_mcp.journal.sqlite import SqliteTaskStore
from seedance_mcp.models import JobStatus
from seedance_mcp.wire import TaskSnapshot
from tests.conftest import make_job

NOW = 1_750_000_100.0
ROOT = Path(__file__).resolve().parents[2]


def answer(status: str = "succeeded", **fields: Any) -> TaskSnapshot:
    values: dict[str, Any] = {"task_id": "cgt-1", "status": status, "raw_status": status}
    if status == "succeeded":
        values["video_url"] = "https://cdn.example/v.mp4"
    return TaskSnapshot.model_validate({**values, **fields})


REFUSAL = ProviderError("Ark", "the prompt was refused", status_code=400, code="InputTextSensitive", request_id="r-1")
SAVED = Download(answer=answer(), url="https://cdn.example/v.mp4", video_path="/videos/v.mp4")
FAILED = Download(answer=answer(), url="https://cdn.example/v.mp4", error=DownloadFailed("cut off"), retry_first=5.0)

EXAMPLES: dict[str, tuple[Callable[[], Transition], dict[str, Any]]] = {
    # name: (the transition with example arguments, what it leaves in a job it may change)
    "created": (lambda: t.created("cgt-1", NOW), {"task_id": "cgt-1", "submitted_at": NOW, "has_work": True}),
    "task_id_kept": (
        lambda: t.task_id_kept("cgt-1", NOW),
        {"task_id": "cgt-1", "error_message": None, "search_done": False, "has_work": True},
    ),
    "lost": (
        lambda: t.lost("the answer was cut off", searchable=True),
        {"error_message": "the answer was cut off", "search_done": False, "has_work": True},
    ),
    "interrupted": (
        t.interrupted,
        {"error_message": "the create request was interrupted; a paid task may exist", "has_work": True},
    ),
    "orphaned": (
        t.orphaned,
        {
            "error_message": "the server stopped while this job's create request was in flight; a paid task may exist",
            "has_work": True,
        },
    ),
    "clashed": (lambda: t.clashed("cgt-9"), {"search_done": True, "task_id": None, "has_work": False}),
    "refused": (
        lambda: t.refused(REFUSAL, NOW),
        {"error_code": "InputTextSensitive", "request_id": "r-1", "finished_at": NOW, "has_work": False},
    ),
    "unreachable": (
        lambda: t.unreachable("connection refused", NOW),
        {"error_message": "not submitted: connection refused", "finished_at": NOW, "has_work": False},
    ),
    "adopted": (
        lambda: t.adopted(answer("running", created_at=NOW - 50), NOW),
        {"task_id": "cgt-1", "submitted_at": NOW - 50, "error_message": None, "has_work": True},
    ),
    "not_created": (lambda: t.not_created(NOW), {"error_code": "NotCreated", "finished_at": NOW, "has_work": False}),
    "search_noted": (lambda: t.search_noted("still looking"), {"error_message": "still looking"}),
    "search_stopped": (
        lambda: t.search_stopped("check the console"),
        {"error_message": "check the console", "search_done": True},
    ),
    "no_task_list": (t.no_task_list, {"search_done": True}),
    "polled": (
        lambda: t.polled(answer("failed", error_code="OutputVideoSensitive"), NOW),
        {"error_code": "OutputVideoSensitive", "finished_at": NOW, "has_work": False},
    ),
    "poll_failed": (lambda: t.poll_failed("HTTP 401"), {"last_poll_error": "HTTP 401"}),
    "gave_up": (lambda: t.gave_up(NOW), {"finished_at": NOW, "has_work": False}),
    "no_video_url": (t.no_video_url, {"download_permanent": True, "has_work": False}),
    "cancelled": (lambda: t.cancelled(NOW), {"finished_at": NOW, "has_work": False}),
    "saved": (
        lambda: t.saved(SAVED, NOW),
        {"video_path": "/videos/v.mp4", "download_error": None, "has_work": False},
    ),
    "download_failed": (
        lambda: t.download_failed(FAILED, NOW),
        {"download_error": "cut off", "download_attempts": 1, "download_retry_at": NOW + 5.0, "has_work": True},
    ),
    "download_retried": (lambda: t.download_retried(), {"download_error": None, "download_retry_at": None}),
    "want_last_frame": (t.want_last_frame, {"want_last_frame": True}),
}
"""Effects are checked on a job that starts as `job_in` makes it; `has_work`: whether a worker still has
something to do for the job (a status that ends the job must say so, or the job is followed forever)."""


def job_in(status: JobStatus) -> Job:
    """A job in `status`, with what a job in that state has (a task id once created, a failed download when
    succeeded) so that every transition has something to change."""
    fields: dict[str, Any] = {"status": status}
    if status not in ("submitting", "unknown", "not_submitted"):
        fields["task_id"] = "cgt-1"
    if status == "succeeded":
        fields |= {"video_url": "https://cdn.example/old.mp4", "download_error": "HTTP 503"}
    return make_job(**fields)


def test_every_transition_has_an_example_and_its_effects() -> None:
    """A transition added to the table without a case here fails: the table below is the test's, not a copy."""
    assert set(EXAMPLES) == set(RULES)


@pytest.mark.parametrize(("name", "status"), [(name, status) for name in RULES for status in STATUSES])
def test_a_transition_changes_a_job_only_from_the_states_it_starts_from(name: str, status: JobStatus) -> None:
    """From a state it starts from, a transition ends in one of its targets (or keeps the state, when it says so)
    and leaves the job it was given untouched; from any other state it is refused, naming the state it found."""
    rule = RULES[name]
    make, effects = EXAMPLES[name]
    job = job_in(status)
    before = job.model_copy(deep=True)
    change = make()
    assert change.rule is rule
    if status in rule.sources:
        changed = change.apply(job)
        assert changed.status in rule.ends(status)
        if rule.targets is None:
            assert changed.status == status
        for field, value in effects.items():
            assert getattr(changed, field) == value, (name, status, field)
        assert changed.version == job.version, "the journal bumps the version; a transition never does"
    else:
        with pytest.raises(Refused) as refused:
            change.apply(job)
        assert refused.value.job is job and refused.value.transition is change
        assert f"`{status}`" in str(refused.value) and name in str(refused.value)
    assert job == before


@pytest.mark.parametrize("status", STATUSES)
def test_a_download_written_without_the_answer_that_found_the_video_starts_only_from_succeeded(
    status: JobStatus,
) -> None:
    """The answer that said the video was ready is written with the files; without it, the job must already be
    `succeeded` in the journal (a poll answer written over it since means someone else moved it on)."""
    for outcome in (
        Download(answer=None, url="https://cdn.example/v.mp4", video_path="/videos/v.mp4"),
        Download(answer=None, url="https://cdn.example/v.mp4", error=DownloadFailed("cut off")),
    ):
        bare = t.downloaded(outcome, NOW)
        if status == "succeeded":
            assert bare.apply(job_in(status)).status == "succeeded"
        else:
            with pytest.raises(Refused):
                bare.apply(job_in(status))


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (SAVED, "saved"),
        (FAILED, "download_failed"),
        (Download(answer=None, url=None, frame_error=DownloadFailed("cut off")), "saved"),
    ],
)
def test_a_download_is_written_as_saved_or_failed_by_its_outcome(outcome: Download, expected: str) -> None:
    assert t.downloaded(outcome, NOW).name == expected


def test_a_lost_create_on_a_provider_without_a_task_list_says_where_to_look_and_stops() -> None:
    lost = t.lost("the answer was cut off", searchable=False).apply(job_in("submitting"))
    assert lost.status == "unknown" and lost.search_done and not lost.has_work
    assert lost.error_message == (
        "the answer was cut off; this provider has no task list to look in, so check its console for a task created "
        "at that moment"
    )


def test_a_failed_download_backs_off_then_stops_for_good_after_the_follow_limit() -> None:
    job = job_in("succeeded").clone(finished_at=NOW, download_attempts=2)
    again = t.download_failed(FAILED, NOW).apply(job)
    assert again.download_retry_at == NOW + 5.0 * 2**2 and not again.download_permanent
    late = NOW + t.MAX_FOLLOW_SECONDS + 1
    stopped = t.download_failed(FAILED, late).apply(job)
    assert stopped.download_permanent and stopped.download_retry_at is None and not stopped.has_work
    assert stopped.download_error == "gave up after 72 h of failed tries; the last: cut off"


@pytest.mark.anyio
async def test_a_write_that_loses_the_race_is_checked_again_against_the_job_another_writer_left(
    tmp_path: Path,
) -> None:
    """The compare-and-set is what makes a transition's start state hold: a worker whose copy of a job is stale
    (queued) loses the race to a cancel, reads the job again, and its poll answer is refused on the cancelled job
    instead of writing `running` over it."""
    store = await SqliteTaskStore.open(tmp_path / "jobs.sqlite3")
    try:
        worker = Worker(store=store, provider=cast(Any, None), settings=JobSettings(tmp_path, PollPolicy()))
        job = job_in("queued")
        assert await store.insert(job, dedupe_window=None, lease_owner=None, lease_seconds=30) is None
        stale = job.model_copy(deep=True)
        cancelled = await worker.change(job, t.cancelled(NOW))
        assert cancelled.status == "cancelled"
        with pytest.raises(Refused) as refused:
            await worker.change(stale, t.polled(answer("running"), NOW))
        assert refused.value.job.status == "cancelled" and refused.value.job.version == cancelled.version
        stored = await store.get(job.job_id)
        assert stored is not None and stored.status == "cancelled" and stored.version == cancelled.version
    finally:
        await store.close()


# -- the state diagram in docs/ARCHITECTURE.md is this table's --------------------------------------------------


def mermaid() -> str:
    """The state diagram, drawn from `RULES`: one edge per (from, to) pair that changes the state, labelled with
    every transition that makes it; transitions that keep the state are listed under it."""
    edges: dict[tuple[str, str], list[str]] = {}
    for rule in RULES.values():
        for source in sorted(rule.sources, key=STATUSES.index):
            for target in sorted(rule.ends(source), key=STATUSES.index):
                if target != source:
                    edges.setdefault((source, target), []).append(rule.name)
    lines = ["stateDiagram-v2", "    [*] --> submitting: insert"]
    for (source, target), names in sorted(
        edges.items(), key=lambda e: (STATUSES.index(e[0][0]), STATUSES.index(e[0][1]))
    ):
        lines.append(f"    {source} --> {target}: {', '.join(names)}")
    keeping = [rule for rule in RULES.values() if rule.targets is None]
    notes = [
        f"- `{rule.name}` ({', '.join(sorted(rule.sources, key=STATUSES.index))}): {rule.summary}" for rule in keeping
    ]
    return "```mermaid\n" + "\n".join(lines) + "\n```\n\nTransitions that keep the state:\n\n" + "\n".join(notes)


def test_the_state_diagram_in_the_architecture_page_is_drawn_from_the_transition_table() -> None:
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- state diagram: begin -->\n(.*?)\n<!-- state diagram: end -->", text, re.DOTALL)
    assert found is not None, "docs/ARCHITECTURE.md has no state diagram markers"
    assert found.group(1) == mermaid(), "paste this between the markers:\n" + mermaid()


def test_every_transition_says_what_it_is() -> None:
    assert all(rule.summary for rule in RULES.values())


# -- an outcome the journal could not take is written, as that outcome, once it answers --------------------------


class FlakyJournal:
    """The SQLite store, whose next `failures` updates find the journal unavailable (as a full disk would)."""

    def __init__(self, store: SqliteTaskStore, failures: int) -> None:
        self.store = store
        self.failures = failures

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def update(self, job: Job, *, lease: Any = None) -> bool:
        if self.failures:
            self.failures -= 1
            raise JournalUnavailable(self.store.describe, "OperationalError: database or disk is full")
        return await self.store.update(job, lease=lease)


KEPT_OUTCOMES: list[tuple[Callable[[float], Transition], str]] = [
    (lambda now: t.created("cgt-kept", now), "queued"),
    (lambda now: t.refused(REFUSAL, now), "failed"),
    (lambda now: t.lost("the answer was cut off", searchable=True), "unknown"),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("outcome", "status"), KEPT_OUTCOMES, ids=["created", "refused", "lost"])
async def test_a_create_outcome_the_journal_could_not_take_is_written_by_the_worker_once_it_answers(
    tmp_path: Path, outcome: Callable[[float], Transition], status: str
) -> None:
    """The journal is unavailable when the create answers: the outcome is kept in memory, and the worker's first
    write, once the journal answers again, is that outcome, on the job as the journal has it (`submitting`)."""
    import anyio

    from seedance_mcp.jobs.submit import _after_create  # where submit_video records what its create came to

    store = await SqliteTaskStore.open(tmp_path / "jobs.sqlite3")
    journal = FlakyJournal(store, failures=1)
    provider = SimpleNamespace(can_search=bool)  # any model: the worker will look for a lost task (later)
    try:
        settings = JobSettings(tmp_path, PollPolicy(), reconcile_delays=(30.0,))
        worker = Worker(store=cast(Any, journal), provider=cast(Any, provider), settings=settings)
        job = make_job(status="submitting", created_at=worker.now())
        assert await store.insert(job, dedupe_window=None, lease_owner=worker.owner, lease_seconds=30) is None
        worker.hold(job.job_id, FIRST_TOKEN)
        async with anyio.create_task_group() as group:
            worker.begin(group)
            kept, recorded, _ = await _after_create(worker, job, outcome(worker.now()))
            assert recorded == "kept" and kept.status == status and job.job_id in worker.live
            try:
                with anyio.fail_after(5):
                    while (stored := await store.get(job.job_id)) is not None and stored.status == "submitting":
                        await anyio.sleep(0.02)
            except TimeoutError:
                raise AssertionError("the kept outcome never reached the journal") from None
            group.cancel_scope.cancel()  # the job's next steps (a poll, a look at the task list) are not this test's
            assert stored is not None and stored.status == status and stored.version == 1, stored
            assert (stored.task_id, stored.error_code) == (kept.task_id, kept.error_code)
    finally:
        await store.close()
