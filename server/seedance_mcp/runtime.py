"""The runtime every tool call reaches: the provider client, the journal and the job worker, opened lazily.

Nothing that `initialize` and `tools/list` need waits for it; see `LazyRuntime`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable, Coroutine, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, cast

import anyio
import anyio.abc

from seedance_mcp import __version__
from seedance_mcp.catalog import ModelSpec, Preset, expected_render_seconds
from seedance_mcp.config import Settings
from seedance_mcp.errors import ConfigurationError, JournalUnavailable, SeedanceError
from seedance_mcp.network import Network

if TYPE_CHECKING:
    from collections.abc import Mapping

    from seedance_mcp.jobs import JobManager
    from seedance_mcp.principals import Principal
    from seedance_mcp.providers.client import ProviderClient
    from seedance_mcp.wire import VideoRequest

logger = logging.getLogger(__name__)

SANDBOX_KEY = "sandbox-key"


@dataclass
class Runtime:
    """What the lifespan opens and every tool call reaches through the context."""

    settings: Settings
    preset: Preset
    provider: ProviderClient
    jobs: JobManager
    background: anyio.abc.TaskGroup | None = None
    """Work that outlives the tool call that started it (a storyboard's shots after its wait), until shutdown."""

    def expected_render(self, spec: ModelSpec, request: VideoRequest) -> float:
        """Seconds from create to finished video that a job's progress estimate expects: the catalog's figure for
        the model, or, for the embedded sandbox, as long as it is told (the prompt's `[[render=N]]`, else
        SEEDANCE_SANDBOX_RENDER_SECONDS)."""
        if self.settings.provider == "sandbox":
            from seedance_mcp.sandbox.state import planned_seconds

            return planned_seconds(request.prompt, self.settings.sandbox_render_seconds)
        return expected_render_seconds(spec, request.effective_resolution, request.effective_seconds)


def effective_preset(settings: Settings) -> Preset:
    """The preset validation and the tools use, from the merged catalog, in the region chosen (SEEDANCE_REGION).
    The sandbox can speak any preset's dialect (SEEDANCE_SANDBOX_AS), with that preset's models and rules."""
    preset = settings.preset
    if settings.provider == "sandbox" and settings.sandbox_as not in (None, "sandbox"):
        return replace(preset, title=f"Embedded sandbox speaking the {preset.title} dialect")
    return preset


def _sandbox_paths(preset: Preset, url: str) -> tuple[str, dict[str, str]]:
    """Base URL (and per-model bases) of the embedded sandbox for a dialect."""
    if preset.name == "kkiai":
        return f"{url}/volc/v1", {"2.0": f"{url}/api/v3", "2.0-fast": f"{url}/api/v3"}
    if preset.dialect == "ark":
        return f"{url}/api/v3", {}
    if preset.dialect == "aiid":
        return url, {}  # the aiid dialect adds /api/v3/contents/generations/tasks to the bare host
    return url, {}


RETRY_FIRST_SECONDS = 1.0
RETRY_CAP_SECONDS = 30.0
"""Backoff between tries to open the runtime while its journal is unavailable (a database outage, a full disk)."""


class LazyRuntime:
    """The runtime, opened in the background once a tool needs it or `delay` seconds after start-up.

    Nothing that `initialize` and `tools/list` need waits for the HTTP client, the journal or the sandbox, so the
    server answers a client's first requests as fast as a bare MCPServer; the worker still resumes unfinished
    jobs moments after start-up, whether or not any tool is called.

    A journal that cannot be reached (its database down, its disk full) is waited out: the runtime is opened again
    with backoff until it can be, meanwhile every tool call is told so at once (and a new video that nothing was
    sent or charged). Anything else that stops the runtime (a configuration it cannot work with, a bug) stops it
    for good: `died` says why, and `/healthz` reports it, so an orchestrator restarts the process.
    """

    def __init__(
        self,
        settings: Settings,
        delay: float,
        principals: Mapping[str, Principal] | None = None,
        services: Sequence[Callable[[Runtime], Coroutine[Any, Any, None]]] = (),
    ) -> None:
        self._settings = settings
        self._services = services
        """Work that runs beside the job worker for as long as the runtime is open (resuming storyboard plans)."""
        self._delay = delay
        self.principals: Mapping[str, Principal] = principals or {}
        """The named principals of SEEDANCE_TOKENS_FILE, with their own limits."""
        self._wanted = anyio.Event()
        self._ready = anyio.Event()
        self._runtime: Runtime | None = None
        self._error: SeedanceError | None = None
        self.died: str | None = None
        """Why the runtime stopped for good (None while it runs, or is being opened)."""

    async def run(self) -> None:
        with anyio.move_on_after(self._delay):
            await self._wanted.wait()
        delay = RETRY_FIRST_SECONDS
        while True:
            try:
                async with open_runtime(self._settings) as runtime:
                    assert runtime.background is not None
                    for service in self._services:
                        runtime.background.start_soon(service, runtime)
                    self._runtime, self._error = runtime, None
                    self._ready.set()
                    delay = RETRY_FIRST_SECONDS
                    await anyio.sleep_forever()
            except Exception as exc:  # a top-level handler: what the runtime stopped on decides what comes next
                self._runtime = None
                unavailable = _journal_unavailable(exc)
                if unavailable is not None:
                    logger.warning("%s (opening the runtime again in %.0f s)", unavailable, delay)
                    self._error = unavailable
                    self._ready.set()
                    await anyio.sleep(delay)
                    delay = min(delay * 2, RETRY_CAP_SECONDS)
                    continue
                self._die(exc)
                return

    def _die(self, exc: Exception) -> None:
        if isinstance(exc, SeedanceError):
            logger.error("the server's runtime stopped: %s", exc)
            self._error = exc
        else:
            logger.error("the server's runtime stopped", exc_info=exc)
            self._error = ConfigurationError(
                f"The server could not open or keep its journal, HTTP client or worker ({type(exc).__name__}: {exc}). "
                "Check that SEEDANCE_STATE_DIR and SEEDANCE_OUTPUT_DIR are writable, then restart the server."
            )
        self.died = str(self._error)
        self._ready.set()

    async def get(self) -> Runtime:
        self._wanted.set()
        await self._ready.wait()
        if self._runtime is None:
            raise self._error or ConfigurationError("the server's runtime is not available")
        return self._runtime


def _journal_unavailable(exc: BaseException) -> JournalUnavailable | None:
    """The JournalUnavailable that `exc` is, or that every error of its group is (the first), else None."""
    if isinstance(exc, JournalUnavailable):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        group = cast("BaseExceptionGroup[BaseException]", exc)
        leaves = [_journal_unavailable(inner) for inner in group.exceptions]
        if leaves and all(leaf is not None for leaf in leaves):
            return leaves[0]
    return None


@asynccontextmanager
async def open_runtime(settings: Settings) -> AsyncGenerator[Runtime]:
    """Open everything the tools need, and close it again. Heavy imports happen here, not at start-up."""
    import httpx

    from seedance_mcp.jobs import JobManager, JobSettings
    from seedance_mcp.jobs.polling import PollPolicy
    from seedance_mcp.journal import TaskStore
    from seedance_mcp.journal.sqlite import SqliteTaskStore
    from seedance_mcp.providers import dialect_for
    from seedance_mcp.providers._http import RetryPolicy
    from seedance_mcp.providers.client import API_LIMITS, ProviderClient
    from seedance_mcp.providers.download import DOWNLOAD_LIMITS, DownloadLimits

    preset = effective_preset(settings)
    async with AsyncExitStack() as stack:
        base_url = settings.base_url or preset.base_url
        by_model: dict[str, str] = {}
        api_key = settings.key
        is_sandbox = settings.provider == "sandbox"
        if is_sandbox and not settings.base_url:
            from anyio import to_thread

            from seedance_mcp.sandbox import SandboxState, running_sandbox
            from seedance_mcp.sandbox.state import TASKS_FILE as SANDBOX_TASKS_FILE

            # Its tasks are kept in the state dir, so a server started afresh (a client that starts one per call)
            # still answers for them; it binds its last port again when free, so earlier video URLs still work.
            sandbox_state = await to_thread.run_sync(
                lambda: SandboxState.kept_in(
                    settings.state_dir / SANDBOX_TASKS_FILE,
                    render_seconds=settings.sandbox_render_seconds,
                    model_map=dict(settings.model_map),
                    speaks=settings.sandbox_as,
                    catalog=settings.catalog,
                    region=preset.region,
                )
            )
            sandbox = await stack.enter_async_context(running_sandbox(sandbox_state, port=settings.sandbox_port))
            base_url, by_model = _sandbox_paths(preset, sandbox.url)
        if is_sandbox:
            api_key = api_key or SANDBOX_KEY
        elif preset.name == "kkiai" and not settings.base_url:
            by_model = dict(preset.base_url_by_model)
        if not base_url:
            raise ConfigurationError(
                f"SEEDANCE_BASE_URL is required for the `{preset.name}` provider (the gateway's address, "
                "e.g. https://api.example.com)."
            )
        # The proxies and CAs configured (Settings.network, read by the entry point); not for the embedded sandbox:
        # a proxy must not get requests for our own 127.0.0.1.
        network = Network() if is_sandbox and not settings.base_url else settings.network
        common: dict[str, Any] = {
            "timeout": httpx.Timeout(settings.http_timeout, connect=min(15.0, settings.http_timeout)),
            "headers": {"User-Agent": f"seedance-mcp/{__version__}"},
        }
        http = await stack.enter_async_context(httpx.AsyncClient(**network.clients_options(API_LIMITS), **common))
        downloads = await stack.enter_async_context(
            httpx.AsyncClient(**network.clients_options(DOWNLOAD_LIMITS), **common)
        )
        scale = settings.retry_scale
        retry = RetryPolicy(base_delay=0.5 * scale, max_delay=8.0 * scale, max_retry_after=60.0 * scale)
        provider = ProviderClient(
            preset=preset,
            dialect=dialect_for(preset.dialect),
            base_url=base_url,
            base_url_by_model=by_model,
            api_key=api_key,
            http=http,
            downloads=downloads,
            request_timeout=settings.http_timeout,
            retry=retry,
            download=DownloadLimits(
                max_bytes=settings.max_download_mb * 1024 * 1024, timeout=settings.download_timeout
            ),
            network=network,
        )
        store: TaskStore
        if settings.database_url is not None:
            from seedance_mcp.journal.postgres import open_postgres_store

            store = await open_postgres_store(settings.database_url.get_secret_value())
        else:
            store = await SqliteTaskStore.open(settings.state_dir / "jobs.sqlite3")
        stack.push_async_callback(store.close)
        jobs = JobManager(
            store=store,
            provider=provider,
            settings=JobSettings(
                output_dir=settings.output_dir,
                poll=PollPolicy(interval=settings.poll_interval, cap=settings.poll_interval_max),
                dedupe_window=settings.dedupe_window,
                reconcile_delays=settings.reconcile_delays,
                reconcile_window=(
                    settings.reconcile_window if settings.reconcile_window is not None else settings.http_timeout + 30.0
                ),
                reconcile_patience=settings.reconcile_patience,
                lease_seconds=settings.lease_seconds,
                claim_interval=min(2.0, settings.lease_seconds / 3),
                safety_identifier=settings.safety_identifier,
                simulated=is_sandbox,
                download_retry_first=5.0 * scale,
                download_retry_cap=600.0 * scale,
            ),
        )
        task_group = await stack.enter_async_context(anyio.create_task_group())
        await task_group.start(jobs.run)
        try:
            yield Runtime(settings=settings, preset=preset, provider=provider, jobs=jobs, background=task_group)
        finally:
            task_group.cancel_scope.cancel()
