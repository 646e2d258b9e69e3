"""Downloader: videos and frames streamed into files, whole or not at all.

Each download streams into a `.part` file beside its destination (providers/partial_files.py), is checked (a video's
MP4 boxes must add up, media/mp4.py) and renamed into place. Redirects are followed one hop at a time so the API key
goes only to the provider's own origin; a size cap, a total time limit and retries bound each download. Every
failure is a DownloadFailed, classified in providers/_http.py.
"""

from __future__ import annotations

import functools
import io
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

import anyio
import httpx

from seedance_mcp import metrics
from seedance_mcp.errors import DownloadFailed, redact, trim
from seedance_mcp.journal.thread_batches import BatchedThread
from seedance_mcp.media.mp4 import video_structure_problem
from seedance_mcp.providers._http import (
    HTTPX_ERRORS,
    RetryPolicy,
    auth_headers,
    download_error,
    download_status_error,
    parse_retry_after,
)
from seedance_mcp.providers.partial_files import partial_path

logger = logging.getLogger(__name__)

MAX_REDIRECTS = 10

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


class Downloader:
    """Fetch a provider's videos and frames into files, with the key only ever sent to the provider's origin."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        api_key: str | None,
        provider_bases: Sequence[str],
        retry: RetryPolicy | None = None,
        limits: DownloadLimits | None = None,
    ) -> None:
        """`http` fetches (it must carry no key of its own); `provider_bases` are the provider's API base URLs, the
        only origins an authenticated download sends the key to (the first is the one an error names)."""
        self._http = http
        self._api_key = api_key
        self._bases = [base.rstrip("/") for base in provider_bases]
        self.retry = retry or RetryPolicy()
        self.limits = limits or DownloadLimits()
        self._small_files = BatchedThread()

    @functools.cached_property
    def _provider_origins(self) -> set[tuple[str, str, int]]:
        return {_origin(base) for base in self._bases}

    def _is_provider_origin(self, url: str) -> bool:
        """Whether `url` is on the provider's own API origin (scheme, host, port): the only place the key goes."""
        return _origin(url) in self._provider_origins

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
                f"refusing to send the API key to {shown}: it is not on the provider's origin {self._bases[0]}"
            )
        limits = self.limits
        partial = partial_path(destination)
        try:
            with anyio.fail_after(limits.timeout):
                for attempt in range(self.retry.attempts):
                    try:
                        return await self._download_once(url, authenticated, partial, destination, kind)
                    except _RetryableDownload as retryable:
                        if attempt == self.retry.attempts - 1:
                            raise retryable.error from retryable.__cause__
                        # Named by its file (the job's task id is in its name): a request the provider sees again
                        # is accounted for here, with the reason.
                        logger.info(
                            "download of %s to %s failed (%s); trying again (try %d of %d)",
                            what,
                            destination.name,
                            retryable.error,
                            attempt + 2,
                            self.retry.attempts,
                        )
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
        max_bytes = self.limits.max_bytes
        for _hop in range(MAX_REDIRECTS + 1):
            # The key only ever goes to the provider's origin, whichever hop of a redirect chain this is.
            headers = auth_headers(self._api_key) if authenticated and self._is_provider_origin(url) else {}
            async with self._http.stream("GET", url, headers=headers, follow_redirects=False) as response:
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


def _unlink_quietly(path: Path) -> None:
    path.unlink(missing_ok=True)
