"""Small builders for core objects in tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bot.models import LineItem, Link, Money, Status

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
# Cimplify's answers for order 1001 as its API gives them (CONTRACT §1): the link it
# made, and the order's summary.
TOKEN = "plt_8fK2abcdef"
CREATED_LINK = {
    "token": TOKEN,
    "url": "https://pay.cimplify.test/p/plt_8fK2abcdef",
    "expires_at": "2026-11-30T12:00:00Z",
}
ORDER_SUMMARY = {
    "token": TOKEN,
    "order_id": "1001",
    "business_name": "Kofi's Kitchen",
    "currency": "GHS",
    "total": "75.00",
    "status": "pending",
    "expires_at": "2026-11-30T14:00:00+02:00",
    "line_items": [
        {"name": "Jollof rice", "quantity": 2, "unit_price": "30.00", "total": "60.00"},
        {"name": "Sobolo", "quantity": 1, "unit_price": "15.00", "total": "15.00"},
    ],
}


def make_link(
    link_id: str = "link-0000000000000001",
    *,
    order_id: str = "1001",
    status: Status = Status.PENDING,
    items: int = 2,
    created: datetime = NOW,
    expires_in: timedelta = timedelta(days=7),
    currency: str = "GHS",
) -> Link:
    line_items = tuple(
        LineItem(f"Dish {i}", 1, Decimal("10.00"), Decimal("10.00")) for i in range(items)
    )
    return Link(
        id=link_id,
        order_id=order_id,
        token=f"plt_{link_id}",
        url=f"https://pay.example/{link_id}",
        expires_at=created + expires_in,
        business_name="Kofi's Kitchen",
        total=Money(Decimal("10.00") * items, currency),
        line_items=line_items,
        status=status,
        created_at=created,
        status_changed_at=created,
    )
