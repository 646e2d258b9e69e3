"""The polling schedule and the progress meter: pure functions, checked directly."""

from __future__ import annotations

import itertools

from seedance_mcp.jobs.polling import PollPolicy, ProgressMeter


def schedule(policy: PollPolicy, render: float, expected: float) -> list[float]:
    """The times at which a task of `render` seconds is polled, until a poll sees it done."""
    times = [policy.first_delay(expected)]
    while times[-1] < render:
        times.append(times[-1] + policy.next_delay(times[-1], expected=expected))
    return times


def test_polls_stay_within_budget_and_find_the_result_soon() -> None:
    """Polls ≤ render/interval + 2; the result is seen within max(2 s, 10 %) of the render ending."""
    policy = PollPolicy(interval=2.0, cap=30.0)
    for render in (5, 10, 20, 40, 60, 90, 120, 300):
        times = schedule(policy, render, expected=5.0)
        assert len(times) <= render / 2.0 + 2, (render, times)
        assert times[-1] - render <= max(2.0, 0.1 * render), (render, times)


def test_gaps_grow_with_elapsed_time_up_to_the_cap() -> None:
    policy = PollPolicy(interval=3.0, cap=30.0)
    assert policy.next_delay(10) == 3.0
    assert policy.next_delay(100) == 8.0
    assert policy.next_delay(1000) == 30.0


def test_a_percent_near_the_end_brings_the_next_poll_forward() -> None:
    policy = PollPolicy(interval=3.0, cap=30.0)
    assert policy.next_delay(200, progress=98.0, rate=1.0) == 2.0


def test_progress_strictly_increases_and_reaches_100_only_at_the_end() -> None:
    meter = ProgressMeter(expected_seconds=60)
    values = [meter.advance("queued", 0), meter.advance("running", 5)]
    values += [meter.advance("running", t) for t in range(6, 600, 7)]
    values.append(meter.advance("running", 600))  # far past the estimate: still below 100
    values.append(meter.advance("succeeded", 601))
    reported = [v for v in values if v is not None]
    assert all(b > a for a, b in itertools.pairwise(reported))
    assert max(reported[:-1]) < 100 and reported[-1] == 100
    assert meter.advance("succeeded", 602) is None  # never repeated
