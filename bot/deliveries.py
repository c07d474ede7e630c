"""What channels report of messages they accepted, and what the merchant hears of it.

A customer's copy of the invoice is what matters: the merchant is told once it
was delivered, or that it could not be, with the link to forward instead.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import datetime

from bot import render
from bot.i18n import ENGLISH_VOICES, Voice, Voices, Words
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
        self,
        store: Store,
        clock: Callable[[], datetime],
        on_queued: Callable[[], None],
        voices: Voices | None = None,
    ) -> None:
        self._store = store
        self._voices = voices or ENGLISH_VOICES
        self._clock = clock
        self._on_queued = on_queued

    async def apply(self, channel: str, remote_id: str, status: DeliveryStatus) -> None:
        """Record a receipt; tell the merchants when it settles a customer's invoice."""
        now = self._clock()
        async with self._store.transaction() as tx:
            moved = await tx.outbox.record_delivery(channel, remote_id, status, now)
            told = moved is not None and await announce_receipt(
                tx, moved.message, status, now, self._voices
            )
        if told:
            self._on_queued()


async def announce_receipt(
    tx: Tx,
    message: Outgoing,
    status: DeliveryStatus,
    now: datetime,
    voices: Voices = ENGLISH_VOICES,
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
    customer = message.chat
    words: Words
    if status is DeliveryStatus.DELIVERED:
        words = functools.partial(render.customer_received, link, customer)
    elif status is DeliveryStatus.FAILED:

        def words(voice: Voice) -> str:
            why = render.not_delivered_by_whatsapp(voice)
            return render.customer_unreachable(link, customer, why, voice)

    else:
        return False
    await tell_merchants(tx, link, words, now, voices)
    return True


async def _is_customer(tx: Tx, link: Link, chat: ChatRef) -> bool:
    return any(
        s.chat == chat and s.role is Role.CUSTOMER for s in await tx.subscriptions.for_link(link.id)
    )


async def tell_merchants(
    tx: Tx, link: Link, words: Words | str, now: datetime, voices: Voices = ENGLISH_VOICES
) -> None:
    """Queue `words` to every merchant chat subscribed to the link, each in its own voice
    (a `str` is text already said, the same for every chat)."""
    merchants = [
        s.chat for s in await tx.subscriptions.for_link(link.id) if s.role is Role.MERCHANT
    ]
    messages = [
        Outgoing(chat, MessageKind.TEXT, await _said(tx, chat, words, voices), link.id)
        for chat in merchants
    ]
    await tx.outbox.enqueue(messages, now)
    log.info("order %s: told %d merchant chat(s)", link.order_id, len(merchants))


async def _said(tx: Tx, chat: ChatRef, words: Words | str, voices: Voices) -> str:
    return words if isinstance(words, str) else words(await voices.of(tx, chat))
