"""A plan as the journal keeps it (`_plan_record`) is rebuilt (`plan_from_record`, what a server that takes a plan
over runs) as the call planned it: the same fingerprint, the same clips and the same takes."""

from __future__ import annotations

from pathlib import Path

from seedance_mcp.journal import PlanRecord
from seedance_mcp.runtime import effective_preset
from seedance_mcp.storyboards.plan import Shot, plan_from_record, plan_of, plan_record
from tests.conftest import make_settings


def test_a_plan_with_a_clip_and_takes_is_rebuilt_from_its_record_as_it_was_planned(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, provider="ark", api_key="sk-unit-0123456789abcdef")
    preset = effective_preset(settings)
    shared = {"model": "2.0", "resolution": "720p", "ratio": None, "seed": None, "reference_images": ()}
    shots = [
        Shot(clip="cgt-chosen-take"),
        Shot(prompt="the kite dives", duration=4, takes=3),
        Shot(prompt="a child reels it in", duration=5, transition="cut"),
    ]
    planned = plan_of(shots, {**shared, "generate_audio": None}, preset, settings)
    record = PlanRecord("sb-x", "", 0.0, None, plan_record(planned), {})
    rebuilt = plan_from_record(record, preset, settings)
    assert rebuilt.fingerprint == planned.fingerprint
    assert [(s.clip, s.takes, s.transition) for s in rebuilt.shots] == [
        ("cgt-chosen-take", 1, "cut"),
        (None, 3, "continuous"),
        (None, 1, "cut"),
    ]
    assert rebuilt.estimate == planned.estimate and planned.estimate is not None
    one, three = planned.shots[1].estimate, planned.shots[2].estimate
    assert one is not None and three is not None and planned.estimate == round(3 * one + three, 4)
    # takes=1 is the plan without takes (its fingerprint, so its plan id, unchanged)
    single = plan_of([Shot(prompt="the kite dives", duration=4)], {**shared, "generate_audio": None}, preset, settings)
    same = plan_of(
        [Shot(prompt="the kite dives", duration=4, takes=1)], {**shared, "generate_audio": None}, preset, settings
    )
    assert single.fingerprint == same.fingerprint
