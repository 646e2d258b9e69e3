"""generate_video's arguments, declared once.

`VideoArguments` is what a call asks for: each field with the description the model reads and its strictness. It
is the tool's signature (`with_arguments_of` gives the tool function these fields as its parameters, and MCPServer
builds the published input schema from them), it is what `validation.validate_request` checks, and `VideoRequest`
(wire.py) is built on it: the same fields after validation, plus what validation works out (`model_key`, `mode`,
the `effective_*` values). Adding an argument is one field here, plus the dialects that send it.

`CallOptions` are the tool-only arguments beside them: how the call behaves, not what it asks the provider for.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic.json_schema import SkipJsonSchema

from seedance_mcp.catalog import Resolution

RatioArg = Literal["16:9", "4:3", "1:1", "3:4", "9:16", "21:9", "adaptive", "9:21", "keep_ratio"]
"""Every ratio a preset takes (the catalog's fixed ones, `adaptive`, and the gateways' extra ones)."""


def _none_is_empty(value: Any) -> Any:
    return () if value is None else value


MediaList = Annotated[
    tuple[str, ...],
    BeforeValidator(_none_is_empty),
    WithJsonSchema({"anyOf": [{"items": {"type": "string"}, "type": "array"}, {"type": "null"}]}),
]
"""A list of media: published as an array or null (models send null for "none"), held as a tuple, () for none."""

ImageArg = Annotated[str | None, Field(description="https URL, data: URL or local file path.")]


class VideoArguments(BaseModel):
    """The arguments of a generate_video call that say what to make. `None` (or `()`) means "not given": the
    model's default applies and nothing is sent for it. The descriptions are prompt text every conversation pays
    for: keep them short."""

    model_config = ConfigDict(frozen=True)

    prompt: Annotated[str, Field(description="What happens: subject, action, scene, camera, style.")]
    model: Annotated[str | None, Field(description="Model id or key (e.g. `2.0`); default: the configured one.")] = None
    first_frame: ImageArg = None
    last_frame: Annotated[str | None, Field(description="Needs first_frame; same forms.")] = None
    reference_images: MediaList = Field(
        default_factory=tuple, description="Reference images (per model, see list_models)."
    )
    reference_videos: MediaList = Field(
        default_factory=tuple, description="Video URLs, asset:// ids, or task ids of videos made here."
    )
    reference_audios: MediaList = Field(default_factory=tuple, description="Audio URLs or local wav/mp3.")
    resolution: Resolution | None = None
    ratio: Annotated[RatioArg | None, Field(description="`adaptive` follows the input image.")] = None
    duration: Annotated[
        int | None, Field(strict=True, description="Seconds; -1: the model picks (billed as made).")
    ] = None
    frames: Annotated[int | None, Field(strict=True, description="Instead of duration (1.0): 25+4n, 29-289.")] = None
    seed: Annotated[int | None, Field(strict=True, description="-1 random, or 0-4294967295.")] = None
    camera_fixed: Annotated[bool | None, Field(strict=True, description="Static camera (1.x).")] = None
    watermark: Annotated[bool | None, Field(strict=True, description="'AI generated' mark.")] = None
    generate_audio: Annotated[bool | None, Field(strict=True, description="Sound (default on where offered).")] = None
    draft: Annotated[bool | None, Field(strict=True, description="Cheap 480p preview (2.5, 1.5 pro).")] = None
    return_last_frame: Annotated[
        bool | None, Field(strict=True, description="Also save the last frame as a PNG (Ark gives its URL anyway).")
    ] = None
    service_tier: Annotated[
        Literal["default", "flex"] | None, Field(description="`flex`: half price, may queue for hours.")
    ] = None
    output_format: Literal["mp4", "mov"] | None = None
    omni_reference_task_type: Annotated[
        Literal["auto", "reference", "edit", "extend"] | None,
        Field(description="Edit or extend the one reference video (2.5)."),
    ] = None
    web_search: Annotated[bool | None, Field(strict=True, description="Text-only 2.0: let it search the web.")] = None
    execution_expires_after: Annotated[
        int | None, Field(strict=True, description="3600-259200 s before an unstarted task expires.")
    ] = None
    priority: Annotated[int | None, Field(strict=True, description="0-9, queue order.")] = None
    draft_task_id: Annotated[str | None, Field(description="Render this draft task for real.")] = None
    """Render this draft task for real (1.5 pro, 2.5): its settings and media are the draft's."""
    continue_from: Annotated[str | None, Field(description="Task id of a finished clip to carry on from.")] = None
    """A finished clip made here to continue: a model that extends (2.5) extends it by its task id; any other starts
    the new clip from its last frame (generate.py resolves it)."""


class CallOptions(BaseModel):
    """generate_video's tool-only arguments: how the call behaves."""

    model_config = ConfigDict(frozen=True)

    approval_id: Annotated[
        str | None, Field(description="From a refusal or dry run that asked for the user's approval, once given.")
    ] = None
    wait: Annotated[bool, Field(strict=True, description="Wait (bounded) for the video.")] = True
    dry_run: Annotated[bool, Field(strict=True, description="Show the request and cost; send nothing.")] = False
    force_new: Annotated[bool, Field(strict=True, description="Pay again even if an identical call was just made.")] = (
        False
    )
    takes: Annotated[int, Field(strict=True, description="1-4 variants at once, one approval.")] = 1
    approve_cost: SkipJsonSchema[float | str | None] = None
    """The old form of approval, left out of the published schema: accepted only to be answered with what to send
    instead."""


_Function = TypeVar("_Function", bound=Callable[..., Any])


def with_arguments_of(*models: type[BaseModel]) -> Callable[[_Function], _Function]:
    """Give a tool function taking `**arguments` the fields of `models` as its keyword parameters, after its own
    (the injected context). MCPServer reads a tool's parameters with `inspect.signature`, which honours
    `__signature__`: the tool's input schema and argument checks are then these models' fields, as declared."""

    def decorate(function: _Function) -> _Function:
        signature = inspect.signature(function, eval_str=True)  # MCPServer does not evaluate a __signature__
        own = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
        function.__signature__ = signature.replace(parameters=[*own, *_parameters(models)])  # type: ignore[attr-defined]
        return function

    return decorate


def _parameters(models: Sequence[type[BaseModel]]) -> list[inspect.Parameter]:
    parameters: list[inspect.Parameter] = []
    for model in models:
        for name, field in model.model_fields.items():
            # The FieldInfo itself rides along as metadata: its description, strictness, validators and default (or
            # default factory) reach the tool's argument model as declared.
            annotation = Annotated[(field.annotation, *field.metadata, field)]
            parameters.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation))
    return parameters


def split_arguments(arguments: dict[str, Any]) -> tuple[VideoArguments, CallOptions]:
    """A call's checked arguments (as the tool received them) as the video's and the call's."""
    video = {name: value for name, value in arguments.items() if name in VideoArguments.model_fields}
    options = {name: value for name, value in arguments.items() if name in CallOptions.model_fields}
    return VideoArguments.model_validate(video), CallOptions.model_validate(options)


_EXPECTED = {
    "string_type": "a string (in quotes)",
    "int_type": "a whole number (a JSON integer, not in quotes)",
    "int_from_float": "a whole number (a JSON integer, not in quotes)",
    "int_parsing": "a whole number (a JSON integer, not in quotes)",
    "float_type": "a number (not in quotes)",
    "float_parsing": "a number (not in quotes)",
    "bool_type": "true or false (a JSON boolean, not in quotes)",
    "bool_parsing": "true or false (a JSON boolean, not in quotes)",
    "tuple_type": 'a list of strings, e.g. ["https://…"] (a list even for one item)',
    "list_type": 'a list of strings, e.g. ["https://…"] (a list even for one item)',
    "missing": "required",
}
"""What a mismatched JSON value should have been, by pydantic's error type."""


def _given(value: Any) -> str:
    """The JSON kind of what the caller sent (and the value itself when short and not their prose)."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f'the string "{value}"' if len(value) <= 40 else "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "null" if value is None else type(value).__name__


def explain_invalid_arguments(errors: Sequence[Any], hints: dict[str, str]) -> str:
    """A tool error's text for arguments that failed their declared types (a pydantic ValidationError's
    `errors()`): each argument named, with what was given and the form to use (`hints` adds, per argument, what the
    values mean here, e.g. the model keys); never pydantic's own text."""
    from seedance_mcp.errors import InvalidArgument

    parts: list[str] = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ()) if not isinstance(part, int)]
        indexes = "".join(f"[{part}]" for part in error.get("loc", ()) if isinstance(part, int))
        argument = (location[0] if location else "arguments") + indexes
        kind = str(error.get("type", ""))
        if kind == "missing":
            problem = "it is required"
        elif kind == "literal_error":
            expected = str(error.get("ctx", {}).get("expected", "")).replace("'", '"')
            problem = f"{_given(error.get('input'))} is not one of the allowed values ({expected})"
        elif kind in _EXPECTED:
            problem = f"got {_given(error.get('input'))}; give {_EXPECTED[kind]}"
        else:  # ranges and the like: pydantic's one-line reason, without its links or the input echoed
            problem = f"{str(error.get('msg', 'not valid')).rstrip('.')} (got {_given(error.get('input'))})"
        hint = hints.get(location[0]) if location else None
        message = InvalidArgument(argument, problem, hint=f"{hint}." if hint else None)
        parts.append(str(message).removesuffix(" Nothing was sent to the provider and nothing was charged."))
    return " ".join([*parts, "Nothing was sent to the provider and nothing was charged."])
