"""Batches larger than one SQL statement can bind: every item stored, each id its own."""

from __future__ import annotations

from bot.models import ChatRef
from bot.ports import Store
from tests.storage.contract.support import LEASE, T0, an_entry, at, text_to

# Each entry or message binds six or seven values: 7,000 of them are more than
# PostgreSQL's 32,767 parameters (and SQLite's 32,766) allow in one statement.
MANY = 7000


async def test_record_takes_more_entries_than_one_statement_can_bind(store: Store) -> None:
    many = [an_entry(f"u{n}", lane=f"lane-{n % 50}") for n in range(MANY)]
    async with store.transaction() as tx:
        assert await tx.inbox.record(many, T0) == [True] * MANY
    async with store.transaction() as tx:
        assert await tx.inbox.record(many, at(1)) == [False] * MANY
        assert await tx.inbox.record([], at(1)) == []
        assert await tx.inbox.unfinished_count() == MANY


async def test_enqueue_takes_more_messages_than_one_statement_can_bind(store: Store) -> None:
    chats = [ChatRef("telegram", str(n)) for n in range(10)]
    messages = [text_to(chat, f"{chat.chat_id}/{n}") for n in range(MANY // 10) for chat in chats]
    async with store.transaction() as tx:
        ids = await tx.outbox.enqueue(messages, T0)
    async with store.transaction() as tx:
        pending = await tx.outbox.pending_count()
        heads = await tx.outbox.claim_due(T0, 10, "sender", T0 + LEASE)
    assert len(set(ids)) == MANY
    assert pending == MANY
    # The first message to each chat is its head, under the id enqueue gave it.
    assert [(queued.id, queued.message) for queued in heads] == list(
        zip(ids[:10], messages[:10], strict=True)
    )
