"""`list_models`: the models of the configured provider with their exact limits; and the summary the
generate_video description carries."""

from __future__ import annotations

from mcp.server import MCPServer
from mcp.types import ToolAnnotations

from seedance_mcp.catalog import MODE_TEXT, MODELS_BY_KEY, ModelSpec, Preset, estimate_tokens
from seedance_mcp.config import Settings
from seedance_mcp.models import ModelInfo, ModelList
from seedance_mcp.pricing import CURRENCY_OF, PRICE_SOURCE
from seedance_mcp.runtime import LazyRuntime


def register(server: MCPServer[LazyRuntime], settings: Settings, preset: Preset, default_spec_key: str) -> None:
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
            models=[model_info(preset, key, default_spec_key, settings) for key in preset.model_keys],
            gateway_limits=_limit_lines(preset),
            price_source=PRICE_SOURCE if not settings.prices else "SEEDANCE_PRICES (set by the user)",
        )


def _duration_text(key: str) -> str:
    spec = MODELS_BY_KEY[key]
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
        ("draft_task_id", "draft_task_id (finalise a draft)", spec.draft),
        ("service_tier", "service_tier: flex (half price)", spec.flex_tier),
    ]
    return [text for name, text, has in offered if has and name not in preset.limits.unsupported]


def _price_text(settings: Settings, preset: Preset, spec: ModelSpec) -> str | None:
    price = settings.price_table().get(preset.region, {}).get(spec.key)
    if price is None:
        return None
    currency = CURRENCY_OF[preset.region]
    text = f"{price.per_million:g} {currency}/1M tokens"
    if price.per_million_with_video is not None:
        text += f" ({price.per_million_with_video:g} with video input)"
    if price.per_million_1080p is not None:
        text += f"; 1080p {price.per_million_1080p:g}"
    if price.silent_per_million is not None:
        text += f"; silent {price.silent_per_million:g}"
    return text


def model_info(preset: Preset, key: str, default_key: str, settings: Settings | None = None) -> ModelInfo:
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
        options=_options(spec, preset),
        price=_price_text(settings, preset, spec) if settings is not None else None,
        lifecycle=spec.lifecycle,
        declared_ids=[i for i, k in (settings.model_map.items() if settings else ()) if k == spec.key],
        notes=list(spec.notes),
    )


def catalog_summary(preset: Preset, default_key: str) -> str:
    """`2.5, 2.0-mini, 1.5-pro (default), …`: the keys a call may name."""
    return ", ".join(f"{key} (default)" if key == default_key else key for key in preset.model_keys)


def default_key(settings: Settings, preset: Preset) -> str:
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
