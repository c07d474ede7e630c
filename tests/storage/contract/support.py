"""Builders and a fixed clock shared by the contract tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from bot.errors import StoreUnavailable
from bot.models import (
    ChatRef,
    InboxEntry,
    LineItem,
    Link,
    MessageKind,
    Money,
    Outgoing,
    Status,
)
from bot.ports import Store, Tx

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)
ALICE = ChatRef("telegram", "100")
BOB = ChatRef("telegram", "200")
CAROL = ChatRef("whatsapp", "+233200000001")

T = TypeVar("T")

# Opens another store on the test's database: another process, as far as the store knows.
OpenStore = Callable[[], Awaitable[Store]]


def at(seconds: float) -> datetime:
    """A time on the tests' clock, `seconds` after T0."""
    return T0 + timedelta(seconds=seconds)


def a_link(
    link_id: str = "lnk_1",
    *,
    order_id: str = "1001",
    created: datetime = T0,
    status: Status = Status.PENDING,
    next_poll_at: datetime | None = None,
) -> Link:
    return Link(
        id=link_id,
        order_id=order_id,
        token=f"plt_{link_id}",
        url=f"https://pay.cimplify.test/p/plt_{link_id}",
        expires_at=created + timedelta(hours=24),
        business_name="Ama's Kitchen",
        total=Money(Decimal("75.00"), "GHS"),
        line_items=(
            LineItem("Jollof", 2, Decimal("25.00"), Decimal("50.00")),
            LineItem("Kelewele", 1, Decimal("25.00"), Decimal("25.00")),
        ),
        status=status,
        created_at=created,
        status_changed_at=created,
        next_poll_at=next_poll_at,
        share_code=f"share_{link_id}",
    )


def text_to(chat: ChatRef, text: str) -> Outgoing:
    return Outgoing(chat=chat, kind=MessageKind.TEXT, text=text)


def invoice_to(chat: ChatRef, link_id: str = "lnk_1") -> Outgoing:
    return Outgoing(chat=chat, kind=MessageKind.INVOICE, text="Order 1001", link_id=link_id)


def an_entry(source_id: str, lane: str = "lane-a", source: str = "telegram") -> InboxEntry:
    return InboxEntry(
        source=source, source_id=source_id, kind="update", lane=lane, body=f"body of {source_id}"
    )


async def committed(store: Store, work: Callable[[Tx], Awaitable[T]]) -> T:
    """`work` in a transaction of its own; its result once that has committed.

    StoreUnavailable means nothing was written and the caller may try again (a
    busy SQLite file, a PostgreSQL deadlock or serialization failure), so the
    concurrent tests do as the bot's loops do. Anything else fails the test.
    """
    for _ in range(20):
        try:
            async with store.transaction() as tx:
                result = await work(tx)
        except StoreUnavailable:
            await asyncio.sleep(0)  # only lets the other tasks run; no time passes
            continue
        return result
    raise AssertionError("the store stayed unavailable through 20 attempts")
