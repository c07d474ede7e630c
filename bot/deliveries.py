"""What channels report of messages they accepted, and what the merchant hears of it.

A customer's copy of the invoice is what matters: the merchant is told once it
was delivered, or that it could not be, with the link to forward instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from bot import render
from bot.models import (
    ChatRef,
    DeliveryStatus,
    Link,
    MessageKind,
    Outgoing,
    Role,
)
from bot.ports import Store, Tx

log = logging.getLogger(__name__)


class Deliveries:
    def __init__(
        self, store: Store, clock: Callable[[], datetime], on_queued: Callable[[], None]
    ) -> None:
        self._store = store
        self._clock = clock
        self._on_queued = on_queued

    async def apply(self, channel: str, remote_id: str, status: DeliveryStatus) -> None:
        """Record a receipt; tell the merchants when it settles a customer's invoice."""
        now = self._clock()
        async with self._store.transaction() as tx:
            moved = await tx.outbox.record_delivery(channel, remote_id, status, now)
            told = moved is not None and await announce_receipt(tx, moved.message, status, now)
        if told:
            self._on_queued()


async def announce_receipt(
    tx: Tx, message: Outgoing, status: DeliveryStatus, now: datetime
) -> bool:
    """Within `tx`: tell the merchants what a receipt says of a customer's invoice.

    Only `delivered` is announced (`read` follows it and asks nothing of the
    merchant), and a failure, with the link to forward. True when something was queued.
    """
    if message.kind is not MessageKind.INVOICE or message.link_id is None:
        return False
    link = await tx.links.get(message.link_id)
    if link is None or not await _is_customer(tx, link, message.chat):
        return False
    if status is DeliveryStatus.DELIVERED:
        text = render.customer_received(link, message.chat)
    elif status is DeliveryStatus.FAILED:
        text = render.customer_unreachable(link, message.chat, "WhatsApp did not deliver it")
    else:
        return False
    await tell_merchants(tx, link, text, now)
    return True


async def _is_customer(tx: Tx, link: Link, chat: ChatRef) -> bool:
    return any(
        s.chat == chat and s.role is Role.CUSTOMER for s in await tx.subscriptions.for_link(link.id)
    )


async def tell_merchants(tx: Tx, link: Link, text: str, now: datetime) -> None:
    """Queue `text` to every merchant chat subscribed to the link."""
    merchants = [
        s.chat for s in await tx.subscriptions.for_link(link.id) if s.role is Role.MERCHANT
    ]
    await tx.outbox.enqueue(
        [Outgoing(chat, MessageKind.TEXT, text, link.id) for chat in merchants], now
    )
    log.info("order %s: told %d merchant chat(s): %s", link.order_id, len(merchants), text[:80])
