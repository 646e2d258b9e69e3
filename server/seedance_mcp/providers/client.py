"""ProviderClient: the thin I/O shell that drives any Dialect's API calls over httpx's own client, so proxies and
certificates are whatever httpx makes of the environment. Videos and frames are fetched by its Downloader
(providers/download.py); retries and error mapping are providers/_http.py's."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
from seedance_mcp.network import Network
from seedance_mcp.providers._http import (
    AMBIGUOUS_CREATE_STATUS,
    CREATE,
    READ,
    DeadlineExceeded,
    Resend,
    RetryPolicy,
    auth_headers,
    error_from_response,
    scrub_response,
    send_with_retries,
)
from seedance_mcp.providers._parse import dig, quote
from seedance_mcp.providers.base import Dialect
from seedance_mcp.providers.download import Downloader, DownloadLimits, MediaKind
from seedance_mcp.wire import HttpRequest, TaskSnapshot, VideoRequest

logger = logging.getLogger(__name__)

API_LIMITS = httpx.Limits(max_connections=32, max_keepalive_connections=20, keepalive_expiry=30.0)
"""The API client's pool: creates and polls are limited above it (JobSettings: 12 + 8), which leaves room for
task-list searches, cancels and the tools' own reads, so a request does not wait in the pool for a connection.
Idle connections beyond what creates and polls keep busy are closed: the pool asks every idle connection whether
the server closed it (two system calls each) before each request and after each answer (bench #7)."""


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
        network: Network | None = None,
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
        self.request_timeout = request_timeout
        self.retry = retry or RetryPolicy()
        self.display_name = preset.title
        self.network = network or Network()
        """The proxies the clients were built with: named when one refuses a request."""
        self.downloader = Downloader(
            downloads or http,
            api_key=api_key,
            provider_bases=[self.base_url, *self._base_url_by_model.values()],
            retry=self.retry,
            limits=download,
        )

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

    @property
    def download_limits(self) -> DownloadLimits:
        return self.downloader.limits

    async def _send(self, request: HttpRequest) -> httpx.Response:
        """Send with the key, the whole exchange within `request_timeout` (DeadlineExceeded, an httpx
        TimeoutException, when it is not: `may_have_left` says whether the request had started to go out). The
        answer comes back already scrubbed of the key (body, headers), before anything parses it into a task id,
        an error, a request id or a snapshot."""
        kind = _kind_of(request)
        progress = _Progress()
        headers = {**auth_headers(self._api_key), "Accept": "application/json"}
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
        try:
            response = await self._exchange(request, CREATE)
        except httpx.TransportError as exc:
            # The request left (or may have): the provider may have created, and will bill, the task. Not resent.
            raise CreateAnswerLost(self.display_name, _describe(exc, self._api_key)) from exc
        except ProviderError as error:
            if error.status_code in AMBIGUOUS_CREATE_STATUS:
                raise CreateAnswerLost(self.display_name, str(error)) from error
            raise
        try:
            return self.dialect.parse_created(self._json(response, "the create answer"))
        except UnexpectedResponse as exc:
            # A 2xx we cannot read may still mean a task was made: the caller must treat it as lost.
            raise CreateAnswerLost(self.display_name, str(exc)) from exc

    async def _read(self, request: HttpRequest) -> httpx.Response:
        """An idempotent request (GET, DELETE) with retries on transport errors, 408/409/429/5xx."""
        return await self._exchange(request, READ)

    async def _exchange(self, request: HttpRequest, resend: Resend) -> httpx.Response:
        def unreachable(exc: httpx.TransportError) -> ProviderUnreachable:
            if isinstance(exc, httpx.ProxyError):
                return self._refused_by_proxy(request.url, exc)
            return ProviderUnreachable(self.display_name, request.url, _describe(exc, self._api_key))

        return await send_with_retries(
            lambda: self._send(request), resend, self.retry, error_of=self._error, unreachable=unreachable
        )

    def _refused_by_proxy(self, url: str, exc: httpx.ProxyError) -> ProviderUnreachable:
        """The proxy would not carry the request: said with the proxy's address and variable (never its
        credentials), and that nothing reached the provider."""
        proxy = self.network.proxy_for(url)
        answer = trim(redact(str(exc), self._api_key, *self.network.secrets()), 200) or type(exc).__name__
        named = f"the proxy {proxy.shown} ({proxy.variable})" if proxy is not None else "the proxy"
        variable = proxy.variable if proxy is not None else "HTTPS_PROXY / ALL_PROXY"
        return ProviderUnreachable(
            self.display_name,
            url,
            f"{named} refused to carry the request ({answer})",
            hint=f"Nothing reached {self.display_name}, so nothing was created or charged. Check {variable}: the "
            "proxy's address and, if it asks for them (407), its credentials (http://user:password@host:port).",
        )

    async def unreachable_because(self, within: float = 3.0) -> str | None:
        """None when the provider answers an HTTP request, sent as every API request is (the same client, so the
        same proxies and CAs); else why not. A GET of the base URL without the key: any status counts (it creates,
        bills and counts nothing)."""
        try:
            with anyio.fail_after(within):
                await self._http.get(self.base_url)
        except TimeoutError:
            return f"no answer within {within:g} s"
        except httpx.ProxyError as exc:
            return str(self._refused_by_proxy(self.base_url, exc))
        except httpx.HTTPError as exc:
            return _describe(exc, self._api_key)
        return None

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
        """Stream `url` into `destination` atomically; the number of bytes (see `Downloader.download`)."""
        return await self.downloader.download(url, destination, authenticated=authenticated, kind=kind)


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


def _describe(exc: BaseException, secret: str | None = None) -> str:
    name = type(exc).__name__
    text = redact(str(exc), secret)
    return f"{name}: {trim(text, 200)}" if text else name
