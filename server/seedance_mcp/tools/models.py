"""`list_models`: the models of the configured provider with their exact limits; and the summary the
generate_video description carries."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, cast

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from seedance_mcp.catalog import MODE_TEXT, ModelSpec, Preset, estimate_tokens
from seedance_mcp.config import Settings
from seedance_mcp.errors import InvalidArgument, ProviderError
from seedance_mcp.models import ModelInfo, ModelLifecycle, ModelLine, ModelList
from seedance_mcp.runtime import LazyRuntime

PRICE_SOURCE = (
    "list prices per million output tokens, second-hand (resellers and issue threads), each with its source "
    "(price_source); a user sets their own in SEEDANCE_CATALOG_FILE or SEEDANCE_PRICES"
)


def register(server: MCPServer[LazyRuntime], settings: Settings, preset: Preset, default_spec_key: str) -> None:
    @server.tool(
        annotations=ToolAnnotations(
            title="List Seedance models", read_only_hint=True, idempotent_hint=True, open_world_hint=False
        ),
    )
    def list_models(
        model: Annotated[
            str | None,
            Field(
                description='A model key or id for its full limits (ratios, options, references, notes); "all" for all.'
            ),
        ] = None,
    ) -> Annotated[CallToolResult, ModelList]:
        """List the Seedance models on the configured provider; free, instant.

        A line each: modes (text, first frame, first+last frame, references), resolutions, duration range, audio,
        price. model=KEY adds ratios, frames, draft, reference counts, defaults, typical render time and notes.
        """
        infos = [model_info(preset, spec, default_spec_key, settings) for spec in preset.models]
        if model is None:
            return models_result(preset, settings, default_spec_key, infos, detail=False)
        if model.strip().lower() != "all":
            from seedance_mcp.catalog import find_model

            spec = find_model(model, preset)
            if spec is None:
                raise ToolError(
                    str(
                        InvalidArgument(
                            "model",
                            f"no model {model!r} on {preset.title}",
                            allowed=f'{catalog_summary(preset, default_spec_key)}, or "all"',
                        )
                    ).removesuffix(" Nothing was sent to the provider and nothing was charged.")
                )
            infos = [info for info in infos if info.key == spec.key]
        return models_result(preset, settings, default_spec_key, infos, detail=True)


def model_line(info: ModelInfo, spec: ModelSpec) -> ModelLine:
    """A model as one entry of list_models' default answer."""
    return ModelLine(
        key=info.key,
        model_id=info.model_id,
        is_default=info.is_default,
        modes=list(spec.modes),
        resolutions=info.resolutions,
        duration_seconds=info.duration_seconds,
        generate_audio=info.generate_audio,
        price=info.price,
        # Its standing; who says so, and why, on request.
        lifecycle=info.lifecycle.model_copy(update={"source": None, "note": None}) if info.lifecycle else None,
    )


def models_result(
    preset: Preset, settings: Settings, default_spec_key: str, infos: list[ModelInfo], *, detail: bool
) -> CallToolResult:
    """list_models' answer: by default a line per model (structured) and a short summary (text); with `detail`,
    each model's full ModelInfo, in the structured content and as `field: value` lines."""
    catalog = settings.catalog
    default_model = preset.model(default_spec_key).model_id(preset.region)
    limits = _limit_lines(preset)
    if not detail:
        specs = {spec.key: spec for spec in preset.models}
        listed = ModelList(
            provider=preset.name,
            default_model=default_model,
            models=[model_line(info, specs[info.key]) for info in infos],
            gateway_limits=limits,
            catalog_date=catalog.date,
        )
        structured = listed.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
        lines = [f"Models on {preset.title}: {catalog_summary(preset, default_spec_key)}."]
        for info in infos:
            if info.lifecycle is not None:
                when = f" ({info.lifecycle.date})" if info.lifecycle.date else ""
                lines.append(f"{info.key} is {info.lifecycle.status}{when}.")
        if limits:
            lines.append(f"This provider: {'; '.join(limits)}.")
        lines.append(
            "Each model's modes, resolutions, seconds, audio and price are in the structured result; "
            'list_models(model="KEY") gives its ratios, options, reference limits and notes.'
        )
        text = "\n".join(lines)
    else:
        models = [info.model_dump(mode="json", exclude_none=True) for info in infos]
        structured = {
            "provider": preset.name,
            "default_model": default_model,
            "models": models,
            **({"gateway_limits": limits} if limits else {}),
            "catalog_date": catalog.date,
            "provider_title": preset.title,
            "price_source": PRICE_SOURCE,
            "catalog": catalog.origin,
        }
        text = "\n\n".join(_detail_text(model) for model in models)
        text += f"\n\nPrices: {PRICE_SOURCE}. Catalog checked {catalog.date} ({catalog.origin})."
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=structured)


def _detail_text(model: dict[str, Any]) -> str:
    """One model's full limits as `field: value` lines."""
    lines = [f"{model['key']} ({model['model_id']}):"]
    for name, value in model.items():
        if name in ("key", "model_id") or value in ([], None):
            continue
        if isinstance(value, list):
            shown = "; ".join(map(str, cast("list[Any]", value)))
        elif isinstance(value, dict):
            shown = ", ".join(f"{k}: {v}" for k, v in cast("dict[str, Any]", value).items())
        else:
            shown = str(value).lower() if isinstance(value, bool) else str(value)
        lines.append(f"- {name}: {shown}")
    return "\n".join(lines)


def _duration_text(spec: ModelSpec) -> str:
    if spec.durations:
        return ", ".join(map(str, spec.durations))
    text = f"{spec.duration_min}-{spec.duration_max}"
    return text + " or -1 (auto)" if spec.duration_auto else text


def _options(spec: ModelSpec, preset: Preset) -> list[str]:
    offered = [
        ("output_format", f"output_format: {'|'.join(spec.output_formats)}", bool(spec.output_formats)),
        (
            "omni_reference_task_type",
            f"omni_reference_task_type: {'|'.join(spec.omni_reference_task_types)}",
            bool(spec.omni_reference_task_types),
        ),
        ("web_search", "web_search (text only)", spec.web_search),
        ("priority", "priority: 0-9", spec.priority),
        ("execution_expires_after", "execution_expires_after: 3600-259200 s", True),
        (
            "draft_task_id",
            "draft_task_id (finalise a draft"
            + (f" at {'/'.join(spec.draft_final_resolutions)})" if spec.draft_final_resolutions else ")"),
            spec.draft,
        ),
        ("service_tier", "service_tier: flex (half price)", spec.flex_tier),
    ]
    return [text for name, text, has in offered if has and name not in preset.limits.unsupported]


def _lifecycle(spec: ModelSpec, preset: Preset, today: date) -> ModelLifecycle | None:
    lifecycle = spec.lifecycle
    if lifecycle is None:
        return None
    status = lifecycle.status_on(today)
    if status == "on_sale":
        return None
    replacement = None
    if lifecycle.replacement is not None:
        try:
            replacement = preset.model(lifecycle.replacement).model_id(preset.region)
        except KeyError:
            replacement = lifecycle.replacement
    return ModelLifecycle(
        status=status, date=lifecycle.date, replacement=replacement, source=lifecycle.source, note=lifecycle.note
    )


def model_info(
    preset: Preset, spec: ModelSpec, default_key: str, settings: Settings | None = None, today: date | None = None
) -> ModelInfo:
    from seedance_mcp.pricing import price_sources, price_text

    limits = preset.limits
    resolutions = [r for r in spec.resolutions if limits.resolutions is None or r in limits.resolutions]
    durations = (
        ", ".join(str(d) for d in limits.durations if spec.duration_min <= d <= spec.duration_max)
        if limits.durations
        else _duration_text(spec)
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
        options=_options(spec, preset),
        price=price_text(spec, preset.currency),
        price_source=price_sources(spec),
        lifecycle=_lifecycle(spec, preset, today or date.today()),
        declared_ids=[i for i, k in (settings.model_map.items() if settings else ()) if k == spec.key],
        notes=list(spec.notes),
    )


def lifecycle_text(spec: ModelSpec, preset: Preset) -> str | None:
    """`seedance-1-5-pro-251215 is retired on BytePlus ModelArk since 2026-11-11; the provider names
    dreamina-seedance-2-0-mini-260615 (model="2.0-mini") instead (source: BP-SA (2026-11-13))`, or None."""
    lifecycle = spec.lifecycle
    if lifecycle is None:
        return None
    status = lifecycle.status_on(date.today())
    if status == "on_sale":
        return None
    text = f"{spec.model_id(preset.region)} is {status} on {preset.title}"
    if lifecycle.date:
        text += f" ({'since' if status == 'retired' else 'from'} {lifecycle.date})"
    if lifecycle.note:
        text += f": {lifecycle.note}"
    if lifecycle.replacement is not None:
        try:
            replacement = preset.model(lifecycle.replacement)
            text += f'; the provider names {replacement.model_id(preset.region)} (model="{replacement.key}") instead'
        except KeyError:
            text += f"; the provider names {lifecycle.replacement} instead"
    return f"{text} (source: {lifecycle.source})"


_MODEL_REFUSALS = ("model", "endpoint", "servicenotopen", "notopen", "accessdisabled")


def model_refusal_note(exc: ProviderError, spec: ModelSpec | None, preset: Preset) -> str:
    """What the catalog knows of a model the provider refused as unknown or not open (403/404), else nothing."""
    if spec is None or exc.status_code not in (403, 404):
        return ""
    code = (exc.code or "").lower()
    if exc.status_code == 404 and code and not any(word in code for word in _MODEL_REFUSALS):
        return ""  # an unknown task or draft, not the model
    known = lifecycle_text(spec, preset)
    if known is not None:
        return f" What the catalog knows: {known}."
    if spec.needs_activation:
        return (
            f" {spec.model_id(preset.region)} needs private-model access and activation on the account, in the "
            "ModelArk console of the key's region; ask the user to activate it (or pick another model)."
        )
    if preset.official:
        return (
            f" The catalog sells {spec.model_id(preset.region)} on {preset.title}: check that the model is activated "
            "in the console of the key's region (keys and activation are per region)."
        )
    return ""


def noted(result: CallToolResult, spec: ModelSpec | None, preset: Preset) -> CallToolResult:
    """The result, with a line on a model its region is retiring."""
    notice = lifecycle_text(spec, preset) if spec is not None else None
    if notice is None:
        return result
    return result.model_copy(update={"content": [*result.content, TextContent(type="text", text=f"Note: {notice}.")]})


def catalog_summary(preset: Preset, default_key: str, today: date | None = None) -> str:
    """`2.5, 2.0-mini (default), …`: the keys a call may name (retired models left out)."""
    day = today or date.today()
    keys = [spec.key for spec in preset.models if spec.status_on(day) != "retired"]
    return ", ".join(f"{key} (default)" if key == default_key else key for key in keys)


def default_key(settings: Settings, preset: Preset) -> str:
    from seedance_mcp.catalog import find_model

    spec = find_model(settings.default_model, preset)
    if spec is None:
        mapped = settings.model_map.get(settings.default_model.strip().lower())
        if mapped is not None and mapped in preset.model_keys:
            return mapped
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
    if preset.assets:
        lines.append("asset://<id> media (the account's asset library) pass through")
    return lines
