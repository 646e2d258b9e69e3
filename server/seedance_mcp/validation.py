"""Check a generate_video call against the model's and the gateway's real limits, before anything is sent.

Pure: reads only the preset (which carries its models as its region sells them). Every refusal names the argument,
the values this model allows, and what to do.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date

from seedance_mcp.catalog import (
    FIXED_RATIOS,
    MODE_TEXT,
    Mode,
    ModelSpec,
    Preset,
    Ratio,
    Resolution,
    estimate_tokens,
    find_model,
)
from seedance_mcp.errors import InvalidArgument
from seedance_mcp.requests import VideoArguments
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


EXPIRES_MIN, EXPIRES_MAX = 3600, 259200
# What finalising a draft keeps from the draft itself: these cannot be given again.
_DRAFT_KEEPS = (
    "first_frame", "last_frame", "reference_images", "reference_videos", "reference_audios", "ratio", "duration",
    "frames", "seed", "camera_fixed", "draft", "generate_audio", "omni_reference_task_type", "web_search",
)  # fmt: skip


def _listing(values: Sequence[object]) -> str:
    return ", ".join(str(v) for v in values)


def _models_with(preset: Preset, capability: str) -> str:
    """The ids of this preset's models that have a boolean capability (`draft`, `audio`)."""
    return _models_where(preset, lambda s: getattr(s, capability))


def _on_sale(preset: Preset, today: date | str | None = None) -> list[ModelSpec]:
    day = today or date.today()
    return [s for s in preset.models if s.status_on(day) != "retired"]


def retirement(spec: ModelSpec, preset: Preset, model_id: str, today: date | str) -> InvalidArgument | None:
    """The refusal for a model its region no longer sells, naming the provider's replacement; None if it sells it."""
    lifecycle = spec.lifecycle
    if lifecycle is None or lifecycle.status_on(today) != "retired":
        return None
    when = f" on {lifecycle.date}" if lifecycle.date else ""
    instead = "Pick another model from `list_models`."
    if lifecycle.replacement is not None:
        try:
            replacement = preset.model(lifecycle.replacement)
            instead = (
                f'Use {replacement.model_id(preset.region)} (model="{replacement.key}") instead: the provider\'s named '
                "replacement."
            )
        except KeyError:
            instead = f"The provider names {lifecycle.replacement} as its replacement."
    return InvalidArgument(
        "model",
        f"{model_id} was retired on {preset.title}{when} (source: {lifecycle.source})",
        allowed=_listing([s.model_id(preset.region) for s in _on_sale(preset, today)]),
        hint=instead,
    )


def resolve_model(
    name: str | None,
    preset: Preset,
    default_model: str,
    model_map: Mapping[str, str] | None = None,
    today: date | str | None = None,
) -> tuple[ModelSpec, str]:
    """The catalog model whose rules apply, and the id to send (a declared id or endpoint is sent as given).

    A model its region has retired is refused, naming the replacement."""
    day = today or date.today()
    offered = [s.model_id(preset.region) for s in _on_sale(preset, day)]
    declared = dict(model_map or {})
    if name is not None and not name.strip():
        raise InvalidArgument(
            "model",
            "it is empty",
            allowed=_listing(offered),
            hint="Leave `model` out to use the configured default model.",
        )
    wanted = (name if name is not None else default_model).strip()
    mapped = declared.get(wanted.lower())
    if mapped is not None and mapped in preset.model_keys:
        spec = preset.model(mapped)
        refusal = retirement(spec, preset, wanted, day)
        if refusal is not None:
            raise refusal
        return spec, wanted
    spec = find_model(wanted, preset)
    if spec is None:
        raise InvalidArgument(
            "model",
            f"{wanted!r} is not a Seedance model the catalog knows for the `{preset.name}` provider",
            allowed=_listing([*offered, *declared]),
            hint=(
                "Call `list_models` for each model's limits. An inference endpoint (`ep-…`) or a newer model id "
                "works once the server's environment declares which model it stands for, e.g. SEEDANCE_MODEL_MAP=\""
                f'{wanted}=2.0"; tell the user to add that and restart the server.'
            ),
        )
    refusal = retirement(spec, preset, spec.model_id(preset.region), day)
    if refusal is not None:
        raise refusal
    return spec, spec.model_id(preset.region)


def pick_mode(args: VideoArguments, spec: ModelSpec, preset: Preset) -> Mode:
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
        capable = [s.model_id(preset.region) for s in _on_sale(preset) if mode in s.modes]
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


def validate_request(
    args: VideoArguments,
    preset: Preset,
    default_model: str,
    model_map: Mapping[str, str] | None = None,
    today: date | str | None = None,
) -> VideoRequest:
    """A VideoRequest whose every field the provider will accept, or InvalidArgument. `today` decides lifecycles
    (default: the local date)."""
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
    spec, model_id = resolve_model(args.model, preset, default_model, model_map, today)
    if args.continue_from is not None:
        args = continued(args, spec, model_id, preset)
    limits = preset.limits
    for name in limits.unsupported:
        if getattr(args, name, None) not in (None, (), []):
            raise InvalidArgument(
                name,
                f"the `{preset.name}` provider has no way to send it",
                hint="Leave it out (the provider's default applies) or use a provider that supports it.",
            )

    _check_assets(args, preset)
    mode = pick_mode(args, spec, preset)
    reference_mode = mode in ("reference_images", "multimodal_reference")
    _check_reference_counts(args, spec, model_id)

    resolutions: tuple[Resolution, ...] = spec.reference_resolutions if reference_mode else spec.resolutions
    if limits.resolutions is not None:
        resolutions = tuple(r for r in resolutions if r in limits.resolutions)
    resolution = args.resolution
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
    if args.draft_task_id is not None and spec.draft_final_resolutions:
        # A draft is rendered for real only at these (2.5: 1080p, the provider's default when none is sent).
        resolutions = tuple(r for r in spec.draft_final_resolutions if r in resolutions)
        if resolution is not None and resolution not in resolutions:
            raise InvalidArgument(
                "resolution",
                f"{model_id} renders a draft for real only at {_listing(resolutions)}",
                allowed=f"{_listing(resolutions)} (or leave it out)",
            )
    if resolution is not None and resolution not in resolutions:
        where = " in reference mode" if reference_mode and resolution in spec.resolutions else ""
        raise InvalidArgument(
            "resolution",
            f"{model_id} cannot render {resolution}{where} on `{preset.name}`",
            allowed=_listing(resolutions),
            hint=_higher_resolution_hint(preset, resolution),
        )
    default_resolution = spec.default_resolution
    if args.draft_task_id is not None and spec.draft_final_resolutions and resolutions:
        default_resolution = resolutions[0]
    if default_resolution not in resolutions and resolutions:
        default_resolution = resolutions[-1]
    effective_resolution: Resolution = resolution or default_resolution

    ratio = _check_ratio(args.ratio, spec, model_id, mode, preset)
    if limits.fixed_size:
        _check_fixed_size(args, spec, preset)
    ratio, duration = _check_task_type(args, spec, model_id, mode, ratio, preset)
    if spec.frame_modes_need_adaptive and mode in ("first_frame", "first_last_frame"):
        if ratio not in (None, "adaptive"):
            raise InvalidArgument(
                "ratio",
                f"{model_id} renders from a first frame only with the ratio `adaptive` (it follows the image)",
                allowed="adaptive (or leave it out)",
                hint="Crop the image to the ratio you want instead.",
            )
        ratio = "adaptive"
    if spec.default_duration_auto and duration is None and args.frames is None and args.draft_task_id is None:
        # Left out, the provider picks the length (-1) and bills the real one: that has doubled bills. 5 s it is.
        # (A draft rendered for real keeps the draft's length: nothing may be sent for it.)
        duration = 5
    default_ratio: Ratio = spec.default_t2v_ratio if mode == "text" else spec.default_i2v_ratio
    if mode == "reference_images":
        default_ratio = "16:9"
    effective_ratio: Ratio = ratio if ratio in (*FIXED_RATIOS, "adaptive") else default_ratio  # type: ignore[assignment]
    effective_seconds = _check_length(args.model_copy(update={"duration": duration}), spec, model_id, preset)
    _check_newer_fields(args, spec, model_id, mode, preset)
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
    # The arguments as given, but for what the checks above settled; then what they worked out.
    settled = {
        "prompt": prompt,
        "resolution": resolution,
        "ratio": ratio,
        "duration": duration,
        "return_last_frame": _return_last_frame(args, preset),
        "draft_task_id": args.draft_task_id.strip() if args.draft_task_id else None,
    }
    worked_out = {
        "model_key": spec.key,
        "model_id": model_id,
        "mode": mode,
        "save_last_frame": args.return_last_frame is True,
        "family": spec.family,
        "output_size": (width, height),
        "effective_resolution": effective_resolution,
        "effective_ratio": effective_ratio,
        "effective_seconds": effective_seconds,
        "estimated_tokens": estimate_tokens(width, height, effective_seconds),
    }
    return VideoRequest.model_validate({**args.model_dump(), **settled, **worked_out})


def finalising_draft(request: VideoRequest, spec: ModelSpec, seconds: float | None, ratio: str | None) -> VideoRequest:
    """A draft rendered for real keeps the draft's length and ratio, and is billed for them: its estimate is made
    from the draft's (`seconds`, `ratio` of its job), or from the model's longest length when the draft is not in
    the journal (made in the provider's console), as a length the model picks is."""
    seconds = seconds if seconds is not None and seconds > 0 else float(spec.duration_max)
    kept: Ratio = ratio if ratio in (*FIXED_RATIOS, "adaptive") else request.effective_ratio  # type: ignore[assignment]
    width, height = spec.size(request.effective_resolution, kept)
    return request.model_copy(
        update={
            "effective_seconds": seconds,
            "effective_ratio": kept,
            "output_size": (width, height),
            "estimated_tokens": estimate_tokens(width, height, seconds),
        }
    )


def _return_last_frame(args: VideoArguments, preset: Preset) -> bool | None:
    """What to send for `return_last_frame`: the caller's choice, else `true` where it is free (the Ark dialect).

    Ark returns the last frame's URL at no cost, and a result that carries it lets the next shot start from it
    (`first_frame=<that URL>`); the PNG itself is saved only when the caller asked (`VideoRequest.save_last_frame`).
    Deterministic, so identical calls keep one body and one dedupe fingerprint. A draft has no last frame, and a
    gateway that cannot carry the field gets nothing.
    """
    if args.return_last_frame is not None:
        return args.return_last_frame
    if preset.dialect != "ark" or "return_last_frame" in preset.limits.unsupported or args.draft:
        return None
    return True


def _check_reference_counts(args: VideoArguments, spec: ModelSpec, model_id: str) -> None:
    for argument, given, limit in (
        ("reference_images", args.reference_images, spec.max_reference_images),
        ("reference_videos", args.reference_videos, spec.max_reference_videos),
        ("reference_audios", args.reference_audios, spec.max_reference_audios),
    ):
        if len(given) > limit:
            raise InvalidArgument(
                argument, f"{len(given)} given; {model_id} takes at most {limit}", allowed=f"0-{limit} items"
            )
    if args.reference_audios and not (args.reference_images or args.reference_videos or spec.audio_only_references):
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


def _check_length(args: VideoArguments, spec: ModelSpec, model_id: str, preset: Preset) -> float:
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
    if spec.durations is not None:
        # A fixed set of lengths (gemini-omni): the gateway would round any other one, so it is refused here.
        usable = [d for d in spec.durations if gateway_durations is None or d in gateway_durations]
        if args.duration is None:
            return float(max(usable, default=spec.duration_max))  # the gateway's default: estimate the longest
        if args.duration not in usable:
            raise InvalidArgument(
                "duration",
                f"{args.duration} s is not a length {model_id} renders (it makes only fixed lengths)",
                allowed=f"{_listing(usable)} (seconds)",
                hint="Pick one of these; the gateway would otherwise round it to one of them for you.",
            )
        return float(args.duration)
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
    if spec.durations is not None:
        return f"{_listing(spec.durations)} s"
    text = f"{spec.duration_min}-{spec.duration_max} s"
    return text + " or -1 (the model chooses)" if spec.duration_auto else text


def _models_where(preset: Preset, test: Callable[[ModelSpec], object]) -> str:
    return _listing([s.model_id(preset.region) for s in _on_sale(preset) if test(s)]) or "none on this provider"


def _higher_resolution_hint(preset: Preset, resolution: str) -> str | None:
    capable = [s.model_id(preset.region) for s in _on_sale(preset) if resolution in s.resolutions]
    return f"Models that render {resolution} here: {_listing(capable)}." if capable else None


_MEDIA_ARGUMENTS = ("first_frame", "last_frame", "reference_images", "reference_videos", "reference_audios")
_ASSET = re.compile(r"asset://[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def _check_assets(args: VideoArguments, preset: Preset) -> None:
    """`asset://<id>` media name items of the account's asset library on Ark itself (real people, reusable media,
    created in the console): passed through untouched there, refused where the gateway cannot reach that library."""
    for name in _MEDIA_ARGUMENTS:
        value = getattr(args, name)
        values: Sequence[str] = (value,) if isinstance(value, str) else value or ()
        for index, item in enumerate(values):
            text = item.strip()
            if not text.lower().startswith("asset://"):
                continue
            argument = name if isinstance(value, str) else f"{name}[{index}]"
            if not preset.assets:
                raise InvalidArgument(
                    argument,
                    f"asset:// ids name media in an Ark account's own asset library, which the `{preset.name}` "
                    "provider cannot reach",
                    allowed="an https URL, a data: URL or a local file path",
                    hint="Pass the media itself, or use the ark or byteplus provider with the account that owns it.",
                )
            if not _ASSET.fullmatch(text):
                raise InvalidArgument(argument, f"{text!r} is not an asset id", allowed="asset://<ASSET_ID>")


_CLIP_ID = re.compile(r"(cgt|job)-[A-Za-z0-9_.:-]{1,124}", re.IGNORECASE)
CONTINUE_FORMS = "the task id (`cgt-…`) or job id (`job-…`) of a finished clip made here"


def continued(args: VideoArguments, spec: ModelSpec, model_id: str, preset: Preset) -> VideoArguments:
    """`continue_from` as the arguments that do it on this model: a model that extends videos (2.5) extends the
    clip (it is the one reference video, by task id); any other starts from the clip's last frame (`first_frame`
    holds the clip's id until generate.py puts the picture there)."""
    clip = (args.continue_from or "").strip()
    if not _CLIP_ID.fullmatch(clip):
        raise InvalidArgument("continue_from", "it is not the id of a clip made here", allowed=CONTINUE_FORMS)
    if args.draft_task_id is not None:
        raise InvalidArgument(
            "continue_from",
            "a draft rendered for real (draft_task_id) cannot also continue another clip",
            hint="Finalise the draft first, then continue the clip it makes.",
        )
    extends = "extend" in spec.omni_reference_task_types
    needs = ("reference_videos", "omni_reference_task_type") if extends else ("first_frame",)
    for name in needs:
        if name in preset.limits.unsupported:
            raise InvalidArgument(
                "continue_from",
                f"continuing a clip on {model_id} sends {name}, which the `{preset.name}` provider cannot carry",
                hint="Pass the clip's last frame (its last_frame_url) as first_frame where the provider takes one.",
            )
    conflicts = (
        ("first_frame", "reference_videos") if extends else ("first_frame", "reference_images", "reference_videos")
    )
    for name in conflicts:
        if getattr(args, name) not in (None, ()):
            how = "extends the clip, which is then its one video" if extends else "starts from the clip's last frame"
            raise InvalidArgument(
                "continue_from",
                f"{model_id} {how}, so {name} cannot be given with it",
                hint=f"Leave {name} out, or leave continue_from out and pass {name} alone.",
            )
    if extends:
        if args.omni_reference_task_type not in (None, "extend"):
            raise InvalidArgument(
                "omni_reference_task_type",
                f"continue_from extends the clip on {model_id}",
                allowed="extend (or leave it out)",
            )
        return args.model_copy(
            update={"continue_from": clip, "reference_videos": (clip,), "omni_reference_task_type": "extend"}
        )
    if "first_frame" not in spec.modes:
        raise InvalidArgument(
            "continue_from",
            f"{model_id} can neither extend a clip nor start from an image",
            allowed="on this model: none",
            hint="Models that extend: "
            + _models_where(preset, lambda s: "extend" in s.omni_reference_task_types)
            + "; that start from a frame: "
            + _models_where(preset, lambda s: "first_frame" in s.modes)
            + ".",
        )
    return args.model_copy(update={"continue_from": clip, "first_frame": clip})


def _check_task_type(
    args: VideoArguments, spec: ModelSpec, model_id: str, mode: Mode, ratio: str | None, preset: Preset
) -> tuple[str | None, int | None]:
    """`omni_reference_task_type`: editing or extending one video (2.5). The ratio and duration to send."""
    duration = args.duration
    task_type = args.omni_reference_task_type
    if task_type is None:
        return ratio, duration
    if task_type not in spec.omni_reference_task_types:
        raise InvalidArgument(
            "omni_reference_task_type",
            f"{model_id} takes no omni_reference_task_type",
            allowed=_listing(spec.omni_reference_task_types) or "none for this model",
            hint=f"Models that edit or extend videos: {_models_where(preset, lambda s: s.omni_reference_task_types)}.",
        )
    if task_type == "reference" and mode != "multimodal_reference":
        raise InvalidArgument(
            "omni_reference_task_type",
            "`reference` generates from reference media, and this request has none",
            hint="Add reference_images or reference_videos, or leave omni_reference_task_type out.",
        )
    # Seedance says "keep the input's" with ratio adaptive and duration -1; a model without those (gemini-omni)
    # is sent neither, and its edit keeps the video's own ratio and length all the same.
    adaptive = "adaptive" in spec.i2v_ratios
    if task_type in ("edit", "extend"):
        if len(args.reference_videos) != 1 or mode != "multimodal_reference":
            raise InvalidArgument(
                "reference_videos",
                f"to {task_type} a video, pass exactly that one video",
                allowed="one https URL, asset:// id, or the task id of a video this server made (`cgt-…`)",
            )
        if ratio not in (None, "adaptive" if adaptive else None):
            raise InvalidArgument(
                "ratio", f"{'an edit' if task_type == 'edit' else 'an extension'} keeps the video's own ratio",
                allowed="adaptive (or leave it out)" if adaptive else "leave it out",
            )  # fmt: skip
        ratio = "adaptive" if adaptive else None
    if task_type == "edit":
        if duration not in (None, -1 if spec.duration_auto else None):
            raise InvalidArgument(
                "duration",
                "an edit keeps the video's own length",
                allowed="-1 (or leave it out)" if spec.duration_auto else "leave it out",
            )
        duration = -1 if spec.duration_auto else None
    return ratio, duration


def _check_newer_fields(args: VideoArguments, spec: ModelSpec, model_id: str, mode: Mode, preset: Preset) -> None:
    """The 2026 create fields (protocol.md §11.2), each against what this model takes."""
    if args.output_format is not None and args.output_format not in spec.output_formats:
        raise InvalidArgument(
            "output_format",
            f"{model_id} takes no output_format" if not spec.output_formats else f"{args.output_format!r} is unknown",
            allowed=_listing(spec.output_formats) or "none for this model (it makes MP4)",
            hint=f"Models with a choice: {_models_where(preset, lambda s: s.output_formats)}.",
        )
    if args.web_search:
        if not spec.web_search:
            raise InvalidArgument(
                "web_search",
                f"{model_id} has no web search on {preset.title}",
                hint=(f"{spec.region_note}. " if spec.region_note and "web_search" in spec.region_note else "")
                + f"Drop it, or use {_models_where(preset, lambda s: s.web_search)}.",
            )
        if mode != "text":
            raise InvalidArgument("web_search", "web search works on text-only requests", hint="Drop the images.")
    if args.priority is not None:
        if not spec.priority:
            raise InvalidArgument("priority", f"{model_id} takes no priority", hint="Leave it out.")
        if not 0 <= args.priority <= 9:
            raise InvalidArgument("priority", f"{args.priority} is out of range", allowed="0-9 (9 goes first)")
    expires = args.execution_expires_after
    if expires is not None and not EXPIRES_MIN <= expires <= EXPIRES_MAX:
        raise InvalidArgument(
            "execution_expires_after",
            f"{expires} s is out of range",
            allowed=f"{EXPIRES_MIN}-{EXPIRES_MAX} seconds (1 to 72 hours)",
        )
    if args.draft_task_id is not None:
        if not spec.draft:
            raise InvalidArgument(
                "draft_task_id",
                f"{model_id} makes no drafts to finalise",
                hint=f"Use the model that made the draft: {_models_with(preset, 'draft')}.",
            )
        if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,128}", args.draft_task_id.strip()):
            raise InvalidArgument("draft_task_id", "it is not a task id", allowed="a draft's task id, `cgt-…`")
        for name in _DRAFT_KEEPS:
            if getattr(args, name) not in (None, (), []):
                raise InvalidArgument(
                    name,
                    "finalising a draft renders it with the draft's own settings and media",
                    hint=f"Leave {name} out; only resolution, watermark, return_last_frame and service_tier apply.",
                )


def _check_fixed_size(args: VideoArguments, spec: ModelSpec, preset: Preset) -> None:
    """An OpenAI-style gateway is told a size (`WxH`): a ratio it can be computed from, and a real length."""
    if args.ratio == "adaptive":
        raise InvalidArgument(
            "ratio",
            f"the `{preset.name}` gateway takes an output size, which `adaptive` has none of",
            allowed=_listing(FIXED_RATIOS),
        )
    default_ratio = spec.default_t2v_ratio if args.first_frame is None else spec.default_i2v_ratio
    if args.resolution is not None and args.ratio is None and default_ratio == "adaptive":
        raise InvalidArgument(
            "ratio",
            f"the `{preset.name}` gateway needs a ratio with a resolution (it is told a size, e.g. 1280x720)",
            allowed=_listing(FIXED_RATIOS),
        )
    if args.duration == -1:
        raise InvalidArgument(
            "duration", f"the `{preset.name}` gateway needs a length in seconds", allowed=_duration_text(spec)
        )
