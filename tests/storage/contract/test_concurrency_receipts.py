"""Receipts racing each other and the sends they report, from several processes."""

from __future__ import annotations

import asyncio

from bot.models import ChatRef, DeliveryStatus, MessageKind, QueuedMessage
from bot.ports import Store, Tx
from tests.storage.contract.support import LEASE, T0, OpenStore, a_link, committed, invoice_to

PROCESSES = 3
CHATS = [ChatRef("whatsapp", f"+23320000{n:04}") for n in range(16)]


async def claim_invoices(store: Store) -> list[QueuedMessage]:
    """One invoice for lnk_1 to each chat, claimed by a sender."""
    async with store.transaction() as tx:
        await tx.links.insert(a_link())
        await tx.outbox.enqueue([invoice_to(chat) for chat in CHATS], T0)
    async with store.transaction() as tx:
        return await tx.outbox.claim_due(T0, 100, "sender", T0 + LEASE)


async def statuses(store: Store) -> list[DeliveryStatus | None]:
    async with store.transaction() as tx:
        return [
            await tx.outbox.delivery_status("lnk_1", chat, MessageKind.INVOICE) for chat in CHATS
        ]


async def test_a_receipt_racing_its_send_is_never_lost(open_store: OpenStore) -> None:
    # The sender records each send while the webhook process records its receipt:
    # whichever commits second must see the first, so the receipt is applied by
    # record_delivery (the send was there) or returned by mark_sent (it was kept).
    sender, webhooks = await open_store(), await open_store()
    claimed = await claim_invoices(sender)
    applied: list[str] = []

    async def mark_sent(queued: QueuedMessage) -> None:
        async def work(tx: Tx) -> DeliveryStatus | None:
            return await tx.outbox.mark_sent(queued.id, T0, f"SM{queued.id}")

        if await committed(sender, work) is not None:
            applied.append(f"SM{queued.id}")

    async def receipt(queued: QueuedMessage) -> None:
        async def work(tx: Tx) -> QueuedMessage | None:
            return await tx.outbox.record_delivery(
                "whatsapp", f"SM{queued.id}", DeliveryStatus.DELIVERED, T0
            )

        if await committed(webhooks, work) is not None:
            applied.append(f"SM{queued.id}")

    await asyncio.gather(*(mark_sent(q) for q in claimed), *(receipt(q) for q in claimed))
    assert sorted(applied) == sorted(f"SM{q.id}" for q in claimed)  # each applied once
    assert await statuses(sender) == [DeliveryStatus.DELIVERED] * len(CHATS)


async def test_racing_receipts_leave_the_furthest_status_and_one_mover_each(
    open_store: OpenStore,
) -> None:
    stores = [await open_store() for _ in range(PROCESSES)]
    claimed = await claim_invoices(stores[0])
    async with stores[0].transaction() as tx:
        for queued in claimed:
            await tx.outbox.mark_sent(queued.id, T0, f"SM{queued.id}")
    order = [DeliveryStatus.READ, DeliveryStatus.SENT, DeliveryStatus.DELIVERED] * 2

    async def receipt(n: int, queued: QueuedMessage) -> tuple[int, DeliveryStatus] | None:
        status = order[n]

        async def work(tx: Tx) -> QueuedMessage | None:
            return await tx.outbox.record_delivery("whatsapp", f"SM{queued.id}", status, T0)

        moved = await committed(stores[n % PROCESSES], work)
        return None if moved is None else (moved.id, status)

    results = await asyncio.gather(
        *(receipt(n, queued) for queued in claimed for n in range(len(order)))
    )
    moves = [result for result in results if result is not None]
    assert await statuses(stores[1]) == [DeliveryStatus.READ] * len(CHATS)
    # "read" is the furthest: exactly one of its receipts moved each message there.
    assert sorted(i for i, s in moves if s is DeliveryStatus.READ) == sorted(q.id for q in claimed)
