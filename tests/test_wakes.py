"""A loop's wake-up (bot/wakes.py): `set` looks now, `look_by` brings the next look
forward to a time without looking now, and many of them cost one look."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from bot.models import utcnow
from bot.wakes import Wake
from tests.harness import wait_until

LONG = 5.0  # seconds an idle loop would sleep if nothing moved its look


async def idling(wake: Wake) -> asyncio.Task[None]:
    """The loop's idle, started, once it is asleep."""
    idle = asyncio.create_task(wake.idle(LONG))

    async def asleep() -> bool:
        return wake.looks_at is not None

    await wait_until(asleep, bool)
    return idle


async def test_look_by_brings_an_idle_look_forward_to_that_time_not_to_now() -> None:
    wake = Wake(utcnow)
    idle = await idling(wake)
    started = time.monotonic()
    wake.look_by(utcnow() + timedelta(seconds=0.3))
    wake.look_by(utcnow() + timedelta(seconds=3))  # later than the first: changes nothing
    assert not idle.done()  # not now
    await idle
    assert 0.25 <= time.monotonic() - started < 2.5


async def test_a_look_by_while_the_loop_is_busy_ends_its_next_idle() -> None:
    wake = Wake(utcnow)
    wake.clear()  # the loop looks
    wake.look_by(utcnow() + timedelta(seconds=0.3))
    started = time.monotonic()
    await wake.idle(LONG)
    assert 0.25 <= time.monotonic() - started < 2.5
    idle = await idling(wake)  # the look served it: the next idle is whole again
    await asyncio.sleep(0.4)  # past the time given before, the loop sleeps on
    assert not idle.done()
    wake.set()  # work: at once
    await asyncio.wait_for(idle, 1.0)


async def test_an_idle_ends_when_its_time_is_up_whatever_the_clock_says() -> None:
    stopped = utcnow()  # a clock set back, or stopped, must not keep the loop asleep
    wake = Wake(lambda: stopped)
    await asyncio.wait_for(wake.idle(0.2), 2.0)
