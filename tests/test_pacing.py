"""The outbox's pace: smooth, and never more than the rate in any one second."""

from __future__ import annotations

import asyncio
import random
import time
from itertools import pairwise

import pytest

from bot.pacing import PacedWindow, Slot


async def test_no_second_ever_holds_more_than_the_rate() -> None:
    pace, taken = PacedWindow(5), []
    for _ in range(12):
        (await pace.hold()).release()  # a request answered at once
        taken.append(time.monotonic())
    busiest = max(sum(t < start + 1.0 for t in taken[i:]) for i, start in enumerate(taken))
    assert busiest == 5  # a plain token bucket lets its burst make it 6
    gaps = [later - earlier for earlier, later in pairwise(taken)]
    assert min(gaps) >= 0.2 * 0.9  # smooth: about one every fifth of a second, no bunches


async def test_a_request_holds_its_place_until_a_second_after_its_answer() -> None:
    pace = PacedWindow(2)
    first, _ = await pace.hold(), await pace.hold()
    third = asyncio.create_task(pace.hold())
    with pytest.raises(TimeoutError):  # both still on their way: no place, however long
        await asyncio.wait_for(asyncio.shield(third), 1.5)
    answered = time.monotonic()
    first.release()
    await third
    assert time.monotonic() - answered >= 1.0 * 0.95


async def test_however_requests_travel_no_second_at_the_other_end_holds_more_than_the_rate() -> (
    None
):
    rate, arrivals, travel = 10, [], random.Random(7)

    async def request(slot: Slot) -> None:
        await asyncio.sleep(travel.uniform(0, 0.3))  # the network, there
        arrivals.append(time.monotonic())
        await asyncio.sleep(travel.uniform(0, 0.3))  # and back
        slot.release()

    pace, requests = PacedWindow(rate), []
    for _ in range(30):
        requests.append(asyncio.create_task(request(await pace.hold())))
    await asyncio.gather(*requests)
    busiest = max(sum(at <= t < at + 1.0 for t in arrivals) for at in arrivals)
    assert busiest <= rate


async def test_the_window_says_how_long_until_its_last_request_leaves_it() -> None:
    pace = PacedWindow(30)
    assert pace.busy_for() == 0.0  # nothing sent: another sender may start at once
    slot = await pace.hold()
    assert pace.busy_for() == 1.0  # still awaiting its answer: a whole second from now
    slot.release()
    answered = time.monotonic()
    await asyncio.sleep(0.2)
    left = pace.busy_for()
    since = time.monotonic() - answered
    assert 1.0 - since - 0.01 <= left <= 1.0 - since + 0.01 < 1.0  # a second from its answer
