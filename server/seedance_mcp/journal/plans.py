"""What both journals decide alike about a storyboard plan's reservations (pure: the rows are read in the store's
own transaction)."""

from __future__ import annotations


def needs_reserve(row: tuple[str | None, bool] | None, *, running: bool) -> bool:
    """Whether a plan's shot must reserve its cost now: it has no live job, and no reservation that still counts (a
    running plan's reservation counts on every day until its shot's job is linked or the plan stops running)."""
    if row is None:
        return True
    job_id, live = row
    if job_id is not None:
        return not live
    return not running
