"""ProviderClient: the thin I/O shell that drives any Dialect over httpx's own clients (one for the API, one for
downloads), so proxies and certificates are whatever httpx makes of the environment."""

from __future__ import annotations

import functools
import io
import json
import logging
import os
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, Literal

import anyio
import httpx

from seedance_mcp import metrics
from seedance_mcp.catalog import Preset
from seedance_mcp.errors import (
    CreateAnswerLost,
    DownloadFailed,
    ProviderError,
    ProviderUnreachable,
    SeedanceError,
    UnexpectedResponse,
    redact,
    trim,
)
from seedance_mcp.journal.thread_batches import BatchedThread
from seedance_mcp.providers._http import (
    HTTPX_ERRORS,
    NOT_SENT,
    DeadlineExceeded,
    RetryPolicy,
    download_error,
    download_status_error,
    error_from_response,
    parse_retry_after,
    retryable_create_refusal,
    retryable_read_error,
    scrub_response,
)
from seedance_mcp.providers.base import Dialect, dig, quote
from seedance_mcp.providers.partial_files import partial_path
from seedance_mcp.wire import HttpRequest, TaskSnapshot, VideoRequest

logger = logging.getLogger(__name__)

MAX_REDIRECTS = 10
API_LIMITS = httpx.Limits(max_connections=32, max_keepalive_connections=20, keepalive_expiry=30.0)
"""The API client's pool: creates and polls are limited above it (JobSettings: 12 + 8), which leaves room for
task-list searches, cancels and the tools' own reads, so a request does not wait in the pool for a connection.
Idle connections beyond what creates and polls keep busy are closed: the pool asks every idle connection whether
the server closed it (two system calls each) before each request and after each answer (bench #7)."""
DOWNLOAD_LIMITS = httpx.Limits(max_connections=72, max_keepalive_connections=16, keepalive_expiry=30.0)
"""The download client's pool: one request at a time per downloading job, JobSettings.max_concurrent_downloads
(64) jobs at once, and room for the few the tools start themselves. Downloads come in bursts (a status answer
names many finished videos); keeping every connection of a burst alive made each later request ask them all."""
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".m4v"})

MediaKind = Literal["video", "image"]
"""What a download is expected to be: a video is checked for a complete MP4/MOV structure."""


@dataclass(frozen=True, slots=True)
class DownloadLimits:
    max_bytes: int = 2 * 1024**3
    timeout: float = 600.0
    """Total seconds one download may take, retries included."""


class _Progress:
    """How far one request got, from httpx's trace events: whether any of it started to go out."""

    __slots__ = ("sending",)

    def __init__(self) -> None:
        self.sending = False

    async def trace(self, event: str, info: dict[str, Any]) -> None:
        # Sending the headers of a proxy's CONNECT counts too: erring towards "it may have left" is the safe side.
        if ".send_request_" in event:
            self.sending = True


class ProviderClient:
    """Send a dialect's requests with the key, map every failure once, retry only what is safe."""

    def __init__(
        self,
        *,
        preset: Preset,
        dialect: Dialect,
        base_url: str,
        base_url_by_model: dict[str, str] | None = None,
        api_key: str | None,
        http: httpx.AsyncClient,
        downloads: httpx.AsyncClient | None = None,
        request_timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        download: DownloadLimits | None = None,
    ) -> None:
        """`http` sends the API requests (it must carry no key of its own: the key is added per request);
        `downloads` fetches videos and frames (default: `http`). `request_timeout` bounds one API request in all,
        from the connection to the last byte of the answer (SEEDANCE_HTTP_TIMEOUT): httpx's own time-outs bound
        each read, and a provider that drips its answer would otherwise hold a call for as long as it likes."""
        self.preset = preset
        self.dialect = dialect
        self.base_url = base_url.rstrip("/")
        self._base_url_by_model = {k: v.rstrip("/") for k, v in (base_url_by_model or {}).items()}
        self._api_key = api_key
        self._http = http
        self._downloads = downloads or http
        self.request_timeout = request_timeout
        self.retry = retry or RetryPolicy()
        self.download_limits = download or DownloadLimits()
        self.display_name = preset.title
        self._small_files = BatchedThread()

    @property
    def has_key(self) -> bool:
        return bool(self._api_key)

    def base_url_for(self, model_key: str) -> str:
        """The base URL for a model (kkiai serves 2.0 under another path than 1.x)."""
        return self._base_url_by_model.get(model_key, self.base_url)

    def create_request(self, request: VideoRequest) -> HttpRequest:
        return self.dialect.create_request(request, self.base_url_for(request.model_key))

    def with_safety_identifier(self, request: HttpRequest, value: str) -> HttpRequest:
        """The create request carrying `safety_identifier` (Ark echoes it on the task; gateways whose documents
        lack the field, and other dialects, get none)."""
        body = request.json_body
        if not self.preset.sends_safety_identifier() or body is None or body.get("safety_identifier") is not None:
            return request
        return request.model_copy(update={"json_body": {**body, "safety_identifier": value}})

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    async def _send(self, request: HttpRequest) -> httpx.Response:
        """Send with the key, the whole exchange within `request_timeout` (DeadlineExceeded, an httpx
        TimeoutException, when it is not: `may_have_left` says whether the request had started to go out). The
        answer comes back already scrubbed of the key (body, headers), before anything parses it into a task id,
        an error, a request id or a snapshot."""
        kind = _kind_of(request)
        progress = _Progress()
        headers = {**self.auth_headers(), "Accept": "application/json"}
        extensions = {"trace": progress.trace} if request.method == "POST" else None
        try:
            with anyio.fail_after(self.request_timeout):
                if request.multipart and request.json_body is not None:
                    fields, files = multipart_parts(request.json_body)
                    response = await self._http.request(
                        request.method, request.url, data=fields, files=files, headers=headers, extensions=extensions
                    )
                else:
                    response = await self._http.request(
                        request.method, request.url, json=request.json_body, headers=headers, extensions=extensions
                    )
        except TimeoutError:
            metrics.observe_request(kind, "error")
            raise DeadlineExceeded(
                f"no complete answer within {self.request_timeout:g} s (SEEDANCE_HTTP_TIMEOUT)",
                may_have_left=extensions is None or progress.sending,
            ) from None
        except httpx.TransportError:
            metrics.observe_request(kind, "error")
            raise
        metrics.observe_request(kind, response.status_code)
        return scrub_response(response, self._api_key)

    def _error(self, response: httpx.Response) -> ProviderError:
        return error_from_response(self.display_name, response, secret=self._api_key, preset=self.preset.name)

    def _json(self, response: httpx.Response, what: str) -> Any:
        try:
            return response.json()
        except ValueError:
            body = trim(redact(response.text, self._api_key))
            raise UnexpectedResponse(self.display_name, f"{what} is not JSON", body) from None

    async def submit(self, request: HttpRequest) -> str:
        """POST the create request; the provider's task id. Never sends it twice unless provably refused."""
        deadline = anyio.current_time() + self.retry.timeout
        for attempt in range(self.retry.attempts):
            last = attempt == self.retry.attempts - 1
            try:
                response = await self._send(request)
            except DeadlineExceeded as exc:
                if exc.may_have_left:
                    # Cut off after the request started to leave: the task may exist (and be billed). Not retried.
                    raise CreateAnswerLost(self.display_name, _describe(exc, self._api_key)) from exc
                if last or anyio.current_time() >= deadline:
                    raise ProviderUnreachable(self.display_name, request.url, _describe(exc, self._api_key)) from exc
                await anyio.sleep(self.retry.delay(attempt))
                continue
            except NOT_SENT as exc:
                if last or anyio.current_time() >= deadline:
                    raise ProviderUnreachable(self.display_name, request.url, _describe(exc, self._api_key)) from exc
                await anyio.sleep(self.retry.delay(attempt))
                continue
            except httpx.TransportError as exc:
                # The request left; the provider may have created (and will bill) the task. Not retried.
                raise CreateAnswerLost(self.display_name, _describe(exc, self._api_key)) from exc
            if response.is_success:
                try:
                    return self.dialect.parse_created(self._json(response, "the create answer"))
                except UnexpectedResponse as exc:
                    # A 2xx we cannot read may still mean a task was made: the caller must treat it as lost.
                    raise CreateAnswerLost(self.display_name, str(exc)) from exc
            error = self._error(response)
            if response.status_code in (500, 502, 504):
                raise CreateAnswerLost(self.display_name, str(error)) from error
            if not retryable_create_refusal(error) or last:
                raise error
            delay = self.retry.delay(attempt, getattr(error, "retry_after", None))
            if anyio.current_time() + delay >= deadline:
                raise error
            logger.info("create refused with HTTP %s (%s); retrying in %.1f s", error.status_code, error.code, delay)
            await anyio.sleep(delay)
        raise AssertionError("unreachable: the loop returns or raises")

    async def _read(self, request: HttpRequest) -> httpx.Response:
        """An idempotent request (GET, DELETE) with retries on transport errors, 408/409/429/5xx."""
        deadline = anyio.current_time() + self.retry.timeout
        attempt = 0
        while True:
            last = attempt >= self.retry.attempts - 1
            try:
                response = await self._send(request)
            except httpx.TransportError as exc:
                if last or anyio.current_time() >= deadline:
                    raise ProviderUnreachable(self.display_name, request.url, _describe(exc, self._api_key)) from exc
                await anyio.sleep(self.retry.delay(attempt))
                attempt += 1
                continue
            if response.is_success:
                return response
            error = self._error(response)
            if last or not retryable_read_error(error):
                raise error
            delay = self.retry.delay(attempt, getattr(error, "retry_after", None))
            if anyio.current_time() + delay >= deadline:
                raise error
            await anyio.sleep(delay)
            attempt += 1

    async def fetch(self, task_id: str, model_key: str) -> TaskSnapshot:
        request = self.dialect.status_request(task_id, self.base_url_for(model_key))
        response = await self._read(request)
        snapshot = self.dialect.parse_task(self._json(response, "the task status"), task_id)
        if snapshot.status == "succeeded" and snapshot.video_url is None:
            content_url = getattr(self.dialect, "content_url", None)
            if content_url is None:
                raise UnexpectedResponse(self.display_name, "a finished task without a video URL", quote(snapshot))
            return snapshot.model_copy(
                update={"video_url": content_url(task_id, self.base_url), "video_needs_auth": True}
            )
        return snapshot

    def can_batch(self, model_key: str) -> bool:
        return self.dialect.batch_status_request(["probe"], self.base_url_for(model_key)) is not None

    async def fetch_many(self, task_ids: Sequence[str], model_key: str) -> dict[str, TaskSnapshot | UnexpectedResponse]:
        """Many tasks' statuses with one request. A task the answer leaves out is absent; one it garbles is
        an UnexpectedResponse for that task alone."""
        request = self.dialect.batch_status_request(task_ids, self.base_url_for(model_key))
        if request is None:
            raise ProviderError(self.display_name, "this provider has no task list")
        response = await self._read(request)
        wanted = set(task_ids)
        found: dict[str, TaskSnapshot | UnexpectedResponse] = {}
        for item in self.dialect.task_list_items(self._json(response, "the task list")):
            task_id = str(dig(item, "id") or "")
            if task_id not in wanted:
                continue
            try:
                found[task_id] = self.dialect.parse_task(item, task_id)
            except UnexpectedResponse as exc:
                found[task_id] = exc
        return found

    def can_mark(self, model_key: str) -> bool:
        """Whether a create may carry this server's marker (in `safety_identifier`) and the provider lists the
        tasks it would be found in: the marker only helps where both hold."""
        return self.preset.sends_safety_identifier() and self.can_search(model_key)

    def can_search(self, model_key: str) -> bool:
        """Whether the provider lists the account's tasks (where a lost create answer's task can be looked for)."""
        probe = self.dialect.task_page_request(
            self.base_url_for(model_key), page_num=1, page_size=1, model=None, service_tier=None
        )
        return probe is not None

    async def read_task_page(self, request: HttpRequest) -> tuple[Any, float | None]:
        """One page of the task list, and the provider's clock minus ours (from its Date header) when it says."""
        response = await self._read(request)
        return self._json(response, "the task list"), clock_offset(response)

    async def cancel(self, task_id: str, model_key: str) -> None:
        request = self.dialect.cancel_request(task_id, self.base_url_for(model_key))
        if request is None or not self.preset.cancel:
            raise ProviderError(self.display_name, "this provider has no cancel call")
        await self._read(request)

    @functools.cached_property
    def _provider_origins(self) -> set[tuple[str, str, int]]:
        return {_origin(base) for base in (self.base_url, *self._base_url_by_model.values())}

    def _is_provider_origin(self, url: str) -> bool:
        """Whether `url` is on the provider's own API origin (scheme, host, port): the only place the key goes."""
        return _origin(url) in self._provider_origins

    async def fresh_media_url(
        self, task_id: str, model_key: str, *, last_frame: bool = False
    ) -> tuple[str | None, bool]:
        """After a download failed with `expired=True`: the task's current URL for the video (or the last frame)
        and whether it needs the key. Any failure of the look-up comes out as a (not permanent) DownloadFailed."""
        try:
            snapshot = await self.fetch(task_id, model_key)
        except SeedanceError as exc:
            raise DownloadFailed(
                f"the download URL expired and asking {self.display_name} for a fresh one failed: {exc}"
            ) from exc
        if last_frame:
            return snapshot.last_frame_url, False
        return snapshot.video_url, snapshot.video_needs_auth

    async def download(
        self, url: str, destination: Path, *, authenticated: bool = False, kind: MediaKind | None = None
    ) -> int:
        """Stream `url` into `destination` atomically (a .part file, checked, then renamed); the number of bytes.

        `kind` says what is expected (default: "video" for .mp4/.mov/.m4v destinations, else "image"); a video
        must be an ISO-BMFF file whose boxes add up to its size, so a body cut short is never saved. Every
        failure is a DownloadFailed (see its `permanent` and `expired` flags) and leaves nothing behind.
        Transient failures (network, 5xx, 429, a truncated body) are retried here within the retry policy's
        attempts and `DownloadLimits.timeout`. With `authenticated`, the key is sent only to the provider's own
        origin: such a URL elsewhere is refused, and a redirect elsewhere is followed without the key.
        """
        kind = kind or ("video" if destination.suffix.lower() in VIDEO_SUFFIXES else "image")
        what = f"the {kind}"
        shown = trim(redact(url, self._api_key), 120)
        if not url.lower().startswith(("https://", "http://")):
            raise DownloadFailed(f"refusing to download {what} from a non-HTTP URL: {shown}")
        if not _is_sound_url(url):
            raise DownloadFailed(f"refusing to download {what} from an invalid URL: {shown}")
        if authenticated and not self._is_provider_origin(url):
            raise DownloadFailed(
                f"refusing to send the API key to {shown}: it is not on the provider's origin {self.base_url}"
            )
        limits = self.download_limits
        partial = partial_path(destination)
        try:
            with anyio.fail_after(limits.timeout):
                for attempt in range(self.retry.attempts):
                    try:
                        return await self._download_once(url, authenticated, partial, destination, kind)
                    except _RetryableDownload as retryable:
                        if attempt == self.retry.attempts - 1:
                            raise retryable.error from retryable.__cause__
                        logger.info("download of %s failed (%s); trying again", what, retryable.error)
                        await anyio.sleep(self.retry.delay(attempt, retryable.retry_after))
        except BaseException as exc:
            # A saved file was renamed away; what a failed (or cancelled) attempt left is removed.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_unlink_quietly, partial)
            if isinstance(exc, TimeoutError):
                raise DownloadFailed(f"the download of {what} did not finish within {limits.timeout:.0f} s") from None
            raise
        raise AssertionError("unreachable: the loop returns or raises")

    async def _download_once(
        self, url: str, authenticated: bool, partial: Path, destination: Path, kind: MediaKind
    ) -> int:
        """One attempt: every httpx exception and disk error becomes a DownloadFailed here, the one seam."""
        what = f"the {kind}"
        try:
            return await self._stream_to(url, authenticated, partial, destination, kind)
        except HTTPX_ERRORS as exc:
            error, retry = download_error(exc, what, secret=self._api_key)
            if retry:
                raise _RetryableDownload(error) from exc
            raise error from exc
        except TimeoutError:
            raise  # the overall time limit (anyio.fail_after), handled by the caller
        except OSError as exc:  # the disk: writing, renaming
            raise DownloadFailed(f"saving {what} to {destination} failed: {exc}") from exc

    async def _stream_to(self, url: str, authenticated: bool, partial: Path, destination: Path, kind: MediaKind) -> int:
        what = f"the {kind}"
        max_bytes = self.download_limits.max_bytes
        for _hop in range(MAX_REDIRECTS + 1):
            # The key only ever goes to the provider's origin, whichever hop of a redirect chain this is.
            headers = self.auth_headers() if authenticated and self._is_provider_origin(url) else {}
            async with self._downloads.stream("GET", url, headers=headers, follow_redirects=False) as response:
                metrics.observe_request("download", response.status_code)
                if response.is_redirect:
                    url = str(response.url.join(response.headers["location"]))
                    if not _is_sound_url(url):
                        shown = trim(redact(url, self._api_key), 120)
                        raise DownloadFailed(f"{what} URL redirected to an invalid URL: {shown}")
                    continue
                if not response.is_success:
                    error, retry = download_status_error(response.status_code, what)
                    if retry:
                        raise _RetryableDownload(error, parse_retry_after(response.headers.get("retry-after")))
                    raise error
                declared = _declared_length(response)
                if declared is not None and declared > max_bytes:
                    raise DownloadFailed(
                        f"{what} is {declared} bytes, over the {max_bytes}-byte limit (SEEDANCE_MAX_DOWNLOAD_MB)",
                        over_cap=max_bytes,
                    )
                # Videos are sent unencoded; raw bytes skip httpx's decoder chain unless the server encoded them.
                encoded = response.headers.get("content-encoding", "identity").lower() not in ("", "identity")
                if declared is not None and declared <= SMALL_BODY and not encoded:
                    # A small file in one piece: the write, the check and the rename in one trip to a thread.
                    body = b"".join([piece async for piece in response.aiter_raw()])
                    if len(body) != declared:
                        raise _RetryableDownload(
                            DownloadFailed(f"{what} arrived with {len(body)} of its {declared} bytes (cut off)")
                        )
                    save = functools.partial(_save_small, body, partial, destination, kind == "video")
                    problem = await self._small_files.run(save)
                    if problem is not None:
                        error = DownloadFailed(
                            f"{what} arrived damaged ({len(body)} bytes): {problem[0]}", permanent=problem[1]
                        )
                        if problem[1]:
                            raise error
                        raise _RetryableDownload(error)
                    return len(body)
                # Each piece is written as it arrives, from the event loop, as plain httpx code does (bench #5 holds
                # the two side by side): a write into the page cache takes microseconds, less than a thread hand-off.
                written = 0
                handle = await anyio.to_thread.run_sync(_open_partial, partial)
                try:
                    async for piece in response.aiter_bytes() if encoded else response.aiter_raw():
                        written += len(piece)
                        if written > max_bytes:
                            raise DownloadFailed(
                                f"{what} exceeds the {max_bytes}-byte limit (SEEDANCE_MAX_DOWNLOAD_MB)",
                                over_cap=max_bytes,
                            )
                        handle.write(piece)
                finally:
                    handle.close()
                received = response.num_bytes_downloaded
            if written == 0:
                raise _RetryableDownload(DownloadFailed(f"{what} arrived as an empty body"))
            if declared is not None and received != declared:
                raise _RetryableDownload(
                    DownloadFailed(f"{what} arrived with {received} of its {declared} bytes (cut off)")
                )
            finish = functools.partial(_check_and_rename, partial, destination, written, kind == "video")
            problem = await anyio.to_thread.run_sync(finish)
            if problem is not None:
                error = DownloadFailed(f"{what} arrived damaged ({written} bytes): {problem[0]}", permanent=problem[1])
                if problem[1]:
                    raise error
                raise _RetryableDownload(error)
            return written
        raise DownloadFailed(f"{what} URL redirected more than {MAX_REDIRECTS} times")


SMALL_BODY = 4 * 1024 * 1024
"""Files up to this size (as declared) are received whole in memory and saved by the small-file thread, many per
trip (`BatchedThread`): the event loop never waits for the disk, nor pays a thread hand-off per file."""


def _save_small(body: bytes, partial: Path, destination: Path, check_video: bool) -> tuple[str, bool] | None:
    """Check (an MP4's boxes must add up), write and rename into place; the problem, if any (nothing written)."""
    if check_video:
        problem = video_structure_problem(io.BytesIO(body), len(body))
        if problem is not None:
            return problem
    # Four system calls and no buffered file object: in a worker thread each call hands the GIL back to a busy
    # event loop and waits to get it again.
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    try:
        view = memoryview(body)
        while view:
            view = view[os.write(descriptor, view) :]
    finally:
        os.close(descriptor)
    os.replace(partial, destination)
    return None


def _open_partial(partial: Path) -> IO[bytes]:
    return partial.open("wb")


def _check_and_rename(partial: Path, destination: Path, size: int, check_video: bool) -> tuple[str, bool] | None:
    """Check a streamed file (an MP4's boxes must add up to `size`) and rename it into place; the problem, if any
    (the part file is left for the caller to remove)."""
    if check_video:
        with partial.open("rb") as handle:
            problem = video_structure_problem(handle, size)
        if problem is not None:
            return problem
    os.replace(partial, destination)
    return None


class _RetryableDownload(Exception):
    """A failed attempt worth repeating now; `error` is what the caller gets when attempts run out."""

    def __init__(self, error: DownloadFailed, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def _declared_length(response: httpx.Response) -> int | None:
    declared = response.headers.get("content-length", "").strip()
    return int(declared) if declared.isdigit() else None


def _is_sound_url(url: str) -> bool:
    """An http(s) URL httpx parses, with a host and a port a socket accepts (else asyncio raises OverflowError)."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return False
    return parsed.scheme in ("http", "https") and bool(parsed.host) and 0 < (parsed.port or 80) < 65536


def _origin(url: str) -> tuple[str, str, int]:
    parsed = httpx.URL(url)
    return parsed.scheme, parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80)


def multipart_parts(body: dict[str, Any]) -> tuple[dict[str, str], dict[str, tuple[str, bytes, str]]]:
    """A JSON create body as form fields and file parts: `input_reference`'s `data:` URL becomes a file."""
    import base64

    fields: dict[str, str] = {}
    files: dict[str, tuple[str, bytes, str]] = {}
    for name, value in body.items():
        url = value.get("image_url") if isinstance(value, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if name == "input_reference" and isinstance(url, str) and url.startswith("data:"):
            header, _, payload = url.partition(",")
            mime = header[5:].split(";")[0] or "application/octet-stream"
            files[name] = (f"input_reference.{mime.rsplit('/', 1)[-1]}", base64.b64decode(payload), mime)
        elif isinstance(value, bool):
            fields[name] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            fields[name] = str(value)
        else:
            fields[name] = json.dumps(value)
    return fields, files


def _kind_of(request: HttpRequest) -> str:
    """What a request is, for the metrics: create, status, list or cancel."""
    if request.method == "POST":
        return "create"
    if request.method == "DELETE":
        return "cancel"
    return "list" if "?" in request.url else "status"


def clock_offset(response: httpx.Response) -> float | None:
    """The provider's clock minus ours, from the answer's Date header (one-second steps), or None."""
    from email.utils import parsedate_to_datetime

    try:
        told = parsedate_to_datetime(response.headers.get("date", ""))
    except (TypeError, ValueError):
        return None
    return told.timestamp() - time.time()


def video_structure_problem(handle: BinaryIO, size: int) -> tuple[str, bool] | None:
    """What is wrong with an MP4/MOV (ISO-BMFF) file of `size` bytes, and whether it is permanent; None if sound.

    Walks the top-level boxes by seeking from header to header (never reading the media): each box's 32-bit
    size, or its 64-bit `largesize` when the size is 1, or "to the end of the file" when it is 0. The boxes must
    add up exactly to the file size, start with `ftyp`, and include `moov` and `mdat`. A box running past the
    end, or a file that stops before `moov` or `mdat`, is a body cut short (worth downloading again); a file
    that does not start with `ftyp` is no MP4/MOV at all (permanent).
    """
    position = 0
    seen: set[bytes] = set()
    while position < size:
        handle.seek(position)
        header = handle.read(16)
        if len(header) < 8:
            return f"it ends inside a box header at byte {position}", False
        box_size, box_type = struct.unpack(">I4s", header[:8])
        header_size = 8
        if box_size == 1:
            if len(header) < 16:
                return f"it ends inside a box header at byte {position}", False
            (box_size,) = struct.unpack(">Q", header[8:16])
            header_size = 16
        elif box_size == 0:
            box_size = size - position
        if position == 0 and box_type != b"ftyp":
            return f"it does not start with an `ftyp` box (starts with {header[:8]!r}): not an MP4/MOV video", True
        name = box_type.decode("latin-1")
        if box_size < header_size:
            return f"the `{name}` box at byte {position} declares an impossible size {box_size}", False
        if position + box_size > size:
            return f"the `{name}` box at byte {position} needs {box_size} bytes but the file ends at {size}", False
        seen.add(box_type)
        position += box_size
    if size == 0:
        return "it is empty", False
    missing = [f"`{box.decode()}`" for box in (b"moov", b"mdat") if box not in seen]
    if missing:
        return f"it has no {' or '.join(missing)} box (the rest of the file is missing)", False
    return None


def _unlink_quietly(path: Path) -> None:
    path.unlink(missing_ok=True)


def _describe(exc: BaseException, secret: str | None = None) -> str:
    name = type(exc).__name__
    text = redact(str(exc), secret)
    return f"{name}: {trim(text, 200)}" if text else name
