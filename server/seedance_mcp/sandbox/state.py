"""The sandbox's tasks, its fault plan, its request log, and Ark's validation rules read from the catalog (the
models of the region it plays, as that region sells them: a model retired there is refused as Ark refuses it)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, cast

from seedance_mcp.catalog import FIXED_RATIOS, Catalog, ModelSpec, Ratio, Region, Resolution, builtin_catalog

FaultKind = Literal[
    "http_429", "http_500", "http_503", "slow", "drop_before", "drop_after", "malformed", "expired_url", "bad_status"
]
Route = Literal["create", "status", "download", "any"]

logger = logging.getLogger(__name__)

_MARKER = re.compile(r"\[\[(\w+)(?:=([^\]]*))?\]\]")

TASKS_FILE = "sandbox-tasks.jsonl"
"""The embedded sandbox's tasks, in the server's state dir: one JSON line per change, replayed at start."""
KEEP_TASKS_SECONDS = 7 * 86400.0
"""Tasks older than this are dropped when the file is compacted (a real provider keeps them about as long)."""


def prompt_markers(prompt: str) -> dict[str, str]:
    """The `[[name=value]]` markers of a prompt (sandbox-only steering)."""
    return {name: value for name, value in _MARKER.findall(prompt)}


def planned_seconds(prompt: str, default: float) -> float:
    """Seconds from create to finished video for a sandbox task with this prompt: its `[[render=N]]` marker (and
    `[[queue=N]]`, when longer), else `default` (SEEDANCE_SANDBOX_RENDER_SECONDS). What the job's progress
    estimate should expect."""
    markers = prompt_markers(prompt)
    try:
        render = float(markers.get("render") or default)
        queued = float(markers.get("queue") or 0.0)
    except ValueError:
        return default
    return max(render, queued, 0.0)


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
    draft_task_id: str | None = None
    """The draft this task renders for real (a `draft_task` content item), if any."""
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

    def to_record(self) -> dict[str, Any]:
        """The task as JSON for the tasks file: its model as a catalog key, inline media (data: URLs) elided."""
        record = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("spec", "body", "polls")}
        record["spec"] = self.spec.key
        record["body"] = _elide_inline_media(self.body)
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any], models: Mapping[str, ModelSpec]) -> SandboxTask | None:
        """A task read back from the tasks file, or None when it no longer makes sense (an unknown model)."""
        spec = models.get(str(record.get("spec")))
        if spec is None:
            return None
        known = {f.name for f in fields(cls)} - {"spec"}
        values = {name: value for name, value in record.items() if name in known}
        try:
            return cls(spec=spec, **values)
        except TypeError:
            return None


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
    speaks: str | None = None
    """The provider it was set up for (SEEDANCE_SANDBOX_AS), reported by /_sandbox/stats; every dialect is served."""
    model_map: dict[str, str] = field(default_factory=lambda: {})
    """Model ids and endpoints (`ep-…`) the user declared, lower-cased → catalog key (SEEDANCE_MODEL_MAP): the
    sandbox accepts them as the provider would and applies the mapped model's rules."""
    tasks_file: Path | None = None
    """Where the tasks are kept across restarts (the embedded sandbox's `<state dir>/sandbox-tasks.jsonl`): one
    JSON line per change, appended as it happens and replayed by `load_tasks`. None: in memory only."""
    last_port: int = 0
    """The port the sandbox last served on, as the tasks file says: a restarted sandbox binds it again when it
    is free, so the video URLs it handed out before keep working."""
    catalog: Catalog = field(default_factory=builtin_catalog)
    """The catalog whose rules it applies (the server's merged one, so a model a user adds is accepted too)."""
    region: Region = "cn"
    """The region it plays: its models, as that region sells them (4k, drafts, retirements)."""
    inactive_models: set[str] = field(default_factory=lambda: set[str]())
    """Catalog keys this account has not activated: a create names one, the answer is 404 ModelNotOpen."""
    _file_offset: int = field(default=0, init=False, repr=False)

    @property
    def models(self) -> Mapping[str, ModelSpec]:
        """The models the region it plays sells or sold, as it sells them."""
        return self.catalog.by_region.get(self.region, {})

    def today(self) -> str:
        return time.strftime("%Y-%m-%d", time.localtime(self.clock()))

    def load_tasks(self) -> None:
        """Read the tasks file (if any): tasks, deletions and the last port; tasks written by another process
        sharing the file since the last read are picked up too. A damaged line is skipped."""
        if self.tasks_file is None:
            return
        try:
            with self.tasks_file.open("rb") as file:
                file.seek(self._file_offset)
                data = file.read()
        except FileNotFoundError:
            return
        except OSError as exc:
            logger.warning("the sandbox could not read its tasks from %s: %s", self.tasks_file, exc)
            return
        complete = data.rfind(b"\n") + 1  # a line still being written is read next time
        self._file_offset += complete
        for line in data[:complete].splitlines():
            self._replay(line)

    def _replay(self, line: bytes) -> None:
        try:
            entry: Any = json.loads(line)
        except ValueError:
            return
        if not isinstance(entry, dict):
            return
        event = cast("dict[str, Any]", entry)
        if isinstance(event.get("task"), dict):
            task = SandboxTask.from_record(cast("dict[str, Any]", event["task"]), self.models)
            known = self.tasks.get(task.id) if task is not None else None
            if known is not None and task is not None:  # a change (a cancel, a new URL) made by another process
                known.cancelled_at = task.cancelled_at if known.cancelled_at is None else known.cancelled_at
                known.url_version = max(known.url_version, task.url_version)
            elif task is not None:
                self.tasks[task.id] = task
        elif isinstance(event.get("deleted"), str):
            self.tasks.pop(event["deleted"], None)
        elif isinstance(event.get("port"), int):
            self.last_port = event["port"]

    def task(self, task_id: str) -> SandboxTask | None:
        """A task by id; one this process does not know is looked for in the tasks file (another process sharing
        the state dir may have created it, or this sandbox was restarted)."""
        task = self.tasks.get(task_id)
        if task is None and self.tasks_file is not None:
            self.load_tasks()
            task = self.tasks.get(task_id)
        return task

    def save_task(self, task: SandboxTask) -> None:
        """Record a created or changed task in the tasks file (nothing without one)."""
        self._append({"task": task.to_record()})

    def save_deleted(self, task_id: str) -> None:
        self._append({"deleted": task_id})

    def save_port(self, port: int) -> None:
        self.last_port = port
        self._append({"port": port})

    def _append(self, event: dict[str, Any]) -> None:
        """One line, appended in one write (O_APPEND): a crash loses at most that line, never the file."""
        if self.tasks_file is None:
            return
        line = json.dumps(event, separators=(",", ":")).encode() + b"\n"
        try:
            self.tasks_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.tasks_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        except OSError as exc:
            logger.warning("the sandbox could not record a task in %s: %s", self.tasks_file, exc)

    def compact(self) -> None:
        """Rewrite the tasks file with one line per live task (dropping those older than KEEP_TASKS_SECONDS),
        atomically (a temporary file renamed over it); done at start when the file has grown well past that."""
        if self.tasks_file is None:
            return
        cutoff = self.clock() - KEEP_TASKS_SECONDS
        for task_id in [t.id for t in self.tasks.values() if t.created_at < cutoff]:
            del self.tasks[task_id]
        lines = [json.dumps({"port": self.last_port}, separators=(",", ":"))] if self.last_port else []
        lines += [json.dumps({"task": t.to_record()}, separators=(",", ":")) for t in self.tasks.values()]
        data = ("\n".join(lines) + "\n").encode() if lines else b""
        temporary = self.tasks_file.with_name(f".{self.tasks_file.name}.{os.getpid()}.tmp")
        try:
            temporary.write_bytes(data)
            os.replace(temporary, self.tasks_file)
            self._file_offset = len(data)
        except OSError as exc:
            logger.warning("the sandbox could not compact %s: %s", self.tasks_file, exc)
            with contextlib.suppress(OSError):
                temporary.unlink()

    @classmethod
    def kept_in(cls, path: Path, **settings: Any) -> SandboxState:
        """A sandbox state whose tasks survive restarts in `path` (read now, appended to on every change)."""
        state = cls(tasks_file=path, **settings)
        state.load_tasks()
        try:
            lines = state._file_offset and path.read_bytes().count(b"\n")
        except OSError:
            lines = 0
        if lines > 2 * len(state.tasks) + 1000:
            state.compact()
        return state

    def spec_for(self, model: str, *, families: tuple[str, ...] = ("seedance",)) -> ModelSpec | None:
        """The catalog model a create's `model` names (a declared id first), among the given families."""
        return find_spec(model, self.model_map, families=families, models=self.models)

    def check_ark(self, body: dict[str, Any], *, strict_fields: bool = True) -> ArkCreate:
        """Ark's create-time validation with this sandbox's models, tasks, clock and account."""
        return check_ark_body(
            body,
            strict_fields=strict_fields,
            tasks=self.tasks,
            now=self.clock(),
            model_map=self.model_map,
            models=self.models,
            today=self.today(),
            inactive=self.inactive_models,
        )

    def take_fault(self, route: str, kinds: frozenset[str] | None = None) -> Fault | None:
        """The next planned fault for `route` (of one of `kinds`, when given), used up by one request."""
        for fault in self.faults:
            if fault.route in (route, "any") and fault.times > 0 and (kinds is None or fault.kind in kinds):
                fault.times -= 1
                if fault.times == 0:
                    self.faults.remove(fault)
                return fault
        return None

    def new_task(
        self,
        dialect: str,
        spec: ModelSpec,
        model: str,
        prompt: str,
        body: dict[str, Any],
        *,
        logged: dict[str, Any] | None = None,
        id_prefix: str | None = None,
    ) -> SandboxTask:
        """A task for a create that passed validation. `body` is its Ark-shaped body (what the task echoes);
        `logged`, when given, is what the request log keeps instead (the gateway's own fields). A gateway's own
        ids (`task_…`) are asked for with `id_prefix`; the default is Ark's `cgt-<time>-<hex>`."""
        markers = prompt_markers(prompt)
        render = float(markers.get("render") or self.render_seconds)
        queued = float(markers["queue"]) if markers.get("queue") else min(1.0, render * 0.2)
        now = self.clock()
        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(now))
        while True:  # an id is never handed out twice (5 hex digits repeat within a busy second)
            suffix = secrets.token_hex(3)[:5] if id_prefix is None else secrets.token_hex(8)
            task_id = f"cgt-{stamp}-{suffix}" if id_prefix is None else id_prefix + suffix
            if task_id not in self.tasks:
                break
        task = SandboxTask(
            id=task_id,
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
        self.requests.append({"dialect": dialect, "body": body if logged is None else logged})
        del self.requests[:-200]
        return task


def _elide_inline_media(value: Any) -> Any:
    """A create body for the tasks file: `data:` URLs (inline images, up to 30 MB each) cut to their header."""
    if isinstance(value, dict):
        return {k: _elide_inline_media(v) for k, v in cast("dict[str, Any]", value).items()}
    if isinstance(value, list):
        return [_elide_inline_media(v) for v in cast("list[Any]", value)]
    if isinstance(value, str) and value.startswith("data:") and len(value) > 200:
        return value.split(",", 1)[0] + ",…"
    return value


class ArkRejection(Exception):
    """An Ark 4xx the sandbox answers with: the same envelope and codes as Ark."""

    def __init__(self, status: int, code: str, message: str, param: str = "") -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.param = status, code, message, param


def find_spec(
    model: str,
    model_map: Mapping[str, str] | None = None,
    *,
    families: tuple[str, ...] = ("seedance",),
    models: Mapping[str, ModelSpec] | None = None,
) -> ModelSpec | None:
    """The catalog model for a create's `model`: a declared id or endpoint (`model_map`, lower-cased keys) first,
    then the catalog's ids and aliases; only models of `families` (gemini-omni is sold by aiid alone). `models`:
    the region's (default: the built-in catalog's Volcengine models)."""
    offered = models if models is not None else builtin_catalog().by_region["cn"]
    declared = (model_map or {}).get(model.strip().lower())
    if declared is not None and declared in offered and offered[declared].family in families:
        return offered[declared]
    for spec in offered.values():
        if spec.family in families and model in (spec.cn_id, spec.byteplus_id, *spec.aliases):
            return spec
    return None


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


def output_size(task: SandboxTask) -> tuple[int, int]:
    """The task's video size; `adaptive` is served as 16:9 (the sandbox has one sample video)."""
    ratio: Ratio = "16:9"
    for fixed in FIXED_RATIOS:
        if fixed == task.ratio:
            ratio = fixed
    resolution: Resolution = task.spec.default_resolution
    for known in task.spec.sizes:
        if known == task.resolution:
            resolution = known
    return task.spec.size(resolution, ratio)


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
