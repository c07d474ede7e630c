"""The follow-ups worker and a follow-up that another worker holds under its lease."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.follow_ups import CLAIM_LEASE, FollowUpPolicy, FollowUps
from bot.i18n import Voice, Voices
from bot.models import FollowUpKind
from storage.sqlite import SqliteStore
from tests.clocks import MovableClock
from tests.counted_store import Counted
from tests.factories import make_link
from tests.harness import wait_until

WATCHED = 0.5  # seconds the worker is watched while the other holds the follow-up


async def test_a_follow_up_another_worker_holds_is_looked_at_now_and_then_then_taken(
    store: SqliteStore,
) -> None:
    clock = MovableClock()
    link = make_link(created=clock(), expires_in=timedelta(days=1))
    async with store.transaction() as tx:
        await tx.links.insert(link)
        await tx.follow_ups.schedule(link.id, FollowUpKind.REMINDER, "1h", clock())
        held = await tx.follow_ups.claim_due(clock(), 10, "other", clock() + CLAIM_LEASE)
    assert len(held) == 1  # due, and held by a worker in another process
    counted = Counted(store)
    voices = Voices(Voice("en", "UTC"))
    worker = FollowUps(counted, clock, voices, FollowUpPolicy(), lambda: None)  # type: ignore[arg-type]

    running = asyncio.create_task(worker.run())
    try:
        await wait_until(counted.begun_so_far, lambda n: n >= 1)
        # Watched for a while: a worker that took "due and not mine" for "due now"
        # would look about every 10 ms until the lease lapses (30 s from now).
        await asyncio.sleep(WATCHED)
        assert counted.begun == 1

        clock.ahead += CLAIM_LEASE  # the other worker died: its lease lapses
        worker.wake()

        async def pending() -> int:
            async with store.transaction() as tx:
                return len(await tx.follow_ups.pending_for(link.id))

        await wait_until(pending, lambda n: n == 0)  # taken over and done
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def test_a_wake_for_work_due_after_the_next_look_is_left_for_that_look(
    store: SqliteStore,
) -> None:
    # A new link's first reminder is an hour away: looking at once would find nothing.
    clock = MovableClock()
    counted = Counted(store)
    voices = Voices(Voice("en", "UTC"))
    worker = FollowUps(counted, clock, voices, FollowUpPolicy(), lambda: None)  # type: ignore[arg-type]

    async def next_look() -> object:
        return worker.looks_at

    running = asyncio.create_task(worker.run())
    try:
        await wait_until(next_look, lambda at: at is not None)  # looked, found nothing, idle
        assert counted.begun == 1
        worker.wake(clock() + timedelta(hours=1))
        await asyncio.sleep(WATCHED)  # the span watched, not a condition
        assert counted.begun == 1

        worker.wake(clock())  # due now: before the next look
        await wait_until(counted.begun_so_far, lambda n: n == 2)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
