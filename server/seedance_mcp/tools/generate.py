"""`generate_video`: the one paid tool. Validation first, then the journal, then the provider."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

import anyio
import anyio.to_thread
from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, InputRequiredResult, ToolAnnotations

if TYPE_CHECKING:
    from seedance_mcp.journal.job import Job
    from seedance_mcp.media.uploads import Uploads
    from seedance_mcp.wire import VideoRequest

from seedance_mcp.catalog import ModelSpec, Preset
from seedance_mcp.config import Settings
from seedance_mcp.errors import (
    ConfigurationError,
    InvalidArgument,
    JournalUnavailable,
    ProviderError,
    SeedanceError,
    TaskNotFound,
)
from seedance_mcp.models import VideoTask
from seedance_mcp.requests import CallOptions, VideoArguments, split_arguments, with_arguments_of
from seedance_mcp.results import declined_result, dry_run_result, job_result
from seedance_mcp.runtime import LazyRuntime, Runtime
from seedance_mcp.tools.approval import (
    Approvals,
    approval,
    approval_note,
    can_ask,
    check_cost,
    needs_approval,
    no_way_to_ask,
    quote_of,
    quote_of_takes,
    spend_limits,
)
from seedance_mcp.tools.context import (
    ToolContext,
    caller,
    check_journal,
    reporter,
    unexpected_failure,
    what_a_video_call_cost,
)
from seedance_mcp.tools.models import catalog_summary, model_refusal_note, noted
from seedance_mcp.tools.resources import task_result
from seedance_mcp.tools.takes import check_takes, last_frame_of, takes_result, wait_for_takes
from seedance_mcp.tools.task_extension import task_answer


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


def argument_hints(preset: Preset, default_spec_key: str) -> dict[str, str]:
    """What some arguments' values mean on this provider, for a call that gave one of the wrong JSON type."""
    return {
        "model": f'A model key or id, e.g. "2.0"; the keys here: {catalog_summary(preset, default_spec_key)} '
        "(list_models has their ids)"
    }


OLD_APPROVAL = (
    "`approve_cost` is no longer accepted (an amount approved any video up to it). Call generate_video without it: "
    "a video that needs the user's approval is refused with an approval_id for exactly that video; once the user "
    "agrees, call again with the same arguments and that approval_id. Nothing was sent to the provider and nothing "
    "was charged."
)


def register(server: MCPServer[LazyRuntime], settings: Settings, preset: Preset, default_spec_key: str) -> None:
    generate_description = description(settings, preset, default_spec_key)
    approvals = Approvals(settings)
    uploads = media_uploads(settings)

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
    @with_arguments_of(VideoArguments, CallOptions)
    async def generate_video(
        ctx: ToolContext, **arguments: Any
    ) -> Annotated[CallToolResult, VideoTask] | InputRequiredResult:
        args, options = split_arguments(arguments)
        if options.approve_cost is not None:
            raise ToolError(OLD_APPROVAL)
        from seedance_mcp.validation import validate_request

        spec: ModelSpec | None = None
        # What an unexpected failure may have cost: nothing before the journal insert; after it, look for a job
        # made since `started`, on the journal's clock (which stamps the jobs).
        started: float | None = None
        runtime: Runtime | None = None
        principal = ""
        sending: str | None = None
        job: Job | None = None
        journaled = False  # a job (or the takes) of this call is in the journal: its create may have left
        try:
            # Validation first: a refused call costs nothing, not even opening the journal.
            request = validate_request(args, preset, settings.default_model, settings.model_map)
            check_takes(options.takes, request)
            spec = preset.model(request.model_key)
            runtime = await ctx.request_context.lifespan_context.get()
            check_journal(runtime)
            started = runtime.jobs.now()
            who = caller(ctx, settings)
            principal = who.principal
            request = await _videos_of_tasks(runtime, request, who.principal)
            request = await _draft_of_caller(runtime, request, who.principal, spec)
            request = await last_frame_of(runtime, request, who.principal)
            if _has_media(request):
                request = await anyio.to_thread.run_sync(_resolve_media, request, settings, spec, uploads)
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
            single = quote_of(runtime.provider.preset.name, request, http_request, who.principal, price)
            quote = quote_of_takes(single, options.takes)
            if options.dry_run:
                task = dry_run_result(runtime, request, http_request, price)
                asks = can_ask(ctx)
                unreachable = no_way_to_ask(ctx)  # an id would let the model approve for the person
                needed = needs_approval(who, quote.estimate)
                minted = (
                    await approvals.mint(quote, runtime.jobs.now()) if needed and not asks and not unreachable else None
                )
                if options.takes > 1:
                    task.next_step += f" Takes: {quote.what}."
                task.next_step += approval_note(who, quote, asks, minted, unreachable=unreachable)
                return noted(await task_result(task), spec, preset)
            if not runtime.provider.has_key:
                raise ConfigurationError(
                    "No API key is configured, so nothing was sent. Set SEEDANCE_API_KEY (or ARK_API_KEY) in the MCP "
                    "server's environment and restart it; or set SEEDANCE_PROVIDER=sandbox to try it for free."
                )
            check_cost(who, request, price)
            approved = await approval(ctx, who, quote, options.approval_id, approvals, runtime.jobs.now())
            if isinstance(approved, InputRequiredResult):
                return approved  # the question for the person, on 2026-07-28; the client calls again with the answer
            if not approved.granted:
                return await task_result(declined_result(preset.name, request, price))
            expected = runtime.expected_render(spec, request)
            if options.takes > 1:
                from seedance_mcp.jobs.submit import take_fingerprint

                sending = take_fingerprint(single.fingerprint, 1, options.takes)  # all takes are journaled at once
                takes = await runtime.jobs.submit_takes(
                    request,
                    http_request,
                    options.takes,
                    expected_render=expected,
                    force_new=options.force_new,
                    price=price,
                    limits=spend_limits(who, preset.currency),
                    principal=who.principal,
                    dedupe_since=approved.since,
                )
                journaled = True
                jobs = [job for job, _ in takes]
                if options.wait and settings.wait_seconds > 0:
                    jobs = await wait_for_takes(runtime, jobs, settings.wait_seconds, reporter(ctx), who.principal)
                reused = [was_reused for _, was_reused in takes]
                return noted(await takes_result(list(zip(jobs, reused, strict=True)), request), spec, preset)
            until = anyio.current_time() + settings.wait_seconds  # the call's wait bounds the create and the render
            sending = single.fingerprint  # from here a job may be journaled and its request sent
            job, reused = await runtime.jobs.submit(
                request,
                http_request,
                expected_render=expected,
                force_new=options.force_new,
                price=price,
                limits=spend_limits(who, preset.currency),
                principal=who.principal,
                approval_id=approved.approval_id,
                wait=settings.wait_seconds or None,  # 0: no wait for the render, the create's answer as ever
            )
            journaled = True
            answer = task_answer()
            remaining = until - anyio.current_time()
            if answer is not None:  # a tasks-extension client: the task carries the rest (task_extension.py)
                answer.job = job
            elif options.wait and remaining > 0 and not job.settled:
                job = await runtime.jobs.wait(job.job_id, remaining, reporter(ctx), who.principal)
            return noted(await task_result(job_result(job, reused=reused), job), spec, preset)
        except JournalUnavailable as exc:
            # Before a job is in the journal nothing can have been sent (a create leaves only once it is): the
            # caller is told so, whichever read or write before it (a task-id reference, a draft, the insert) failed.
            raise ToolError(str(exc if journaled else exc.refusing_a_video())) from exc
        except ProviderError as exc:
            # A refusal of a catalog model (not found, not open): say what the catalog knows of it. A provider that
            # quotes an uploaded file's link back would show the bucket, the key and the key id: shown as the file.
            text = str(exc)
            if uploads is not None:
                from seedance_mcp.media.uploads import without_links

                text = without_links(text)
            raise ToolError(text + model_refusal_note(exc, spec, preset)) from exc
        except SeedanceError as exc:
            raise ToolError(str(exc)) from exc
        except Exception as exc:  # the paid tool's top-level handler: say what is known of the money, never nothing
            known = await what_a_video_call_cost(runtime, sending, started, principal, job)
            raise ToolError(unexpected_failure("generate_video", exc, settings.secrets(), known)) from exc


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
        # A clip extended by continue_from (2.5) is its one reference video: errors name the argument given.
        argument = "continue_from" if value == request.continue_from else f"reference_videos[{i}]"
        try:
            job = await runtime.jobs.find(value, principal)
        except TaskNotFound:
            raise InvalidArgument(
                argument, f"no task {value!r} in this server's journal", hint="Call list_tasks."
            ) from None
        if job.status != "succeeded" or job.task_id is None:
            raise InvalidArgument(argument, f"task {value!r} has no finished video (it is `{job.status}`)")
        url = job.video_url
        if url is None or (job.video_url_expires_at or float("inf")) < time.time() + 300:
            fresh = await runtime.provider.fetch(job.task_id, job.model_key)
            url = fresh.video_url
        if not url or not url.lower().startswith(("https://", "http://")):
            raise InvalidArgument(
                argument,
                f"the provider no longer serves task {value!r}'s video (URLs last 24 h)",
                hint="Upload the saved MP4 somewhere public and pass its https URL.",
            )
        videos.append(url)
    return request.model_copy(update={"reference_videos": tuple(videos)})


async def _draft_of_caller(runtime: Runtime, request: VideoRequest, principal: str, spec: ModelSpec) -> VideoRequest:
    """`draft_task_id` names the caller's own draft (a job id is sent as its task id), priced at the draft's length.
    Another principal's is "no such task". One the journal does not know is refused for a named principal; for the
    one person of stdio (or of the single SEEDANCE_HTTP_TOKEN) it is sent as given: a draft made in the provider's
    console with their key, priced at the model's longest length."""
    from seedance_mcp.validation import finalising_draft

    draft = request.draft_task_id
    if draft is None:
        return request
    try:
        job = await runtime.jobs.find(draft)
    except TaskNotFound:
        if not principal:
            return finalising_draft(request, spec, None, None)
        job = None
    if job is None or job.principal != principal:
        raise InvalidArgument(
            "draft_task_id", f"no task {draft!r} in this server's journal", hint="Call list_tasks for your tasks."
        )
    if job.task_id is None:
        raise InvalidArgument("draft_task_id", f"task {draft!r} was never created at the provider (`{job.status}`)")
    return finalising_draft(request, spec, job.duration, job.ratio).model_copy(update={"draft_task_id": job.task_id})


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


def media_uploads(settings: Settings) -> Uploads | None:
    """Where local references go for the provider to fetch (a bucket, or this hosted server), if anywhere."""
    if not (settings.upload_url or settings.hosted_uploads):
        return None
    from seedance_mcp.media.uploads import uploads_for
    from seedance_mcp.tools.approval import state_dir_key

    def secrets() -> list[bytes]:  # the hosted links' keys: shared by replicas when set, else the state directory's
        shared = [key.get_secret_value().encode() for key in settings.request_state_keys]
        return shared or [state_dir_key(settings.state_dir)]

    return uploads_for(settings, secrets)


def _resolve_media(
    request: VideoRequest, settings: Settings, spec: ModelSpec | None = None, uploads: Uploads | None = None
) -> VideoRequest:
    from seedance_mcp.media.inputs import check_request_size, resolve_media

    dirs = settings.readable_dirs()
    min_seconds = spec.min_reference_seconds if spec else None
    max_seconds = spec.max_reference_video_seconds if spec else None
    update: dict[str, Any] = {}
    if request.first_frame is not None:
        update["first_frame"] = resolve_media(request.first_frame, "first_frame", "image", dirs, uploads=uploads)
    if request.last_frame is not None:
        update["last_frame"] = resolve_media(request.last_frame, "last_frame", "image", dirs, uploads=uploads)
    for name, kind in (("reference_images", "image"), ("reference_videos", "video"), ("reference_audios", "audio")):
        values: tuple[str, ...] = getattr(request, name)
        lengths: list[float] = []
        if values:
            update[name] = tuple(
                resolve_media(
                    value,
                    f"{name}[{i}]",
                    kind,  # type: ignore[arg-type]
                    dirs,
                    min_seconds=min_seconds,
                    max_seconds=max_seconds,
                    uploads=uploads,
                    lengths=lengths,
                )
                for i, value in enumerate(values)
            )
        if max_seconds is not None and sum(lengths) > max_seconds + 0.05:  # the cap is on all of them together
            raise InvalidArgument(
                name,
                f"the local {kind}s play for {sum(lengths):.2f} s together",
                allowed=f"at most {max_seconds:g} s of reference {kind}s in all",
                hint=f"Trim them or pass fewer {kind}s.",
            )
    if not update:
        return request
    resolved = request.model_copy(update=update)
    # Every file is inlined now: refuse a body the provider would refuse for its size, naming the biggest file.
    media = {"first_frame", "last_frame", "reference_images", "reference_videos", "reference_audios"}
    check_request_size(resolved.model_dump(include={"prompt", *media}))
    return resolved
