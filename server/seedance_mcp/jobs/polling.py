"""When to poll next, and how far along a render is: pure functions of elapsed time and what the provider said.

Polling is adaptive: the first poll waits for half the model's shortest typical render, then polls come every
`interval` seconds until the gaps grow with the elapsed time (`growth` × elapsed, so a result reaches the caller
within about `growth` of the render time), up to `cap`. A percent close to 100 shortens the wait.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from seedance_mcp.journal.job import Job


@dataclass(frozen=True, slots=True)
class PollPolicy:
    interval: float = 3.0
    cap: float = 30.0
    growth: float = 0.08
    first_poll_fraction: float = 0.5

    def first_delay(self, expected_render: float) -> float:
        return min(max(self.interval, expected_render * self.first_poll_fraction), self.cap)

    def next_delay(
        self,
        elapsed: float,
        progress: float | None = None,
        rate: float | None = None,
        expected: float | None = None,
    ) -> float:
        """Seconds until the next poll of a task `elapsed` seconds old.

        `progress` is a percent the provider reported; `rate` its percent per second, when two readings give one.
        `expected` is when the render should end: a poll that would overshoot it is pulled in to just after it.
        """
        delay = min(max(self.interval, self.growth * elapsed), self.cap)
        if expected is not None and elapsed < expected < elapsed + delay:
            delay = expected - elapsed + 0.1
        if progress is not None and rate and rate > 0 and progress < 100:
            remaining = (100 - progress) / rate
            delay = min(delay, max(remaining, min(self.interval, 1.0)))
        return delay


@dataclass(slots=True)
class ProgressMeter:
    """Strictly increasing progress in [0, 100) until the task ends, then 100.

    Ark reports no percent, so the estimate follows elapsed time against the expected render time and flattens
    towards 99 without reaching it; a reported percent is used when a gateway gives one.
    """

    expected_seconds: float
    last: float = -1.0

    def estimate(self, status: str, elapsed: float, reported: float | None = None) -> float:
        if status in ("succeeded", "failed", "cancelled", "expired", "not_submitted", "unknown"):
            value = 100.0
        elif status == "downloading":
            value = 99.5
        elif reported is not None:
            value = min(max(reported, 0.0), 99.0)
        elif status in ("queued", "submitting"):
            value = 5.0 * (1 - math.exp(-elapsed / 30.0))
        else:
            value = 5.0 + 94.0 * (1 - math.exp(-1.2 * elapsed / max(self.expected_seconds, 1.0)))
        return round(value, 2)

    def advance(self, status: str, elapsed: float, reported: float | None = None) -> float | None:
        """The next value to report, or None when it would not increase (it is never repeated)."""
        value = self.estimate(status, elapsed, reported)
        if value <= self.last:
            if value >= 100.0 or self.last >= 99.9:
                return None
            value = round(min(self.last + 0.01, 99.9), 2)
            if value <= self.last:
                return None
        self.last = value
        return value


def progress_message(job: Job, elapsed: float) -> str:
    """`running · 35 s · cgt-2025…`: what a person sees next to the progress bar."""
    handle = job.handle if len(job.handle) <= 18 else job.handle[:17] + "…"
    state = job.status
    if job.status == "succeeded":
        state = "saved" if job.video_path else "downloading"
    return f"{state} · {elapsed:.0f} s · {handle}"
