"""Applying what paybot learns about a payment: one transaction per change.

A change and the messages it causes commit together. Whoever wins the
conditional update announces it; whoever loses says nothing. That is how a race
between the poller and a webhook, or two deliveries of one event, cannot say
anything twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from bot import render
from bot.models import (
    EventType,
    Link,
    MessageKind,
    Outgoing,
    Role,
    Status,
    StoredEvent,
    Subscription,
    WebhookEvent,
    can_move,
)
from storage import Store, Tx

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class Payments:
    def __init__(self, store: Store, clock: Clock, on_queued: Callable[[], None]) -> None:
        self._store = store
        self._clock = clock
        self._on_queued = on_queued
        # Webhooks arrive concurrently and each asks for the backlog to be applied;
        # one applier at a time means no stored event is applied twice.
        self._applying = asyncio.Lock()

    async def apply_status(
        self, link_id: str, new: Status, reference: str | None = None
    ) -> Link | None:
        """Move the link to `new` and tell its chats; the updated link, or None if no change."""
        now = self._clock()
        async with self._store.transaction() as tx:
            moved = await move(tx, link_id, new, now, reference)
        if moved:
            self._on_queued()
        return moved

    async def apply_event(self, stored: StoredEvent) -> None:
        """Apply one stored webhook event and mark it applied, in one transaction."""
        now = self._clock()
        async with self._store.transaction() as tx:
            await _apply(tx, stored.event, now)
            await tx.mark_applied(stored.event.id, now)
        self._on_queued()

    async def apply_pending_events(self, batch: int = 10) -> int:
        """Apply every stored event not yet applied (after a crash, say); how many.

        Up to `batch` events share a transaction: under a burst of webhooks one commit
        a batch, not one an event. Small, so webhooks waiting to be stored (the same
        store, one transaction at a time) are not held up for long.
        """
        async with self._applying:
            total = 0
            while True:
                applied = await self._apply_some(batch)
                total += applied
                if applied < batch:
                    return total

    async def _apply_some(self, batch: int) -> int:
        try:
            return await self._apply_together(batch)
        except Exception:
            if batch == 1:
                raise
            # One at a time instead: those before the failing event still apply, and
            # the failing one raises as it would alone.
            log.exception("applying %d stored events together failed; one at a time", batch)
            applied = 0
            while applied < batch and await self._apply_together(1):
                applied += 1
            return applied

    async def _apply_together(self, batch: int) -> int:
        """Apply the oldest `batch` unapplied events in one transaction; how many."""
        now = self._clock()
        async with self._store.transaction() as tx:
            pending = await tx.unapplied_events(batch)
            for stored in pending:
                await _apply(tx, stored.event, now)
                await tx.mark_applied(stored.event.id, now)
        if pending:
            self._on_queued()
        return len(pending)


async def move(
    tx: Tx, link_id: str, new: Status, now: datetime, reference: str | None
) -> Link | None:
    """Within `tx`: the conditional update, then the messages for every subscriber."""
    link = await tx.link(link_id)
    if link is None or link.confirmed_at is not None or not can_move(link.status, new):
        return None
    if not await tx.move_status(link_id, link.status, new, now, reference):
        return None
    log.info("order %s (link %s): %s -> %s", link.order_id, link_id, link.status, new)
    link = replace(link, status=new, status_changed_at=now, reference=reference or link.reference)
    if new.is_final:
        await tx.schedule_poll(link_id, None)
    subscribers = await tx.subscriptions(link_id)
    await tx.enqueue(_announce(link, subscribers, render.status_change, now), now)
    return link


def _announce(
    link: Link,
    subscribers: list[Subscription],
    words: Callable[[Link, Role], str],
    now: datetime,
) -> list[Outgoing]:
    """A new message to every subscriber in words for their role, and an edit of each
    one's invoice message (channels that cannot edit skip those)."""
    caption = render.invoice_caption(link, now)
    messages = []
    for sub in subscribers:
        messages.append(Outgoing(sub.chat, MessageKind.TEXT, words(link, sub.role), link.id))
        buttons = render.invoice_buttons(link, sub.role)
        messages.append(Outgoing(sub.chat, MessageKind.CAPTION, caption, link.id, buttons))
    return messages


async def _apply(tx: Tx, event: WebhookEvent, now: datetime) -> None:
    if event.type not in (
        EventType.PAYMENT_SUCCEEDED,
        EventType.ORDER_COMPLETED,
        EventType.PAYMENT_FAILED,
    ):
        log.info("webhook %s: type %s is not ours to act on", event.id, event.type)
        return
    link = await _link_for(tx, event)
    if link is None:
        log.warning("webhook %s: no link for order %s", event.id, event.order_id)
        return
    if event.type == EventType.PAYMENT_FAILED:
        await move(tx, link.id, Status.FAILED, now, event.reference)
    else:
        await _confirm(tx, link, event, now)


async def _link_for(tx: Tx, event: WebhookEvent) -> Link | None:
    # `order.completed` speaks of the order and may carry no token (CONTRACT §2).
    if event.token:
        link = await tx.link_by_token(event.token)
        if link is not None:
            return link
    return await tx.latest_link_for_order(event.order_id)


async def _confirm(tx: Tx, link: Link, event: WebhookEvent, now: datetime) -> None:
    if link.confirmed_at is not None:
        return  # a repeat, or the other of payment.succeeded / order.completed
    subscribers = await tx.subscriptions(link.id)
    if event.amount is not None and event.amount != link.total:
        # Never "Confirmed" for money that did not arrive as invoiced.
        log.error(
            "webhook %s: paid %s, link %s expects %s", event.id, event.amount, link.id, link.total
        )
        text = render.amount_mismatch(link, event.amount)
        await tx.enqueue(
            [Outgoing(s.chat, MessageKind.TEXT, text, link.id) for s in subscribers], now
        )
        return
    if not await tx.confirm(link.id, now, event.reference):
        return
    log.info("order %s (link %s): Confirmed by webhook %s", link.order_id, link.id, event.id)
    link = replace(
        link,
        status=Status.PAID,
        confirmed_at=now,
        reference=event.reference or link.reference,
        next_poll_at=None,
    )
    await tx.enqueue(_announce(link, subscribers, render.confirmed, now), now)
