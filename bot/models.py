"""Plain data the core passes around: no I/O, no chat or web library.

Money is `Decimal` built from strings, times are aware UTC datetimes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum

from bot.errors import InvalidOrderId

# CONTRACT §1: 1 to 64 characters of A-Z a-z 0-9 - _. Checked before any URL is built.
_ORDER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def parse_order_id(text: str) -> str:
    """Return `text` as an order id, or raise InvalidOrderId."""
    if not _ORDER_ID.fullmatch(text):
        raise InvalidOrderId(text)
    return text


def utcnow() -> datetime:
    return datetime.now(UTC)


class Status(StrEnum):
    """A payment link's state, as Cimplify names it (CONTRACT §1)."""

    PENDING = "pending"
    PROCESSING = "processing"
    AWAITING_AUTHORIZATION = "awaiting_authorization"
    PAID = "paid"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"  # the merchant cancelled the order (/cancel)

    @property
    def words(self) -> str:
        """The status in plain words, as chats see it (CONTRACT §5)."""
        return _WORDS[self]

    @property
    def is_final(self) -> bool:
        """`paid`, `expired` and `cancelled` end polling; `failed` does not (the customer
        may retry)."""
        return self in (Status.PAID, Status.EXPIRED, Status.CANCELLED)


_WORDS = {
    Status.PENDING: "Pending",
    Status.PROCESSING: "Processing",
    Status.AWAITING_AUTHORIZATION: "Awaiting authorization",
    Status.PAID: "Paid",
    Status.FAILED: "Failed",
    Status.EXPIRED: "Expired",
    Status.CANCELLED: "Cancelled",
}

CONFIRMED_WORDS = "Confirmed"
ALREADY_PAID_WORDS = "Already paid"

# Where each status may go next. Status only moves forward; `failed` may start a
# new attempt. `paid` is final. `expired` and `cancelled` may still become `paid`,
# because a verified payment after them is money that arrived and must not go unsaid.
# An unpaid order may be cancelled whatever its link's state, an expired one included.
_NEXT: dict[Status, frozenset[Status]] = {
    Status.PENDING: frozenset(
        {
            Status.PROCESSING,
            Status.AWAITING_AUTHORIZATION,
            Status.PAID,
            Status.FAILED,
            Status.EXPIRED,
            Status.CANCELLED,
        }
    ),
    Status.PROCESSING: frozenset(
        {
            Status.AWAITING_AUTHORIZATION,
            Status.PAID,
            Status.FAILED,
            Status.EXPIRED,
            Status.CANCELLED,
        }
    ),
    Status.AWAITING_AUTHORIZATION: frozenset(
        {Status.PAID, Status.FAILED, Status.EXPIRED, Status.CANCELLED}
    ),
    Status.FAILED: frozenset(
        {
            Status.PROCESSING,
            Status.AWAITING_AUTHORIZATION,
            Status.PAID,
            Status.EXPIRED,
            Status.CANCELLED,
        }
    ),
    Status.PAID: frozenset(),
    Status.EXPIRED: frozenset({Status.PAID, Status.CANCELLED}),
    Status.CANCELLED: frozenset({Status.PAID}),
}


def can_move(old: Status, new: Status) -> bool:
    """True when a link in `old` may move to `new`."""
    return new in _NEXT[old]


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str  # ISO 4217, e.g. "GHS"


@dataclass(frozen=True)
class LineItem:
    name: str
    quantity: int
    unit_price: Decimal
    total: Decimal


@dataclass(frozen=True)
class CreatedLink:
    """Cimplify's answer to creating a payment link."""

    token: str
    url: str
    expires_at: datetime


@dataclass(frozen=True)
class Order:
    """The Pay API's order summary (CONTRACT §1)."""

    token: str
    order_id: str
    business_name: str
    total: Money
    status: Status | None  # None: a status this version does not know
    expires_at: datetime
    line_items: tuple[LineItem, ...]


@dataclass(frozen=True)
class StatusReport:
    """The Pay API's `/status` answer."""

    status: Status | None  # None: unknown to us, treated as "no change"
    raw_status: str
    updated_at: datetime | None
    reference: str | None


@dataclass(frozen=True)
class Link:
    """A payment link as paybot keeps it."""

    id: str  # paybot's own unguessable id: QR URLs, button data
    order_id: str
    token: str  # Cimplify's Pay API token
    url: str
    expires_at: datetime
    business_name: str
    total: Money
    line_items: tuple[LineItem, ...]
    status: Status
    created_at: datetime
    status_changed_at: datetime
    confirmed_at: datetime | None = None
    reference: str | None = None
    next_poll_at: datetime | None = None  # None: not tracked
    # Unguessable, and not the payment token: what a customer's Telegram deep link
    # (https://t.me/<bot>?start=<share_code>) carries.
    share_code: str = ""
    # "<channel>:<sender id>" of the merchant who issued it (bot/access.py); None for
    # links issued before roles existed, which only owners see.
    issued_by: str | None = None

    def is_live(self, now: datetime) -> bool:
        """A link a customer can still pay."""
        return not self.status.is_final and now < self.expires_at

    @property
    def status_words(self) -> str:
        return CONFIRMED_WORDS if self.confirmed_at else self.status.words


@dataclass(frozen=True)
class ChatRef:
    """One conversation on one channel: ("telegram", "12345"), ("console", "merchant")."""

    channel: str
    chat_id: str

    def __str__(self) -> str:
        return f"{self.channel}:{self.chat_id}"


class Role(StrEnum):
    MERCHANT = "merchant"
    CUSTOMER = "customer"


@dataclass(frozen=True)
class Subscription:
    """A chat that hears about a link; `message_id` is its invoice message, for edits."""

    link_id: str
    chat: ChatRef
    role: Role = Role.MERCHANT
    message_id: str | None = None


class MessageKind(StrEnum):
    TEXT = "text"
    INVOICE = "invoice"  # the QR image of the link's url, captioned with `text`
    CAPTION = "caption"  # edit the chat's invoice message's caption to `text`


@dataclass(frozen=True)
class Button:
    """An inline button: opens `url`, or sends `action` back to the bot."""

    label: str
    url: str | None = None
    action: str | None = None


@dataclass(frozen=True)
class Outgoing:
    """A message to send, before the outbox has stored it."""

    chat: ChatRef
    kind: MessageKind
    text: str
    link_id: str | None = None  # INVOICE and CAPTION: which link
    buttons: tuple[Button, ...] = ()
    # TEXT only: the id of an `ExportFile` sent with the text (a Telegram document, a
    # WhatsApp media URL), the text its caption.
    attachment: str | None = None


@dataclass(frozen=True)
class QueuedMessage:
    """A message in the outbox."""

    id: int
    message: Outgoing
    created_at: datetime
    attempts: int = 0
    next_attempt_at: datetime = field(default_factory=utcnow)


class DeliveryStatus(StrEnum):
    """What a channel reports of a message it accepted (Twilio's StatusCallback)."""

    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"

    @property
    def rank(self) -> int:
        return _DELIVERY_RANK[self]


# Receipts arrive in any order; a status only replaces one of lower rank, so a late
# "sent" never hides "read". A failure is final for that message.
_DELIVERY_RANK = {
    DeliveryStatus.SENT: 1,
    DeliveryStatus.DELIVERED: 2,
    DeliveryStatus.READ: 3,
    DeliveryStatus.FAILED: 4,
}


@dataclass(frozen=True)
class InboxEntry:
    """An input to store before it is acknowledged (CONTRACT §2, §4, §6).

    `source` and `source_id` name it as its sender does (a Cimplify event id, a
    MessageSid, a Telegram update id), so a repeat is stored once. `kind` picks the
    handler. Entries of one `lane` (a chat, an order) are handled one at a time, in
    the order they were stored; other lanes do not wait for them.
    """

    source: str
    source_id: str
    kind: str
    lane: str
    body: str


@dataclass(frozen=True)
class InboxItem:
    """A stored input, as a worker claimed it."""

    seq: int
    entry: InboxEntry
    received_at: datetime
    attempts: int  # claims so far, this one included


@dataclass(frozen=True)
class InboundMessage:
    """A message a chat sent us, stored before it is acknowledged."""

    chat: ChatRef
    message_id: str  # the channel's id: Twilio's MessageSid
    text: str
    received_at: datetime


class EventType(StrEnum):
    PAYMENT_SUCCEEDED = "payment.succeeded"
    ORDER_COMPLETED = "order.completed"
    PAYMENT_FAILED = "payment.failed"


@dataclass(frozen=True)
class WebhookEvent:
    """A verified Cimplify webhook event (CONTRACT §2)."""

    id: str
    type: str  # one of EventType, or another type we acknowledge and ignore
    created_at: datetime
    order_id: str  # "" for a type we ignore
    token: str | None
    amount: Money | None
    reference: str | None


@dataclass(frozen=True)
class StoredEvent:
    event: WebhookEvent
    received_at: datetime
    applied_at: datetime | None = None


@dataclass(frozen=True)
class DayCounts:
    """A merchant's day (`/today`, the digest): links issued in it, paid in it (with the
    sums, one a currency), still open now, and expired in it."""

    issued: int
    paid: int
    paid_sums: tuple[Money, ...]  # by currency code
    open: int
    expired: int


@dataclass(frozen=True)
class ExportFile:
    """A file made by `/export`, kept in the store so any instance can serve it until
    `expires_at`; `id` is unguessable (it is the WhatsApp media URL's only secret)."""

    id: str
    filename: str
    content: bytes
    created_at: datetime
    expires_at: datetime


def sums_by_currency(amounts: Iterable[Money]) -> tuple[Money, ...]:
    """One total a currency, in Decimal, ordered by currency code."""
    sums: dict[str, Decimal] = {}
    for money in amounts:
        sums[money.currency] = sums.get(money.currency, Decimal(0)) + money.amount
    return tuple(Money(sums[code], code) for code in sorted(sums))


class FollowUpKind(StrEnum):
    """What a scheduled follow-up of a link does when it falls due (bot/follow_ups.py)."""

    REMINDER = "reminder"  # at a PAYBOT_REMINDERS mark: customers reminded to pay
    FAILED_REMINDER = "failed_reminder"  # after a failed payment: "try again"
    EXPIRY_WARNING = "expiry_warning"  # before the expiry: the merchant offered a new link
    EXPIRED_OFFER = "expired_offer"  # at the expiry: the same offer, once more


# A follow-up to schedule: its kind, its mark and when it falls due (`FollowUps.schedule_all`).
ScheduledFollowUp = tuple[FollowUpKind, str, datetime]


@dataclass(frozen=True)
class FollowUp:
    """One scheduled follow-up, as a worker claimed it. `mark` tells apart follow-ups of
    one kind for one link (the reminder's offset, the failure's moment): each exists once."""

    id: int
    link_id: str
    kind: FollowUpKind
    mark: str
    due_at: datetime
