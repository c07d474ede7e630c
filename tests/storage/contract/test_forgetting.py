"""Forgetting what is done and old (bot/housekeeping.py), a batch at a time, on every store."""

from __future__ import annotations

from bot.models import Status
from bot.ports import Store
from tests.storage.contract.support import ALICE, BOB, T0, a_link, an_entry, at, text_to


async def test_forget_done_takes_sent_and_dropped_before_the_time_in_batches(
    store: Store,
) -> None:
    async with store.transaction() as tx:
        ids = await tx.outbox.enqueue(
            [text_to(ALICE, "sent"), text_to(BOB, "dropped"), text_to(ALICE, "waiting")], T0
        )
        late = await tx.outbox.enqueue([text_to(BOB, "sent late")], T0)
        await tx.outbox.mark_sent(ids[0], at(10))
        await tx.outbox.drop(ids[1], at(10), "blocked")
        await tx.outbox.mark_sent(late[0], at(5000))
    async with store.transaction() as tx:
        first = await tx.outbox.forget_done(at(600), limit=1)
    async with store.transaction() as tx:
        second = await tx.outbox.forget_done(at(600), limit=10)
        waiting = [q.message.text for q in await tx.outbox.unsent_for(ALICE)]
        pending = await tx.outbox.pending_count()
    assert (first, second) == (1, 1)  # two old ones, one a batch
    assert waiting == ["waiting"] and pending == 1


async def test_forget_history_takes_changes_before_the_time_in_batches(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.links.insert(a_link("lnk_1"))
        await tx.links.move_status("lnk_1", Status.PENDING, Status.PROCESSING, at(10), None)
        await tx.links.move_status("lnk_1", Status.PROCESSING, Status.FAILED, at(20), None)
        await tx.links.move_status("lnk_1", Status.FAILED, Status.PROCESSING, at(5000), None)
    async with store.transaction() as tx:
        first = await tx.links.forget_history(at(600), limit=1)
        second = await tx.links.forget_history(at(600), limit=10)
        left = await tx.links.history("lnk_1")
    assert (first, second) == (1, 1)
    assert left == [(Status.PROCESSING, at(5000))]


async def test_forget_finished_keeps_to_its_limit(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.inbox.record([an_entry(f"e{n}", lane=f"l{n}") for n in range(3)], T0)
        claimed = await tx.inbox.claim(T0, 10, "w", at(60))
        for item in claimed:
            await tx.inbox.finish(item.seq, at(1))
    async with store.transaction() as tx:
        first = await tx.inbox.forget_finished(at(600), limit=2)
        second = await tx.inbox.forget_finished(at(600), limit=2)
    assert (first, second) == (2, 1)
