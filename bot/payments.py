"""Applying what paybot learns about a payment: one transaction per change.

A change and the messages it causes commit together. Whoever wins the
conditional update announces it; whoever loses says nothing. That is how a race
between the poller and a webhook, or two deliveries of one event, cannot say
anything twice.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from bot import render
from bot.cimplify_events import parse_event
from bot.deliveries import tell_merchants
from bot.event_matching import match_success
from bot.follow_ups import schedule_after_failure
from bot.i18n import ENGLISH_VOICES, Voice, Voices
from bot.inbox import FINISHED
from bot.models import (
    EventType,
    FollowUpKind,
    InboxEntry,
    InboxItem,
    Link,
    MessageKind,
    Outgoing,
    Role,
    Status,
    Subscription,
    WebhookEvent,
    can_move,
)
from bot.ports import Store, Tx
from bot.telemetry import Telemetry

log = logging.getLogger(__name__)

CIMPLIFY_EVENT = "cimplify.event"  # the inbox kind of a verified Cimplify webhook

Clock = Callable[[], datetime]


class Payments:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        on_queued: Callable[[], None],
        telemetry: Telemetry | None = None,
        voices: Voices | None = None,
        failed_reminder: timedelta | None = None,
        on_follow_up_due: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._on_follow_up_due = on_follow_up_due
        self._voices = voices or ENGLISH_VOICES
        self._clock = clock
        self._on_queued = on_queued
        self._telemetry = telemetry or Telemetry()
        self._failed_reminder = failed_reminder  # PAYBOT_FAILED_REMINDER; None: off

    async def apply_status(
        self, link_id: str, new: Status, reference: str | None = None
    ) -> Link | None:
        """Move the link to `new` and tell its chats; the updated link, or None if no change."""
        now = self._clock()
        async with self._store.transaction() as tx:
            moved = await move(
                tx, link_id, new, now, reference, self._voices, self._failed_reminder
            )
        if moved:
            self._on_queued()
            if new is Status.EXPIRED:
                self._on_follow_up_due()
        return moved

    async def handle_event(self, item: InboxItem) -> str:
        """The inbox's handler for a stored Cimplify event: apply it and mark it finished,
        in one transaction. Its signature was checked before it was stored; every step
        is conditional, so even applying it twice would change nothing."""
        event = parse_event(item.entry.body.encode())
        now = self._clock()
        async with self._store.transaction() as tx:
            told = await _apply(tx, event, now, self._voices, self._failed_reminder)
            await tx.inbox.finish(item.seq, now)
        if told is not None:  # committed: from the webhook's receipt to the merchant's chat
            self._telemetry.confirmed(item.received_at, told)
        self._on_queued()
        return FINISHED


def event_entry(event: WebhookEvent, body: bytes) -> InboxEntry:
    """How a verified Cimplify event is stored in the inbox: under its id, and in its
    order's lane, so that one order's events apply one at a time, in the order received."""
    return InboxEntry(
        source="cimplify",
        source_id=event.id,
        kind=CIMPLIFY_EVENT,
        lane=f"order:{event.order_id}",
        body=body.decode(),
    )


async def move(
    tx: Tx,
    link_id: str,
    new: Status,
    now: datetime,
    reference: str | None,
    voices: Voices = ENGLISH_VOICES,
    failed_reminder: timedelta | None = None,
) -> Link | None:
    """Within `tx`: the conditional update, then the messages for every subscriber; a
    failure also schedules its "try again" `failed_reminder` later (bot/follow_ups.py)."""
    link = await tx.links.get(link_id)
    if link is None or link.confirmed_at is not None or not can_move(link.status, new):
        return None
    if not await tx.links.move_status(link_id, link.status, new, now, reference):
        return None
    log.info(
        "order %s (link %s): %s -> %s",
        link.order_id,
        link_id,
        link.status,
        new,
        extra={"order_id": link.order_id, "link_id": link_id},
    )
    link = replace(link, status=new, status_changed_at=now, reference=reference or link.reference)
    if new.is_final:
        await tx.polls.schedule(link_id, None)
    if new is Status.FAILED and failed_reminder is not None:
        await schedule_after_failure(tx, link, now, failed_reminder)
    if new is Status.EXPIRED:  # the offer at the expiry waited for this word: now
        await tx.follow_ups.bring_forward(link_id, FollowUpKind.EXPIRED_OFFER, now)
    subscribers = await tx.subscriptions.for_link(link_id)
    messages = await _announce(tx, link, subscribers, render.status_change, now, voices)
    await tx.outbox.enqueue(messages, now)
    return link


async def _announce(
    tx: Tx,
    link: Link,
    subscribers: list[Subscription],
    words: Callable[[Link, Role, Voice], str],
    now: datetime,
    voices: Voices,
) -> list[Outgoing]:
    """A new message to every subscriber in words for their role and in their voice, and
    an edit of each one's invoice message (channels that cannot edit skip those)."""
    messages = []
    for sub in subscribers:
        voice = await voices.of(tx, sub.chat)
        text = words(link, sub.role, voice)
        messages.append(Outgoing(sub.chat, MessageKind.TEXT, text, link.id))
        caption = render.invoice_caption(link, now, voice)
        buttons = render.invoice_buttons(link, sub.role, voice)
        messages.append(Outgoing(sub.chat, MessageKind.CAPTION, caption, link.id, buttons))
    return messages


async def _apply(
    tx: Tx,
    event: WebhookEvent,
    now: datetime,
    voices: Voices,
    failed_reminder: timedelta | None,
) -> list[int] | None:
    """Apply the event; when it confirmed a link, the ids of the merchants' messages."""
    if event.type == EventType.PAYMENT_FAILED:
        await _fail(tx, event, now, voices, failed_reminder)
    elif event.type in (EventType.PAYMENT_SUCCEEDED, EventType.ORDER_COMPLETED):
        return await _confirm(tx, event, now, voices)
    else:
        log.info(
            "webhook %s: type %s is not ours to act on",
            event.id,
            event.type,
            extra={"event_id": event.id},
        )
    return None


async def _fail(
    tx: Tx,
    event: WebhookEvent,
    now: datetime,
    voices: Voices,
    failed_reminder: timedelta | None,
) -> None:
    link = await tx.links.by_token(event.token) if event.token else None
    if link is None or link.order_id != event.order_id:
        link = await tx.links.latest_for_order(event.order_id)
    if link is None:
        log.warning("webhook %s: no link for order %s", event.id, event.order_id)
        return
    await move(tx, link.id, Status.FAILED, now, event.reference, voices, failed_reminder)


async def _confirm(tx: Tx, event: WebhookEvent, now: datetime, voices: Voices) -> list[int] | None:
    match = await match_success(tx, event, now)
    link = match.link
    if link is None:
        log.warning("webhook %s: no link for order %s", event.id, event.order_id)
        return None
    if link.confirmed_at is not None:
        return None  # a repeat, or the other of payment.succeeded / order.completed
    if match.mismatch is not None:
        await _refuse(tx, link, event, match.mismatch, now, voices)
        return None
    if not await tx.links.confirm(link.id, now, event.reference):
        return None
    log.info(
        "order %s (link %s): Confirmed by webhook %s",
        link.order_id,
        link.id,
        event.id,
        extra={"order_id": link.order_id, "link_id": link.id, "event_id": event.id},
    )
    link = replace(
        link,
        status=Status.PAID,
        confirmed_at=now,
        reference=event.reference or link.reference,
        next_poll_at=None,
    )
    subscribers = await tx.subscriptions.for_link(link.id)
    messages = await _announce(tx, link, subscribers, render.confirmed, now, voices)
    ids = await tx.outbox.enqueue(messages, now)
    merchants = {s.chat for s in subscribers if s.role is Role.MERCHANT}
    return [
        message_id
        for message_id, message in zip(ids, messages, strict=True)
        if message.kind is MessageKind.TEXT and message.chat in merchants
    ]


async def _refuse(
    tx: Tx, link: Link, event: WebhookEvent, why: str, now: datetime, voices: Voices
) -> None:
    """Never "Confirmed" for money that did not arrive as invoiced: the merchants hear it."""
    log.error("webhook %s not applied to link %s: %s", event.id, link.id, why)
    if why == "amount" and event.amount is not None:
        words = functools.partial(render.amount_mismatch, link, event.amount)
    else:
        words = functools.partial(render.event_mismatch, link, event.id, why)
    await tell_merchants(tx, link, words, now, voices)
