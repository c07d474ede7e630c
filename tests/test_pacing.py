"""The outbox's pace: smooth, and never more than the rate in any one second."""

from __future__ import annotations

import time
from itertools import pairwise

from bot.pacing import PacedWindow


async def test_no_second_ever_holds_more_than_the_rate() -> None:
    pace, taken = PacedWindow(5), []
    for _ in range(12):
        await pace.acquire()
        taken.append(time.monotonic())
    busiest = max(sum(t < start + 1.0 for t in taken[i:]) for i, start in enumerate(taken))
    assert busiest == 5  # a plain token bucket lets its burst make it 6
    gaps = [later - earlier for earlier, later in pairwise(taken)]
    assert min(gaps) >= 0.2 * 0.9  # smooth: about one every fifth of a second, no bunches
