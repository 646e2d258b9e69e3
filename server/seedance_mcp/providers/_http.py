"""The one seam where HTTP becomes our errors, and the one retry loop that decides what may be sent again.

httpx exceptions and 4xx/5xx answers are translated here and nowhere else, most specific first. Every API request
goes through `send_with_retries`, told by a `Resend` what it may send again. The rule for the paid create request
(`CREATE`): it is sent again only when the provider provably did not take it (the connection never opened, or the
answer was a 429/503/overload refusal); anything else after the bytes left is ambiguous. Reads (`READ`) are
idempotent: transport errors and 408/409/429/5xx answers are asked again, after the provider's Retry-After.

Every answer is scrubbed of the API key as it arrives (`scrub_response`), before anything reads it: a provider
that echoes the key in an error code, a request-id header, a task's error message or a status word cannot get it
into an exception, a snapshot, the journal or a log line.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, cast

import anyio
import httpx

from seedance_mcp.errors import (
    AuthenticationFailed,
    DownloadFailed,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    SeedanceError,
    redact,
    trim,
)

# 429 codes that mean "stop", not "slow down": retrying them only burns time (protocol.md §6).
NOT_RETRYABLE_429 = frozenset({"QuotaExceeded", "SetLimitExceeded", "AccountOverdueError"})
OVERLOAD_CODES = frozenset({"ServerOverloaded", "RequestBurstTooFast", "InflightBatchsizeExceeded"})
RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
# Exceptions raised before a single byte of the request left: the provider cannot have seen it. httpx raises
# ProxyError only when the proxy refused the CONNECT or the SOCKS handshake, before the request itself was sent (a
# plain-http proxy's 502 or 504 arrives as an answer, and stays ambiguous for a create).
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol, httpx.ProxyError)
PROXY_REFUSALS_FOR_GOOD = ("403", "407")
"""A proxy that refused the tunnel with these (forbidden, wants credentials) refuses it again: not sent again."""
AMBIGUOUS_CREATE_STATUS = frozenset({500, 502, 504})
"""Answers to a create that do not say whether the task was made (the caller treats the create as lost)."""

logger = logging.getLogger(__name__)


class DeadlineExceeded(httpx.TimeoutException):
    """A provider request not done within its total deadline (connecting, sending and the whole answer).

    httpx's own time-outs bound each read, so a provider that drips its answer a byte at a time never trips them.
    `may_have_left`: the request had started to go out when it was cut off (for a create: the task may exist)."""

    def __init__(self, message: str, *, may_have_left: bool) -> None:
        super().__init__(message)
        self.may_have_left = may_have_left


_REQUEST_ID_IN_TEXT = re.compile(r"Request ID:\s*([\w\-]+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries bounded twice: by attempts and by total time. Delays double from `base_delay` with jitter."""

    attempts: int = 6
    timeout: float = 90.0
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before attempt number `attempt + 1` (attempt counts from 0)."""
        if retry_after is not None and retry_after > 0:
            return min(retry_after, self.max_retry_after)
        backoff = min(self.base_delay * (2**attempt), self.max_delay)
        return backoff * random.uniform(0.5, 1.0)


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds, from either of its two forms (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from datetime import UTC, datetime

        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def request_id_of(response: httpx.Response, body: Any = None) -> str | None:
    for header in ("x-request-id", "x-client-request-id", "x-tt-logid", "request-id"):
        if response.headers.get(header):
            return response.headers[header]
    payload = _as_object(body)
    for key in ("request_id", "requestId"):
        if payload is not None and isinstance(payload.get(key), str):
            return payload[key]
    return None


def error_from_response(provider: str, response: httpx.Response, *, secret: str | None, preset: str) -> ProviderError:
    """The most specific ProviderError for a 4xx/5xx answer, keeping the provider's code and request id."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    payload = _as_object(body)
    error: Any = payload.get("error") if payload else None
    details = _as_object(error)
    code: str | None = None
    message: str | None = None
    if details is not None:
        code, message = _text(details.get("code")), _text(details.get("message"))
    elif isinstance(error, str):
        message = error
    if payload is not None:
        code = code or _text(payload.get("code"))
        message = message or _text(payload.get("message") or payload.get("msg") or payload.get("detail"))
    if message is None:
        message = response.text or response.reason_phrase or "no error message"
    message = trim(redact(message, secret), 500)
    code = redact(code, secret) if code else code
    request_id = request_id_of(response, body)
    request_id = redact(request_id, secret) if request_id else request_id
    if request_id is None:
        found = _REQUEST_ID_IN_TEXT.search(message)
        request_id = found.group(1) if found else None
    status = response.status_code
    kwargs: dict[str, Any] = {"status_code": status, "code": code, "request_id": request_id}
    if status == 401:
        return AuthenticationFailed(
            provider,
            message,
            hint=f"The API key was refused. Check SEEDANCE_API_KEY; a key only works in its own region "
            f"(SEEDANCE_PROVIDER is `{preset}`: Volcengine keys need `ark`, BytePlus keys need `byteplus`)",
            **kwargs,
        )
    if status == 429:
        limited = RateLimited(provider, message, hint=_hint_429(code), **kwargs)
        limited.retry_after = parse_retry_after(response.headers.get("retry-after"))
        return limited
    if status >= 500:
        return ProviderUnavailable(provider, message, hint="The provider is failing; try again later", **kwargs)
    return ProviderError(provider, message, hint=_hint_4xx(status, code), **kwargs)


def _as_object(value: Any) -> dict[str, Any] | None:
    return cast("dict[str, Any]", value) if isinstance(value, dict) else None


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _hint_429(code: str | None) -> str:
    if code in NOT_RETRYABLE_429:
        return "The account's quota or spending cap is reached; it will not pass by waiting"
    return "Rate limited; wait a minute before submitting more videos"


def _hint_4xx(status: int, code: str | None) -> str | None:
    if (code and "SensitiveContent" in code) or (code and "RiskDetection" in code):
        return "The provider's moderation refused the input; rephrase the prompt or change the image (not billed)"
    if status == 403:
        return "The account cannot use this model: check billing and that the model is activated in the console"
    if status == 404:
        return "Unknown model, endpoint or task for this key: check the model id and the region (`list_models`)"
    if status == 400:
        return "The provider refused the request as sent"
    return None


def auth_headers(api_key: str | None) -> dict[str, str]:
    """The key as a bearer token (added per request, only ever towards the provider's own origin)."""
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def retryable_create_refusal(error: ProviderError) -> bool:
    """A create answer that proves no task was made and that waiting may help."""
    if error.code in NOT_RETRYABLE_429:
        return False
    return error.status_code in (429, 503) or error.code in OVERLOAD_CODES


def retryable_read_error(error: ProviderError) -> bool:
    """A status/download answer worth asking again (the request is idempotent)."""
    if error.code in NOT_RETRYABLE_429:
        return False
    return error.status_code in RETRYABLE_STATUS


@dataclass(frozen=True, slots=True)
class Resend:
    """What one kind of request may send again: after which transport failures, and after which error answers."""

    after_failure: Callable[[httpx.TransportError], bool]
    """The request may be sent again after this exception (else it is raised as it is, for the caller to judge)."""
    after_answer: Callable[[ProviderError], bool]
    """The request may be sent again after this error answer (else the error is raised)."""
    log_level: int = logging.DEBUG
    """How loudly a retry after an error answer is logged."""


def refused_by_proxy_for_good(exc: Exception) -> bool:
    """The proxy refused the tunnel in a way waiting does not change (its credentials, its rules)."""
    return isinstance(exc, httpx.ProxyError) and str(exc).startswith(PROXY_REFUSALS_FOR_GOOD)


def _create_not_taken(exc: httpx.TransportError) -> bool:
    """The create provably never reached the provider: the connection never opened, or the deadline struck before
    any of the request went out."""
    if isinstance(exc, DeadlineExceeded):
        return not exc.may_have_left
    return isinstance(exc, NOT_SENT)


CREATE = Resend(
    after_failure=_create_not_taken,
    after_answer=lambda error: error.status_code not in AMBIGUOUS_CREATE_STATUS and retryable_create_refusal(error),
    log_level=logging.INFO,
)
"""The paid create: sent again only when the provider provably did not take it."""
READ = Resend(after_failure=lambda exc: True, after_answer=retryable_read_error)
"""Status reads, lists and cancels: idempotent, asked again after any transport failure and retryable answers."""


async def send_with_retries(
    send: Callable[[], Awaitable[httpx.Response]],
    resend: Resend,
    policy: RetryPolicy,
    *,
    error_of: Callable[[httpx.Response], ProviderError],
    unreachable: Callable[[httpx.TransportError], SeedanceError],
) -> httpx.Response:
    """The successful answer to `send()`, sending again what `resend` allows within `policy`'s attempts and total
    time; otherwise the error answer as `error_of` maps it, `unreachable(exc)` for a transport failure that may be
    sent again but ran out of attempts or time, or the transport exception itself when it may not be sent again.
    (Each `send()` is bounded on its own by the request's total deadline.)"""
    deadline = anyio.current_time() + policy.timeout
    for attempt in range(policy.attempts):
        last = attempt == policy.attempts - 1
        try:
            response = await send()
        except httpx.TransportError as exc:
            if not resend.after_failure(exc):
                raise
            if last or anyio.current_time() >= deadline or refused_by_proxy_for_good(exc):
                raise unreachable(exc) from exc
            await anyio.sleep(policy.delay(attempt))
            continue
        if response.is_success:
            return response
        error = error_of(response)
        if last or not resend.after_answer(error):
            raise error
        delay = policy.delay(attempt, getattr(error, "retry_after", None))
        if anyio.current_time() + delay >= deadline:
            raise error
        logger.log(resend.log_level, "HTTP %s (%s); retrying in %.1f s", error.status_code, error.code, delay)
        await anyio.sleep(delay)
    raise AssertionError("unreachable: the loop returns or raises")


# Headers that describe the bytes on the wire; a scrubbed copy carries the decoded text instead.
_WIRE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


def scrub_response(response: httpx.Response, secret: str | None) -> httpx.Response:
    """A read copy of `response` with the key (and any 8+ character piece of it) removed from the body, every
    header value and the reason phrase. Apply it to each API answer on arrival, before parsing or quoting it."""
    if not secret:
        return response
    headers = [(k, redact(v, secret)) for k, v in response.headers.multi_items() if k.lower() not in _WIRE_HEADERS]
    reason = redact(response.reason_phrase, secret).encode("ascii", errors="ignore")
    return httpx.Response(
        response.status_code,
        headers=headers,
        content=redact(response.text, secret).encode("utf-8"),
        request=response.request,
        extensions={"http_version": response.http_version.encode("ascii"), "reason_phrase": reason},
    )


# -- downloads ---------------------------------------------------------------------------------------------------

DOWNLOAD_ERRORS: tuple[tuple[type[Exception], bool], ...] = (
    # (httpx exception, retried within the same download), most specific first. Every exception class httpx
    # exports is listed by name (tests/contract/test_downloads.py fails on a new one), so none escapes
    # unclassified. None stops saving: only a body that is no video may (see `video_structure_problem`). A redirect
    # loop, a bad URL or a request we could not form is not retried within this download, but the worker tries the
    # video again later, then with a fresh URL from the provider, which may well be sound.
    (httpx.TooManyRedirects, False),
    (httpx.UnsupportedProtocol, False),
    (httpx.InvalidURL, False),
    (httpx.LocalProtocolError, False),  # we could not even form the request
    (httpx.RemoteProtocolError, True),  # cut off mid-body, garbled framing
    (httpx.ProtocolError, True),
    (httpx.DecodingError, True),  # a compressed body cut short fails to decode
    (httpx.ProxyError, True),
    (httpx.ConnectTimeout, True),
    (httpx.ReadTimeout, True),
    (httpx.WriteTimeout, True),
    (httpx.PoolTimeout, True),
    (httpx.TimeoutException, True),
    (httpx.ConnectError, True),
    (httpx.ReadError, True),
    (httpx.WriteError, True),
    (httpx.CloseError, True),
    (httpx.NetworkError, True),
    (httpx.TransportError, True),
    (httpx.RequestError, True),
    (httpx.HTTPStatusError, False),
    (httpx.HTTPError, False),
    (httpx.StreamConsumed, False),  # the StreamError family is a bug of ours, not the provider's
    (httpx.StreamClosed, False),
    (httpx.ResponseNotRead, False),
    (httpx.RequestNotRead, False),
    (httpx.StreamError, False),
    (httpx.CookieConflict, False),
)
HTTPX_ERRORS: tuple[type[Exception], ...] = (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, httpx.CookieConflict)
"""The roots of everything httpx raises: what a download catches and hands to `download_error`."""


def download_error(exc: Exception, what: str, *, secret: str | None) -> tuple[DownloadFailed, bool]:
    """The DownloadFailed for an httpx exception, and whether the same download may simply try again."""
    for kind, retry in DOWNLOAD_ERRORS:
        if isinstance(exc, kind):
            text = redact(str(exc), secret)
            reason = f"{type(exc).__name__}: {trim(text, 200)}" if text else type(exc).__name__
            return DownloadFailed(f"the download of {what} failed: {reason}"), retry
    raise TypeError(f"not an httpx exception: {type(exc).__name__}") from exc


def download_status_error(status: int, what: str) -> tuple[DownloadFailed, bool]:
    """The DownloadFailed for a non-2xx answer to a download, and whether the same download may try again."""
    if status in (403, 404, 410):
        message = f"the URL of {what} answered HTTP {status}: the signed URL has probably expired"
        return DownloadFailed(message, expired=True, status_code=status), False
    if status >= 500 or status in (408, 425, 429):
        return DownloadFailed(f"the URL of {what} answered HTTP {status}", status_code=status), True
    message = f"the URL of {what} answered HTTP {status}"
    return DownloadFailed(message, status_code=status), False
