"""Reminders, the failed payment's "try again", and expiry warnings: follow-ups of a link
due at a time, kept in the store (`tx.follow_ups`).

They are scheduled in the transaction that makes their cause (a link issued, a payment
failed), each once by the store's unique key. A worker claims the due ones under a
lease, as the poller claims links; handling one re-reads its link and marks it done in
the transaction that queues its messages, so it is said once however many processes
run, and a restart loses none. A follow-up whose link was paid, cancelled, expired or
renewed meanwhile is marked done and says nothing: paying or cancelling withdraws
reminders by itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot import render, render_access, render_follow_up
from bot.access import Merchant, may_see
from bot.errors import StoreUnavailable
from bot.follow_up_messages import offer_renewal, remind
from bot.i18n import Voices
from bot.inbox import finish_within
from bot.models import (
    ChatRef,
    FollowUp,
    FollowUpKind,
    Link,
    MessageKind,
    Outgoing,
    ScheduledFollowUp,
    Status,
)
from bot.ports import Store, Tx
from bot.wakes import Wake

log = logging.getLogger(__name__)

CLAIM_BATCH = 20
CLAIM_LEASE = timedelta(seconds=30)
IDLE_MOST = 5.0  # seconds between looks when nothing wakes the worker
# The offer at a link's expiry waits for Cimplify's word that it expired: the poller
# asks at the expiry, and its answer is in as a rule within the first wait.
EXPIRY_RECHECK_FIRST = timedelta(seconds=2)
EXPIRY_RECHECK_MOST = timedelta(minutes=30)


@dataclass(frozen=True)
class FollowUpPolicy:
    """PAYBOT_REMINDERS, PAYBOT_FAILED_REMINDER, PAYBOT_EXPIRY_WARNING (None: off), and
    whether TWILIO_REMINDER_CONTENT_SID is set."""

    reminders: tuple[timedelta, ...] = (timedelta(hours=24),)
    failed_reminder: timedelta | None = timedelta(hours=1)
    expiry_warning: timedelta | None = timedelta(hours=1)
    reminder_template: bool = False


async def schedule_for_new_link(tx: Tx, link: Link, policy: FollowUpPolicy) -> datetime | None:
    """Within the transaction that stores a new link: its reminders, its expiry warning
    and the offer at its expiry. A mark at or past the expiry is left out. When the
    first of them is due, if any is."""
    due: list[ScheduledFollowUp] = []
    for after in policy.reminders:
        if link.created_at + after < link.expires_at:
            mark = str(int(after.total_seconds()))
            due.append((FollowUpKind.REMINDER, mark, link.created_at + after))
    if policy.expiry_warning is not None:
        warn_at = link.expires_at - policy.expiry_warning
        if warn_at > link.created_at:
            due.append((FollowUpKind.EXPIRY_WARNING, "before", warn_at))
        due.append((FollowUpKind.EXPIRED_OFFER, "at", link.expires_at))
    await tx.follow_ups.schedule_all(link.id, due)
    return min((due_at for _, _, due_at in due), default=None)


async def schedule_after_failure(tx: Tx, link: Link, now: datetime, after: timedelta) -> None:
    """Within the transaction that moved the link to `failed`: one "try again" per failure."""
    mark = now.isoformat()
    await tx.follow_ups.schedule(link.id, FollowUpKind.FAILED_REMINDER, mark, now + after)


class FollowUps:
    """The worker that handles due follow-ups, and `/remind`."""

    def __init__(
        self,
        store: Store,
        clock: Callable[[], datetime],
        voices: Voices,
        policy: FollowUpPolicy,
        on_queued: Callable[[], None],
        holder: str = "follow-ups",
    ) -> None:
        self._store = store
        self._clock = clock
        self._voices = voices
        self.policy = policy
        self._on_queued = on_queued
        self._holder = holder
        self._wake = Wake(clock)

    @property
    def looks_at(self) -> datetime | None:
        """When the idle loop looks next, by its clock; None while it is at work."""
        return self._wake.looks_at

    def wake(self, due: datetime | None = None) -> None:
        """Look now; given when the new work is due, only if before the next look anyway."""
        self._wake.set(due)

    async def run(self) -> None:
        while True:
            try:
                self._wake.clear()  # before looking, so that a wake while we look is not missed
                looked_at = self._clock()
                handled, next_at = await self._handle_due()
                if not handled:
                    await self._idle(next_at, looked_at)
            except StoreUnavailable as error:  # the schedule waits in the store
                log.error("follow-ups: the store failed (%s); trying again in a second", error)
                await asyncio.sleep(1.0)
            except Exception:
                log.exception("follow-ups: unexpected error, a bug; trying again in a second")
                await asyncio.sleep(1.0)

    async def handle_due(self) -> int:
        """Claim the due follow-ups and handle each; how many were claimed."""
        return (await self._handle_due())[0]

    async def _handle_due(self) -> tuple[int, datetime | None]:
        """How many were claimed and handled; when none was due, also when the next one
        is, read in the claim's transaction: an idle look costs one."""
        now = self._clock()
        async with self._store.transaction() as tx:
            due = await tx.follow_ups.claim_due(now, CLAIM_BATCH, self._holder, now + CLAIM_LEASE)
            # Not after some were claimed: unfinished, they would count as due still.
            next_at = None if due else await tx.follow_ups.next_due_at()
        for follow_up in due:
            await self._handle(follow_up)
        if due:
            self._on_queued()
        return len(due), next_at

    async def _idle(self, next_at: datetime | None, looked_at: datetime) -> None:
        wait = IDLE_MOST
        # Due by the look yet not claimed: another worker holds it, or held it and died,
        # and its lease (CLAIM_LEASE) has to lapse. Looking nonstop until then would
        # be a transaction every few milliseconds; a look now and then is enough.
        if next_at is not None and next_at > looked_at:
            wait = (next_at - self._clock()).total_seconds()
        await self._wake.idle(min(IDLE_MOST, max(0.01, wait)))

    async def _handle(self, follow_up: FollowUp) -> None:
        now = self._clock()
        async with self._store.transaction() as tx:
            # Locked: the poller's change of the link's status waits for this decision, or
            # this for it (the offer at the expiry, put off meanwhile, is then brought
            # forward by that change, bot/payments.py), never both at once unseen. The
            # link first, then its follow-up, in the order that change takes them.
            link = await tx.links.locked(follow_up.link_id)
            if not await tx.follow_ups.finish(follow_up.id, self._holder, now):
                return  # our lease ended and another worker has it
            if link is None or not await _is_current(tx, link):
                return
            await self._act(tx, follow_up, link, now)
        log.info(
            "follow-up %s of link %s done",
            follow_up.kind,
            follow_up.link_id,
            extra={"link_id": follow_up.link_id, "order_id": link.order_id},
        )

    async def _act(self, tx: Tx, follow_up: FollowUp, link: Link, now: datetime) -> None:
        kind = follow_up.kind
        if kind is FollowUpKind.REMINDER and _unpaid_and_live(link, now):
            await self._remind(tx, link, now, failed=False)
        elif kind is FollowUpKind.FAILED_REMINDER and _unpaid_and_live(link, now):
            if link.status is Status.FAILED:
                await self._remind(tx, link, now, failed=True)
        elif kind is FollowUpKind.EXPIRY_WARNING and _unpaid_and_live(link, now):
            await offer_renewal(tx, self._voices, link, now, expired=False)
        elif kind is FollowUpKind.EXPIRED_OFFER:
            await self._offer_at_expiry(tx, link, now, follow_up)

    async def _offer_at_expiry(
        self, tx: Tx, link: Link, now: datetime, follow_up: FollowUp
    ) -> None:
        """Offer a new link once Cimplify has said this one expired, never on our clock
        alone: a customer may have paid in its last moments, and "expired before it was
        paid" would send the merchant to ask for money that arrived. Until Cimplify has
        said how the link ended (the poller asks at the expiry), the offer is put off,
        each time twice as long."""
        if link.confirmed_at is not None:
            return
        if link.status is Status.EXPIRED:
            await offer_renewal(tx, self._voices, link, now, expired=True)
        elif not link.status.is_final:  # not yet said; paid or cancelled end it here
            tries = _tries(follow_up.mark) + 1
            wait = min(EXPIRY_RECHECK_MOST, EXPIRY_RECHECK_FIRST * 2 ** min(tries - 1, 16))
            mark = f"again {tries}"
            await tx.follow_ups.schedule(link.id, FollowUpKind.EXPIRED_OFFER, mark, now + wait)

    async def _remind(
        self, tx: Tx, link: Link, now: datetime, failed: bool, asker: ChatRef | None = None
    ) -> None:
        template = self.policy.reminder_template
        await remind(tx, self._voices, template, link, now, failed, asker)

    async def remind_now(
        self,
        order_id: str,
        chat: ChatRef,
        asker: Merchant | None = None,
        finishes_input: bool = False,
    ) -> None:
        """`/remind <order_id>`: a reminder now, by the same rules; or one clear answer.
        A cashier (`asker`) may remind only of the links they issued. `finishes_input`:
        nothing follows in the command's handling, so the same transaction marks its
        inbox entry handled (a reminder is never sent twice for one /remind)."""
        now = self._clock()
        async with self._store.transaction() as tx:
            voice = await self._voices.of(tx, chat)
            link = await tx.links.latest_for_order(order_id)
            text = None
            if link is None:
                text = render.no_link(order_id, voice)
            elif asker is not None and not may_see(asker, link):
                text = render_access.not_yours(voice, order_id)
            elif link.confirmed_at is not None or link.status is Status.PAID:
                text = render.already_paid(order_id, link.business_name, voice)
            elif not link.is_live(now):
                text = render_follow_up.no_live_link(voice, link)
            else:
                await self._remind(tx, link, now, failed=False, asker=chat)
            if text is not None:
                await tx.outbox.enqueue([Outgoing(chat, MessageKind.TEXT, text)], now)
            finished = await finish_within(tx, now, last=finishes_input)
        finished()
        self._on_queued()


async def _is_current(tx: Tx, link: Link) -> bool:
    """False once the order has a newer link (it was renewed): the old one's follow-ups
    would only confuse."""
    latest = await tx.links.latest_for_order(link.order_id)
    return latest is None or latest.id == link.id


def _tries(mark: str) -> int:
    """How many times the offer at the expiry was put off: "at", then "again 1", "again 2"…"""
    _, _, count = mark.partition("again ")
    return int(count) if count.isdigit() else 0


def _unpaid_and_live(link: Link, now: datetime) -> bool:
    return link.confirmed_at is None and link.is_live(now)
