"""A delivery receipt and the record of its send, in two processes at once.

Twilio can post a message's status callback while the process that sent it is
still recording the send. Under READ COMMITTED each could miss the other's
uncommitted row; the store makes the second wait for the first, so the receipt is
applied either way. These tests hold one transaction open at the racy moment and
let the other run into it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

import asyncpg

from bot.models import DeliveryStatus, MessageKind, Outgoing, QueuedMessage
from bot.ports import Store
from storage.postgres import PostgresStore
from tests.storage.contract.support import CAROL, LEASE, T0, a_link, at

T = TypeVar("T")
SID = "SM0123456789abcdef"


async def _claimed_invoice(store: Store) -> int:
    async with store.transaction() as tx:
        await tx.links.insert(a_link())
        invoice = Outgoing(CAROL, MessageKind.INVOICE, "Order 1001", link_id="lnk_1")
        [queued] = await tx.outbox.enqueue([invoice], T0)
        await tx.outbox.claim_due(T0, 1, "sender", T0 + LEASE)
    return queued


async def _once_blocked(url: str, work: Awaitable[T]) -> asyncio.Task[T]:
    """`work` started, once it has finished or waits on another session's lock."""
    task = asyncio.ensure_future(work)
    watcher = await asyncpg.connect(url)
    try:
        for _ in range(500):
            waiting = await watcher.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted")
            if task.done() or waiting:
                return task
            await asyncio.sleep(0.01)
    finally:
        await watcher.close()
    raise AssertionError("the second process neither finished nor waited")


async def _delivery_status(store: Store) -> DeliveryStatus | None:
    async with store.transaction() as tx:
        return await tx.outbox.delivery_status("lnk_1", CAROL, MessageKind.INVOICE)


async def test_a_receipt_arriving_while_the_send_is_recorded_moves_the_message(
    url: str, stores: tuple[PostgresStore, PostgresStore]
) -> None:
    sender, handler = stores
    queued = await _claimed_invoice(sender)

    async def receipt() -> QueuedMessage | None:
        async with handler.transaction() as tx:
            return await tx.outbox.record_delivery("whatsapp", SID, DeliveryStatus.DELIVERED, at(2))

    async with sender.transaction() as tx:
        assert await tx.outbox.mark_sent(queued, at(1), SID) is None
        handled = await _once_blocked(url, receipt())
    moved = await handled

    assert moved is not None and moved.id == queued
    assert await _delivery_status(sender) == DeliveryStatus.DELIVERED


async def test_a_send_recorded_while_an_early_receipt_is_kept_applies_it(
    url: str, stores: tuple[PostgresStore, PostgresStore]
) -> None:
    sender, handler = stores
    queued = await _claimed_invoice(sender)

    async def send() -> DeliveryStatus | None:
        async with sender.transaction() as tx:
            return await tx.outbox.mark_sent(queued, at(2), SID)

    async with handler.transaction() as tx:
        assert await tx.outbox.record_delivery("whatsapp", SID, DeliveryStatus.READ, at(1)) is None
        recorded = await _once_blocked(url, send())

    assert await recorded == DeliveryStatus.READ
    assert await _delivery_status(sender) == DeliveryStatus.READ
