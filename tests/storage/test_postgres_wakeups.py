"""Notices of stored work (LISTEN/NOTIFY, CONTRACT §6) wake a process for what another
process stored, and not for what it stored itself: that wakes its own loops directly,
as it must on SQLite, and a notice on top would cost each loop one more look."""

from __future__ import annotations

import asyncio
import itertools

from bot.models import ChatRef, InboxEntry, MessageKind, Outgoing
from storage.postgres import PostgresStore
from tests.harness import wait_until
from tests.storage.contract.support import T0

CHAT = ChatRef("telegram", "1001")
_ids = itertools.count()


async def store_entry(store: PostgresStore) -> None:
    """An inbox entry: notice `inbox`."""
    entry = InboxEntry("test", f"u{next(_ids)}", "test", "lane:a", "{}")
    async with store.transaction() as tx:
        await tx.inbox.record([entry], T0)


async def queue_message(store: PostgresStore) -> None:
    """A chat message: notice `outbox`."""
    async with store.transaction() as tx:
        await tx.outbox.enqueue([Outgoing(CHAT, MessageKind.TEXT, "hello")], T0)


async def test_a_process_is_woken_for_work_another_stored_and_not_for_its_own(
    stores: tuple[PostgresStore, PostgresStore],
) -> None:
    here, there = stores  # this process's store, and another process's
    topics: list[str] = []
    watching = asyncio.create_task(here.watch(topics.append))
    try:

        async def heard_there() -> list[str]:
            await store_entry(there)  # until the watch is listening, its notices are lost
            return topics

        await wait_until(heard_there, lambda heard: "inbox" in heard)
        # Notices come in commit order: once this one is in, none of the above is to come.
        await queue_message(there)
        await wait_until(lambda: _now(topics), lambda heard: "outbox" in heard)
        topics.clear()

        await store_entry(here)  # committed first: its notice would come first
        await queue_message(there)
        await wait_until(lambda: _now(topics), lambda heard: "outbox" in heard)
        assert topics == ["outbox"]
    finally:
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)


async def _now(topics: list[str]) -> list[str]:
    return list(topics)
