"""A storyboard's plan, pure: its shots checked against their models' limits and priced (`plan_of`), a clip
already made as a shot, a shot's takes, and the plan as the journal keeps it (`plan_record`, `plan_from_record`)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from seedance_mcp.catalog import Preset
from seedance_mcp.config import Settings
from seedance_mcp.errors import InvalidArgument
from seedance_mcp.requests import MediaList, VideoArguments

if TYPE_CHECKING:
    from seedance_mcp.journal import PlanRecord
    from seedance_mcp.journal.job import Job
    from seedance_mcp.wire import VideoRequest


Transition = Literal["continuous", "cut"]


CLOCK_MARGIN = 5.0


_STAND_IN_FRAME = "https://storyboard.invalid/previous-shot-last-frame.png"
"""What a continuous shot's first frame is checked and quoted with: the real one exists only once the shot before
it is saved (the same size of request either way: only its URL differs)."""


class Shot(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt: str | None = None
    duration: Annotated[int | None, Field(strict=True)] = None
    transition: Transition | None = None
    model: Annotated[str | None, Field(description="Instead of the shared one.")] = None
    reference_images: MediaList = Field(default_factory=tuple, description="Instead of the shared ones.")
    clip: Annotated[str | None, Field(description="A finished clip's task id, used as is: not paid.")] = None
    takes: Annotated[int | None, Field(strict=True, description="1-4; the film uses take 1.")] = None


@dataclass
class PlannedShot:
    """A shot to render (`args`, `request`), or a clip already made (`clip`: nothing is sent for it)."""

    index: int
    transition: Transition
    args: VideoArguments | None
    request: VideoRequest | None
    price: tuple[float, str] | None
    estimate: float | None
    job: Job | None = None
    """Take 1's job: the film's."""
    error: str | None = None
    clip: str | None = None
    takes: int = 1
    others: dict[int, Job] = field(default_factory=lambda: {})
    """The jobs of takes 2…`takes`, by take number."""
    take_errors: dict[int, str] = field(default_factory=lambda: {})
    sheet: str | None = None
    """The contact sheet of its takes, once every take is saved."""
    repeat: int = 0
    """How many earlier shots of the plan send this very request (identical cut shots): each is a video of its own."""

    def job_of(self, take: int) -> Job | None:
        return self.job if take == 1 else self.others.get(take)

    def set_job(self, take: int, job: Job | None) -> None:
        if take == 1:
            self.job = job
        elif job is None:
            self.others.pop(take, None)
        else:
            self.others[take] = job

    @property
    def cost(self) -> float | None:
        """What the shot's takes are estimated to cost together."""
        return None if self.estimate is None else round(self.estimate * self.takes, 4)

    @property
    def seconds(self) -> float:
        if self.request is not None:
            return self.request.effective_seconds
        return self.job.duration or 0.0 if self.job is not None else 0.0


@dataclass
class Plan:
    shots: list[PlannedShot]
    fingerprint: str
    estimate: float | None
    currency: str
    seconds: float
    progress: dict[int, float] = field(default_factory=lambda: {})
    since: float | None = None
    """When the plan was first written to the journal (its clock): shots identical to one made since are reused."""
    recorded_id: str | None = None
    """The id the journal has it under (a plan rebuilt from its record)."""

    @property
    def plan_id(self) -> str:
        return self.recorded_id or f"sb-{self.fingerprint[:16]}"


def plan_of(shots: list[Shot], shared: dict[str, Any], preset: Preset, settings: Settings) -> Plan:
    """Every shot checked against its model's limits and priced; InvalidArgument names `shots[i].argument`."""
    specs: list[tuple[Transition, VideoArguments | str, int]] = []
    for index, shot in enumerate(shots):
        transition: Transition = "cut" if index == 0 else (shot.transition or "continuous")
        if shot.clip is not None:
            specs.append(("cut", _clip_spec(index, shot), 1))
            continue
        if not shot.prompt:
            raise InvalidArgument(f"shots[{index}].prompt", "is missing", hint="Give the shot a prompt, or a clip.")
        continues = index + 1 < len(shots) and (shots[index + 1].transition or "continuous") == "continuous"
        fields = {
            **shared,
            "prompt": shot.prompt,
            "duration": shot.duration,
            "model": shot.model or shared["model"],
            "reference_images": shot.reference_images or shared["reference_images"],
            "first_frame": _STAND_IN_FRAME if transition == "continuous" else None,
            "return_last_frame": True if continues else None,
        }
        if transition == "continuous" and fields["ratio"] is None:
            fields["ratio"] = "adaptive"  # the shot takes the shape of the frame it starts from
        try:
            specs.append((transition, VideoArguments.model_validate(fields), 1 if shot.takes is None else shot.takes))
        except InvalidArgument as exc:
            raise _of_shot(index, transition, exc) from exc
        except ValueError as exc:
            raise InvalidArgument(f"shots[{index}]", str(exc).splitlines()[0]) from exc
    return _planned(specs, preset, settings)


def _clip_spec(index: int, shot: Shot) -> str:
    """A shot that is a clip already made: used as it is, so nothing that would render it goes with it."""
    assert shot.clip is not None
    given = [name for name in ("prompt", "duration", "model", "takes") if getattr(shot, name) is not None]
    given += ["reference_images"] if shot.reference_images else []
    given += ["transition"] if shot.transition == "continuous" else []
    if given:
        raise InvalidArgument(
            f"shots[{index}].clip",
            f"a clip is used as it is, so {', '.join(given)} cannot go with it",
            hint=f"Leave {', '.join(given)} out of shots[{index}], or leave clip out to render the shot.",
        )
    return shot.clip


def plan_from_record(record: PlanRecord, preset: Preset, settings: Settings) -> Plan:
    """The plan the journal keeps (its shots' arguments and transitions, `plan_record`), built as `plan_of` builds
    it from the call's shots: the same requests, prices and fingerprint."""
    shots: list[dict[str, Any]] = json.loads(record.data)["shots"]
    specs: list[tuple[Transition, VideoArguments | str, int]] = []
    for index, shot in enumerate(shots):
        fields = dict(shot)
        transition: Transition = "continuous" if fields.pop("transition", "cut") == "continuous" else "cut"
        if "clip" in fields:
            specs.append(("cut", str(fields["clip"]), 1))
            continue
        takes = int(fields.pop("takes", 1))
        try:
            specs.append((transition, VideoArguments.model_validate(fields), takes))
        except ValueError as exc:
            raise InvalidArgument(f"shots[{index}]", str(exc).splitlines()[0]) from exc
    plan = _planned(specs, preset, settings)
    plan.recorded_id = record.plan_id
    plan.since = record.created_at - CLOCK_MARGIN
    return plan


def _of_shot(index: int, transition: Transition, exc: InvalidArgument) -> InvalidArgument:
    return InvalidArgument(
        f"shots[{index}].{exc.argument}",
        exc.problem + (" (it starts on the previous shot's last frame)" if transition == "continuous" else ""),
        allowed=exc.allowed,
        hint=exc.hint,
    )


def _planned(specs: list[tuple[Transition, VideoArguments | str, int]], preset: Preset, settings: Settings) -> Plan:
    from seedance_mcp.pricing import quote
    from seedance_mcp.results import money
    from seedance_mcp.tools.takes import check_takes
    from seedance_mcp.validation import validate_request

    planned: list[PlannedShot] = []
    for index, (transition, args, takes) in enumerate(specs):
        if isinstance(args, str):  # a clip already made: nothing to send, nothing to pay
            planned.append(PlannedShot(index, transition, None, None, None, 0.0, clip=args))
            continue
        try:
            request = validate_request(args, preset, settings.default_model, settings.model_map)
        except InvalidArgument as exc:
            raise _of_shot(index, transition, exc) from exc
        try:
            check_takes(takes, request)
        except InvalidArgument as exc:
            name = f"shots[{index}].takes" if exc.argument == "takes" else exc.argument
            raise InvalidArgument(
                name, f"{exc.problem} (shots[{index}].takes = {takes})", allowed=exc.allowed, hint=exc.hint
            ) from exc
        spec = preset.model(request.model_key)
        price = quote(
            spec,
            preset.currency,
            resolution=request.effective_resolution,
            with_video_input=False,
            generate_audio=request.generate_audio,
            flex=request.service_tier == "flex",
            draft=bool(request.draft),
        )
        estimate = money(request.estimated_tokens, price[0]) if price is not None else None
        planned.append(PlannedShot(index, transition, args, request, price, estimate, takes=takes))
    sent: list[str] = []
    for shot in planned:
        if shot.args is not None and shot.transition == "cut":  # a continuous shot's first frame is its own
            key = json.dumps(shot.args.model_dump(mode="json"), sort_keys=True)
            shot.repeat = sent.count(key)
            sent.append(key)
    known = [s.cost for s in planned]
    total = None if any(e is None for e in known) else round(sum(e or 0.0 for e in known), 4)
    currency = next((s.price[1] for s in planned if s.price is not None), "")
    canonical = json.dumps(
        [
            [s.transition, s.clip if s.args is None else s.args.model_dump(mode="json")]
            + ([s.takes] if s.takes > 1 else [])  # a plan of single takes keeps the fingerprint it always had
            for s in planned
        ],
        sort_keys=True,
        ensure_ascii=False,
    )
    return Plan(
        shots=planned,
        fingerprint=hashlib.sha256(canonical.encode()).hexdigest(),
        estimate=total,
        currency=currency,
        seconds=sum(s.seconds for s in planned),
    )


def plan_record(plan: Plan) -> str:
    """What the journal keeps of a plan: its shots' arguments and transitions, in order."""
    shots = [
        {"transition": s.transition, "clip": s.clip}
        if s.args is None
        else {
            "transition": s.transition,
            **s.args.model_dump(mode="json", exclude_none=True),
            **({"takes": s.takes} if s.takes > 1 else {}),
        }
        for s in plan.shots
    ]
    return json.dumps({"shots": shots, "estimate": plan.estimate, "currency": plan.currency}, ensure_ascii=False)
