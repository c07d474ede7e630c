"""Conversion between the models and PostgreSQL rows.

asyncpg hands timestamptz back as aware datetimes and numeric as Decimal with its
scale ("75.00" stays 75.00). JSON travels as text: prices inside it are strings,
so that no float ever stands for money.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg

from bot.models import (
    ChatRef,
    InboxEntry,
    InboxItem,
    Link,
    MessageKind,
    Money,
    Outgoing,
    QueuedMessage,
    Role,
    Status,
    Subscription,
)
from storage.json_columns import buttons_from, line_items_from, line_items_json

ERROR_CHARS = 1000  # errors can quote hostile input; keep the row bounded


def error_text(error: str) -> str:
    """An error as stored: bounded, and without NUL, which PostgreSQL's text refuses."""
    return error[:ERROR_CHARS].replace("\x00", "\ufffd")


def utc(at: datetime) -> datetime:
    return at.astimezone(UTC)


def optional_utc(at: datetime | None) -> datetime | None:
    return None if at is None else utc(at)


def finite(amount: Decimal) -> Decimal:
    """`amount`, refused when it is NaN or infinite (numeric would keep NaN)."""
    if not amount.is_finite():
        raise ValueError(f"not a finite amount: {amount}")
    return amount


def link_args(link: Link) -> tuple[Any, ...]:
    """The values for links.INSERT_LINK, in order."""
    return (
        link.id,
        link.order_id,
        link.token,
        link.url,
        link.expires_at,
        link.business_name,
        link.total.currency,
        finite(link.total.amount),
        line_items_json(link.line_items),
        link.status.value,
        link.created_at,
        link.status_changed_at,
        link.confirmed_at,
        link.reference,
        link.next_poll_at,
        link.share_code,
        link.issued_by,
    )


def link_from(row: asyncpg.Record) -> Link:
    return Link(
        id=row["id"],
        order_id=row["order_id"],
        token=row["token"],
        url=row["url"],
        expires_at=utc(row["expires_at"]),
        business_name=row["business_name"],
        total=Money(row["total"], row["currency"]),
        line_items=line_items_from(row["line_items"]),
        status=Status(row["status"]),
        created_at=utc(row["created_at"]),
        status_changed_at=utc(row["status_changed_at"]),
        confirmed_at=optional_utc(row["confirmed_at"]),
        reference=row["reference"],
        next_poll_at=optional_utc(row["next_poll_at"]),
        share_code=row["share_code"],
        issued_by=row["issued_by"],
    )


def queued_message_from(row: asyncpg.Record) -> QueuedMessage:
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
        created_at=utc(row["created_at"]),
        attempts=row["attempts"],
        next_attempt_at=utc(row["next_attempt_at"]),
    )


def subscription_from(row: asyncpg.Record) -> Subscription:
    return Subscription(
        link_id=row["link_id"],
        chat=ChatRef(row["channel"], row["chat_id"]),
        role=Role(row["role"]),
        message_id=row["message_id"],
    )


def inbox_item_from(row: asyncpg.Record) -> InboxItem:
    entry = InboxEntry(
        source=row["source"],
        source_id=row["source_id"],
        kind=row["kind"],
        lane=row["lane"],
        body=row["body"],
    )
    return InboxItem(
        seq=row["seq"], entry=entry, received_at=utc(row["received_at"]), attempts=row["attempts"]
    )
