"""What both journals decide alike about a storyboard plan's reservations (pure: the rows are read in the store's
own transaction)."""

from __future__ import annotations


def needs_reserve(row: tuple[str | None, float, bool] | None, *, running: bool, today: float) -> bool:
    """Whether a plan's shot must reserve its cost now: it has no live job, and no reservation that counts today."""
    if row is None:
        return True
    job_id, reserved_at, live = row
    if job_id is not None:
        return not live
    return not (running and reserved_at >= today)
