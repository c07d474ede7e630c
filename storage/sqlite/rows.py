"""Conversion between the models and SQLite rows.

Times are stored as fixed-width ISO 8601 UTC text so that comparing the text
compares the times; money as Decimal text so that "75.00" stays "75.00".
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from bot.models import (
    ChatRef,
    Link,
    MessageKind,
    Money,
    Outgoing,
    QueuedMessage,
    Role,
    Status,
    Subscription,
)
from storage.json_columns import (
    buttons_from,
    buttons_json,
    decimal_text,
    line_items_from,
    line_items_json,
)

# An empty share code (a caller from before share links) gets a random one, made
# as migration 0002 made them, rather than a code every such link would share.
INSERT_LINK = (
    "INSERT INTO links (id, order_id, token, url, expires_at, business_name, currency, total,"
    " line_items, status, created_at, status_changed_at, confirmed_at, reference, next_poll_at,"
    " share_code, issued_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
    " COALESCE(NULLIF(?, ''), lower(hex(randomblob(12)))), ?)"
)


def time_text(at: datetime) -> str:
    """`at` in UTC as sortable text; naive datetimes are refused, not guessed."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime: {at!r}; paybot stores aware UTC times only")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def optional_time_text(at: datetime | None) -> str | None:
    return None if at is None else time_text(at)


def time_from(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def optional_time_from(text: str | None) -> datetime | None:
    return None if text is None else time_from(text)


def link_params(link: Link) -> tuple[Any, ...]:
    """The values for INSERT_LINK, in order."""
    return (
        link.id,
        link.order_id,
        link.token,
        link.url,
        time_text(link.expires_at),
        link.business_name,
        link.total.currency,
        decimal_text(link.total.amount),
        line_items_json(link.line_items),
        link.status.value,
        time_text(link.created_at),
        time_text(link.status_changed_at),
        optional_time_text(link.confirmed_at),
        link.reference,
        optional_time_text(link.next_poll_at),
        link.share_code,
        link.issued_by,
    )


def link_from(row: sqlite3.Row) -> Link:
    return Link(
        id=row["id"],
        order_id=row["order_id"],
        token=row["token"],
        url=row["url"],
        expires_at=time_from(row["expires_at"]),
        business_name=row["business_name"],
        total=Money(Decimal(row["total"]), row["currency"]),
        line_items=line_items_from(row["line_items"]),
        status=Status(row["status"]),
        created_at=time_from(row["created_at"]),
        status_changed_at=time_from(row["status_changed_at"]),
        confirmed_at=optional_time_from(row["confirmed_at"]),
        reference=row["reference"],
        next_poll_at=optional_time_from(row["next_poll_at"]),
        share_code=row["share_code"],
        issued_by=row["issued_by"],
    )


def outgoing_params(message: Outgoing, at: datetime) -> tuple[Any, ...]:
    """Values for an outbox row: channel, chat_id, kind, text, link_id, buttons,
    created_at and next_attempt_at (due at once), attachment."""
    when = time_text(at)
    return (
        message.chat.channel,
        message.chat.chat_id,
        message.kind.value,
        message.text,
        message.link_id,
        buttons_json(message.buttons),
        when,
        when,
        message.attachment,
    )


def queued_message_from(row: sqlite3.Row) -> QueuedMessage:
    message = Outgoing(
        chat=ChatRef(row["channel"], row["chat_id"]),
        kind=MessageKind(row["kind"]),
        text=row["text"],
        link_id=row["link_id"],
        buttons=buttons_from(row["buttons"]),
        attachment=row["attachment"],
    )
    return QueuedMessage(
        id=row["id"],
        message=message,
        created_at=time_from(row["created_at"]),
        attempts=row["attempts"],
        next_attempt_at=time_from(row["next_attempt_at"]),
    )


def subscription_from(row: sqlite3.Row) -> Subscription:
    return Subscription(
        link_id=row["link_id"],
        chat=ChatRef(row["channel"], row["chat_id"]),
        role=Role(row["role"]),
        message_id=row["message_id"],
    )
