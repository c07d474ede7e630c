"""When each chat last wrote to us."""

from __future__ import annotations

from datetime import timedelta

from bot.models import ChatRef
from bot.ports import Store
from tests.storage.contract.support import ALICE, BOB, CAROL, OpenStore, at


async def test_note_inbound_keeps_the_newest_time_per_chat(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.contacts.note_inbound(CAROL, at(600))
        await tx.contacts.note_inbound(CAROL, at(180))  # arrived late: older, ignored
        await tx.contacts.note_inbound(ALICE, at(1200))
    async with store.transaction() as tx:
        carol = await tx.contacts.last_inbound_at(CAROL)
        alice = await tx.contacts.last_inbound_at(ALICE)
        never = await tx.contacts.last_inbound_at(BOB)
        elsewhere = await tx.contacts.last_inbound_at(ChatRef("telegram", CAROL.chat_id))
    assert (carol, alice, never, elsewhere) == (at(600), at(1200), None, None)
    assert carol is not None and carol.utcoffset() == timedelta(0)


async def test_a_newer_time_from_another_store_replaces_the_older(open_store: OpenStore) -> None:
    one, another = await open_store(), await open_store()
    async with one.transaction() as tx:
        await tx.contacts.note_inbound(CAROL, at(10))
    async with another.transaction() as tx:
        await tx.contacts.note_inbound(CAROL, at(20))
    async with one.transaction() as tx:
        await tx.contacts.note_inbound(CAROL, at(15))
        assert await tx.contacts.last_inbound_at(CAROL) == at(20)
