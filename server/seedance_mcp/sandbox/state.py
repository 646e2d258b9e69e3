"""The sandbox's tasks, its fault plan, its request log, and Ark's validation rules read from the catalog."""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from seedance_mcp.catalog import FIXED_RATIOS, MODELS, ModelSpec

FaultKind = Literal[
    "http_429", "http_500", "http_503", "slow", "drop_before", "drop_after", "malformed", "expired_url", "bad_status"
]
Route = Literal["create", "status", "download", "any"]

_MARKER = re.compile(r"\[\[(\w+)(?:=([^\]]*))?\]\]")


@dataclass
class Fault:
    """One planned misbehaviour: `kind` on the next `times` requests of `route`."""

    route: Route
    kind: FaultKind
    times: int = 1
    retry_after: float | None = None
    delay: float = 0.0


@dataclass
class SandboxTask:
    id: str
    dialect: str
    model: str
    spec: ModelSpec
    prompt: str
    body: dict[str, Any]
    created_at: float
    queued_seconds: float
    render_seconds: float
    fail_code: str | None = None
    cancelled_at: float | None = None
    video_bytes: int = 0
    return_last_frame: bool = False
    resolution: str = "720p"
    ratio: str = "16:9"
    duration: int | None = 5
    frames: int | None = None
    seed: int = 0
    generate_audio: bool | None = None
    url_version: int = 0
    polls: int = 0
    markers: dict[str, str] = field(default_factory=lambda: {})
    """The `[[name=value]]` markers of the prompt (sandbox-only steering)."""

    def status(self, now: float) -> str:
        if self.cancelled_at is not None:
            return "cancelled"
        age = now - self.created_at
        if age < self.queued_seconds:
            return "queued"
        if age < self.queued_seconds + self.render_seconds:
            return "running"
        return "failed" if self.fail_code else "succeeded"

    def finished_at(self) -> float:
        return self.created_at + self.queued_seconds + self.render_seconds


@dataclass
class SandboxState:
    """Everything the sandbox remembers. `render_seconds` is the default time from create to success."""

    render_seconds: float = 6.0
    tasks: dict[str, SandboxTask] = field(default_factory=lambda: {})
    faults: list[Fault] = field(default_factory=lambda: [])
    creates: int = 0
    create_attempts: int = 0
    creates_by_dialect: dict[str, int] = field(default_factory=lambda: {})
    status_polls: int = 0
    """Single-task status requests (GET …/tasks/{id})."""
    list_polls: int = 0
    """Task-list requests (GET …/tasks?filter.task_ids=…)."""
    statuses_read: int = 0
    """Task statuses answered, by either kind of request."""
    downloads: int = 0
    requests: list[dict[str, Any]] = field(default_factory=lambda: [])
    """Every create body received, newest last (bounded), for tests that pin the wire form."""
    clock: Any = time.time

    def take_fault(self, route: str, kinds: frozenset[str] | None = None) -> Fault | None:
        """The next planned fault for `route` (of one of `kinds`, when given), used up by one request."""
        for fault in self.faults:
            if fault.route in (route, "any") and fault.times > 0 and (kinds is None or fault.kind in kinds):
                fault.times -= 1
                if fault.times == 0:
                    self.faults.remove(fault)
                return fault
        return None

    def new_task(self, dialect: str, spec: ModelSpec, model: str, prompt: str, body: dict[str, Any]) -> SandboxTask:
        markers = {name: value for name, value in _MARKER.findall(prompt)}
        render = float(markers.get("render") or self.render_seconds)
        queued = float(markers["queue"]) if markers.get("queue") else min(1.0, render * 0.2)
        now = self.clock()
        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(now))
        task = SandboxTask(
            id=f"cgt-{stamp}-{secrets.token_hex(3)[:5]}",
            dialect=dialect,
            model=model,
            spec=spec,
            prompt=prompt,
            body=body,
            created_at=now,
            queued_seconds=queued,
            render_seconds=max(0.0, render - queued),
            fail_code=markers.get("fail") or None,
            video_bytes=int(float(markers.get("size_mb") or 0) * 1024 * 1024),
            markers=markers,
        )
        self.tasks[task.id] = task
        self.creates += 1
        self.creates_by_dialect[dialect] = self.creates_by_dialect.get(dialect, 0) + 1
        self.requests.append({"dialect": dialect, "body": body})
        del self.requests[:-200]
        return task


class ArkRejection(Exception):
    """An Ark 4xx the sandbox answers with: the same envelope and codes as Ark."""

    def __init__(self, status: int, code: str, message: str, param: str = "") -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.param = status, code, message, param


def find_spec(model: str) -> ModelSpec | None:
    for spec in MODELS:
        if model in (spec.cn_id, spec.byteplus_id, *spec.aliases):
            return spec
    return None


def _invalid(param: str, detail: str) -> ArkRejection:
    return ArkRejection(
        400,
        f"InvalidParameter.{param}",
        f"The parameter `{param}` specified in the request is not valid: {detail}",
        param,
    )


def check_ark_body(body: dict[str, Any], *, strict_fields: bool = True) -> tuple[ModelSpec, str, str]:
    """Ark's create-time validation, from the catalog: the spec, the model id and the prompt, or ArkRejection."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ArkRejection(400, "MissingParameter.model", "The request is missing the required parameter `model`")
    spec = find_spec(model)
    if spec is None:
        raise ArkRejection(
            404,
            "InvalidEndpointOrModel.NotFound",
            f"The model or endpoint {model} does not exist or you do not have access to it.",
        )
    content: Any = body.get("content")
    if not isinstance(content, list) or not content:
        raise ArkRejection(400, "MissingParameter.content", "The request is missing the required parameter `content`")
    prompt = ""
    roles: list[str] = []
    kinds: list[str] = []
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
        else:
            raise _invalid("content", f"unknown content type {kind!r}")
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
    if "audio_url" in kinds and not ("image_url" in kinds or "video_url" in kinds):
        raise _invalid("content", "audio cannot be the only reference media")
    if prompt and "[[sensitive]]" in prompt:
        raise ArkRejection(
            400,
            "InputTextSensitiveContentDetected",
            "The request failed because the input text may contain sensitive information.",
        )
    _check_fields(body, spec, mode, strict_fields)
    return spec, model, prompt


def _check_fields(body: dict[str, Any], spec: ModelSpec, mode: str, strict: bool) -> None:
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
        ok = isinstance(duration, int) and (
            spec.duration_min <= duration <= spec.duration_max or (duration == -1 and spec.duration_auto)
        )
        if not ok:
            raise _invalid("duration", f"{duration} is out of range")
    frames = body.get("frames")
    if frames is not None and (
        not spec.frames or not isinstance(frames, int) or (frames - 25) % 4 or not 29 <= frames <= 289
    ):
        raise _invalid("frames", f"{frames} is not supported")
    seed = body.get("seed")
    if seed is not None and (not isinstance(seed, int) or not -1 <= seed <= 2**32 - 1):
        raise _invalid("seed", f"{seed} is out of range")
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
    if strict:
        known = {
            "model", "content", "callback_url", "return_last_frame", "service_tier", "execution_expires_after",
            "generate_audio", "draft", "safety_identifier", "priority", "tools", "resolution", "ratio", "duration",
            "frames", "seed", "camera_fixed", "watermark",
        }  # fmt: skip
        unknown = set(body) - known
        if unknown:
            raise _invalid(sorted(unknown)[0], "unknown parameter")


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
