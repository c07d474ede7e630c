"""Data a store cannot keep: refused as StoreRejected, the whole transaction undone."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.errors import StoreRejected
from bot.models import InboxEntry
from bot.ports import Store
from tests.storage.contract.support import ALICE, LEASE, T0, a_link, an_entry, text_to

# PostgreSQL refuses NUL in text, SQLite keeps it; no UTF-8 encodes a lone surrogate.
HOSTILE = ["nul\x00inside", "lone\ud800surrogate"]


async def test_a_rejected_write_undoes_the_whole_transaction(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.links.insert(a_link("lnk_1"))
    with pytest.raises(StoreRejected):
        async with store.transaction() as tx:
            await tx.outbox.enqueue([text_to(ALICE, "written before the refusal")], T0)
            await tx.links.insert(a_link("lnk_2"))
            await tx.links.insert(replace(a_link("lnk_3"), token="plt_lnk_1"))
    async with store.transaction() as tx:
        assert await tx.links.get("lnk_2") is None
        assert await tx.outbox.pending_count() == 0


@pytest.mark.parametrize("text", HOSTILE, ids=["nul", "surrogate"])
async def test_a_hostile_inbox_body_is_kept_exactly_or_rejected(store: Store, text: str) -> None:
    entry = replace(an_entry("u1"), body=text)
    try:
        async with store.transaction() as tx:
            await tx.inbox.record([entry], T0)
    except StoreRejected:
        kept: list[InboxEntry] = []
    else:
        async with store.transaction() as tx:
            kept = [item.entry for item in await tx.inbox.claim(T0, 10, "worker", T0 + LEASE)]
        assert kept == [entry]
    async with store.transaction() as tx:  # the store still works either way
        assert await tx.inbox.record([an_entry("u2", lane="other")], T0) == [True]
        assert await tx.inbox.unfinished_count() == len(kept) + 1


@pytest.mark.parametrize("text", HOSTILE, ids=["nul", "surrogate"])
async def test_a_hostile_message_text_is_kept_exactly_or_rejected(store: Store, text: str) -> None:
    try:
        async with store.transaction() as tx:
            await tx.outbox.enqueue([text_to(ALICE, text)], T0)
    except StoreRejected:
        return
    async with store.transaction() as tx:
        [queued] = await tx.outbox.claim_due(T0, 10, "sender", T0 + LEASE)
    assert queued.message == text_to(ALICE, text)
