"""The job's state machine: every change made to a job, named, with the states it may start from and end in.

As in River's and Oban's job tables (a row whose state moves only through small named transitions, each a
conditional update that reports whether it won), a job changes only through a transition of this module, written by
`Worker.change`. The write is a compare-and-set on the job's version, so the state a transition checked is the state
it replaces: a job another writer moved on meanwhile (a cancel, a found task, another process's claim) is read
again and checked again. A transition refuses a job in a state it may not start from (`Refused`, carrying the job as
the journal has it), and its caller carries on from there. The journals keep the status column to `STATUSES` by a
CHECK constraint of their own.

`RULES` is the table: one `Rule` per transition, registered by `@transition(sources=…, targets=…)`; calling the
decorated function with its arguments gives the `Transition` to write. Changes that keep the state (a note, a flag)
are transitions too (`targets=None`), so every write to a job is named here. tests/unit/test_transitions.py walks the
whole table against every state, and the state diagram in docs/ARCHITECTURE.md is drawn from it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Concatenate, ParamSpec, get_args

from seedance_mcp.errors import DownloadFailed, ProviderError
from seedance_mcp.journal.job import STATUSES, Job
from seedance_mcp.models import JobStatus, TaskStatus
from seedance_mcp.wire import TaskSnapshot

_P = ParamSpec("_P")

STOPPING_VERDICTS = 3
"""Failed tries before a verdict that no try can help ("this is no video", "the provider no longer has the task")
stops saving: a CDN's or proxy's interstitial page passes, and the last try is from a fresh URL (downloads.py asks
for one after every second failure)."""
FRAME_TRIES = 6
"""Failed tries of a saved video's last frame (an image, the next shot's start) before it is given up."""
MAX_FOLLOW_SECONDS = 3 * 24 * 3600.0
"""Ark keeps a task for at most 72 h before it expires (execution_expires_after ≤ 259200 s)."""
TASK_STATES: frozenset[JobStatus] = frozenset(get_args(TaskStatus))
"""Where a status answer can take a job: any state a provider's task can be in."""
FOLLOWED: frozenset[JobStatus] = frozenset({"queued", "running", "succeeded"})
"""The states of a job whose task is followed: polled until it ends, then downloaded (succeeded, files pending)."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One named transition: the states it may start from, and those it may end in (None: the state is kept)."""

    name: str
    sources: frozenset[JobStatus]
    targets: frozenset[JobStatus] | None
    summary: str

    def ends(self, source: JobStatus) -> frozenset[JobStatus]:
        """The states this transition may leave a job in that was in `source`."""
        return frozenset({source}) if self.targets is None else self.targets


RULES: dict[str, Rule] = {}
"""Every transition, by name, in the order this module declares them."""


class Refused(Exception):
    """A transition met a job in a state it may not start from: another writer moved the job on."""

    def __init__(self, transition: Transition, job: Job) -> None:
        self.transition = transition
        self.job = job
        """The job as it stands (as the journal has it, when the refusal came after reading it again)."""
        starts = ", ".join(sorted(transition.starts))
        super().__init__(f"`{transition.name}` cannot change {job.job_id} from `{job.status}` (only from {starts})")


@dataclass(frozen=True, slots=True)
class Transition:
    """A rule with its arguments: the change to write to one job."""

    rule: Rule
    change: Callable[[Job], None]
    only_from: frozenset[JobStatus] | None = None
    """Narrower start states for this use of the rule (e.g. a download's write without the answer that said the
    video was ready starts only from `succeeded`)."""

    @property
    def name(self) -> str:
        return self.rule.name

    @property
    def starts(self) -> frozenset[JobStatus]:
        return self.only_from if self.only_from is not None else self.rule.sources

    def apply(self, job: Job) -> Job:
        """A copy of `job` with the change made; Refused when the job is in a state this transition does not start
        from. A change that ends outside its rule's targets is a bug in this module (AssertionError)."""
        if job.status not in self.starts:
            raise Refused(self, job)
        changed = job.clone()
        self.change(changed)
        assert changed.status in self.rule.ends(job.status), (
            f"`{self.name}` took {job.job_id} from `{job.status}` to `{changed.status}`, outside its rule"
        )
        return changed


def transition(
    *, sources: Iterable[JobStatus], targets: Iterable[JobStatus] | None
) -> Callable[[Callable[Concatenate[Job, _P], None]], Callable[_P, Transition]]:
    """Register the decorated change as a rule of the table (named after the function, summed up by the first line of
    its docstring); the decorated name then makes the `Transition` from the change's other arguments."""

    def register(change: Callable[Concatenate[Job, _P], None]) -> Callable[_P, Transition]:
        summary = (change.__doc__ or "").strip().splitlines()[0] if change.__doc__ else ""
        rule = Rule(change.__name__, frozenset(sources), None if targets is None else frozenset(targets), summary)
        RULES[rule.name] = rule

        def bind(*args: _P.args, **kwargs: _P.kwargs) -> Transition:
            return Transition(rule, lambda job: change(job, *args, **kwargs))

        bind.__name__ = change.__name__
        bind.__doc__ = change.__doc__
        return bind

    return register


def apply_answer(job: Job, snapshot: TaskSnapshot, now: float) -> None:
    """Copy a status answer into the job. A job that ended stays ended (a cancel may have got there first)."""
    if job.is_terminal and snapshot.status != job.status and job.status != "succeeded":
        return
    job.status = snapshot.status
    job.progress = snapshot.progress
    job.last_poll_error = None
    if snapshot.video_url:
        job.video_url = snapshot.video_url
        job.video_url_expires_at = snapshot.video_url_expires_at
        job.video_needs_auth = snapshot.video_needs_auth
    job.last_frame_url = snapshot.last_frame_url or job.last_frame_url
    job.error_code = snapshot.error_code or job.error_code
    job.error_message = snapshot.error_message or job.error_message
    job.usage_tokens = snapshot.usage_tokens if snapshot.usage_tokens is not None else job.usage_tokens
    job.resolution = snapshot.resolution or job.resolution
    job.ratio = snapshot.ratio or job.ratio
    job.duration = snapshot.duration if snapshot.duration is not None else job.duration
    job.frames = snapshot.frames if snapshot.frames is not None else job.frames
    job.seed = snapshot.seed if snapshot.seed is not None else job.seed
    if job.is_terminal and job.finished_at is None:
        job.finished_at = now


# -- what the create request came to (the job was inserted `submitting`) ---------------------------------------


@transition(sources={"submitting"}, targets={"queued"})
def created(job: Job, task_id: str, now: float) -> None:
    """The provider answered with its task id: follow it."""
    job.task_id = task_id
    job.status = "queued"
    job.submitted_at = job.submitted_at or now


@transition(sources={"submitting", "unknown"}, targets={"queued"})
def task_id_kept(job: Job, task_id: str, now: float) -> None:
    """The create's task id, which the journal could not take when it came, written once it does, whatever became of
    the job meanwhile (claimed mid-create and given up as `unknown`): a paid task's id is never dropped; follow it."""
    job.task_id = task_id
    job.status = "queued"
    job.submitted_at = job.submitted_at or now
    job.error_message = None
    job.search_done = False


@transition(sources={"submitting"}, targets={"unknown"})
def lost(job: Job, reason: str, *, searchable: bool) -> None:
    """The create's answer was lost: a paid task may exist; look for it where the provider lists tasks."""
    job.status = "unknown"
    job.error_message = reason
    if not searchable:
        _no_task_list(job)


@transition(sources={"submitting"}, targets={"unknown"})
def interrupted(job: Job) -> None:
    """The create request was cut short in this process (a bug, a shutdown): whether it left cannot be known."""
    job.status = "unknown"
    job.error_message = "the create request was interrupted; a paid task may exist"


@transition(sources={"submitting"}, targets={"unknown"})
def orphaned(job: Job) -> None:
    """Claimed mid-create: the process that sent the request stopped (its lease ran out); a paid task may exist."""
    job.status = "unknown"
    job.error_message = "the server stopped while this job's create request was in flight; a paid task may exist"


@transition(sources={"submitting"}, targets={"unknown"})
def clashed(job: Job, task_id: str) -> None:
    """The provider answered with a task id another job already has: never follow one task twice."""
    job.status = "unknown"
    job.error_message = f"the provider answered with task id {task_id}, which another job already has"
    job.search_done = True


@transition(sources={"submitting"}, targets={"failed"})
def refused(job: Job, error: ProviderError, now: float) -> None:
    """The provider refused the create (its code and request id kept): nothing was made."""
    job.status = "failed"
    job.error_code, job.error_message, job.request_id = error.code, error.provider_message, error.request_id
    job.finished_at = now


@transition(sources={"submitting"}, targets={"failed"})
def unreachable(job: Job, reason: str, now: float) -> None:
    """The create request never reached the provider: nothing was sent."""
    job.status = "failed"
    job.error_message = f"not submitted: {reason}"
    job.finished_at = now


# -- a lost create's search (`unknown`) -------------------------------------------------------------------------


@transition(sources={"unknown"}, targets=TASK_STATES)
def adopted(job: Job, task: TaskSnapshot, now: float) -> None:
    """The search found the job's task: it is the job's own from here, in whatever state the task is."""
    job.task_id = task.task_id
    job.status = "queued"
    job.submitted_at = task.created_at or job.created_at
    job.error_message = None
    apply_answer(job, task, now)


@transition(sources={"unknown"}, targets={"failed"})
def not_created(job: Job, now: float) -> None:
    """A complete look at the provider's list proved no task was made: nothing was charged."""
    job.status = "failed"
    job.error_code = "NotCreated"
    job.error_message = (
        "the create answer was lost, and a complete look at the provider's task list (every task since the request "
        "left, with this job's model and tier) found no such task: nothing was created or charged; submitting "
        "again is safe"
    )
    job.finished_at = now


@transition(sources={"unknown"}, targets=None)
def search_noted(job: Job, message: str) -> None:
    """What the latest look found, for a caller to read while the search goes on."""
    job.error_message = message


@transition(sources={"unknown"}, targets=None)
def search_stopped(job: Job, message: str) -> None:
    """The search is over without an answer (candidates to check, or out of patience): a person must look."""
    job.error_message = message
    job.search_done = True


@transition(sources={"unknown"}, targets=None)
def no_task_list(job: Job) -> None:
    """This provider lists no tasks, so nothing can be looked for: a person must check its console."""
    _no_task_list(job)


def _no_task_list(job: Job) -> None:
    job.search_done = True
    job.error_message = (
        job.error_message or "the create answer was lost"
    ) + "; this provider has no task list to look in, so check its console for a task created at that moment"


# -- following the task (`queued`, `running`, `succeeded` with files to save) ---------------------------------


@transition(sources=FOLLOWED, targets=TASK_STATES)
def polled(job: Job, answer: TaskSnapshot, now: float) -> None:
    """A status answer that changes what the journal must know (state, video URL, error, bill)."""
    apply_answer(job, answer, now)


@transition(sources=FOLLOWED, targets=None)
def poll_failed(job: Job, message: str) -> None:
    """Polls keep failing (or the key was refused): said where a caller reads it; the worker keeps polling."""
    job.last_poll_error = message


@transition(sources={"queued", "running"}, targets={"expired"})
def gave_up(job: Job, now: float) -> None:
    """No final status after 72 hours: the provider has dropped the task."""
    job.status = "expired"
    job.error_message = "no final status after 72 hours; the provider has dropped the task"
    job.finished_at = now


@transition(sources={"succeeded"}, targets=None)
def no_video_url(job: Job) -> None:
    """The task succeeded but the provider never gave the video's URL: saving stops."""
    job.download_error = "the provider reported success but never gave the video's URL"
    job.download_permanent = True


@transition(sources={"queued", "running"}, targets={"cancelled"})
def cancelled(job: Job, now: float) -> None:
    """The provider accepted a caller's cancel of a task that had not started rendering."""
    job.status = "cancelled"
    job.finished_at = now


# -- saving the files (`succeeded`) ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Download:
    """What one try at saving a job's files came to."""

    answer: TaskSnapshot | None
    """The status answer that said the video was ready, not yet written (None: the job is `succeeded` already)."""
    url: str | None
    """The URL tried (a fresh one the provider gave for this try is kept)."""
    video_path: str | None = None
    frame_path: str | None = None
    frame_error: DownloadFailed | None = None
    """Why the last frame could not be saved (tried again like the video, with the same backoff)."""
    error: DownloadFailed | None = None
    retry_first: float = 5.0
    retry_cap: float = 600.0
    """Backoff (seconds) before the next try after a failure that may pass."""


def downloaded(outcome: Download, now: float) -> Transition:
    """The write after a try at saving the files: `saved`, or `download_failed` when the video could not be."""
    change = download_failed if outcome.error is not None else saved
    written = change(outcome, now)
    if outcome.answer is None:
        return Transition(written.rule, written.change, only_from=frozenset({"succeeded"}))
    return written


@transition(sources=FOLLOWED, targets={"succeeded"})
def saved(job: Job, outcome: Download, now: float) -> None:
    """The files are on disk (with the answer that said they were ready, when it was not written yet)."""
    _record_download(job, outcome, now)


@transition(sources=FOLLOWED, targets={"succeeded"})
def download_failed(job: Job, outcome: Download, now: float) -> None:
    """Saving the video failed: tried again after a backoff, or stopped for good (no video, gone, over the cap)."""
    _record_download(job, outcome, now)


def _record_download(job: Job, outcome: Download, now: float) -> None:
    if outcome.answer is not None:
        apply_answer(job, outcome.answer, now)
    if outcome.url and outcome.url != job.video_url:
        job.video_url = outcome.url  # a fresh URL the provider gave for this try
    if outcome.video_path is not None:
        job.video_path = outcome.video_path
        job.download_error, job.download_retry_at, job.download_cap_bytes = None, None, None
    elif outcome.error is not None and job.video_path is None:
        _record_download_failure(job, outcome, now)
    if outcome.frame_path is not None:
        job.last_frame_path = outcome.frame_path
        if job.video_path is not None and outcome.error is None:
            job.download_error = job.download_retry_at = None
    elif outcome.frame_error is not None and job.video_path is not None:
        _record_frame_failure(job, outcome.frame_error, outcome, now)


def _record_frame_failure(job: Job, error: DownloadFailed, outcome: Download, now: float) -> None:
    """The video is saved, its last frame is not: tried again with the video's backoff; given up (its URL let go,
    the job settled) after `FRAME_TRIES` failures, or a verdict no try can help."""
    job.download_attempts += 1
    if error.permanent or job.download_attempts >= FRAME_TRIES:
        job.last_frame_url = None
        job.download_error = job.download_retry_at = None
        return
    job.download_error = f"the last frame: {error}"
    backoff = outcome.retry_first * 2 ** (job.download_attempts - 1)
    job.download_retry_at = now + min(backoff, outcome.retry_cap)


def _record_download_failure(job: Job, outcome: Download, now: float) -> None:
    """Note a failed download and when to try it next: never again (unless a caller asks) once a file is no video
    `STOPPING_VERDICTS` tries running, once a caller asks (with a raised cap) for one over the size cap, else with
    backoff, for as long as the task is followed."""
    error = outcome.error
    assert error is not None
    job.download_error = str(error)
    job.download_attempts += 1
    job.download_retry_at = None
    if error.permanent and job.download_attempts >= STOPPING_VERDICTS:
        job.download_permanent = True
    elif error.over_cap is not None:
        job.download_cap_bytes = error.over_cap
    elif now - (job.finished_at or now) > MAX_FOLLOW_SECONDS:
        job.download_permanent = True
        job.download_error = f"gave up after {MAX_FOLLOW_SECONDS / 3600:.0f} h of failed tries; the last: {error}"
    else:
        backoff = outcome.retry_first * 2 ** (job.download_attempts - 1)
        job.download_retry_at = now + min(backoff, outcome.retry_cap)


@transition(sources={"succeeded"}, targets=None)
def download_retried(job: Job) -> None:
    """A caller asked for a failed download to be tried now (or again: the size cap raised, or the server stopped).

    One that stopped trying is tried once more: a person asking may know the page in the way is gone."""
    if job.download_error is not None and job.video_path is None:
        if job.download_permanent:
            job.download_permanent = False
            job.download_attempts = STOPPING_VERDICTS - 1  # one more such verdict stops it again
        job.download_error = job.download_retry_at = job.download_cap_bytes = None


@transition(sources=STATUSES, targets=None)
def want_last_frame(job: Job) -> None:
    """An identical call asked for the last frame the first did not: the job saves it too (work again, if settled)."""
    job.want_last_frame = True
