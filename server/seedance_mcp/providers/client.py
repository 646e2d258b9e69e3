"""ProviderClient: the thin I/O shell that drives any Dialect over one shared httpx.AsyncClient."""

from __future__ import annotations

import logging
import os
import queue
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx

from seedance_mcp.catalog import Preset
from seedance_mcp.errors import (
    CreateAnswerLost,
    DownloadFailed,
    ProviderError,
    ProviderUnreachable,
    UnexpectedResponse,
    redact,
    trim,
)
from seedance_mcp.providers._http import (
    NOT_SENT,
    RetryPolicy,
    error_from_response,
    retryable_create_refusal,
    retryable_read_error,
)
from seedance_mcp.providers.base import Dialect, dig, quote
from seedance_mcp.wire import HttpRequest, TaskSnapshot, VideoRequest

logger = logging.getLogger(__name__)

CHUNK = 1024 * 1024
"""Bytes handed to the writer thread at a time: few hand-offs, and at most a few in memory."""


@dataclass(frozen=True, slots=True)
class DownloadLimits:
    max_bytes: int = 2 * 1024**3
    timeout: float = 600.0
    """Total seconds one download may take, retries included."""


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
        retry: RetryPolicy | None = None,
        download: DownloadLimits | None = None,
        download_http: httpx.AsyncClient | None = None,
    ) -> None:
        self.preset = preset
        self.dialect = dialect
        self.base_url = base_url.rstrip("/")
        self._base_url_by_model = {k: v.rstrip("/") for k, v in (base_url_by_model or {}).items()}
        self._api_key = api_key
        self._http = http
        self._download_http = download_http or http
        self.retry = retry or RetryPolicy()
        self.download_limits = download or DownloadLimits()
        self.display_name = preset.title

    @property
    def has_key(self) -> bool:
        return bool(self._api_key)

    def base_url_for(self, model_key: str) -> str:
        """The base URL for a model (kkiai serves 2.0 under another path than 1.x)."""
        return self._base_url_by_model.get(model_key, self.base_url)

    def create_request(self, request: VideoRequest) -> HttpRequest:
        return self.dialect.create_request(request, self.base_url_for(request.model_key))

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    async def _send(self, request: HttpRequest) -> httpx.Response:
        return await self._http.request(
            request.method,
            request.url,
            json=request.json_body,
            headers={**self.auth_headers(), "Accept": "application/json"},
        )

    def _error(self, response: httpx.Response) -> ProviderError:
        return error_from_response(self.display_name, response, secret=self._api_key, preset=self.preset.name)

    def _json(self, response: httpx.Response, what: str) -> Any:
        try:
            return response.json()
        except ValueError:
            body = redact(trim(response.text), self._api_key)
            raise UnexpectedResponse(self.display_name, f"{what} is not JSON", body) from None

    async def submit(self, request: HttpRequest) -> str:
        """POST the create request; the provider's task id. Never sends it twice unless provably refused."""
        deadline = anyio.current_time() + self.retry.timeout
        for attempt in range(self.retry.attempts):
            last = attempt == self.retry.attempts - 1
            try:
                response = await self._send(request)
            except NOT_SENT as exc:
                if last or anyio.current_time() >= deadline:
                    raise ProviderUnreachable(self.display_name, request.url, _describe(exc)) from exc
                await anyio.sleep(self.retry.delay(attempt))
                continue
            except httpx.TransportError as exc:
                # The request left; the provider may have created (and will bill) the task. Not retried.
                raise CreateAnswerLost(self.display_name, _describe(exc)) from exc
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
                    raise ProviderUnreachable(self.display_name, request.url, _describe(exc)) from exc
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

    def can_list_recent(self, model_key: str) -> bool:
        return self.dialect.recent_tasks_request(self.base_url_for(model_key), 1) is not None

    async def recent_tasks(self, model_key: str, limit: int = 50) -> list[TaskSnapshot]:
        """The account's newest tasks, newest first; unreadable entries are skipped."""
        request = self.dialect.recent_tasks_request(self.base_url_for(model_key), limit)
        if request is None:
            return []
        response = await self._read(request)
        snapshots: list[TaskSnapshot] = []
        for item in self.dialect.task_list_items(self._json(response, "the task list")):
            try:
                snapshots.append(self.dialect.parse_task(item, str(dig(item, "id") or "")))
            except UnexpectedResponse:
                continue
        return snapshots

    async def cancel(self, task_id: str, model_key: str) -> None:
        request = self.dialect.cancel_request(task_id, self.base_url_for(model_key))
        if request is None or not self.preset.cancel:
            raise ProviderError(self.display_name, "this provider has no cancel call")
        await self._read(request)

    async def download(self, url: str, destination: Path, *, authenticated: bool = False) -> int:
        """Stream `url` into `destination` atomically (a .part file, then rename); the number of bytes."""
        if not url.lower().startswith(("https://", "http://")):
            raise DownloadFailed(f"refusing to download from a non-HTTP URL: {trim(url, 80)}")
        limits = self.download_limits
        headers = self.auth_headers() if authenticated else {}
        # Per process: two servers sharing an output directory may fetch the same video; each renames its own.
        partial = destination.with_name(f".{destination.name}.{os.getpid()}.part")
        try:
            with anyio.fail_after(limits.timeout):
                for attempt in range(self.retry.attempts):
                    try:
                        return await self._stream_to(url, headers, partial, destination, limits.max_bytes)
                    except (httpx.TransportError, _RetryableDownload) as exc:
                        if attempt == self.retry.attempts - 1:
                            raise DownloadFailed(f"the download of the video failed: {_describe(exc)}") from exc
                        await anyio.sleep(self.retry.delay(attempt))
        except TimeoutError:
            raise DownloadFailed(f"the download did not finish within {limits.timeout:.0f} s") from None
        finally:
            await anyio.to_thread.run_sync(_unlink_quietly, partial)
        raise AssertionError("unreachable: the loop returns or raises")

    async def _stream_to(
        self, url: str, headers: dict[str, str], partial: Path, destination: Path, max_bytes: int
    ) -> int:
        async with self._download_http.stream("GET", url, headers=headers, follow_redirects=True) as response:
            if response.status_code >= 500 or response.status_code in (408, 429):
                raise _RetryableDownload(f"HTTP {response.status_code}")
            if not response.is_success:
                raise DownloadFailed(
                    f"the video URL answered HTTP {response.status_code}"
                    + (" (the signed URL has probably expired)" if response.status_code in (403, 404, 410) else "")
                )
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise DownloadFailed(f"the video is {int(declared)} bytes, over the {max_bytes}-byte limit")
            written = 0
            pending: list[bytes] = []
            pending_size = 0
            # Videos are sent unencoded; raw bytes skip httpx's decoder chain unless the server encoded them.
            encoded = response.headers.get("content-encoding", "identity").lower() not in ("", "identity")
            pieces = response.aiter_bytes() if encoded else response.aiter_raw()
            async with _FileWriter(partial) as writer:
                async for piece in pieces:
                    written += len(piece)
                    if written > max_bytes:
                        raise DownloadFailed(f"the video exceeds the {max_bytes}-byte limit")
                    pending.append(piece)
                    pending_size += len(piece)
                    if pending_size >= CHUNK:
                        await writer.write(pending)
                        pending, pending_size = [], 0
                if pending:
                    await writer.write(pending)
        if written == 0:
            raise _RetryableDownload("an empty body")
        await anyio.to_thread.run_sync(os.replace, partial, destination)
        return written


class _RetryableDownload(Exception):
    pass


class _FileWriter:
    """Writes chunks to a file from one worker thread while the event loop goes on reading the socket.

    Awaiting a thread for every chunk (anyio.open_file) serialises network and disk and paid a thread hand-off
    per megabyte: a third of curl's speed. Here the loop only queues; at most QUEUED chunks wait in memory.
    """

    QUEUED = 2

    def __init__(self, path: Path) -> None:
        self._path = path
        self._queue: queue.Queue[list[bytes] | None] = queue.Queue(maxsize=self.QUEUED)
        self._done = anyio.Event()
        self._error: BaseException | None = None

    async def __aenter__(self) -> _FileWriter:
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._task_group.start_soon(self._run)
        return self

    async def _run(self) -> None:
        try:
            await anyio.to_thread.run_sync(self._drain, abandon_on_cancel=False)
        except BaseException as exc:  # handed to the reader, which re-raises it
            self._error = exc
        finally:
            self._done.set()

    def _drain(self) -> None:
        with self._path.open("wb") as handle:
            while (pieces := self._queue.get()) is not None:
                handle.writelines(pieces)

    async def write(self, pieces: list[bytes]) -> None:
        while True:
            if self._error is not None:
                raise DownloadFailed(f"writing the video failed: {self._error}")
            try:
                self._queue.put_nowait(pieces)
                return
            except queue.Full:
                await anyio.sleep(0.002)  # the disk is slower than the network right now

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            while True:
                try:
                    self._queue.put_nowait(None)
                    break
                except queue.Full:
                    if self._error is not None:
                        break
                    await anyio.sleep(0.002)
            await self._done.wait()
        finally:
            await self._task_group.__aexit__(None, None, None)
        if self._error is not None and exc_info[0] is None:
            raise DownloadFailed(f"writing the video failed: {self._error}")


def _unlink_quietly(path: Path) -> None:
    path.unlink(missing_ok=True)


def _describe(exc: BaseException) -> str:
    name = type(exc).__name__
    text = str(exc)
    return f"{name}: {trim(text, 200)}" if text else name
