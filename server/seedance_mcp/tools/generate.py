"""`generate_video`: the one paid tool. Validation first, then the journal, then the provider."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any, Literal

import anyio
import anyio.to_thread
from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

if TYPE_CHECKING:
    from seedance_mcp.wire import VideoRequest

from seedance_mcp.catalog import ModelSpec, Preset, expected_render_seconds
from seedance_mcp.config import Settings
from seedance_mcp.errors import ConfigurationError, InvalidArgument, ProviderError, SeedanceError, TaskNotFound
from seedance_mcp.models import VideoTask
from seedance_mcp.results import declined_result, dry_run_result, job_result
from seedance_mcp.runtime import LazyRuntime, Runtime
from seedance_mcp.tools.approval import approved, check_cost, spend_limits
from seedance_mcp.tools.context import ToolContext, caller, reporter, runtime_of
from seedance_mcp.tools.models import catalog_summary, model_refusal_note, noted
from seedance_mcp.tools.resources import task_result

# Reusable argument types: the descriptions are what the model reads.
ImageArg = Annotated[
    str | None,
    Field(description="https URL, data: URL or local file path."),
]
Resolution = Literal["480p", "720p", "1080p", "4k"]
RatioArg = Literal["16:9", "4:3", "1:1", "3:4", "9:16", "21:9", "adaptive", "9:21", "keep_ratio"]


def description(settings: Settings, preset: Preset, default_spec_key: str) -> str:
    """What the model reads about generate_video: cost, waiting, modes, and this provider's models."""
    return f"""Make a video with ByteDance Seedance on {preset.title} and save the MP4. COSTS MONEY.

Waits up to {settings.wait_seconds:.0f} s, reporting progress (renders take 30 s-5 min). If it returns `queued` or
`running`, call get_task_status(task_id, wait=true); never call generate_video again for the same video (that pays
twice; an identical call within {settings.dedupe_window / 60:.0f} min returns the first job). Images decide the mode:
none = text-to-video; first_frame (+ last_frame); reference_*. Omitted arguments take the model's default (2.5 gets
an explicit 5 s: its own default bills the length it picks). Checked against the model's limits before sending;
dry_run=true shows the request and its cost. Models: {catalog_summary(preset, default_spec_key)}; list_models has
their limits and prices."""


def register(server: MCPServer[LazyRuntime], settings: Settings, preset: Preset, default_spec_key: str) -> None:
    generate_description = description(settings, preset, default_spec_key)

    @server.tool(
        description=generate_description,
        annotations=ToolAnnotations(
            title="Generate a Seedance video (paid)",
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=False,
            open_world_hint=True,
        ),
        meta={
            "ui": {"resourceUri": "ui://seedance/player"},
            **({"anthropic/requiresUserInteraction": True} if settings.require_confirmation else {}),
        },
    )
    async def generate_video(
        prompt: Annotated[str, Field(description="What happens: subject, action, scene, camera, style.")],
        ctx: ToolContext,
        model: Annotated[
            str | None, Field(description="Model id or key (e.g. `2.0`); default: the configured one.")
        ] = None,
        first_frame: ImageArg = None,
        last_frame: Annotated[str | None, Field(description="Needs first_frame; same forms.")] = None,
        reference_images: Annotated[
            list[str] | None, Field(description="Reference images (per model, see list_models).")
        ] = None,
        reference_videos: Annotated[
            list[str] | None,
            Field(description="Video URLs, asset:// ids, or task ids of videos made here."),
        ] = None,
        reference_audios: Annotated[
            list[str] | None,
            Field(description="Audio URLs or local wav/mp3."),
        ] = None,
        resolution: Annotated[Resolution | None, Field()] = None,
        ratio: Annotated[RatioArg | None, Field(description="`adaptive` follows the input image.")] = None,
        duration: Annotated[
            int | None,
            Field(strict=True, description="Seconds; -1: the model picks (billed as made)."),
        ] = None,
        frames: Annotated[
            int | None,
            Field(strict=True, description="Instead of duration (1.0): 25+4n, 29-289."),
        ] = None,
        seed: Annotated[int | None, Field(strict=True, description="-1 random, or 0-4294967295.")] = None,
        camera_fixed: Annotated[bool | None, Field(strict=True, description="Static camera (1.x).")] = None,
        watermark: Annotated[bool | None, Field(strict=True, description="'AI generated' mark.")] = None,
        generate_audio: Annotated[
            bool | None, Field(strict=True, description="Sound (default on where offered).")
        ] = None,
        draft: Annotated[bool | None, Field(strict=True, description="Cheap 480p preview (2.5, 1.5 pro).")] = None,
        return_last_frame: Annotated[
            bool | None,
            Field(strict=True, description="Also save the last frame as a PNG (Ark gives its URL anyway)."),
        ] = None,
        service_tier: Annotated[
            Literal["default", "flex"] | None,
            Field(description="`flex`: half price, may queue for hours."),
        ] = None,
        output_format: Annotated[Literal["mp4", "mov"] | None, Field()] = None,
        omni_reference_task_type: Annotated[
            Literal["auto", "reference", "edit", "extend"] | None,
            Field(description="Edit or extend the one reference video (2.5)."),
        ] = None,
        web_search: Annotated[
            bool | None, Field(strict=True, description="Text-only 2.0: let it search the web.")
        ] = None,
        execution_expires_after: Annotated[
            int | None, Field(strict=True, description="3600-259200 s before an unstarted task expires.")
        ] = None,
        priority: Annotated[int | None, Field(strict=True, description="0-9, queue order.")] = None,
        approve_cost: Annotated[float | None, Field(description="The cost the user approved, when asked to.")] = None,
        draft_task_id: Annotated[str | None, Field(description="Render this draft task for real.")] = None,
        wait: Annotated[bool, Field(strict=True, description="Wait (bounded) for the video.")] = True,
        dry_run: Annotated[
            bool,
            Field(strict=True, description="Show the request and cost; send nothing."),
        ] = False,
        force_new: Annotated[
            bool, Field(strict=True, description="Pay again even if an identical call was just made.")
        ] = False,
    ) -> Annotated[CallToolResult, VideoTask]:
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
            output_format=output_format,
            omni_reference_task_type=omni_reference_task_type,
            web_search=web_search,
            execution_expires_after=execution_expires_after,
            priority=priority,
            draft_task_id=draft_task_id,
        )
        spec: ModelSpec | None = None
        try:
            # Validation first: a refused call costs nothing, not even opening the journal.
            request = validate_request(args, preset, settings.default_model, settings.model_map)
            spec = preset.model(request.model_key)
            runtime = await runtime_of(ctx)
            who = caller(ctx, settings)
            request = await _videos_of_tasks(runtime, request, who.principal)
            if _has_media(request):
                request = await anyio.to_thread.run_sync(_resolve_media, request, settings, spec.min_reference_seconds)
            http_request = runtime.provider.create_request(request)
            from seedance_mcp.pricing import quote

            price = quote(
                spec,
                preset.currency,
                resolution=request.effective_resolution,
                with_video_input=bool(request.reference_videos),
                generate_audio=request.generate_audio,
                flex=request.service_tier == "flex",
                draft=bool(request.draft),
            )
            if dry_run:
                return noted(await task_result(dry_run_result(runtime, request, http_request, price)), spec, preset)
            if not runtime.provider.has_key:
                raise ConfigurationError(
                    "No API key is configured, so nothing was sent. Set SEEDANCE_API_KEY (or ARK_API_KEY) in the MCP "
                    "server's environment and restart it; or set SEEDANCE_PROVIDER=sandbox to try it for free."
                )
            estimate = check_cost(who, request, price)
            if not await approved(ctx, who, request, estimate, price[1] if price else "", approve_cost):
                return await task_result(declined_result(preset.name, request, price))
            # The sandbox's renders take as long as it is told (the prompt's `[[render=N]]`, else
            # SEEDANCE_SANDBOX_RENDER_SECONDS), not as long as Seedance's.
            if settings.provider == "sandbox":
                from seedance_mcp.sandbox.state import planned_seconds

                expected = planned_seconds(request.prompt, settings.sandbox_render_seconds)
            else:
                expected = expected_render_seconds(spec, request.effective_resolution, request.effective_seconds)
            job, reused = await runtime.jobs.submit(
                request,
                http_request,
                expected_render=expected,
                force_new=force_new,
                price=price,
                limits=spend_limits(who),
                principal=who.principal,
            )
            if wait and settings.wait_seconds > 0 and not job.settled:
                job = await runtime.jobs.wait(job.job_id, settings.wait_seconds, reporter(ctx), who.principal)
            return noted(await task_result(job_result(job, reused=reused), job), spec, preset)
        except ProviderError as exc:
            # A refusal of a catalog model (not found, not open): say what the catalog knows of it.
            raise ToolError(str(exc) + model_refusal_note(exc, spec, preset)) from exc
        except SeedanceError as exc:
            raise ToolError(str(exc)) from exc


async def _videos_of_tasks(runtime: Runtime, request: VideoRequest, principal: str) -> VideoRequest:
    """Reference videos given as task ids of this server's own videos become their (fresh) provider URLs, so an
    agent can edit or extend a clip it made."""
    if not any(_is_task_id(value) for value in request.reference_videos):
        return request
    videos: list[str] = []
    for i, value in enumerate(request.reference_videos):
        if not _is_task_id(value):
            videos.append(value)
            continue
        try:
            job = await runtime.jobs.find(value, principal)
        except TaskNotFound:
            raise InvalidArgument(
                f"reference_videos[{i}]", f"no task {value!r} in this server's journal", hint="Call list_tasks."
            ) from None
        if job.status != "succeeded" or job.task_id is None:
            raise InvalidArgument(
                f"reference_videos[{i}]", f"task {value!r} has no finished video (it is `{job.status}`)"
            )
        url = job.video_url
        if url is None or (job.video_url_expires_at or float("inf")) < time.time() + 300:
            fresh = await runtime.provider.fetch(job.task_id, job.model_key)
            url = fresh.video_url
        if not url or not url.lower().startswith(("https://", "http://")):
            raise InvalidArgument(
                f"reference_videos[{i}]",
                f"the provider no longer serves task {value!r}'s video (URLs last 24 h)",
                hint="Upload the saved MP4 somewhere public and pass its https URL.",
            )
        videos.append(url)
    return request.model_copy(update={"reference_videos": tuple(videos)})


def _is_task_id(value: str) -> bool:
    return value.strip().lower().startswith(("cgt-", "job-"))


def _has_media(request: VideoRequest) -> bool:
    return bool(
        request.first_frame is not None
        or request.last_frame is not None
        or request.reference_images
        or request.reference_videos
        or request.reference_audios
    )


def _resolve_media(request: VideoRequest, settings: Settings, min_seconds: float | None = None) -> VideoRequest:
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
                resolve_media(value, f"{name}[{i}]", kind, dirs, min_seconds=min_seconds)  # type: ignore[arg-type]
                for i, value in enumerate(values)
            )
    if not update:
        return request
    resolved = request.model_copy(update=update)
    # Every file is inlined now: refuse a body the provider would refuse for its size, naming the biggest file.
    media = {"first_frame", "last_frame", "reference_images", "reference_videos", "reference_audios"}
    check_request_size(resolved.model_dump(include={"prompt", *media}))
    return resolved
