"""The poller: which link to ask Cimplify about next, and when.

Its whole state is each link's `next_poll_at` in the store, so a restart picks
up every live link where it left off. Links are polled under one budget of Pay
API requests a second, moving payments first, then soonest due: quickly while a
payment is moving, slowly and backing off while nobody is paying.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.cimplify import CimplifyClient
from bot.errors import (
    CimplifyError,
    CimplifyUnavailable,
    LinkExpired,
    LinkNotFound,
    StoreError,
    StoreUnavailable,
)
from bot.models import Link, Status, utcnow
from bot.payments import Payments
from bot.ports import Store
from bot.telemetry import Telemetry
from bot.wakes import Wake

log = logging.getLogger(__name__)

MOVING = (Status.PROCESSING, Status.AWAITING_AUTHORIZATION)  # a payment under way
# Links are claimed a tenth of a second of budget at a time, so a link that falls due
# (a payment someone is waiting on) waits at most that long behind claimed ones.
CLAIM_SECONDS = 0.1
# Every this many claims, the soonest due go first whatever their state: moving
# payments come first otherwise, and enough of them would use the whole budget
# and leave a new payment starting, or an expiry, unseen for good.
FAIR_EVERY = 4
# A claimed link's next poll until the policy sets it, in the same transaction.
CLAIM_LEASE = timedelta(seconds=30)


@dataclass(frozen=True)
class PollPolicy:
    """How often to ask about a link. Defaults suit people (and bench/polling.py
    measures them); tests make them quick.

    A payment announces itself before it settles: Cimplify reports `processing`
    and usually `awaiting_authorization` (a prompt on the phone, a PIN, a 3-D
    Secure page) for ten seconds or more before `paid`. So a link nobody is
    paying is asked about slowly, and one whose payment is moving quickly: the
    merchant is waiting for that "Paid", and it can come at any moment.

    The budget is shared, so each look goes where a change is likeliest: a card
    can settle straight from `processing` within seconds, so a new link (its
    customer is often paying while the merchant's chat is open) is asked about
    more often in its first minute, and a prompt, which nobody answers within a
    few seconds of it appearing, is looked at again only after that time.
    """

    active: timedelta = timedelta(seconds=1.5)  # processing
    authorizing: timedelta = timedelta(seconds=1.7)  # awaiting authorization, once read
    # The least time a person takes to read a prompt and answer it (unlock the phone,
    # read the amount, type the PIN or the code): no look before it, after the prompt.
    answer_time: timedelta = timedelta(seconds=5)
    fresh: timedelta = timedelta(seconds=6)  # just issued, or just failed
    fresh_for: timedelta = timedelta(minutes=1)
    idle_min: timedelta = timedelta(seconds=10)
    # Short enough to catch a payment while it is moving, however late it starts.
    idle_max: timedelta = timedelta(seconds=30)
    idle_share: float = 1 / 6  # of the time since anything happened
    jitter: float = 0.2  # ± this fraction, so links issued together spread out
    # Moving payments are spread by their customers already; each one's pace is what
    # its "Paid" waits on, so it keeps close to it.
    moving_jitter: float = 0.05

    def interval(self, link: Link, now: datetime) -> timedelta:
        if link.status in MOVING:
            return _jittered(self._moving(link, now), self.moving_jitter)
        if now - link.status_changed_at < self.fresh_for:
            base = self.fresh
        else:
            waited = (now - link.status_changed_at) * self.idle_share
            base = min(self.idle_max, max(self.idle_min, waited))
        return _jittered(base, self.jitter)

    def _moving(self, link: Link, now: datetime) -> timedelta:
        if link.status is Status.AWAITING_AUTHORIZATION:
            return max(self.authorizing, link.status_changed_at + self.answer_time - now)
        return self.active

    def next_poll(self, link: Link, now: datetime) -> datetime:
        if now < link.expires_at:
            # Never sleep past the expiry, so that "Expired" is said on time.
            return min(now + self.interval(link, now), link.expires_at)
        if link.status in MOVING:
            return now + self.interval(link, now)
        # Past it, Cimplify is asked until it says how the link ended: soon at first, as
        # its clock may be a moment behind ours, then less and less often.
        late = (now - link.expires_at) * self.idle_share
        return now + min(self.idle_max, max(self.active, late))


class Tracker:
    def __init__(
        self,
        store: Store,
        client: CimplifyClient,
        payments: Payments,
        clock: Callable[[], datetime],
        rate: float = 5.0,
        policy: PollPolicy | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._store = store
        self._client = client
        # Whether this process is the one polling (bot/roles.py); alone, it always is.
        self.may_poll: Callable[[], bool] = lambda: True
        self._meter = (telemetry or Telemetry()).meter
        self._payments = payments
        self._clock = clock
        # The budget is turns kept in the store, `_spacing` apart, which every process's
        # polls reserve (the poller's and any /status), so PAYBOT_POLL_RATE holds for all
        # processes together. Turns are real time, whatever clock the links are read by.
        self._spacing = timedelta(seconds=1 / rate)
        self._claim = max(1, math.ceil(rate * CLAIM_SECONDS))
        self._claims = 0
        self.policy = policy or PollPolicy()
        self._wake = Wake(clock)
        self._polls: set[asyncio.Task[None]] = set()
        # Links whose poll is still waiting for Cimplify: a slow answer outlasts the link's
        # next poll, and asking again before it comes would only add to a struggling
        # Cimplify's load (and step past a Retry-After that answer may bring).
        self._asking: set[str] = set()

    @property
    def looks_at(self) -> datetime | None:
        """When the idle loop looks next, by its clock; None while it is at work."""
        return self._wake.looks_at

    def wake(self, due: datetime | None = None) -> None:
        """Look now; given when the new work is due, only if before the next look anyway."""
        self._wake.set(due)

    async def run(self) -> None:
        try:
            while True:
                try:
                    self._wake.clear()  # before looking, so that a wake while we look counts
                    due, turn = await self._claim_due() if self.may_poll() else ([], utcnow())
                    for link in due:
                        await _until(turn)
                        self._start_poll(link)
                        turn += self._spacing
                    if not due:
                        await self._idle()
                except StoreUnavailable as error:  # the schedule waits in the store
                    log.error("poller: the store failed (%s); trying again in a second", error)
                    await asyncio.sleep(1.0)
                except Exception:
                    log.exception("poller: unexpected error, a bug; trying again in a second")
                    await asyncio.sleep(1.0)
        finally:
            for task in list(self._polls):
                task.cancel()

    def _start_poll(self, link: Link) -> None:
        self._asking.add(link.id)
        task = asyncio.create_task(self.poll_quietly(link))
        self._polls.add(task)
        task.add_done_callback(self._polls.discard)
        task.add_done_callback(lambda _: self._asking.discard(link.id))

    async def _claim_due(self) -> tuple[list[Link], datetime]:
        """Take the due links, moving payments first (but see FAIR_EVERY), set each one's
        next poll by the policy, and reserve a turn of the budget for each, in the claim's
        transaction; the links and the first turn's time.

        The claim is atomic in the store, so no link is taken by two pollers, in this
        process or another; a poller that dies leaves each link due at its next poll.
        """
        now = self._clock()
        self._claims += 1
        moving_first = self._claims % FAIR_EVERY != 0
        async with self._store.transaction() as tx:
            due = await tx.polls.claim_due(now, self._claim, now + CLAIM_LEASE, moving_first)
            for link in due:
                await tx.polls.schedule(link.id, self.policy.next_poll(link, now))
            # A link whose answer is still coming is not asked again (its next poll is
            # set; that answer decides), and spends no turn.
            asking = [link for link in due if link.id not in self._asking]
            turn = utcnow()
            if asking:
                turn = await tx.polls.reserve_turns(turn, len(asking), self._spacing)
        return asking, turn

    async def _idle(self) -> None:
        wait = 5.0
        # Not the poller: the links due are the poller's, and looking at them would be
        # a transaction every 10 ms while any is overdue; gaining the role wakes us.
        if self.may_poll():
            async with self._store.transaction() as tx:
                next_at = await tx.polls.next_due_at()
            if next_at is not None:
                wait = (next_at - self._clock()).total_seconds()
        await self._wake.idle(min(5.0, max(0.01, wait)))

    async def poll_now(self, link: Link) -> Link | None:
        """A poll a chat asked for (/status, Refresh status), in any process: a turn of the
        budget that every process shares, ahead of the links waiting in the store (the
        poller reserves a tenth of a second of turns at a time), so no chat can push
        Cimplify past the rate, however many processes take commands."""
        async with self._store.transaction() as tx:
            turn = await tx.polls.reserve_turns(utcnow(), 1, self._spacing)
        await _until(turn)
        return await self.poll(link, patient=True)

    async def poll(self, link: Link, patient: bool = False) -> Link | None:
        """Ask Cimplify about one link and apply what it says; the link as it now stands.

        Asked at the expiry too, never expired by our clock alone: a customer may have
        paid in the link's last moments, after its previous poll, and "Expired" would then
        be said of money that arrived, and tracking would end before "Paid".
        """
        try:
            report = await self._client.status(link.token, patient=patient)
        except LinkExpired:
            expired = await self._expire(link)
            self._meter.poll("unchanged" if expired is None else "changed")
            return expired
        except LinkNotFound:
            self._meter.poll("error")
            log.error(
                "link %s: Cimplify does not know its token; tracking stops",
                link.id,
                extra={"link_id": link.id, "order_id": link.order_id},
            )
            await self._schedule(link.id, None)
            return None
        except CimplifyUnavailable as error:
            self._meter.poll("error")
            await self._back_off(link, error)
            raise
        except CimplifyError:  # our key refused, an answer outside the contract
            self._meter.poll("error")
            raise
        if report.status is None:
            self._meter.poll("unchanged")
            log.warning(
                "link %s: unknown status %r, taken as no change", link.id, report.raw_status
            )
            return link
        if report.status is link.status:
            # What the claim read a moment ago: no state moves to itself, so there is
            # nothing to apply, and most polls are this one; no transaction for it. Had a
            # webhook moved the link since, the next poll (already set) says the rest.
            self._meter.poll("unchanged")
            return link
        moved = await self._payments.apply_status(link.id, report.status, report.reference)
        self._meter.poll("unchanged" if moved is None else "changed")
        if moved is None:
            return link
        if not moved.status.is_final:
            # The pace follows the state: a payment that started moving is watched closely.
            await self._schedule(moved.id, self.policy.next_poll(moved, self._clock()))
        return moved

    async def _expire(self, link: Link) -> Link | None:
        log.info(
            "link %s for order %s: Cimplify says it expired",
            link.id,
            link.order_id,
            extra={"link_id": link.id, "order_id": link.order_id},
        )
        moved = await self._payments.apply_status(link.id, Status.EXPIRED)
        await self._schedule(link.id, None)
        return moved

    async def _back_off(self, link: Link, error: CimplifyUnavailable) -> None:
        wait = getattr(error, "retry_after", None) or self.policy.idle_min.total_seconds()
        log.warning("link %s: Cimplify unavailable (%s); next poll in %s s", link.id, error, wait)
        await self._schedule(link.id, self._clock() + timedelta(seconds=wait))

    async def _schedule(self, link_id: str, at: datetime | None) -> None:
        async with self._store.transaction() as tx:
            current = await tx.links.get(link_id)
            if current is not None and current.next_poll_at is not None:
                await tx.polls.schedule(link_id, at)

    async def poll_quietly(self, link: Link) -> None:
        """One scheduled poll: its failures are logged, and the schedule already holds the next."""
        try:
            await self.poll(link)
        except (CimplifyError, StoreError) as error:
            log.warning("link %s: poll failed: %s", link.id, error, extra={"link_id": link.id})
        except Exception:
            log.exception("link %s: poll failed with an unexpected error", link.id)


def _jittered(interval: timedelta, spread: float) -> timedelta:
    return interval * random.uniform(1 - spread, 1 + spread)  # noqa: S311 - jitter, not a secret


async def _until(turn: datetime) -> None:
    """Wait for a reserved turn of the poll budget (real time, as the store keeps it)."""
    wait = (turn - utcnow()).total_seconds()
    if wait > 0:
        await asyncio.sleep(wait)
