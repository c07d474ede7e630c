"""The follow-ups worker and a follow-up that another worker holds under its lease."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.follow_ups import CLAIM_LEASE, FollowUpPolicy, FollowUps, schedule_for_new_link
from bot.i18n import Voice, Voices
from bot.models import FollowUpKind, Link, Role, Status, Subscription
from bot.payments import move
from storage.sqlite import SqliteStore
from tests.clocks import MovableClock
from tests.counted_store import Counted
from tests.factories import make_link
from tests.harness import wait_until
from tests.storage.contract.support import ALICE

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


async def expired_offers(store: SqliteStore) -> list[str]:
    """The "expired before it was paid" messages queued so far."""
    async with store.transaction() as tx:
        queued = await tx.outbox.unsent_for(ALICE)
    return [q.message.text for q in queued if "expired before it was paid" in q.message.text]


async def at_the_expiry(store: SqliteStore, clock: MovableClock) -> tuple[Link, FollowUps]:
    """A link with its follow-ups, the clock at its expiry, and Cimplify not heard from."""
    link = make_link(created=clock(), expires_in=timedelta(hours=2))
    policy = FollowUpPolicy(reminders=())
    async with store.transaction() as tx:
        await tx.links.insert(link)
        await tx.subscriptions.add(Subscription(link.id, ALICE, Role.MERCHANT))
        await schedule_for_new_link(tx, link, policy)
    clock.ahead += timedelta(hours=2)
    voices = Voices(Voice("en", "UTC"))
    return link, FollowUps(store, clock, voices, policy, lambda: None)


async def test_the_offer_at_the_expiry_waits_for_cimplify_to_say_it_expired(
    store: SqliteStore,
) -> None:
    clock = MovableClock()
    link, worker = await at_the_expiry(store, clock)
    assert await worker.handle_due() == 2  # the warning, too late now, and the offer
    assert await expired_offers(store) == []  # Cimplify has not said it expired
    for wait in (2, 4):  # put off, twice as long each time
        async with store.transaction() as tx:
            (again,) = await tx.follow_ups.pending_for(link.id)
        put_off = again.due_at - clock()  # the clock moves with real time, too
        assert timedelta(seconds=wait - 1) < put_off <= timedelta(seconds=wait)
        clock.ahead += timedelta(seconds=wait)
        assert await worker.handle_due() == 1
    async with store.transaction() as tx:  # the poller hears that it expired
        assert await move(tx, link.id, Status.EXPIRED, clock(), None)
    assert await worker.handle_due() == 1  # the put-off offer is due at once, not in 8 s
    assert len(await expired_offers(store)) == 1
    async with store.transaction() as tx:
        assert await tx.follow_ups.pending_for(link.id) == []


async def test_no_offer_for_a_link_paid_in_its_last_moments(store: SqliteStore) -> None:
    clock = MovableClock()
    link, worker = await at_the_expiry(store, clock)
    assert await worker.handle_due() == 2
    async with store.transaction() as tx:  # the poller, asking at the expiry, hears "paid"
        assert await tx.links.move_status(link.id, Status.PENDING, Status.PAID, clock(), None)
    clock.ahead += timedelta(seconds=2)
    assert await worker.handle_due() == 1
    assert await expired_offers(store) == []
    async with store.transaction() as tx:
        assert await tx.follow_ups.pending_for(link.id) == []
