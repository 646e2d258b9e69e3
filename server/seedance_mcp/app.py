"""create_app(settings) -> MCPServer: the lifespan that owns the HTTP client, the journal and the job worker,
and the tools a model calls. Importing this module does nothing; only create_app builds anything."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncGenerator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

import anyio
import anyio.to_thread
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from seedance_mcp import __version__
from seedance_mcp.catalog import MODE_TEXT, MODELS_BY_KEY, PRESETS, Preset, estimate_tokens, expected_render_seconds
from seedance_mcp.config import Settings
from seedance_mcp.errors import ConfigurationError, SeedanceError
from seedance_mcp.models import CancelResult, ModelInfo, ModelList, ProviderRequestPreview, TaskList, VideoTask

if TYPE_CHECKING:
    from mcp.server.auth.provider import TokenVerifier
    from mcp.server.auth.settings import AuthSettings

    from seedance_mcp.jobs import JobManager
    from seedance_mcp.providers.client import ProviderClient
    from seedance_mcp.store import Job
    from seedance_mcp.wire import HttpRequest, VideoRequest

logger = logging.getLogger(__name__)

SANDBOX_KEY = "sandbox-key"

# Reusable argument types: the descriptions are what the model reads.
ImageArg = Annotated[
    str | None,
    Field(description="An https URL, a data:image/...;base64 URL, or a local file path (jpeg/png/webp/bmp/tiff/gif)."),
]
Resolution = Literal["480p", "720p", "1080p"]
RatioArg = Literal["16:9", "4:3", "1:1", "3:4", "9:16", "21:9", "adaptive", "9:21", "keep_ratio"]
TaskId = Annotated[str, Field(description="A task id from generate_video or list_tasks (`cgt-…` or `job-…`).")]


@dataclass
class Runtime:
    """What the lifespan opens and every tool call reaches through the context."""

    settings: Settings
    preset: Preset
    provider: ProviderClient
    jobs: JobManager


def effective_preset(settings: Settings) -> Preset:
    """The preset validation and the tools use. The sandbox can speak any preset's dialect (SEEDANCE_SANDBOX_AS)."""
    if settings.provider == "sandbox" and settings.sandbox_as not in (None, "sandbox"):
        emulated = PRESETS[settings.sandbox_as]
        return replace(emulated, title=f"Embedded sandbox speaking the {emulated.title} dialect")
    return PRESETS[settings.provider]


def _sandbox_paths(preset: Preset, url: str) -> tuple[str, dict[str, str]]:
    """Base URL (and per-model bases) of the embedded sandbox for a dialect."""
    if preset.name == "kkiai":
        return f"{url}/volc/v1", {"2.0": f"{url}/api/v3", "2.0-fast": f"{url}/api/v3"}
    if preset.dialect == "ark":
        return f"{url}/api/v3", {}
    return url, {}


class LazyRuntime:
    """The runtime, opened in the background once a tool needs it or `delay` seconds after start-up.

    Nothing that `initialize` and `tools/list` need waits for the HTTP client, the journal or the sandbox, so the
    server answers a client's first requests as fast as a bare MCPServer; the worker still resumes unfinished
    jobs moments after start-up, whether or not any tool is called.
    """

    def __init__(self, settings: Settings, delay: float) -> None:
        self._settings = settings
        self._delay = delay
        self._wanted = anyio.Event()
        self._ready = anyio.Event()
        self._runtime: Runtime | None = None
        self._error: SeedanceError | None = None

    async def run(self) -> None:
        with anyio.move_on_after(self._delay):
            await self._wanted.wait()
        try:
            async with open_runtime(self._settings) as runtime:
                self._runtime = runtime
                self._ready.set()
                await anyio.sleep_forever()
        except SeedanceError as exc:
            logger.error("the server could not start its runtime: %s", exc)
            self._error = exc
            self._ready.set()
        except Exception as exc:  # a top-level handler: an unwritable state dir must not kill the server
            logger.exception("the server could not start its runtime")
            self._error = ConfigurationError(
                f"The server could not open its journal or HTTP client ({type(exc).__name__}: {exc}). Check that "
                "SEEDANCE_STATE_DIR and SEEDANCE_OUTPUT_DIR are writable, then restart the server."
            )
            self._ready.set()

    async def get(self) -> Runtime:
        self._wanted.set()
        await self._ready.wait()
        if self._runtime is None:
            raise self._error or ConfigurationError("the server's runtime is not available")
        return self._runtime


@asynccontextmanager
async def open_runtime(settings: Settings) -> AsyncGenerator[Runtime]:
    """Open everything the tools need, and close it again. Heavy imports happen here, not at start-up."""
    import httpx

    from seedance_mcp.jobs import JobManager, JobSettings
    from seedance_mcp.polling import PollPolicy
    from seedance_mcp.providers import ProviderClient, dialect_for
    from seedance_mcp.providers._http import RetryPolicy
    from seedance_mcp.providers.client import DownloadLimits
    from seedance_mcp.store import SqliteTaskStore

    preset = effective_preset(settings)
    async with AsyncExitStack() as stack:
        base_url = settings.base_url or preset.base_url
        by_model: dict[str, str] = {}
        api_key = settings.key
        is_sandbox = settings.provider == "sandbox"
        if is_sandbox and not settings.base_url:
            from seedance_mcp.sandbox import SandboxState, running_sandbox

            sandbox = await stack.enter_async_context(
                running_sandbox(
                    SandboxState(render_seconds=settings.sandbox_render_seconds), port=settings.sandbox_port
                )
            )
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
        http = await stack.enter_async_context(
            httpx.AsyncClient(
                timeout=httpx.Timeout(settings.http_timeout, connect=min(15.0, settings.http_timeout)),
                limits=httpx.Limits(max_connections=32, max_keepalive_connections=16, keepalive_expiry=30.0),
                trust_env=not is_sandbox,
                headers={"User-Agent": f"seedance-mcp/{__version__}"},
            )
        )
        download_http: httpx.AsyncClient | None = None
        if settings.direct_downloads:
            from seedance_mcp.providers.bulk_transport import BulkDownloadTransport

            download_http = await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=BulkDownloadTransport(),
                    timeout=httpx.Timeout(settings.http_timeout, connect=min(15.0, settings.http_timeout)),
                    headers={"User-Agent": f"seedance-mcp/{__version__}"},
                )
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
            download_http=download_http,
            retry=retry,
            download=DownloadLimits(
                max_bytes=settings.max_download_mb * 1024 * 1024, timeout=settings.download_timeout
            ),
        )
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
            ),
        )
        task_group = await stack.enter_async_context(anyio.create_task_group())
        await task_group.start(jobs.run)
        try:
            yield Runtime(settings=settings, preset=preset, provider=provider, jobs=jobs)
        finally:
            task_group.cancel_scope.cancel()


def _iso(epoch: float | None) -> str | None:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds") if epoch else None


def next_step(job: Job) -> str:
    handle = job.handle
    match job.status:
        case "succeeded" if job.video_path:
            return f"The video is saved at {job.video_path}. Give the user this path."
        case "succeeded" if job.download_error:
            return (
                f"The video is ready but saving it failed ({job.download_error}). Call get_task_status(task_id="
                f'"{handle}", wait=true) to try the download again, or give the user video_url before it expires.'
            )
        case "succeeded":
            return f'The video is ready and downloading: call get_task_status(task_id="{handle}", wait=true).'
        case "queued" | "running" | "submitting":
            typical = f"about {job.expected_render_seconds:.0f} s in all"
            return (
                f'Still rendering ({typical}). Call get_task_status(task_id="{handle}", wait=true) to keep '
                "waiting. Do not call generate_video again for this video: that would pay for a second one."
            )
        case "failed":
            return (
                f"The task failed ({job.error_code or 'no code'}): {job.error_message or 'no message'}. Moderation "
                "failures are not billed: change the prompt or image and try again."
            )
        case "unknown":
            return (
                "The create request's answer was lost, so a paid task may exist: do not submit again. On Ark the "
                f'server is finding it in the provider\'s task list; call get_task_status(task_id="{handle}") in a '
                "minute. On other gateways check the provider console; only if no task exists, use "
                "generate_video(force_new=true)."
            )
        case "cancelled":
            return "The task was cancelled; nothing was rendered."
        case "expired":
            return "The task expired before it finished; submit it again if the video is still wanted."
        case "not_submitted":
            return "Nothing was sent."


def job_result(job: Job, *, reused: bool = False, clock: Callable[[], float] = time.time) -> VideoTask:
    end = job.finished_at or clock()
    return VideoTask(
        task_id=job.handle,
        job_id=job.job_id,
        provider=job.provider,
        model=job.model,
        status=job.status,
        prompt=job.prompt if len(job.prompt) <= 200 else job.prompt[:199] + "…",
        progress_percent=100.0 if job.status == "succeeded" else job.progress,
        video_path=job.video_path,
        video_url=job.video_url,
        video_url_expires_at=_iso(job.video_url_expires_at),
        last_frame_url=job.last_frame_url,
        last_frame_path=job.last_frame_path,
        resolution=job.resolution,
        ratio=job.ratio,
        duration=job.duration,
        frames=job.frames,
        seed=job.seed,
        estimated_tokens=job.estimated_tokens,
        usage_tokens=job.usage_tokens,
        error_code=job.error_code,
        error_message=job.error_message or job.download_error or job.last_poll_error,
        request_id=job.request_id,
        created_at=_iso(job.created_at),
        elapsed_seconds=round(end - (job.submitted_at or job.created_at), 1),
        reused_existing=reused,
        next_step=next_step(job),
    )


_DATA_URL = re.compile(r"^data:([\w/+.-]+);base64,(.*)$", re.DOTALL)


def _elide_data_urls(value: Any) -> Any:
    """A request body for display: base64 payloads shortened to their size."""
    if isinstance(value, dict):
        return {k: _elide_data_urls(v) for k, v in value.items()}  # pyright: ignore[reportUnknownVariableType]
    if isinstance(value, list):
        return [_elide_data_urls(v) for v in value]  # pyright: ignore[reportUnknownVariableType]
    if isinstance(value, str) and (match := _DATA_URL.match(value)):
        return f"data:{match.group(1)};base64,<{len(match.group(2)) * 3 // 4} bytes>"
    return value


def dry_run_result(runtime: Runtime, request: VideoRequest, http_request: HttpRequest) -> VideoTask:
    headers = {"Content-Type": "application/json", "Authorization": "Bearer ***" if runtime.provider.has_key else ""}
    preview = ProviderRequestPreview(
        method=http_request.method,
        url=http_request.url,
        headers={k: v for k, v in headers.items() if v},
        body=_elide_data_urls(http_request.json_body),
    )
    return VideoTask(
        task_id="dry-run",
        job_id="dry-run",
        provider=runtime.preset.name,
        model=request.model_id,
        status="not_submitted",
        prompt=request.prompt,
        resolution=request.effective_resolution,
        ratio=request.ratio or request.effective_ratio,
        duration=request.effective_seconds,
        frames=request.frames,
        seed=request.seed,
        estimated_tokens=request.estimated_tokens,
        dry_run_request=preview,
        next_step=(
            f"Nothing was sent. Call generate_video with the same arguments and without dry_run to submit; it will "
            f"bill about {request.estimated_tokens:,} output tokens."
        ),
    )


def _duration_text(key: str) -> str:
    spec = MODELS_BY_KEY[key]
    text = f"{spec.duration_min}-{spec.duration_max}"
    return text + " or -1 (auto)" if spec.duration_auto else text


def model_info(preset: Preset, key: str, default_key: str) -> ModelInfo:
    spec = MODELS_BY_KEY[key]
    limits = preset.limits
    resolutions = [r for r in spec.resolutions if limits.resolutions is None or r in limits.resolutions]
    durations = (
        ", ".join(str(d) for d in limits.durations if spec.duration_min <= d <= spec.duration_max)
        if limits.durations
        else _duration_text(key)
    )
    frames_allowed = spec.frames and "frames" not in limits.unsupported
    width, height = spec.size(spec.default_resolution, "16:9")
    return ModelInfo(
        key=spec.key,
        model_id=spec.model_id(preset.region),
        name=spec.name,
        is_default=spec.key == default_key,
        modes=[MODE_TEXT[m] for m in spec.modes],
        resolutions=list(resolutions),
        default_resolution=spec.default_resolution,
        ratios_text_to_video=[*spec.t2v_ratios, *limits.extra_ratios] if "text" in spec.modes else [],
        ratios_image_to_video=[*spec.i2v_ratios, *limits.extra_ratios] if spec.modes != ("text",) else [],
        default_ratio_text_to_video=spec.default_t2v_ratio,
        default_ratio_image_to_video=spec.default_i2v_ratio,
        duration_seconds=durations,
        frames="25 + 4n in 29-289" if frames_allowed else None,
        generate_audio=spec.audio and "generate_audio" not in limits.unsupported,
        draft=spec.draft and "draft" not in limits.unsupported,
        camera_fixed=spec.camera_fixed,
        max_reference_images=spec.max_reference_images,
        max_reference_videos=spec.max_reference_videos,
        max_reference_audios=spec.max_reference_audios,
        typical_render_seconds=spec.typical_render_seconds,
        estimated_tokens_5s_default=estimate_tokens(width, height, 5),
        notes=list(spec.notes),
    )


def _catalog_summary(preset: Preset, default_key: str) -> str:
    lines: list[str] = []
    for key in preset.model_keys:
        spec = MODELS_BY_KEY[key]
        info = model_info(preset, key, default_key)
        extras = [m for m in ("audio" if info.generate_audio else "", "draft" if info.draft else "") if m]
        mark = " (default)" if info.is_default else ""
        lines.append(
            f"- {info.model_id}{mark}: {', '.join(spec.modes).replace('_', ' ')}; {'/'.join(info.resolutions)}; "
            f"{info.duration_seconds} s" + (f"; {', '.join(extras)}" if extras else "")
        )
    return "\n".join(lines)


def create_app(
    settings: Settings, *, token_verifier: TokenVerifier | None = None, auth: AuthSettings | None = None
) -> MCPServer[LazyRuntime]:
    """The seedance-mcp server for these settings: nothing is opened until a client connects.

    `token_verifier` and `auth` protect the streamable HTTP transport (see http_server.py).
    """
    preset = effective_preset(settings)
    default_spec_key = _default_key(settings, preset)

    @asynccontextmanager
    async def lifespan(_: MCPServer[LazyRuntime]) -> AsyncGenerator[LazyRuntime]:
        lazy = LazyRuntime(settings, delay=settings.startup_delay)
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(lazy.run)
            yield lazy
            task_group.cancel_scope.cancel()

    server: MCPServer[LazyRuntime] = MCPServer(
        "seedance",
        title="Seedance video generation",
        version=__version__,
        instructions=(
            "Make videos with ByteDance Seedance. generate_video submits a paid job and waits a while, reporting "
            "progress; if it returns before the video is done, call get_task_status(task_id, wait=true) until the "
            "status is `succeeded` and video_path is set. Never resubmit a job that is still rendering. Use "
            "list_models for each model's limits and generate_video(dry_run=true) to see the exact request and "
            "its estimated cost without paying."
        ),
        lifespan=lifespan,
        token_verifier=token_verifier,
        auth=auth,
    )

    async def runtime_of(ctx: Context[LazyRuntime, Any]) -> Runtime:
        try:
            return await ctx.request_context.lifespan_context.get()
        except SeedanceError as exc:
            raise ToolError(str(exc)) from exc

    generate_description = f"""Make a video with ByteDance Seedance on {preset.title}; save the MP4. COSTS MONEY.

Submits one paid job, then waits up to about {settings.wait_seconds:.0f} s while reporting progress. Renders take
30 s to 5 min. If the video is not done in time, the result has status `queued`/`running` and a task_id: call
get_task_status(task_id, wait=true) to keep waiting — do not call generate_video again, that pays twice (an
identical call within {settings.dedupe_window / 60:.0f} min returns the first job instead). On success, video_path
is the saved MP4.

The mode follows the images given: none = text-to-video; first_frame (+ last_frame); reference_images /
reference_videos / reference_audios (Seedance 2.0 multimodal references, or 1.0 lite i2v reference images).
Leave an argument out to use the model's default. Arguments are checked against the model's limits before anything
is sent. dry_run=true returns the exact provider request and the estimated tokens without sending it.

Models on this provider (call list_models for full limits):
{_catalog_summary(preset, default_spec_key)}"""

    @server.tool(
        description=generate_description,
        annotations=ToolAnnotations(
            title="Generate a Seedance video (paid)",
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=False,
            open_world_hint=True,
        ),
    )
    async def generate_video(
        prompt: Annotated[str, Field(description="What happens in the video: subject, action, scene, camera, style.")],
        ctx: Context[LazyRuntime, Any],
        model: Annotated[
            str | None, Field(description="Model id or short key (e.g. `1.5-pro`); default: the configured model.")
        ] = None,
        first_frame: ImageArg = None,
        last_frame: Annotated[
            str | None, Field(description="Last frame image (needs first_frame); same forms as first_frame.")
        ] = None,
        reference_images: Annotated[
            list[str] | None, Field(description="Reference images (2.0: up to 9; 1.0 lite i2v: 1-4).")
        ] = None,
        reference_videos: Annotated[
            list[str] | None, Field(description="Seedance 2.0: up to 3 reference video URLs (https or asset://).")
        ] = None,
        reference_audios: Annotated[
            list[str] | None,
            Field(description="Seedance 2.0: up to 3 reference audios (URL or local wav/mp3); never alone."),
        ] = None,
        resolution: Annotated[Resolution | None, Field(description="Output resolution.")] = None,
        ratio: Annotated[
            RatioArg | None, Field(description="Aspect ratio; `adaptive` follows the input image.")
        ] = None,
        duration: Annotated[
            int | None, Field(strict=True, description="Length in seconds (per model; -1 lets 1.5 pro / 2.0 choose).")
        ] = None,
        frames: Annotated[
            int | None,
            Field(strict=True, description="Length in frames instead of duration: 25 + 4n, 29-289 (1.0 models)."),
        ] = None,
        seed: Annotated[
            int | None, Field(strict=True, description="-1 for random, or 0-4294967295 to repeat a result.")
        ] = None,
        camera_fixed: Annotated[
            bool | None, Field(strict=True, description="Ask for a static camera (not on 2.0).")
        ] = None,
        watermark: Annotated[bool | None, Field(strict=True, description="Add the 'AI generated' watermark.")] = None,
        generate_audio: Annotated[
            bool | None, Field(strict=True, description="1.5 pro and 2.0: generate sound (default true).")
        ] = None,
        draft: Annotated[bool | None, Field(strict=True, description="1.5 pro: a cheap 480p preview.")] = None,
        return_last_frame: Annotated[
            bool | None, Field(strict=True, description="Also save the last frame as a PNG (to chain clips).")
        ] = None,
        service_tier: Annotated[
            Literal["default", "flex"] | None,
            Field(description="`flex`: half price, may queue for hours (not on 2.0)."),
        ] = None,
        wait: Annotated[
            bool, Field(strict=True, description="Wait for the video (bounded) instead of returning at once.")
        ] = True,
        dry_run: Annotated[
            bool,
            Field(strict=True, description="Validate and show the exact request and estimated tokens; send nothing."),
        ] = False,
        force_new: Annotated[
            bool, Field(strict=True, description="Pay for a new video even if an identical request was just made.")
        ] = False,
    ) -> VideoTask:
        from seedance_mcp.validation import GenerateArgs, validate_request

        args = GenerateArgs(
            prompt=prompt,
            model=model,
            first_frame=first_frame,
            last_frame=last_frame,
            reference_images=reference_images or (),
            reference_videos=reference_videos or (),
            reference_audios=reference_audios or (),
            resolution=resolution,
            ratio=ratio,
            duration=duration,
            frames=frames,
            seed=seed,
            camera_fixed=camera_fixed,
            watermark=watermark,
            generate_audio=generate_audio,
            draft=draft,
            return_last_frame=return_last_frame,
            service_tier=service_tier,
        )
        try:
            # Validation first: a refused call costs nothing, not even opening the journal.
            request = validate_request(args, preset, settings.default_model)
            request = await anyio.to_thread.run_sync(_resolve_media, request, settings)
            runtime = await runtime_of(ctx)
            http_request = runtime.provider.create_request(request)
            if dry_run:
                return dry_run_result(runtime, request, http_request)
            if not runtime.provider.has_key:
                raise ConfigurationError(
                    "No API key is configured, so nothing was sent. Set SEEDANCE_API_KEY (or ARK_API_KEY) in the MCP "
                    "server's environment and restart it; or set SEEDANCE_PROVIDER=sandbox to try it for free."
                )
            spec = MODELS_BY_KEY[request.model_key]
            # The sandbox's renders take as long as it is told, not as long as Seedance's.
            expected = (
                settings.sandbox_render_seconds
                if settings.provider == "sandbox"
                else expected_render_seconds(spec, request.effective_resolution, request.effective_seconds)
            )
            job, reused = await runtime.jobs.submit(
                request, http_request, expected_render=expected, force_new=force_new
            )
            if wait and settings.wait_seconds > 0 and not job.settled:
                job = await runtime.jobs.wait(job.job_id, settings.wait_seconds, _reporter(ctx))
            return job_result(job, reused=reused)
        except SeedanceError as exc:
            raise ToolError(str(exc)) from exc

    @server.tool(
        annotations=ToolAnnotations(
            title="Get a video task's status", read_only_hint=True, idempotent_hint=True, open_world_hint=True
        ),
    )
    async def get_task_status(
        task_id: TaskId,
        ctx: Context[LazyRuntime, Any],
        wait: Annotated[
            bool, Field(description="Wait (bounded, with progress notifications) for the video to finish.")
        ] = False,
    ) -> VideoTask:
        """Get the state of a video job started by generate_video; free.

        Returns the status (queued, running, succeeded, failed, cancelled, expired, unknown), the saved MP4's
        video_path once done, the error when it failed, and the billed tokens. With wait=true it keeps waiting,
        reporting progress, and returns when the video is saved or the wait bound passes; call it again if the
        status is still queued or running.
        """
        runtime = await runtime_of(ctx)
        try:
            job = await runtime.jobs.find(task_id)
            job = await runtime.jobs.retry_download(job)
            if wait and settings.wait_seconds > 0 and not job.settled:
                job = await runtime.jobs.wait(job.job_id, settings.wait_seconds, _reporter(ctx))
            return job_result(job)
        except SeedanceError as exc:
            raise ToolError(str(exc)) from exc

    @server.tool(
        annotations=ToolAnnotations(
            title="List video tasks", read_only_hint=True, idempotent_hint=True, open_world_hint=False
        ),
    )
    async def list_tasks(
        ctx: Context[LazyRuntime, Any],
        status: Annotated[
            Literal["queued", "running", "succeeded", "failed", "cancelled", "expired", "unknown"] | None,
            Field(description="Only tasks in this state."),
        ] = None,
        limit: Annotated[int, Field(ge=1, le=200, description="How many, newest first.")] = 20,
    ) -> TaskList:
        """List the video jobs this server has submitted, newest first, from its local journal; free.

        Each has its task_id, prompt excerpt, model, status, saved video_path and created time. Use it to find a
        task id again, or to check for a job before submitting one that may already exist.
        """
        runtime = await runtime_of(ctx)
        jobs, total = await runtime.jobs.store.recent(status, limit)
        live = [await runtime.jobs.current(job) for job in jobs]
        return TaskList(tasks=[job_result(job) for job in live], total=total)

    @server.tool(
        annotations=ToolAnnotations(
            title="Cancel a queued video task",
            read_only_hint=False,
            destructive_hint=True,
            idempotent_hint=True,
            open_world_hint=True,
        ),
    )
    async def cancel_task(task_id: TaskId, ctx: Context[LazyRuntime, Any]) -> CancelResult:
        """Cancel a video job that is still queued, so it is not rendered or billed.

        A task that is already rendering cannot be cancelled on Ark (it finishes, is billed, and is still saved);
        the answer says so. Some gateways have no cancel call at all.
        """
        runtime = await runtime_of(ctx)
        try:
            job, cancelled, message = await runtime.jobs.cancel(task_id)
        except SeedanceError as exc:
            raise ToolError(str(exc)) from exc
        return CancelResult(task_id=job.handle, cancelled=cancelled, status=job.status, message=message)

    @server.tool(
        annotations=ToolAnnotations(
            title="List Seedance models", read_only_hint=True, idempotent_hint=True, open_world_hint=False
        ),
    )
    def list_models() -> ModelList:
        """List the Seedance models on the configured provider with their exact limits; free, instant.

        For each: modes (text, first frame, first+last frame, references), resolutions, ratios, duration range,
        frames, audio, draft, reference counts, defaults and typical render time.
        """
        return ModelList(
            provider=preset.name,
            provider_title=preset.title,
            default_model=MODELS_BY_KEY[default_spec_key].model_id(preset.region),
            models=[model_info(preset, key, default_spec_key) for key in preset.model_keys],
            gateway_limits=_limit_lines(preset),
        )

    _accept_log_level_requests(server)
    return server


_MCP_LOG_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "notice": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "alert": logging.CRITICAL,
    "emergency": logging.CRITICAL,
}


def _accept_log_level_requests(server: MCPServer[LazyRuntime]) -> None:
    """Answer `logging/setLevel`, which some hosts (VS Code, older Inspectors) send on connect.

    MCPServer registers no handler, so they get -32601 and some show an error. The level applies to this
    server's own stderr log; MCP log notifications are deprecated and not sent. Reaching the low-level server is
    the SDK's documented way to add a handler it lacks.
    """
    from mcp.server.context import ServerRequestContext
    from mcp.types import SetLevelRequestParams

    async def set_level(ctx: ServerRequestContext[Any], params: SetLevelRequestParams) -> dict[str, Any]:
        logging.getLogger("seedance_mcp").setLevel(_MCP_LOG_LEVELS.get(str(params.level), logging.INFO))
        return {}

    server._lowlevel_server.add_request_handler(  # pyright: ignore[reportPrivateUsage]
        "logging/setLevel", SetLevelRequestParams, set_level
    )


def _default_key(settings: Settings, preset: Preset) -> str:
    from seedance_mcp.catalog import find_model

    spec = find_model(settings.default_model, preset)
    return spec.key if spec else preset.default_model


def _limit_lines(preset: Preset) -> list[str]:
    limits = preset.limits
    lines: list[str] = []
    if limits.durations:
        lines.append(f"duration: only {', '.join(map(str, limits.durations))} s")
    if limits.resolutions:
        lines.append(f"resolution: only {', '.join(limits.resolutions)}")
    if limits.extra_ratios:
        lines.append(f"extra ratios: {', '.join(limits.extra_ratios)}")
    if limits.unsupported:
        lines.append(f"cannot send: {', '.join(limits.unsupported)}")
    if not preset.cancel:
        lines.append("no cancel call")
    return lines


def _resolve_media(request: VideoRequest, settings: Settings) -> VideoRequest:
    from seedance_mcp.media import check_request_size, resolve_media

    dirs = settings.readable_dirs()
    update: dict[str, Any] = {}
    if request.first_frame is not None:
        update["first_frame"] = resolve_media(request.first_frame, "first_frame", "image", dirs)
    if request.last_frame is not None:
        update["last_frame"] = resolve_media(request.last_frame, "last_frame", "image", dirs)
    for name, kind in (("reference_images", "image"), ("reference_videos", "video"), ("reference_audios", "audio")):
        values: tuple[str, ...] = getattr(request, name)
        if values:
            update[name] = tuple(
                resolve_media(value, f"{name}[{i}]", kind, dirs)  # type: ignore[arg-type]
                for i, value in enumerate(values)
            )
    if not update:
        return request
    resolved = request.model_copy(update=update)
    # Every file is inlined now: refuse a body the provider would refuse for its size, naming the biggest file.
    media = {"first_frame", "last_frame", "reference_images", "reference_videos", "reference_audios"}
    check_request_size(resolved.model_dump(include={"prompt", *media}))
    return resolved


def _reporter(ctx: Context[LazyRuntime, Any]) -> Callable[[float, str], Any]:
    async def report(progress: float, message: str) -> None:
        await ctx.report_progress(progress, 100.0, message)

    return report


__all__ = ["Runtime", "create_app"]
