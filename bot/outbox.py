"""The outbox dispatcher: every chat message leaves from here, in order, paced.

Messages are queued by whoever causes them, in the same transaction as the
cause. One dispatcher sends them: in order within a chat, at most one a second
per chat and `overall_rate` a second overall (Telegram's published limits: 1 and
30), retrying network errors and `429`s, dropping what can never be delivered.
New messages and edits of invoice captions are paced apart, each at that rate:
Telegram's bulk limit counts messages sent, and a status change makes one of each
per chat, so sharing one budget would halve the rate at which news goes out.
The pace is smooth (no bursts), so no one-second window ever holds more than the
rate allows.

Messages are taken by claims in the store (bot/ports.py, OutboxQueue): only the
head of a chat's queue, and only while no one holds it, so a chat has one message
in flight whichever process sends, and the per-chat pace is a pause kept in the
store. A claim lives while its holder's heartbeat prolongs it; a sender that dies
leaves its claims to lapse, and another takes them.

One window remains: a crash after the channel accepted a message and before it
is marked sent repeats that message once its claim lapses, because Telegram's
sendMessage has no idempotency key. Marking happens right after the send to keep
it small.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from bot import render
from bot.deliveries import announce_receipt, tell_merchants
from bot.errors import (
    ChatMoved,
    PermanentDelivery,
    RetryLater,
    StoreError,
    StoreUnavailable,
    TransientDelivery,
)
from bot.i18n import ENGLISH_VOICE, ENGLISH_VOICES, Voice, Voices
from bot.inbox import Leases
from bot.models import (
    ChatRef,
    ExportFile,
    Link,
    MessageKind,
    Outgoing,
    QueuedMessage,
    Role,
    Subscription,
)
from bot.pacing import PacedWindow, Slot
from bot.ports import Store, Tx
from bot.telemetry import Telemetry
from bot.wakes import Wake

log = logging.getLogger(__name__)

# Retried messages wait 2, 4, 8 ... seconds, never more than this.
MAX_BACKOFF = timedelta(seconds=60)
IDLE_WAIT = 5.0
# How often to look again while the earliest due message is one already passed over.
PASSED_OVER_WAIT = 0.25
NEW_MESSAGES = frozenset(kind for kind in MessageKind if kind is not MessageKind.CAPTION)
EDITS = frozenset({MessageKind.CAPTION})
UNEXPECTED_TRIES = 5  # an error nobody foresaw is tried this often, then dropped
RECORD_RETRY_MOST = 5.0  # seconds between tries of recording a send while the store fails
FLUSH_GRACE = 2.0  # on shutdown, how long messages already due may take to go out


@dataclass(frozen=True)
class Delivery:
    """What a channel needs to send one message."""

    message: Outgoing
    link: Link | None  # INVOICE: the link whose QR to draw
    message_id: str | None  # CAPTION: the chat's invoice message to edit
    role: Role | None = None  # the chat's role for the link, when it has one
    # The file the message carries (`Outgoing.attachment`); None when it has expired.
    attachment: ExportFile | None = None
    # The chat's voice, for what a channel adds to a link's message (the Telegram share
    # line, a WhatsApp template's values); the text itself was said when it was queued.
    voice: Voice = ENGLISH_VOICE


class Messenger(Protocol):
    """One chat channel's sending side."""

    async def deliver(self, delivery: Delivery) -> str | None:
        """Send it; the channel's id of the message sent, if any.

        Raises RetryLater, TransientDelivery or PermanentDelivery (bot.errors);
        anything else counts as transient.
        """


class Outbox:
    def __init__(
        self,
        store: Store,
        messengers: Mapping[str, Messenger],
        clock: Callable[[], datetime],
        per_chat_gap: float = 1.0,
        overall_rate: float = 30.0,
        holder: str = "outbox",
        leases: Leases | None = None,
        telemetry: Telemetry | None = None,
        voices: Voices | None = None,
    ) -> None:
        self._store = store
        self._messengers = messengers
        self._voices = voices or ENGLISH_VOICES
        self._telemetry = telemetry or Telemetry()
        self._clock = clock
        self._gap = timedelta(seconds=per_chat_gap)
        self._sends = PacedWindow(overall_rate)
        self._edits = PacedWindow(overall_rate)
        # Claim about half a second of budget at a time: a claimed message waits for
        # the budget while it holds its chat, so claiming more only delays others.
        self._claim_size = max(1, int(overall_rate / 2))
        self._holder = holder
        self._leases = leases or Leases()
        self._wakes: list[Wake] = []  # one for each dispatch loop
        self._sending: set[asyncio.Task[None]] = set()
        self._in_hand: set[int] = set()  # ids of the messages being sent or recorded
        # Whether this process is the one sending (bot/roles.py); alone, it always is.
        self.may_send: Callable[[], bool] = lambda: True
        self._progress = asyncio.Event()  # set as each send ends
        self._running = False  # while run() runs: no claim for a sender that is not

    def wake(self) -> None:
        """Something was queued: look again now rather than at the next tick."""
        for wake in self._wakes:
            wake.set()

    def _look_by(self, at: datetime) -> None:
        for wake in self._wakes:
            wake.look_by(at)

    async def run(self) -> None:
        self._running = True
        try:
            # A loop for each budget: one waiting for its turn must not hold up the
            # other, or new messages and edits would share one rate after all.
            await asyncio.gather(
                self._dispatch(NEW_MESSAGES, self._sends),
                self._dispatch(EDITS, self._edits),
                self._heartbeat(),
            )
        finally:
            self._running = False
            await self._finish_sending()

    async def _dispatch(self, kinds: frozenset[MessageKind], budget: PacedWindow) -> None:
        wake = Wake(self._clock)
        self._wakes.append(wake)
        while True:
            try:
                wake.clear()  # before looking, so that a wake while we look is not missed
                checked = self._clock()
                all_taken, next_at = await self._dispatch_due(kinds, budget, checked)
                if all_taken:
                    await self._idle(wake, checked, next_at)
            except StoreUnavailable as error:  # the messages wait in the store
                log.error("outbox: the store failed (%s); trying again in a second", error)
                await asyncio.sleep(1.0)
            except Exception:
                log.exception("outbox: unexpected error, a bug; trying again in a second")
                await asyncio.sleep(1.0)

    async def _dispatch_due(
        self, kinds: frozenset[MessageKind], budget: PacedWindow, now: datetime
    ) -> tuple[bool, datetime | None]:
        """Claim and start what is due. Whether that was all that is due, and then when
        the next message is, read in the same transaction: an idle look costs one."""
        if not self.may_send():
            return True, None  # only gaining the sender's role (a wake) changes anything
        until = now + self._leases.claim
        # What to send is read with the claim, in its transaction (one for the lot, not
        # one a message), and the budget taken last, right before each request leaves:
        # work between the two would bunch requests together, and a strict one-second
        # window (Telegram's) would see more than the rate.
        async with self._store.transaction() as tx:
            due = await tx.outbox.claim_due(now, self._claim_size, self._holder, until, kinds)
            # One whose claim lapsed while its send was being recorded is still ours.
            fresh = [queued for queued in due if queued.id not in self._in_hand]
            deliveries = [await self._delivery(tx, queued) for queued in fresh]
            all_taken = len(due) < self._claim_size
            next_at = await tx.outbox.next_due_at() if all_taken else None
        for queued, delivery in zip(fresh, deliveries, strict=True):
            slot = None
            if delivery is not None and queued.message.chat.channel in self._messengers:
                slot = await budget.hold()
            self._in_hand.add(queued.id)
            self._start(self._send(queued, delivery, slot))
        return all_taken, next_at

    async def claim_within(self, tx: Tx, now: datetime, queued: int) -> Callable[[], None]:
        """Within the transaction that queued `queued` new messages: claim as many due
        ones for this sender (soonest first, so those, unless older ones wait), with
        what each needs, so that they leave once it commits with no look of the
        sender's own (a wake, a transaction); what to call after the commit (nothing
        awaited in between, so a claim committed is a message in hand). Not the
        sender, or not running: its loops are woken to look, as before."""
        if not self._running or not self.may_send():
            return self.wake
        until, most = now + self._leases.claim, min(max(queued, 1), self._claim_size)
        due = await tx.outbox.claim_due(now, most, self._holder, until, NEW_MESSAGES)
        fresh = [queued for queued in due if queued.id not in self._in_hand]
        deliveries = [await self._delivery(tx, queued) for queued in fresh]
        more = len(due) >= most  # as many as it took: more may be due, its own among them

        def take() -> None:
            for queued, delivery in zip(fresh, deliveries, strict=True):
                self._in_hand.add(queued.id)
                self._start(self._send_in_turn(queued, delivery))
            if more:
                self.wake()

        return take

    async def _send_in_turn(self, queued: QueuedMessage, delivery: Delivery | None) -> None:
        """A message handed over by `claim_within`: it takes its turn of the new messages'
        budget here, as the dispatch loop's take theirs before they start."""
        slot = None
        try:
            if delivery is not None and queued.message.chat.channel in self._messengers:
                slot = await self._sends.hold()
        except BaseException:
            self._in_hand.discard(queued.id)  # cancelled at shutdown: its claim lapses
            raise
        await self._send(queued, delivery, slot)

    def _start(self, sending: Coroutine[None, None, None]) -> None:
        task = asyncio.create_task(sending)
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _heartbeat(self) -> None:
        """Keep this sender's claims alive while it lives; a dead sender's lapse."""
        while True:
            await asyncio.sleep(self._leases.heartbeat)
            if not self._sending:
                continue  # no claims to keep
            with contextlib.suppress(StoreUnavailable):
                async with self._store.transaction(urgent=True) as tx:
                    await tx.outbox.prolong_claims(self._holder, self._clock() + self._leases.claim)

    async def _idle(self, wake: Wake, checked: datetime, next_at: datetime | None) -> None:
        waits = [IDLE_WAIT]
        if next_at is not None and next_at > checked:
            waits.append((next_at - self._clock()).total_seconds())
        elif next_at is not None:
            # Due by `checked` yet not taken: the other loop's kind. Waking at its time
            # would poll the store nonstop; now and then is enough to catch a later
            # one it hides.
            waits.append(PASSED_OVER_WAIT)
        await wake.idle(max(0.01, min(waits)))

    async def _send(
        self, queued: QueuedMessage, delivery: Delivery | None, slot: Slot | None
    ) -> None:
        chat = queued.message.chat
        try:
            await self._attempt(queued, delivery, slot)
        except StoreError as error:  # its claim lapses, and it is taken again
            log.warning("outbox: message %s to %s not recorded: %s", queued.id, chat, error)
        except Exception:
            log.exception("outbox: message %s to %s failed unexpectedly", queued.id, chat)
        finally:
            if slot is not None:
                slot.release()  # if the request never left
            self._in_hand.discard(queued.id)
            self._progress.set()
            # The chat's next message, if any, is due when its pause ends: a look then,
            # one for many sends ending, rather than two (one a loop) after each send.
            self._look_by(self._clock() + self._gap)

    async def _attempt(
        self, queued: QueuedMessage, delivery: Delivery | None, slot: Slot | None
    ) -> None:
        messenger = self._messengers.get(queued.message.chat.channel)
        if messenger is None:
            await self._drop(queued, "no such channel is configured")
            return
        if delivery is None:
            await self._mark_sent(queued, None)  # nothing to edit: the invoice never went out
            return
        try:
            sent_id = await _deliver(messenger, delivery, slot)
        except RetryLater as wait:
            await self._retry(queued, timedelta(seconds=wait.seconds), str(wait), pause=True)
        except PermanentDelivery as error:
            await self._drop(queued, str(error))
        except ChatMoved as moved:
            await self._follow(queued, ChatRef(queued.message.chat.channel, moved.new_chat_id))
        except TransientDelivery as error:  # network trouble: it passes
            await self._retry(queued, _backoff(queued.attempts), str(error))
        except Exception as error:  # nobody foresaw it: a few tries, never a stalled chat
            log.exception(
                "outbox: message %s to %s failed unexpectedly", queued.id, queued.message.chat
            )
            if queued.attempts + 1 >= UNEXPECTED_TRIES:
                await self._drop(queued, f"failed {UNEXPECTED_TRIES} times: {error!r}", tell=True)
            else:
                await self._retry(queued, _backoff(queued.attempts), repr(error))
        else:
            reached = self._clock()  # the channel has it: what the metrics count from
            await self._mark_sent(queued, sent_id)
            self._count_sent(queued, reached)

    def _count_sent(self, queued: QueuedMessage, at: datetime) -> None:
        channel = queued.message.chat.channel
        self._telemetry.sent(queued.id, channel, at)
        if queued.message.kind is MessageKind.INVOICE:
            self._telemetry.meter.invoice(channel)

    async def _delivery(self, tx: Tx, queued: QueuedMessage) -> Delivery | None:
        message = queued.message
        if message.attachment is not None:
            export = await tx.exports.get(message.attachment, self._clock())
            return Delivery(message, None, None, attachment=export)
        if message.link_id is None:
            return Delivery(message, None, None)
        link = await tx.links.get(message.link_id)
        subs = await tx.subscriptions.for_link(message.link_id)
        voice = await self._voices.of(tx, message.chat)
        mine = next((s for s in subs if s.chat == message.chat), None)
        message_id = mine.message_id if mine else None
        if message.kind is MessageKind.CAPTION and message_id is None:
            return None
        return Delivery(message, link, message_id, mine.role if mine else None, voice=voice)

    async def _mark_sent(self, queued: QueuedMessage, sent_id: str | None) -> None:
        """Record the send, trying the record again (never the send) while the store fails:
        the channel has the message, and sending it again would repeat it in the chat."""
        for attempt in itertools.count():
            try:
                await self._record_sent(queued, sent_id)
                return
            except StoreUnavailable as error:
                wait = min(RECORD_RETRY_MOST, 0.25 * 2**attempt)
                log.error(
                    "outbox: message %s was sent; recording it failed (%s); again in %s s",
                    queued.id,
                    error,
                    wait,
                )
                await asyncio.sleep(wait)

    async def _record_sent(self, queued: QueuedMessage, sent_id: str | None) -> None:
        message, now = queued.message, self._clock()
        # Urgent: until this commits, a crash would send the message again.
        async with self._store.transaction(urgent=True) as tx:
            early = await tx.outbox.mark_sent(queued.id, now, sent_id)
            if self._gap:  # Telegram: one message a second to a chat
                await tx.outbox.pause_chat(message.chat, now + self._gap)
            if message.kind is MessageKind.INVOICE and sent_id and message.link_id:
                await tx.subscriptions.set_message_id(message.link_id, message.chat, sent_id)
            if early is not None:  # the channel's receipt came before this record
                await announce_receipt(tx, message, early, now, self._voices)

    async def _retry(
        self, queued: QueuedMessage, wait: timedelta, error: str, pause: bool = False
    ) -> None:
        log.warning(
            "outbox: message %s to %s failed (%s); retrying in %s s",
            queued.id,
            queued.message.chat,
            error,
            wait.total_seconds(),
            extra={"chat": str(queued.message.chat)},
        )
        self._telemetry.meter.message(queued.message.chat.channel, "retried")
        again = self._clock() + wait
        async with self._store.transaction() as tx:
            await tx.outbox.retry(queued.id, again, error)
            if pause:  # the channel asked for quiet in this chat, not just for this message
                await tx.outbox.pause_chat(queued.message.chat, again)

    async def _follow(self, queued: QueuedMessage, new: ChatRef) -> None:
        """The chat has a new id: its subscriptions and its queue move there, in order."""
        old, now = queued.message.chat, self._clock()
        log.warning("outbox: %s moved to %s; its subscriptions and messages follow", old, new)
        async with self._store.transaction() as tx:
            await tx.subscriptions.move_chat(old, new)
            await tx.chat_settings.move_chat(old, new)
            waiting = await tx.outbox.unsent_for(old)
            await tx.outbox.enqueue([replace(q.message, chat=new) for q in waiting], now)
            for moved in waiting:
                await tx.outbox.drop(moved.id, now, f"moved to {new}")
        self.wake()

    async def _drop(self, queued: QueuedMessage, error: str, tell: bool = False) -> None:
        chat = queued.message.chat
        log.error(
            "outbox: dropping message %s to %s: %s",
            queued.id,
            chat,
            error,
            extra={"chat": str(chat)},
        )
        self._telemetry.dropped(queued.id, chat.channel)
        message, now = queued.message, self._clock()
        async with self._store.transaction() as tx:
            await tx.outbox.drop(queued.id, now, error)
            link = await tx.links.get(message.link_id) if message.link_id else None
            if link is not None and tell and message.kind is not MessageKind.CAPTION:
                # Said once, and never about a merchant's own lost message to themselves.
                if not any(s.chat == message.chat for s in await _merchants(tx, link.id)):
                    lost = functools.partial(render.message_lost, link, message.chat)
                    await tell_merchants(tx, link, lost, now, self._voices)
            elif link is not None and message.kind is MessageKind.INVOICE:
                subs = await tx.subscriptions.for_link(link.id)
                if any(s.chat == message.chat and s.role is Role.CUSTOMER for s in subs):
                    # A customer we cannot reach: the merchant forwards the link instead.
                    unreachable = functools.partial(
                        render.customer_unreachable, link, message.chat, error
                    )
                    await tell_merchants(tx, link, unreachable, now, self._voices)
        self.wake()

    async def flush(self, grace: float = FLUSH_GRACE) -> None:
        """On shutdown, before `run` is cancelled: a short while for due messages to go out.

        A command finishing during shutdown queues its answer last of all; without this
        the answer would wait in the store for the next start.
        """
        # Due within the grace: a chat's pace (a pause in the store) may hold a message
        # back for a moment, and it still goes out before the exit.
        if not self.may_send():
            return  # another process sends
        by = self._clock() + timedelta(seconds=grace)
        with contextlib.suppress(TimeoutError, StoreError):
            async with asyncio.timeout(grace):
                while self._sending or await self._anything_due(by):
                    self._progress.clear()
                    self.wake()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.1):  # or a chat's pause may end
                            await self._progress.wait()

    async def _anything_due(self, by: datetime) -> bool:
        async with self._store.transaction() as tx:
            next_at = await tx.outbox.next_due_at()
        return next_at is not None and next_at <= by

    async def last_second_over(self) -> None:
        """On stop, before the sender's role is given up: until no message this process
        sent still counts in a second at the other end, so that the process taking over,
        whose window starts empty, cannot add its second's worth to this one's."""
        wait = max(self._sends.busy_for(), self._edits.busy_for())
        if wait > 0:
            await asyncio.sleep(wait)

    async def _finish_sending(self) -> None:
        """On shutdown, let messages already handed to a channel be recorded."""
        if self._sending:
            await asyncio.wait(list(self._sending), timeout=5)


async def _merchants(tx: Tx, link_id: str) -> list[Subscription]:
    return [s for s in await tx.subscriptions.for_link(link_id) if s.role is Role.MERCHANT]


def _backoff(attempts: int) -> timedelta:
    return min(MAX_BACKOFF, timedelta(seconds=2 ** min(attempts + 1, 10)))


async def _deliver(messenger: Messenger, delivery: Delivery, slot: Slot | None) -> str | None:
    """Send, and free the request's place in the rate window as its answer comes:
    the other end has seen it by then, whatever the answer says."""
    try:
        return await messenger.deliver(delivery)
    finally:
        if slot is not None:
            slot.release()
