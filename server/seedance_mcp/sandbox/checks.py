"""Ark's create-time validation as the sandbox answers it, from the catalog: the models of the region it plays (a
model retired there is refused as Ark refuses it), their modes, resolutions, ratios, lengths and fields.

A refusal is an ArkRejection carrying Ark's own status, code and message; each dialect's handlers answer it in
their own envelope. The gateways' alias fields (`size`, inline `--flags`) are read back into Ark's here too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from seedance_mcp.catalog import FIXED_RATIOS, ModelSpec, Ratio, Resolution
from seedance_mcp.sandbox.state import SandboxState, SandboxTask, find_spec


def check_ark(state: SandboxState, body: dict[str, Any], *, strict_fields: bool = True) -> ArkCreate:
    """Ark's create-time validation with this sandbox's models, tasks, clock and account."""
    return check_ark_body(
        body,
        strict_fields=strict_fields,
        tasks=state.tasks,
        now=state.clock(),
        model_map=state.model_map,
        models=state.models,
        today=state.today(),
        inactive=state.inactive_models,
    )


class ArkRejection(Exception):
    """An Ark 4xx the sandbox answers with: the same envelope and codes as Ark."""

    def __init__(self, status: int, code: str, message: str, param: str = "") -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.param = status, code, message, param


def _invalid(param: str, detail: str) -> ArkRejection:
    return ArkRejection(
        400,
        f"InvalidParameter.{param}",
        f"The parameter `{param}` specified in the request is not valid: {detail}",
        param,
    )


# Every create field of the Ark SDK 5.0.54 (protocol.md §11.2); the SDK sends all of them, unset ones as null.
ARK_CREATE_FIELDS = frozenset(
    {
        "model", "content", "safety_identifier", "callback_url", "return_last_frame", "service_tier",
        "execution_expires_after", "priority", "generate_audio", "draft", "camera_fixed", "watermark", "seed",
        "resolution", "ratio", "duration", "frames", "tools", "output_format", "omni_reference_task_type",
    }
)  # fmt: skip


OUTPUT_FORMATS = ("mp4", "mov")


OMNI_REFERENCE_TASK_TYPES = ("auto", "reference", "edit", "extend")


_BOOLEAN_FIELDS = ("return_last_frame", "generate_audio", "draft", "camera_fixed", "watermark")


def without_nulls(body: Mapping[str, Any]) -> dict[str, Any]:
    """The body with its `null` fields dropped: Ark reads a null as "not given" (the SDK sends every field)."""
    return {name: value for name, value in body.items() if value is not None}


@dataclass(frozen=True)
class ArkCreate:
    """A create body that passed Ark's validation."""

    spec: ModelSpec
    model: str
    prompt: str
    draft: SandboxTask | None = None
    """The succeeded draft task a `draft_task` item asks to render for real."""


def check_ark_body(
    body: dict[str, Any],
    *,
    strict_fields: bool = True,
    tasks: Mapping[str, SandboxTask] | None = None,
    now: float = 0.0,
    model_map: Mapping[str, str] | None = None,
    models: Mapping[str, ModelSpec] | None = None,
    today: str | None = None,
    inactive: set[str] | frozenset[str] = frozenset(),
) -> ArkCreate:
    """Ark's create-time validation, from the catalog, or ArkRejection. `body` has no nulls (see without_nulls);
    `tasks` are the tasks a `draft_task` item may name (as of `now`); `model_map` the declared ids and endpoints;
    `models` the region's models (a model retired there by `today` is unknown, as Ark says of a shut-down model);
    `inactive` the keys this account has not activated."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ArkRejection(400, "MissingParameter.model", "The request is missing the required parameter `model`")
    spec = find_spec(model, model_map, models=models)
    if spec is None or (today is not None and spec.status_on(today) == "retired"):
        raise ArkRejection(
            404,
            "InvalidEndpointOrModel.NotFound",
            f"The model or endpoint {model} does not exist or you do not have access to it.",
        )
    if spec.key in inactive:
        raise ArkRejection(
            404,
            "ModelNotOpen",
            f"Your account has not activated the model {model}. Please activate the model service in the Ark console.",
        )
    content: Any = body.get("content")
    if not isinstance(content, list) or not content:
        raise ArkRejection(400, "MissingParameter.content", "The request is missing the required parameter `content`")
    prompt = ""
    roles: list[str] = []
    kinds: list[str] = []
    draft_ids: list[str] = []
    items: list[Any] = content  # pyright: ignore[reportUnknownVariableType]
    for item in items:
        if not isinstance(item, dict):
            raise _invalid("content", "every item must be an object")
        entry = cast("dict[str, Any]", item)
        kind = entry.get("type")
        if kind == "text":
            prompt = str(entry.get("text") or "")
        elif kind in ("image_url", "video_url", "audio_url"):
            media: Any = entry.get(kind)
            url = cast("dict[str, Any]", media).get("url") if isinstance(media, dict) else None
            if not isinstance(url, str) or not url.startswith(("http://", "https://", "data:", "asset://")):
                raise _invalid("content", f"the {kind} item needs a url")
            kinds.append(str(kind))
            roles.append(str(entry.get("role") or ""))
        elif kind == "draft_task":
            reference: Any = entry.get("draft_task")
            draft_id = cast("dict[str, Any]", reference).get("id") if isinstance(reference, dict) else None
            if not isinstance(draft_id, str) or not draft_id:
                raise _invalid("content", "the draft_task item needs the draft task's id")
            draft_ids.append(draft_id)
        else:
            raise _invalid("content", f"unknown content type {kind!r}")
    if draft_ids:
        draft = _check_draft_item(body, spec, model, draft_ids, len(items), tasks or {}, now)
        _check_fields(body, spec, "text", kinds, strict_fields)
        return ArkCreate(spec, model, prompt or draft.prompt, draft)
    images = [r for r, k in zip(roles, kinds, strict=True) if k == "image_url"]
    if kinds.count("video_url") or kinds.count("audio_url") or "reference_image" in images:
        mode = "multimodal_reference" if "multimodal_reference" in spec.modes else "reference_images"
    elif "last_frame" in images:
        mode = "first_last_frame"
    elif images:
        mode = "first_frame"
    else:
        mode = "text"
    if mode not in spec.modes:
        raise _invalid("content", f"the model {model} does not support {mode.replace('_', ' ')}")
    audio_alone = "audio_url" in kinds and not ("image_url" in kinds or "video_url" in kinds)
    if audio_alone and not _catalog(spec, "audio_only_references", False):
        raise _invalid("content", "audio cannot be the only reference media")
    if mode in ("reference_images", "multimodal_reference"):
        counts = {
            "reference images": (roles.count("reference_image"), spec.max_reference_images),
            "reference videos": (kinds.count("video_url"), spec.max_reference_videos),
            "reference audios": (kinds.count("audio_url"), spec.max_reference_audios),
        }
        for what, (count, most) in counts.items():
            if count > most:
                raise _invalid("content", f"at most {most} {what} (got {count})")
    fixed_ratio = body.get("ratio") not in (None, "adaptive")
    if (
        mode in ("first_frame", "first_last_frame")
        and fixed_ratio
        and _catalog(spec, "frame_modes_need_adaptive", False)
    ):
        raise ArkRejection(
            400,
            "InvalidParameter.TaskTypeConstraint",
            f"The parameter `ratio` must be adaptive for {mode.replace('_', ' ')} tasks of {model}",
            "ratio",
        )
    if prompt and "[[sensitive]]" in prompt:
        raise ArkRejection(
            400,
            "InputTextSensitiveContentDetected",
            "The request failed because the input text may contain sensitive information.",
        )
    _check_fields(body, spec, mode, kinds, strict_fields)
    return ArkCreate(spec, model, prompt)


def _check_draft_item(
    body: dict[str, Any],
    spec: ModelSpec,
    model: str,
    draft_ids: list[str],
    items: int,
    tasks: Mapping[str, SandboxTask],
    now: float,
) -> SandboxTask:
    """A `draft_task` item (1.5 pro, 2.5): render an existing, succeeded draft of the same model for real, at the
    resolutions the model finalises drafts at (2.5: 1080p)."""
    if not spec.draft:
        raise _invalid("content", f"the model {model} has no draft tasks to render")
    if len(draft_ids) > 1 or items > 1:
        raise _invalid("content", "draft_task must be the only content item")
    if body.get("draft"):
        raise _invalid("draft", "a draft_task item renders a draft for real; it cannot itself be a draft")
    resolution = body.get("resolution")
    if resolution is not None and spec.draft_final_resolutions and resolution not in spec.draft_final_resolutions:
        allowed = ", ".join(spec.draft_final_resolutions)
        raise _invalid("resolution", f"a draft is rendered for real only at {allowed}, not {resolution}")
    draft = tasks.get(draft_ids[0])
    if draft is None:
        raise ArkRejection(404, "NotFound.DraftTask", f"The draft task {draft_ids[0]} does not exist.", "content")
    if not draft.body.get("draft"):
        raise _invalid("content", f"the task {draft.id} is not a draft task")
    if draft.spec.key != spec.key:
        raise _invalid("content", f"the draft task {draft.id} was made with another model")
    if draft.status(now) != "succeeded":
        raise _invalid("content", f"the draft task {draft.id} has not succeeded")
    return draft


def _check_fields(body: dict[str, Any], spec: ModelSpec, mode: str, kinds: list[str], strict: bool) -> None:
    reference = mode in ("reference_images", "multimodal_reference")
    resolution = body.get("resolution")
    if resolution is not None:
        allowed = spec.reference_resolutions if reference else spec.resolutions
        if resolution not in allowed:
            raise _invalid("resolution", f"{resolution} is not supported by this model")
    ratio = body.get("ratio")
    if ratio is not None:
        ratios = spec.t2v_ratios if mode == "text" else spec.i2v_ratios
        if mode == "reference_images":
            ratios = FIXED_RATIOS
        if ratio not in ratios:
            raise _invalid("ratio", f"{ratio} is not supported")
    duration = body.get("duration")
    if duration is not None:
        ok = _is_int(duration) and (
            spec.duration_min <= duration <= spec.duration_max or (duration == -1 and spec.duration_auto)
        )
        if not ok:
            raise _invalid("duration", f"{duration} is out of range")
    frames = body.get("frames")
    if frames is not None and (not spec.frames or not _is_int(frames) or (frames - 25) % 4 or not 29 <= frames <= 289):
        raise _invalid("frames", f"{frames} is not supported")
    seed = body.get("seed")
    if seed is not None and (not _is_int(seed) or not -1 <= seed <= 2**32 - 1):
        raise _invalid("seed", f"{seed} is out of range")
    for name in _BOOLEAN_FIELDS:
        if body.get(name) is not None and not isinstance(body[name], bool):
            raise _invalid(name, "it must be true or false")
    if body.get("camera_fixed") is not None and (not spec.camera_fixed or reference):
        raise _invalid("camera_fixed", "camera_fixed is not supported")
    if body.get("generate_audio") is not None and not spec.audio:
        raise _invalid("generate_audio", "this model does not generate audio")
    if body.get("draft"):
        if not spec.draft:
            raise _invalid("draft", "this model has no draft mode")
        if body.get("resolution") != "480p":
            raise _invalid("resolution", "draft tasks only support 480p")
    tier = body.get("service_tier")
    if tier is not None and (tier not in ("default", "flex") or (tier == "flex" and not spec.flex_tier)):
        raise _invalid("service_tier", f"{tier} is not supported")
    _check_task_fields(body, spec, mode, kinds)
    if strict:
        unknown = set(body) - ARK_CREATE_FIELDS
        if unknown:
            raise _invalid(sorted(unknown)[0], "unknown parameter")


def _check_task_fields(body: dict[str, Any], spec: ModelSpec, mode: str, kinds: list[str]) -> None:
    """The fields that steer the task rather than the picture (protocol.md §3.1, §11.1, §11.2), allowed per model
    as the catalog says."""
    expires = body.get("execution_expires_after")
    if expires is not None and (not _is_int(expires) or not 3600 <= expires <= 259200):
        raise _invalid("execution_expires_after", f"{expires} is not in [3600, 259200] seconds")
    priority = body.get("priority")
    if priority is not None:
        if not _catalog(spec, "priority", True):
            raise _invalid("priority", "this model takes no priority")
        if not _is_int(priority) or not 0 <= priority <= 9:
            raise _invalid("priority", f"{priority} is not in [0, 9]")
    identifier = body.get("safety_identifier")
    if identifier is not None and (not isinstance(identifier, str) or not identifier or len(identifier) > 64):
        raise _invalid("safety_identifier", "it must be a string of 1 to 64 characters")
    callback = body.get("callback_url")
    if callback is not None and (not isinstance(callback, str) or not callback.startswith(("http://", "https://"))):
        raise _invalid("callback_url", "it must be an http(s) URL")
    output_format = body.get("output_format")
    if output_format is not None:
        formats: tuple[str, ...] = _catalog(spec, "output_formats", OUTPUT_FORMATS)
        if output_format not in formats:
            allowed = ", ".join(formats) if formats else "none: this model makes MP4 only"
            raise _invalid("output_format", f"{output_format} is not supported (allowed: {allowed})")
    task_type = body.get("omni_reference_task_type")
    if task_type is not None:
        family = OMNI_REFERENCE_TASK_TYPES if "multimodal_reference" in spec.modes else ()
        types: tuple[str, ...] = _catalog(spec, "omni_reference_task_types", family)
        if task_type not in types:
            allowed = ", ".join(types) if types else "none for this model"
            raise _invalid("omni_reference_task_type", f"{task_type} is not supported (allowed: {allowed})")
        if task_type in ("edit", "extend") and "video_url" not in kinds:
            raise _invalid("omni_reference_task_type", f"{task_type} needs a reference video to {task_type}")
        duration = body.get("duration")
        if task_type == "edit" and spec.duration_auto and duration is not None and duration != -1:
            raise _invalid("duration", f"an edit task keeps its video's length: only -1 is supported, not {duration}")
        if task_type == "reference" and mode != "multimodal_reference":
            raise _invalid("omni_reference_task_type", "reference needs reference media")
    tools: Any = body.get("tools")
    if tools is not None:
        if not _catalog(spec, "web_search", "multimodal_reference" in spec.modes):
            raise _invalid("tools", "this model takes no tools")
        if mode != "text":
            raise _invalid("tools", "web search is for text-only requests")
        listed: list[Any] = tools if isinstance(tools, list) else [None]  # pyright: ignore[reportUnknownVariableType]
        for tool in listed:
            if not isinstance(tool, dict) or cast("dict[str, Any]", tool).get("type") != "web_search":
                raise _invalid("tools", 'the only tool is {"type": "web_search"}')


def _catalog(spec: ModelSpec, name: str, default: Any) -> Any:
    """A per-model fact from the catalog, or `default` where the catalog does not (yet) record it."""
    return getattr(spec, name, default)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def size_settings(spec: ModelSpec, size: str) -> tuple[Resolution, Ratio] | None:
    """The resolution and ratio whose output size (protocol.md §3.6) is `size` ("WxH") for this model."""
    wanted = size.strip().lower().replace("×", "x")
    for resolution, cells in spec.sizes.items():
        for ratio, (width, height) in zip(FIXED_RATIOS, cells, strict=True):
            if wanted == f"{width}x{height}":
                return resolution, ratio
    return None


_FLAG = re.compile(r"--(\w+)\s+(\S+)")


_FLAG_FIELDS = {
    "resolution": "resolution", "rs": "resolution", "ratio": "ratio", "rt": "ratio", "duration": "duration",
    "dur": "duration", "frames": "frames", "seed": "seed", "camerafixed": "camera_fixed", "cf": "camera_fixed",
    "watermark": "watermark", "wm": "watermark",
}  # fmt: skip


def read_inline_flags(prompt: str) -> dict[str, Any]:
    """The parameters a gateway would lift out of `--flag value` pairs in the prompt (§3.5)."""
    found: dict[str, Any] = {}
    for name, value in _FLAG.findall(prompt):
        field_name = _FLAG_FIELDS.get(name.lower())
        if field_name is None:
            continue
        if field_name in ("duration", "frames", "seed"):
            found[field_name] = int(value) if re.fullmatch(r"-?\d+", value) else value
        elif field_name in ("camera_fixed", "watermark"):
            found[field_name] = value.lower() == "true"
        else:
            found[field_name] = value
    return found
