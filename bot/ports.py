"""What the core needs of a store: a unit of work and one small repository a concern.

Every read and write happens inside `Store.transaction()`, which commits when the
block ends and rolls back when it raises. A change and the chat messages it causes
are written in the same transaction, so a crash keeps both or neither. No network
I/O happens inside a transaction.

Nothing here assumes that this process is the only one, or that transactions run
one at a time: several processes may share one database (CONTRACT §6). What must
be exclusive is made so by the database:

- a status moves by a conditional update (`WHERE status = old`), and only the
  caller that made the change announces it;
- work is taken by an atomic claim with a lease (`UPDATE … WHERE id IN (SELECT …
  FOR UPDATE SKIP LOCKED)` on PostgreSQL; the same statements under SQLite's one
  writer), so no two claimers hold one row, and a dead holder's claim returns
  when its lease ends;
- repeats are absorbed by unique keys (`ON CONFLICT DO NOTHING`);
- per-chat order in the outbox comes from a per-chat sequence taken under that
  chat's row lock, so it is commit order whoever enqueues.

Implementations translate their driver's failures into `bot.errors.StoreError`
(`StoreUnavailable`: try again later; `StoreRejected`: this data can never be
stored), raised out of the `transaction()` block; anything else is a bug.
Times are aware UTC datetimes; money is Decimal.

`storage.sqlite` and `storage.postgres` implement this; `tests/storage/contract`
holds the one suite both must pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import date, datetime, timedelta
from typing import Protocol

from bot.models import (
    ChatRef,
    DayCounts,
    DeliveryStatus,
    ExportFile,
    FollowUp,
    FollowUpKind,
    InboxEntry,
    InboxItem,
    Link,
    MessageKind,
    Outgoing,
    QueuedMessage,
    ScheduledFollowUp,
    Status,
    Subscription,
)


class Links(Protocol):
    """Payment links, their status history, and who is creating one for an order."""

    async def insert(self, link: Link) -> None:
        """Add a link. Raises StoreRejected if its id or token is taken."""

    async def get(self, link_id: str) -> Link | None: ...

    async def locked(self, link_id: str) -> Link | None:
        """The link, held until this transaction ends: a change to it in another waits
        for this one, and this read waits for a change made and not yet committed. For
        a decision on the link's status whose outcome another change must see."""

    async def by_token(self, token: str) -> Link | None: ...

    async def by_share_code(self, code: str) -> Link | None: ...

    async def latest_for_order(self, order_id: str) -> Link | None:
        """The most recently created link for the order, whatever its state."""

    async def subscribed_by(self, chat: ChatRef, issued_by: str | None = None) -> list[Link]:
        """Links the chat is subscribed to, newest first; with `issued_by`, only the links
        that merchant issued (`Link.issued_by`, a cashier's own)."""

    async def move_status(
        self, link_id: str, old: Status, new: Status, at: datetime, reference: str | None
    ) -> bool:
        """Set status to `new` only where it is still `old`, and record it in the history.

        True when this call made the change. A caller that gets False lost a race
        and must not announce anything.
        """

    async def confirm(self, link_id: str, at: datetime, reference: str | None) -> bool:
        """Mark the link confirmed (and `paid`, no longer polled) unless it already is.

        True only for the one call that confirmed it, so that `Confirmed` is said once.
        """

    async def history(self, link_id: str) -> list[tuple[Status | None, datetime]]:
        """Every recorded change, oldest first; None stands for the confirmation."""

    async def forget_history(self, before: datetime, limit: int) -> int:
        """Delete at most `limit` recorded changes made before the time; how many."""

    async def claim_order(self, order_id: str, holder: str, now: datetime, until: datetime) -> bool:
        """Become the one creating a link for the order, until `until`.

        True when nobody else holds a claim on it that is still good at `now` (a
        holder that died loses it when its lease ends). The holder asks Cimplify
        and stores the link, then releases the claim in that same transaction.
        """

    async def release_order(self, order_id: str, holder: str) -> None:
        """Give up `holder`'s claim on the order; another holder's claim is left alone."""


class PollSchedule(Protocol):
    """When each tracked link is asked about next: its `next_poll_at`."""

    async def schedule(self, link_id: str, at: datetime | None) -> None:
        """Poll the link next at `at`; None stops tracking it."""

    async def claim_due(
        self, now: datetime, limit: int, until: datetime, moving_first: bool = True
    ) -> list[Link]:
        """Take up to `limit` links due by `now` and move their next poll to `until`.

        Atomic: a link is handed to one claimer only; one whose claimer dies is due
        again at `until`. Soonest due first; with `moving_first`, moving payments
        (processing, awaiting authorization) before all others. The links are
        returned as they were before the claim (their `next_poll_at` is the old one).
        """

    async def next_due_at(self) -> datetime | None:
        """The earliest next poll of any tracked link."""

    async def tracked_count(self) -> int: ...

    async def reserve_turns(self, now: datetime, count: int, spacing: timedelta) -> datetime:
        """Reserve `count` turns of the Pay API budget that every process shares, each
        `spacing` after the one before, none before `now`; the first turn's time.

        Atomic: turns reserved by two callers, in one process or two, never overlap."""


class Subscriptions(Protocol):
    """Which chats hear about which link, and their invoice message for edits."""

    async def add(self, subscription: Subscription) -> bool:
        """Subscribe the chat to the link. False when it already was."""

    async def for_link(self, link_id: str) -> list[Subscription]:
        """The link's subscribers, in the order they subscribed."""

    async def set_message_id(self, link_id: str, chat: ChatRef, message_id: str) -> None:
        """Remember the chat's invoice message for the link, for later edits."""

    async def move_chat(self, old: ChatRef, new: ChatRef) -> int:
        """The chat has a new id (a group became a supergroup): its subscriptions follow,
        keeping their invoice message ids; how many moved."""


class OutboxQueue(Protocol):
    """Chat messages waiting to be sent, each chat's in order, and what became of them."""

    async def enqueue(self, messages: Sequence[Outgoing], at: datetime) -> list[int]:
        """Queue messages, due at `at`; their ids.

        Within a chat they go out in the order they were enqueued, and across
        transactions in the order those committed.
        """

    async def claim_due(
        self,
        now: datetime,
        limit: int,
        holder: str,
        until: datetime,
        kinds: frozenset[MessageKind] | None = None,
    ) -> list[QueuedMessage]:
        """Take the head (first unsent message) of up to `limit` chats, held until `until`.

        Only a head is ever taken, and only when it is due by `now`, its chat is not
        paused (`pause_chat`) past `now`, and no claim on it is still good at `now`:
        so a chat has one message in flight at most, and its order holds while one
        is retried. Oldest first across chats. With `kinds`, only heads of those kinds.
        """

    async def next_due_at(self) -> datetime | None:
        """The earliest time at which some head could be claimed; None when nothing waits."""

    async def prolong_claims(self, holder: str, until: datetime) -> int:
        """Move every claim `holder` still has to `until` (its heartbeat); how many."""

    async def pause_chat(self, chat: ChatRef, until: datetime) -> None:
        """Send nothing more to the chat before `until` (a per-chat pace, a Retry-After).

        Never shortens a pause already set.
        """

    async def mark_sent(
        self, message_id: int, at: datetime, remote_id: str | None = None
    ) -> DeliveryStatus | None:
        """Record the message as sent, releasing its claim; `remote_id` is the channel's id.

        A receipt can arrive before the send is recorded; it is kept until now, applied,
        and returned, so the caller can act on it as on any receipt.
        """

    async def retry(self, message_id: int, at: datetime, error: str) -> None:
        """Count a failed attempt, release the claim, and make the message due again at `at`."""

    async def drop(self, message_id: int, at: datetime, error: str) -> None:
        """Give up on a message for good (the chat blocked us, does not exist)."""

    async def pending_count(self) -> int:
        """Messages neither sent nor dropped."""

    async def forget_done(self, before: datetime, limit: int) -> int:
        """Delete at most `limit` messages sent or dropped before the time; how many."""

    async def unsent_for(self, chat: ChatRef) -> list[QueuedMessage]:
        """The chat's messages neither sent nor dropped, in the order they go out."""

    async def record_delivery(
        self, channel: str, remote_id: str, status: DeliveryStatus, at: datetime
    ) -> QueuedMessage | None:
        """Move a sent message's delivery status forward (by DeliveryStatus.rank).

        The message when this call moved it; None when the status is not ahead of the
        one recorded (receipts repeat and reorder), or when no sent message carries the
        id yet: then the receipt is kept for `mark_sent` to apply.
        """

    async def delivery_status(
        self, link_id: str, chat: ChatRef, kind: MessageKind
    ) -> DeliveryStatus | None:
        """The delivery status of the newest sent message of `kind` to `chat` for the link."""


class Inbox(Protocol):
    """Every input (webhooks, chat messages, Telegram updates), stored before it is
    acknowledged and handled after, by whichever worker claims it."""

    async def record(self, entries: Sequence[InboxEntry], at: datetime) -> list[bool]:
        """Store the entries; for each, in order, True when it is new.

        An entry whose (source, source_id) was stored before is kept as it was
        (False); one given twice is new only the first time.
        """

    async def claim(
        self, now: datetime, limit: int, holder: str, until: datetime
    ) -> list[InboxItem]:
        """Take up to `limit` entries, the head (oldest unfinished) of each lane only,
        held until `until`; oldest first. Each claim counts one attempt.

        An entry is taken when it is due by `now` and no claim on it is still good
        at `now`, so a lane is handled one entry at a time, in order.
        """

    async def prolong_claims(self, holder: str, until: datetime) -> int:
        """Move every claim `holder` still has to `until` (its heartbeat); how many."""

    async def finish(self, seq: int, at: datetime) -> None:
        """The entry was handled: its lane moves on."""

    async def retry(self, seq: int, at: datetime, error: str) -> None:
        """Handling failed: release the claim; due again at `at`."""

    async def set_aside(self, seq: int, at: datetime, error: str) -> None:
        """Give up on the entry (it kept failing) so that its lane moves on; it is kept."""

    async def next_due_at(self) -> datetime | None:
        """The earliest time at which some head could be claimed; None when none waits."""

    async def unfinished_count(self) -> int:
        """Entries neither finished nor set aside."""

    async def oldest_waiting_since(self) -> datetime | None:
        """When the oldest entry neither finished nor set aside was received; None when
        none waits."""

    async def forget_finished(self, before: datetime, limit: int | None = None) -> int:
        """Delete entries finished before the time (at most `limit`); how many.

        Entries set aside are kept, for someone to look at."""


class Contacts(Protocol):
    """When each chat last wrote to us (WhatsApp's 24-hour window)."""

    async def note_inbound(self, chat: ChatRef, at: datetime) -> None:
        """The chat wrote at `at`; an older time never replaces a newer one."""

    async def last_inbound_at(self, chat: ChatRef) -> datetime | None: ...


class Roles(Protocol):
    """Work only one process may do at a time (send under the overall rate, poll under
    the poll budget, long-poll Telegram): a role held under a lease, as an order is."""

    async def claim(self, role: str, holder: str, now: datetime, until: datetime) -> bool:
        """Hold `role` until `until`: True when nobody else holds it at `now` (the holder
        renews its own claim this way; one that died loses it when its lease ends)."""

    async def release(self, role: str, holder: str) -> None:
        """Give up `holder`'s claim on the role; another holder's is left alone."""


class Limits(Protocol):
    """How often one sender may be answered, or may make paybot ask Cimplify, counted in
    the store so that every process counts the same uses (bot/limits.py)."""

    async def take(self, key: str, now: datetime, every: timedelta, burst: int) -> bool:
        """One use by `key` at `now` if its budget allows it: `burst` uses at once, then
        one each `every`. False, and nothing counted, when it does not.

        Atomic: of racing callers, in one process or several, only as many as the
        budget allows are told True."""

    async def forget_idle(self, now: datetime, limit: int) -> int:
        """Delete at most `limit` keys whose budget is whole again by `now`; how many."""


class Reports(Protocol):
    """What merchants ask of their links as a whole: the day's counts, the export.

    `issued_by` ("<channel>:<sender id>") keeps to the links one merchant issued;
    None means every link.
    """

    async def day(self, start: datetime, now: datetime, issued_by: str | None = None) -> DayCounts:
        """Links issued in [start, now), paid in it (sums by currency), open at `now`
        (unpaid, not expired), and expired in it unpaid."""

    async def issued_between(
        self, start: datetime, end: datetime, issued_by: str | None = None
    ) -> list[tuple[Link, datetime | None]]:
        """Links issued in [start, end), oldest first, each with when it was paid."""

    async def merchant_chats(self, start: datetime, end: datetime) -> list[ChatRef]:
        """The merchant chats (subscriptions as Role.MERCHANT) of links issued in [start, end)."""


class Digests(Protocol):
    """Which chats have had their digest of which day."""

    async def mark_sent(self, chat: ChatRef, day: date, at: datetime) -> bool:
        """Record the chat's digest of `day`; True only for the one call that recorded
        it, which then queues the digest in the same transaction."""


class Exports(Protocol):
    """/export files, served by their unguessable id until they expire."""

    async def add(self, export: ExportFile) -> None: ...

    async def get(self, export_id: str, now: datetime) -> ExportFile | None:
        """The file, unless unknown or expired by `now`."""

    async def forget_expired(self, now: datetime, limit: int) -> int:
        """Delete at most `limit` files expired by `now`; how many."""


class ChatSettings(Protocol):
    """What a chat chose for itself: its language (`/lang`), kept across restarts."""

    async def language_of(self, chat: ChatRef) -> str | None:
        """The chat's own language, or None when it never chose one."""

    async def set_language(self, chat: ChatRef, language: str) -> None:
        """From now on the chat speaks `language` (a later choice replaces it)."""

    async def move_chat(self, old: ChatRef, new: ChatRef) -> None:
        """The chat has a new id on its channel (a Telegram group became a supergroup):
        its choice goes with it, unless the new id has made one of its own."""


class FollowUps(Protocol):
    """Follow-ups of links due at a time (reminders, expiry warnings), claimed under a
    lease as polls and messages are, and done once."""

    async def schedule(self, link_id: str, kind: FollowUpKind, mark: str, due_at: datetime) -> bool:
        """Add the follow-up unless the link already has one of that kind and mark; True
        when this call added it."""

    async def schedule_all(self, link_id: str, due: Sequence[ScheduledFollowUp]) -> int:
        """`schedule` for each (kind, mark, due_at), at once (one statement where a
        statement is a round trip); how many were added."""

    async def bring_forward(self, link_id: str, kind: FollowUpKind, at: datetime) -> int:
        """Make the link's follow-ups of that kind not done yet due by `at` at the latest
        (a claimed one keeps its claim); how many moved."""

    async def claim_due(
        self, now: datetime, limit: int, holder: str, until: datetime
    ) -> list[FollowUp]:
        """Take up to `limit` follow-ups due by `now`, not done, and not held by a claim
        still good at `now`; held by `holder` until `until`. Soonest due first; a row is
        handed to one claimer only."""

    async def finish(self, follow_up_id: int, holder: str, at: datetime) -> bool:
        """Mark it done, only while `holder` still has it and it is not done: True for the
        one call that did (its messages are queued in the same transaction)."""

    async def next_due_at(self) -> datetime | None:
        """The earliest due time of a follow-up not done; None when none waits."""

    async def pending_for(self, link_id: str) -> list[FollowUp]:
        """The link's follow-ups not done yet, soonest first."""

    async def forget_done(self, before: datetime, limit: int) -> int:
        """Delete at most `limit` follow-ups done before the time; how many. (Safe: each is
        scheduled once, as its link is made, its failure recorded or the one before it put
        off, never again after.)"""


class Tx(Protocol):
    """One transaction: the repositories, all on it. Nothing commits on its own."""

    @property
    def links(self) -> Links: ...

    @property
    def polls(self) -> PollSchedule: ...

    @property
    def subscriptions(self) -> Subscriptions: ...

    @property
    def outbox(self) -> OutboxQueue: ...

    @property
    def inbox(self) -> Inbox: ...

    @property
    def contacts(self) -> Contacts: ...

    @property
    def roles(self) -> Roles: ...

    @property
    def limits(self) -> Limits: ...

    @property
    def reports(self) -> Reports: ...

    @property
    def digests(self) -> Digests: ...

    @property
    def exports(self) -> Exports: ...

    @property
    def chat_settings(self) -> ChatSettings: ...

    @property
    def follow_ups(self) -> FollowUps: ...


class Store(Protocol):
    async def open(self) -> None:
        """Connect and bring the schema up to date (once, however many processes start)."""

    async def close(self) -> None: ...

    def transaction(self, urgent: bool = False) -> AbstractAsyncContextManager[Tx]:
        """A unit of work.

        `urgent` marks a small record that closes a window of doubt ("Telegram took
        this message"): a store that queues its transactions may let it go first.
        It is a hint for speed, never a guarantee anything relies on.
        """

    async def ping(self) -> bool:
        """True when the store answers a trivial query."""

    async def watch(self, wake: Callable[[str], None]) -> None:
        """Until cancelled: call `wake(topic)` when another process has stored work of a
        topic, `inbox`, `outbox`, `polls` or `follow_ups`, so the process that should act
        need not wait for its next idle look. Work this process stores is not told: what
        stores it wakes the loop that acts on it. A store no other process shares may
        never call it."""
