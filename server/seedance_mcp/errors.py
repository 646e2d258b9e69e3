"""Every failure seedance-mcp raises, as one tree.

    SeedanceError
    ├── InvalidArgument          bad tool input; nothing was sent to the provider
    ├── ConfigurationError       the server is set up wrongly (missing key, no base URL)
    ├── UnsupportedOperation     this preset cannot do that (cancel on a gateway without a cancel call)
    ├── TaskNotFound             no job with that id in the journal
    ├── DuplicateSubmission      an identical paid job may already exist
    ├── SpendRefused             a cost limit the user set would be passed, or needs the user's approval
    ├── ProviderError            the provider answered with an error (keeps code, HTTP status, request id)
    │   ├── AuthenticationFailed 401: the key was refused
    │   ├── RateLimited          429 (carries Retry-After)
    │   └── ProviderUnavailable  5xx
    ├── ProviderUnreachable      the request could not be delivered (connection refused, DNS, connect time-out)
    ├── CreateAnswerLost         (provider layer) a create request left but no answer came back
    ├── SubmitOutcomeUnknown     the same, told to the caller with the job id: a paid task may exist
    ├── UnexpectedResponse       the provider answered 2xx with something we cannot read
    ├── PollFailed               a status poll failed while a caller waited; the job is still followed
    ├── JournalUnavailable       the task journal cannot be reached or written now (database down, disk full)
    ├── TaskNotRecorded          the task was created but the journal could not record it yet (kept, retried)
    └── DownloadFailed           the finished video could not be saved (`permanent`: it is no video, never try
                                 again; `over_cap`: too large for the cap; `expired`: the signed URL is dead, ask
                                 the provider for a fresh one; else transient, tried again later)

Messages say what happened, to what, and what to do next. None of them ever contains the API key, nor any
piece of it: the provider client scrubs every answer of the key on arrival, before anything parses it, and
`redact()` (which also removes fragments: any run of 8 or more of the key's characters) is applied before
`trim()` wherever text is quoted.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from seedance_mcp.journal.job import Job


class SeedanceError(Exception):
    """Root of every error this package raises on purpose."""


class InvalidArgument(SeedanceError):
    def __init__(self, argument: str, problem: str, *, allowed: str | None = None, hint: str | None = None) -> None:
        self.argument = argument
        self.problem = problem
        self.allowed = allowed
        self.hint = hint
        parts = [f"Invalid argument `{argument}`: {problem}."]
        if allowed:
            parts.append(f"Allowed: {allowed}.")
        if hint:
            parts.append(hint)
        parts.append("Nothing was sent to the provider and nothing was charged.")
        super().__init__(" ".join(parts))


class ConfigurationError(SeedanceError):
    pass


class UnsupportedOperation(SeedanceError):
    pass


class TaskNotFound(SeedanceError):
    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        super().__init__(
            f"No task `{task_id}` in this server's journal. Call `list_tasks` to see the known task ids "
            "(task ids look like `cgt-…` on Ark; jobs whose submission was interrupted are listed by job id `job-…`)."
        )


class DuplicateSubmission(SeedanceError):
    def __init__(self, job_id: str, status: str) -> None:
        self.job_id = job_id
        self.status = status
        super().__init__(
            f"An identical request (job `{job_id}`) was sent moments ago and its outcome is `{status}`: the provider "
            "may already be rendering it and charging for it. Check it with `get_task_status(task_id="
            f'"{job_id}")` or `list_tasks`, and look at the provider console\'s task list. If you are sure you want '
            "to pay for a second video, call `generate_video` again with `force_new=true`."
        )


class SpendRefused(SeedanceError):
    """Nothing was sent: a limit the user set (per video, per day) would be passed, or the cost needs approval."""

    def __init__(self, message: str) -> None:
        super().__init__(message + " Nothing was sent to the provider and nothing was charged.")


class ProviderError(SeedanceError):
    def __init__(
        self,
        provider: str,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.provider = provider
        self.status_code = status_code
        self.code = code
        self.request_id = request_id
        self.provider_message = message
        self.hint = hint
        head = f"{provider} answered HTTP {status_code}" if status_code else f"{provider} reported an error"
        if code:
            head += f" `{code}`"
        text = f"{head}: {message}"
        if request_id and request_id not in message:
            text += f" (request id {request_id})"
        if hint:
            text += f". {hint}"
        super().__init__(text)


class AuthenticationFailed(ProviderError):
    pass


class RateLimited(ProviderError):
    retry_after: float | None = None
    """Seconds the provider asked us to wait (Retry-After), when it said."""


class ProviderUnavailable(ProviderError):
    pass


class ProviderUnreachable(SeedanceError):
    """Nothing reached the provider (the connection or the proxy's tunnel never opened): nothing was created."""

    def __init__(self, provider: str, url: str, reason: str, *, hint: str | None = None) -> None:
        self.provider = provider
        self.url = url
        hint = hint or "Check SEEDANCE_BASE_URL and the network."
        super().__init__(f"Could not reach {provider} at {url}: {reason}. {hint}")


class CreateAnswerLost(SeedanceError):
    def __init__(self, provider: str, reason: str) -> None:
        self.provider = provider
        self.reason = reason
        super().__init__(f"the create request reached {provider} but its answer was lost: {reason}")


class SubmitOutcomeUnknown(SeedanceError):
    def __init__(self, job_id: str, provider: str, reason: str, *, searching: bool = False) -> None:
        self.job_id = job_id
        self.provider = provider
        look = (
            "The server is looking for it in the provider's task list and will adopt it, or mark the job `failed` "
            "(nothing created, safe to submit again), within a minute. "
            if searching
            else "Check the provider's own task list for a task created in the last minutes. "
        )
        super().__init__(
            f"The create request for job `{job_id}` reached {provider} but its answer was lost ({reason}). "
            f"A paid task may or may not exist. Do not submit again yet. {look}Follow it with "
            f'get_task_status(task_id="{job_id}") or `list_tasks`; only if no task exists, call `generate_video` '
            "again with `force_new=true`."
        )


class JournalUnavailable(SeedanceError):
    """The journal cannot be read or written now: its database is down or unreachable, its disk is full.

    Transient: the worker waits it out and carries on by itself; a caller is told what it means for them (`then`).
    """

    def __init__(self, journal: str, reason: str, *, then: str | None = None) -> None:
        self.journal = journal
        self.reason = reason
        then = then or "The server keeps trying to reach it; try again in a minute."
        super().__init__(f"The task journal ({journal}) is unavailable: {reason}. {then}")

    def refusing_a_video(self) -> JournalUnavailable:
        """The same, told to a caller whose new video it stops: nothing left, so nothing is owed."""
        return JournalUnavailable(
            self.journal,
            self.reason,
            then="Nothing was sent to the provider and nothing was charged: a video is only ever requested once the "
            "journal has recorded it. Call generate_video again once the journal is back (the server reconnects by "
            "itself, usually within a minute).",
        )


class TaskNotRecorded(SeedanceError):
    """The provider created the task, but the journal could not record its id yet (it is kept and retried), or
    another server process took the job over meanwhile (and finds the task by its marker)."""

    def __init__(self, job: Job, journal: str, reason: str, *, kept: bool = True) -> None:
        self.task_id = job.task_id
        self.job_id = job.job_id
        if kept:
            what = (
                f"{journal[0].upper()}{journal[1:]} could not record it yet ({reason}); this server keeps the task "
                "id and records it as soon as the journal takes it, then saves the video as usual."
            )
        else:
            what = (
                "Another server process took the job over while the request was in flight; it finds the task in "
                "the provider's task list and saves the video."
            )
        super().__init__(
            f"The provider created task `{job.task_id}` for job `{job.job_id}`: it is being rendered and will be "
            f"billed. {what} Do not call generate_video again for this video: that would pay for a second one. "
            f'Follow it with get_task_status(task_id="{job.task_id}").'
        )


class UnexpectedResponse(SeedanceError):
    def __init__(self, provider: str, what: str, body: str) -> None:
        self.provider = provider
        self.body = body
        super().__init__(f"{provider} answered with something seedance-mcp cannot read ({what}): {body}")


class PollFailed(SeedanceError):
    def __init__(self, handle: str, cause: SeedanceError) -> None:
        self.handle = handle
        self.cause = cause
        super().__init__(
            f"Checking task `{handle}` failed: {cause} The job is kept in the journal and still polled in the "
            f'background; call get_task_status(task_id="{handle}", wait=true) to check again. Do not submit it again.'
        )


class DownloadFailed(SeedanceError):
    """A video or frame could not be saved; nothing was left at the destination (no final file, no `.part`).

    `permanent`: the file is no video at all (it does not start like an MP4/MOV): downloading it again cannot help.
    `over_cap`: it is larger than the size cap (this many bytes); worth another go only once the cap is raised.
    `expired`: the URL answered 403/404/410, as a signed URL past its lifetime does; ask the provider for a fresh
    one. Anything else is transient (network, 5xx, a truncated body, a redirect loop, a refused URL) and outlived
    this download's own retries: the worker tries again later, with backoff, then with a fresh URL.
    """

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        expired: bool = False,
        status_code: int | None = None,
        over_cap: int | None = None,
    ) -> None:
        self.permanent = permanent
        self.expired = expired
        self.status_code = status_code
        self.over_cap = over_cap
        super().__init__(message)


FRAGMENT = 8
"""Runs of this many characters of a secret (or more) count as a leak: a key cut short is still a key."""


class Whole(str):
    """A secret a person chose (a database or proxy password): redacted whole, as written, URL-encoded and
    JSON-escaped, never by fragments. Its 8-character pieces are ordinary words (`seedance`) that unrelated text
    holds; a random key's are not, so keys and tokens are plain `str` and redacted by fragments too."""

    __slots__ = ()


def redact(text: str, *secrets: str | None) -> str:
    """Remove every secret from `text`, and every fragment of one (any run of >= 8 of its characters) unless it is
    a `Whole` secret, which is removed in its written, URL-encoded and JSON-escaped forms only.

    Apply it before `trim()`: a key cut in half by trimming is no longer found whole.
    """
    for secret in secrets:
        if not secret or len(secret) < 4:
            continue
        if isinstance(secret, Whole):
            for form in sorted(_whole_forms(str(secret)), key=len, reverse=True):
                text = text.replace(form, "***")
            continue
        text = text.replace(secret, "***")
        if len(secret) >= FRAGMENT:
            text = _without_fragments(text, _fragments_of(secret))
    return text


def _whole_forms(secret: str) -> set[str]:
    from urllib.parse import quote, quote_plus

    encoded = {quote(secret, safe=""), quote_plus(secret, safe="")}
    encoded |= {re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), form) for form in encoded}  # %2f as %2F
    return {secret, json.dumps(secret)[1:-1], *encoded}


@lru_cache(maxsize=8)
def _fragments_of(secret: str) -> re.Pattern[str]:
    """Matches any FRAGMENT-long piece of `secret` (as written, and as JSON escapes it)."""
    forms = {secret, json.dumps(secret)[1:-1]}
    grams = {form[i : i + FRAGMENT] for form in forms for i in range(len(form) - FRAGMENT + 1)}
    return re.compile("|".join(re.escape(gram) for gram in sorted(grams)))


def _without_fragments(text: str, grams: re.Pattern[str]) -> str:
    """`text` with each stretch covered by (overlapping) fragments replaced by one `***`."""
    covered: list[tuple[int, int]] = []
    position = 0
    while (found := grams.search(text, position)) is not None:
        start, end = found.start(), found.end()
        if covered and start <= covered[-1][1]:
            covered[-1] = (covered[-1][0], max(covered[-1][1], end))
        else:
            covered.append((start, end))
        position = start + 1
    if not covered:
        return text
    pieces: list[str] = []
    last = 0
    for start, end in covered:
        pieces += [text[last:start], "***"]
        last = end
    pieces.append(text[last:])
    return "".join(pieces)


def trim(text: str, limit: int = 300) -> str:
    """One line, at most `limit` characters: for quoting provider bodies in errors."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
