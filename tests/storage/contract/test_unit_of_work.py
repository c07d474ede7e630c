"""Transactions: all or nothing, and what commits is seen by every other process."""

from __future__ import annotations

import asyncio

import pytest

from bot.errors import StoreUnavailable
from bot.models import Status, Subscription
from bot.ports import Store
from tests.storage.contract.support import (
    ALICE,
    CAROL,
    LEASE,
    T0,
    OpenStore,
    a_link,
    an_entry,
    at,
    text_to,
)


async def test_a_block_that_raises_rolls_back_everything_it_wrote(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.links.insert(a_link("before"))
    with pytest.raises(RuntimeError, match="boom"):
        async with store.transaction() as tx:
            await tx.links.insert(a_link())
            await tx.links.move_status("before", Status.PENDING, Status.PROCESSING, at(1), None)
            await tx.links.claim_order("1001", "worker-a", T0, T0 + LEASE)
            await tx.polls.schedule("before", T0)
            await tx.subscriptions.add(Subscription("before", ALICE))
            await tx.outbox.enqueue([text_to(ALICE, "hello")], T0)
            await tx.outbox.pause_chat(CAROL, at(3600))
            await tx.inbox.record([an_entry("u1")], T0)
            await tx.contacts.note_inbound(CAROL, T0)
            raise RuntimeError("boom")
    async with store.transaction() as tx:
        assert await tx.links.get("lnk_1") is None
        assert await tx.links.get("before") == a_link("before")
        assert await tx.links.history("before") == []
        assert await tx.links.claim_order("1001", "worker-b", at(1), at(1) + LEASE)
        assert await tx.polls.tracked_count() == 0
        assert await tx.subscriptions.for_link("before") == []
        assert await tx.outbox.pending_count() == 0
        assert await tx.inbox.unfinished_count() == 0
        assert await tx.inbox.record([an_entry("u1")], at(1)) == [True]  # never stored
        assert await tx.contacts.last_inbound_at(CAROL) is None
        [carol] = await tx.outbox.enqueue([text_to(CAROL, "not paused")], at(1))
        claimed = await tx.outbox.claim_due(at(1), 10, "sender", at(1) + LEASE)
    assert [queued.id for queued in claimed] == [carol]


async def test_what_one_store_commits_another_store_sees(open_store: OpenStore) -> None:
    writer, reader = await open_store(), await open_store()
    async with writer.transaction() as tx:
        await tx.links.insert(a_link())
        await tx.subscriptions.add(Subscription("lnk_1", ALICE))
        await tx.outbox.enqueue([text_to(ALICE, "hello")], T0)
        await tx.inbox.record([an_entry("u1")], T0)
        await tx.contacts.note_inbound(CAROL, T0)
    async with reader.transaction() as tx:
        link = await tx.links.get("lnk_1")
        subscribers = await tx.subscriptions.for_link("lnk_1")
        claimed = await tx.outbox.claim_due(T0, 10, "reader", T0 + LEASE)
        items = await tx.inbox.claim(T0, 10, "reader", T0 + LEASE)
        last = await tx.contacts.last_inbound_at(CAROL)
    assert link == a_link()
    assert subscribers == [Subscription("lnk_1", ALICE)]
    assert [queued.message.text for queued in claimed] == ["hello"]
    assert [item.entry.source_id for item in items] == ["u1"]
    assert last == T0


async def test_several_stores_open_one_fresh_database_together(open_store: OpenStore) -> None:
    # Each process brings the schema up to date when it starts; they may start at once.
    stores = await asyncio.gather(*(open_store() for _ in range(6)))
    assert [await store.ping() for store in stores] == [True] * 6
    async with stores[0].transaction() as tx:
        await tx.links.insert(a_link())
    async with stores[2].transaction() as tx:
        assert await tx.links.get("lnk_1") == a_link()


async def test_a_store_opened_again_keeps_what_was_committed(open_store: OpenStore) -> None:
    async with (await open_store()).transaction() as tx:
        await tx.links.insert(a_link())
    async with (await open_store()).transaction() as tx:
        assert await tx.links.get("lnk_1") == a_link()


async def test_an_urgent_transaction_commits_like_any_other(open_store: OpenStore) -> None:
    writer, reader = await open_store(), await open_store()
    async with writer.transaction(urgent=True) as tx:
        await tx.links.insert(a_link())
    async with reader.transaction() as tx:
        assert await tx.links.get("lnk_1") == a_link()


async def test_a_closed_store_answers_no_ping_and_is_unavailable(store: Store) -> None:
    assert await store.ping()
    await store.close()
    assert not await store.ping()
    with pytest.raises(StoreUnavailable):
        async with store.transaction() as tx:
            await tx.outbox.pending_count()
