"""Check a generate_video call against the model's and the gateway's real limits, before anything is sent.

Pure: reads only the catalog. Every refusal names the argument, the values this model allows, and what to do.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from seedance_mcp.catalog import (
    FIXED_RATIOS,
    MODE_TEXT,
    MODELS_BY_KEY,
    Mode,
    ModelSpec,
    Preset,
    Ratio,
    Resolution,
    estimate_tokens,
    find_model,
)
from seedance_mcp.errors import InvalidArgument
from seedance_mcp.wire import VideoRequest

MAX_PROMPT_CHARS = 5000
MAX_SEED = 2**32 - 1
FRAMES_MIN, FRAMES_MAX = 29, 289

# Inline flags (protocol.md §3.5) typed into the prompt would fight the validated arguments; the gateways that
# take flags at all ignore bad values silently, so they are refused here and asked for as arguments.
# A flag is found wherever it sits (after a letter, a dot or a fullwidth comma too) and in any case; a name that
# merely starts like one (`--durable`, `--dramatic`) is prose.
_INLINE_FLAG = re.compile(
    r"--(resolution|rs|ratio|rt|duration|dur|frames|framespersecond|fps|seed|camerafixed|cf|watermark|wm)\b",
    re.IGNORECASE,
)
_FLAG_ARGUMENT = {
    "resolution": "resolution",
    "rs": "resolution",
    "ratio": "ratio",
    "rt": "ratio",
    "duration": "duration",
    "dur": "duration",
    "frames": "frames",
    "framespersecond": "(none: Seedance renders at 24 fps)",
    "fps": "(none: Seedance renders at 24 fps)",
    "seed": "seed",
    "camerafixed": "camera_fixed",
    "cf": "camera_fixed",
    "watermark": "watermark",
    "wm": "watermark",
}


_REFERENCE_ARGUMENTS = ("reference_images", "reference_videos", "reference_audios")


@dataclass(frozen=True, slots=True)
class GenerateArgs:
    """The raw arguments of a generate_video call (types already checked by the tool schema)."""

    prompt: str
    model: str | None = None
    first_frame: str | None = None
    last_frame: str | None = None
    reference_images: Sequence[str] = ()
    reference_videos: Sequence[str] = ()
    reference_audios: Sequence[str] = ()
    resolution: str | None = None
    ratio: str | None = None
    duration: int | None = None
    frames: int | None = None
    seed: int | None = None
    camera_fixed: bool | None = None
    watermark: bool | None = None
    generate_audio: bool | None = None
    draft: bool | None = None
    return_last_frame: bool | None = None
    service_tier: str | None = None


def _listing(values: Sequence[object]) -> str:
    return ", ".join(str(v) for v in values)


def _models_with(preset: Preset, capability: str) -> str:
    """The ids of this preset's models that have a boolean capability (`draft`, `audio`)."""
    specs = [MODELS_BY_KEY[k] for k in preset.model_keys]
    return _listing([s.model_id(preset.region) for s in specs if getattr(s, capability)]) or "none on this provider"


def resolve_model(name: str | None, preset: Preset, default_model: str) -> ModelSpec:
    offered = [MODELS_BY_KEY[k].model_id(preset.region) for k in preset.model_keys]
    if name is not None and not name.strip():
        raise InvalidArgument(
            "model",
            "it is empty",
            allowed=_listing(offered),
            hint="Leave `model` out to use the configured default model.",
        )
    wanted = name if name is not None else default_model
    spec = find_model(wanted, preset)
    if spec is None:
        raise InvalidArgument(
            "model",
            f"{wanted!r} is not a Seedance model offered by the `{preset.name}` provider",
            allowed=_listing(offered),
            hint="Call `list_models` for each model's limits.",
        )
    return spec


def pick_mode(args: GenerateArgs, spec: ModelSpec, preset: Preset) -> Mode:
    frames_given = args.first_frame is not None or args.last_frame is not None
    refs_given = bool(args.reference_images or args.reference_videos or args.reference_audios)
    if frames_given and refs_given:
        given = [name for name in _REFERENCE_ARGUMENTS if getattr(args, name)]
        raise InvalidArgument(
            given[0],
            "frame images (first_frame/last_frame) and references cannot be combined in one request",
            hint="Use either first_frame/last_frame, or reference_* arguments.",
        )
    if args.last_frame is not None and args.first_frame is None:
        raise InvalidArgument("last_frame", "a last frame needs a first frame", hint="Also pass first_frame.")
    mode: Mode
    if args.reference_videos or args.reference_audios:
        mode = "multimodal_reference"
    elif args.reference_images:
        mode = "multimodal_reference" if "multimodal_reference" in spec.modes else "reference_images"
    elif args.first_frame is not None:
        mode = "first_last_frame" if args.last_frame is not None else "first_frame"
    else:
        mode = "text"
    if mode not in spec.modes:
        capable = [
            MODELS_BY_KEY[k].model_id(preset.region) for k in preset.model_keys if mode in MODELS_BY_KEY[k].modes
        ]
        argument = {
            "text": "first_frame",
            "first_frame": "first_frame",
            "first_last_frame": "last_frame",
            "reference_images": "reference_images",
            "multimodal_reference": "reference_videos" if args.reference_videos else "reference_audios",
        }[mode]
        raise InvalidArgument(
            argument,
            f"{spec.model_id(preset.region)} cannot do {MODE_TEXT[mode]}",
            allowed="; ".join(MODE_TEXT[m] for m in spec.modes),
            hint=f"Models that can: {_listing(capable) or 'none on this provider'}.",
        )
    return mode


def validate_request(args: GenerateArgs, preset: Preset, default_model: str) -> VideoRequest:
    """A VideoRequest whose every field the provider will accept, or InvalidArgument."""
    prompt = args.prompt.strip()
    if not prompt:
        raise InvalidArgument("prompt", "it is empty", hint="Describe the video to make.")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InvalidArgument(
            "prompt", f"it has {len(prompt)} characters", allowed=f"at most {MAX_PROMPT_CHARS} characters"
        )
    flag = _INLINE_FLAG.search(prompt)
    if flag:
        raise InvalidArgument(
            "prompt",
            f"it contains the inline flag `--{flag.group(1)}`",
            hint=f"Remove it and pass the value as the `{_FLAG_ARGUMENT[flag.group(1).lower()]}` argument instead.",
        )
    spec = resolve_model(args.model, preset, default_model)
    model_id = spec.model_id(preset.region)
    limits = preset.limits
    for name in limits.unsupported:
        if getattr(args, name) is not None:
            raise InvalidArgument(
                name,
                f"the `{preset.name}` provider has no way to send it",
                hint="Leave it out (the provider's default applies) or use a provider that supports it.",
            )

    mode = pick_mode(args, spec, preset)
    reference_mode = mode in ("reference_images", "multimodal_reference")
    _check_reference_counts(args, spec, model_id)

    resolutions: tuple[Resolution, ...] = spec.reference_resolutions if reference_mode else spec.resolutions
    if limits.resolutions is not None:
        resolutions = tuple(r for r in resolutions if r in limits.resolutions)
    resolution = cast("Resolution | None", args.resolution)
    if args.draft:
        if not spec.draft:
            raise InvalidArgument(
                "draft",
                f"{model_id} has no draft mode",
                hint=f"Drop draft, or use {_models_with(preset, 'draft')}.",
            )
        if resolution not in (None, "480p"):
            raise InvalidArgument("resolution", "a draft is always 480p", allowed="480p (or leave it out)")
        if args.return_last_frame:
            raise InvalidArgument("return_last_frame", "a draft has no last frame", hint="Drop return_last_frame.")
        if args.service_tier == "flex":
            raise InvalidArgument("service_tier", "a draft cannot use the flex tier", allowed="default")
        # The provider's default resolution is 720p, which it refuses for drafts: send 480p explicitly.
        resolution = "480p"
    if resolution is not None and resolution not in resolutions:
        where = " in reference mode" if reference_mode and resolution in spec.resolutions else ""
        raise InvalidArgument(
            "resolution",
            f"{model_id} cannot render {resolution}{where} on `{preset.name}`",
            allowed=_listing(resolutions),
        )
    default_resolution = spec.default_resolution
    if default_resolution not in resolutions and resolutions:
        default_resolution = resolutions[-1]
    effective_resolution: Resolution = resolution or default_resolution

    ratio = _check_ratio(args.ratio, spec, model_id, mode, preset)
    default_ratio: Ratio = spec.default_t2v_ratio if mode == "text" else spec.default_i2v_ratio
    if mode == "reference_images":
        default_ratio = "16:9"
    effective_ratio: Ratio = ratio if ratio in (*FIXED_RATIOS, "adaptive") else default_ratio  # type: ignore[assignment]

    effective_seconds = _check_length(args, spec, model_id, preset)
    if args.seed is not None and not -1 <= args.seed <= MAX_SEED:
        raise InvalidArgument("seed", f"{args.seed} is out of range", allowed=f"-1 (random) to {MAX_SEED}")
    if args.camera_fixed is not None and (not spec.camera_fixed or reference_mode):
        raise InvalidArgument(
            "camera_fixed",
            f"{model_id} takes no camera_fixed" + (" in reference mode" if spec.camera_fixed else ""),
            hint="Leave it out; describe the camera in the prompt instead.",
        )
    if args.generate_audio is not None and not spec.audio:
        raise InvalidArgument(
            "generate_audio",
            f"{model_id} makes silent video only",
            hint=f"Leave it out, or use {_models_with(preset, 'audio')}.",
        )
    if args.service_tier is not None:
        if args.service_tier not in ("default", "flex"):
            raise InvalidArgument("service_tier", f"{args.service_tier!r} is unknown", allowed="default, flex")
        if args.service_tier == "flex" and not spec.flex_tier:
            raise InvalidArgument("service_tier", f"{model_id} has no flex tier", allowed="default")

    width, height = spec.size(effective_resolution, effective_ratio)
    return VideoRequest(
        model_key=spec.key,
        model_id=model_id,
        prompt=prompt,
        mode=mode,
        first_frame=args.first_frame,
        last_frame=args.last_frame,
        reference_images=tuple(args.reference_images),
        reference_videos=tuple(args.reference_videos),
        reference_audios=tuple(args.reference_audios),
        resolution=resolution,
        ratio=ratio,
        duration=args.duration,
        frames=args.frames,
        seed=args.seed,
        camera_fixed=args.camera_fixed,
        watermark=args.watermark,
        generate_audio=args.generate_audio,
        draft=args.draft,
        return_last_frame=args.return_last_frame,
        service_tier=args.service_tier,  # pyright: ignore[reportArgumentType]  # checked above
        effective_resolution=effective_resolution,
        effective_ratio=effective_ratio,
        effective_seconds=effective_seconds,
        estimated_tokens=estimate_tokens(width, height, effective_seconds),
    )


def _check_reference_counts(args: GenerateArgs, spec: ModelSpec, model_id: str) -> None:
    for argument, given, limit in (
        ("reference_images", args.reference_images, spec.max_reference_images),
        ("reference_videos", args.reference_videos, spec.max_reference_videos),
        ("reference_audios", args.reference_audios, spec.max_reference_audios),
    ):
        if len(given) > limit:
            raise InvalidArgument(
                argument, f"{len(given)} given; {model_id} takes at most {limit}", allowed=f"0-{limit} items"
            )
    if args.reference_audios and not (args.reference_images or args.reference_videos):
        raise InvalidArgument(
            "reference_audios",
            "audio can never be the only reference",
            hint="Add at least one reference image or reference video.",
        )


def _check_ratio(ratio: str | None, spec: ModelSpec, model_id: str, mode: Mode, preset: Preset) -> str | None:
    if ratio is None:
        return None
    allowed: tuple[str, ...] = spec.t2v_ratios if mode == "text" else spec.i2v_ratios
    if mode == "reference_images":
        allowed = FIXED_RATIOS
    allowed = (*allowed, *preset.limits.extra_ratios)
    if ratio not in allowed:
        when = {"text": " for text-to-video", "reference_images": " in reference mode"}.get(mode, "")
        raise InvalidArgument("ratio", f"{model_id} does not take {ratio!r}{when}", allowed=_listing(allowed))
    return ratio


def _check_length(args: GenerateArgs, spec: ModelSpec, model_id: str, preset: Preset) -> float:
    """Seconds of video the request will produce (the maximum when the model chooses)."""
    if args.duration is not None and args.frames is not None:
        raise InvalidArgument("frames", "give either duration or frames, not both", hint="Drop one of them.")
    if args.frames is not None:
        if not spec.frames:
            raise InvalidArgument(
                "frames",
                f"{model_id} takes no frames",
                hint=f"Use duration ({_duration_text(spec)}) instead.",
            )
        if not (FRAMES_MIN <= args.frames <= FRAMES_MAX and (args.frames - 25) % 4 == 0):
            raise InvalidArgument(
                "frames",
                f"{args.frames} is not 25 + 4n between {FRAMES_MIN} and {FRAMES_MAX}",
                allowed="29, 33, 37, … 289 (about 24 per second)",
            )
        return args.frames / 24
    gateway_durations = preset.limits.durations
    if args.duration is None:
        return 5.0
    if gateway_durations is not None:
        usable = [d for d in gateway_durations if spec.duration_min <= d <= spec.duration_max]
        if args.duration not in usable:
            raise InvalidArgument(
                "duration",
                f"{args.duration} s is not offered by `{preset.name}` for {model_id}",
                allowed=_listing(usable),
            )
        return float(args.duration)
    if args.duration == -1 and spec.duration_auto:
        return float(spec.duration_max)
    if not spec.duration_min <= args.duration <= spec.duration_max:
        raise InvalidArgument(
            "duration", f"{args.duration} s is out of range for {model_id}", allowed=_duration_text(spec)
        )
    return float(args.duration)


def _duration_text(spec: ModelSpec) -> str:
    text = f"{spec.duration_min}-{spec.duration_max} s"
    return text + " or -1 (the model chooses)" if spec.duration_auto else text
