"""What both journals decide alike about a storyboard plan's reservations (pure: the rows are read in the store's
own transaction)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from seedance_mcp.journal import PlanShot


def needs_reserve(row: tuple[str | None, bool] | None, *, running: bool) -> bool:
    """Whether a plan's shot must reserve its cost now: it has no live job, and no reservation that still counts (a
    running plan's reservation counts on every day until its shot's job is linked or the plan stops running)."""
    if row is None:
        return True
    job_id, live = row
    if job_id is not None:
        return not live
    return not running


def plan_takes(reserves: Sequence[float], takes: Sequence[int]) -> list[tuple[int, int, float]]:
    """Every take of every shot (shot index, take number from 1, its reservation): `takes[i]` takes of shot i (1
    when not given), each reserving the shot's estimate."""
    return [
        (shot, take, reserve)
        for shot, reserve in enumerate(reserves)
        for take in range(1, (takes[shot] if shot < len(takes) else 1) + 1)
    ]


def take_of(plan_shot: PlanShot) -> tuple[str, int, int]:
    """(plan id, shot index, take number): a plan shot given without a take is its take 1."""
    if len(plan_shot) == 2:
        return (plan_shot[0], plan_shot[1], 1)
    return plan_shot


def plan_reserved(rows: Iterable[Sequence[Any]]) -> dict[int, float]:
    """What each shot's takes without a job hold (rows of shot, take, job id, reserve), by shot index."""
    reserved: dict[int, float] = {}
    for shot, _take, job_id, reserve in rows:
        if job_id is None:
            reserved[int(shot)] = reserved.get(int(shot), 0.0) + float(reserve)
    return reserved
