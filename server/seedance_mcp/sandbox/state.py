"""The sandbox's tasks, its fault plan, its request log and its tasks file; the models of the region it plays, as
that region sells them (Ark's validation rules with them are checks.py's)."""

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
    first_frame: str | None = None
    """The clip's first picture: `task:<id>` (that task's last frame) or a small PNG data URL (clips.py)."""
    clip_ratio: str = "16:9"
    """The shape of the clip served ("" when it is the shape of the `task:` first frame's clip)."""

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
    sample_clips: bool = False
    """Serve the shipped 2 s sample for every task instead of making each task's clip (benchmarks of the server
    set it, so the sandbox's encoding does not weigh on the figures)."""
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
