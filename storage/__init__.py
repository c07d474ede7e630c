"""The store behind one interface.

Every read and write happens inside `Store.transaction()`, a unit of work that
commits when the block ends and rolls back when it raises. A change and the
chat messages it causes are written in the same transaction, so a crash either
keeps both or neither. No network I/O ever happens inside a transaction.

`SqliteStore` (storage.sqlite) is the one implementation today; a PostgreSQL
store implements the same two protocols and the core does not change.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol

from bot.models import (
    ChatRef,
    DeliveryStatus,
    InboundMessage,
    Link,
    MessageKind,
    Outgoing,
    QueuedMessage,
    Status,
    StoredEvent,
    Subscription,
    WebhookEvent,
)


class Tx(Protocol):
    """One transaction. Methods never commit on their own."""

    # links
    async def insert_link(self, link: Link) -> None:
        """Add a link. Raises if its id or token is taken."""

    async def link(self, link_id: str) -> Link | None: ...

    async def link_by_token(self, token: str) -> Link | None: ...

    async def latest_link_for_order(self, order_id: str) -> Link | None:
        """The most recently created link for the order, whatever its state."""

    async def link_by_share_code(self, code: str) -> Link | None: ...

    async def move_status(
        self, link_id: str, old: Status, new: Status, at: datetime, reference: str | None
    ) -> bool:
        """Set status to `new` only where it is still `old`; record it in the history.

        True when this call made the change. A caller that gets False lost a race
        and must not announce anything.
        """

    async def confirm(self, link_id: str, at: datetime, reference: str | None) -> bool:
        """Mark the link confirmed (and `paid`) unless it already is.

        True only for the one call that confirmed it, so that `Confirmed` is said once.
        """

    async def status_history(self, link_id: str) -> list[tuple[Status | None, datetime]]:
        """Every recorded change, oldest first; None stands for the confirmation."""

    # tracking
    async def schedule_poll(self, link_id: str, at: datetime | None) -> None:
        """Poll the link next at `at`; None stops tracking it."""

    async def due_links(self, now: datetime, limit: int, moving_first: bool = True) -> list[Link]:
        """Tracked links with next_poll_at <= now, soonest first; with `moving_first`,
        moving payments (processing, awaiting authorization) before all others."""

    async def next_poll_at(self) -> datetime | None:
        """The earliest next_poll_at of any tracked link."""

    async def tracked_count(self) -> int: ...

    # subscriptions
    async def subscribe(self, subscription: Subscription) -> bool:
        """Add the chat to the link's subscribers. False when it already was one."""

    async def subscriptions(self, link_id: str) -> list[Subscription]: ...

    async def set_message_id(self, link_id: str, chat: ChatRef, message_id: str) -> None:
        """Remember the chat's invoice message for the link, for later edits."""

    async def links_for_chat(self, chat: ChatRef) -> list[Link]:
        """Links the chat is subscribed to, newest first."""

    # outbox
    async def enqueue(self, messages: Sequence[Outgoing], at: datetime) -> list[int]:
        """Queue messages; they go out in id order within each chat."""

    async def due_messages(
        self,
        now: datetime,
        limit: int,
        skip_chats: frozenset[ChatRef] = frozenset(),
        kinds: frozenset[MessageKind] | None = None,
    ) -> list[QueuedMessage]:
        """For each chat not in `skip_chats`, its oldest unsent message, if due by `now`.

        Only the head of each chat's queue is returned, so order within a chat holds
        even while a message is being retried. Oldest first across chats. With
        `kinds`, only the chats whose head is of one of those kinds.
        """

    async def next_message_at(self) -> datetime | None:
        """When the earliest unsent message is due, or None when the outbox is empty."""

    async def mark_sent(
        self, message_id: int, at: datetime, remote_id: str | None = None
    ) -> DeliveryStatus | None:
        """Record the message as sent; `remote_id` is the channel's id for it (a MessageSid).

        A receipt can arrive before the send is recorded; it is kept until now, applied,
        and returned, so the caller can act on it as on any receipt.
        """

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

    async def retry_message(self, message_id: int, at: datetime, error: str) -> None:
        """Count a failed attempt and make the message due again at `at`."""

    async def drop_message(self, message_id: int, at: datetime, error: str) -> None:
        """Give up on a message for good (the chat blocked us, does not exist)."""

    async def pending_count(self) -> int:
        """Messages neither sent nor dropped."""

    # inbound chat messages (WhatsApp): stored before they are acknowledged
    async def record_inbound(self, message: InboundMessage) -> bool:
        """Store an inbound message and note the chat's last inbound time.

        False when its id was stored before (the channel repeated it).
        """

    async def last_inbound_at(self, chat: ChatRef) -> datetime | None:
        """When the chat last wrote to us; None if it never did."""

    async def unhandled_inbound(self, limit: int) -> list[InboundMessage]:
        """Stored inbound messages not yet handled, oldest first."""

    async def mark_handled(self, chat: ChatRef, message_id: str, at: datetime) -> None: ...

    # Telegram updates (long polling): stored before the next getUpdates confirms them
    async def record_telegram_updates(
        self, updates: Sequence[tuple[int, str]], at: datetime
    ) -> list[int]:
        """Store (update_id, raw JSON) pairs; the ids that were new, in the order given.

        An id stored before (Telegram redelivers what was not confirmed) is kept as it was.
        """

    async def unhandled_telegram_updates(self, limit: int, after: int = 0) -> list[tuple[int, str]]:
        """Stored updates not yet handled, as (update_id, raw JSON), with ids above `after`,
        lowest id first."""

    async def mark_telegram_update_handled(self, update_id: int, at: datetime) -> None: ...

    async def forget_telegram_updates(self, handled_before: datetime) -> int:
        """Delete updates handled before the time; how many were deleted."""

    # webhook events
    async def record_event(self, event: WebhookEvent, body: bytes, at: datetime) -> bool:
        """Store an event under its id. False when that id was already stored."""

    async def record_events(
        self, events: Sequence[tuple[WebhookEvent, bytes]], at: datetime
    ) -> set[str]:
        """Store many events at once, each under its id; the ids that were new.

        An id given twice is stored once, from its first appearance.
        """

    async def unapplied_events(self, limit: int) -> list[StoredEvent]:
        """Stored events not yet applied, in the order they were received."""

    async def mark_applied(self, event_id: str, at: datetime) -> None: ...


class Store(Protocol):
    async def open(self) -> None:
        """Connect and bring the schema up to date."""

    async def close(self) -> None: ...

    def transaction(self, urgent: bool = False) -> AbstractAsyncContextManager[Tx]:
        """A unit of work; transactions run one at a time, in the order asked for,
        except that an urgent one goes ahead of those still waiting (storage/turns.py)."""

    async def ping(self) -> bool:
        """True when the store answers a trivial query."""
