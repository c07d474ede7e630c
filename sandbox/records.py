"""The sandbox's own records of orders and payment links: plain data, no I/O.

The sandbox models an external service, so it keeps its own types and never
imports paybot's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum

# CONTRACT §1: 1 to 64 characters of A-Z a-z 0-9 - _.
ORDER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

_CENTS = Decimal("0.01")


class LinkStatus(StrEnum):
    """A payment link's state, as Cimplify names it (CONTRACT §1)."""

    PENDING = "pending"
    PROCESSING = "processing"
    AWAITING_AUTHORIZATION = "awaiting_authorization"
    PAID = "paid"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"  # its order was cancelled (POST /v1/orders/{id}/cancel)


class OrderState(StrEnum):
    OPEN = "open"
    PAID = "paid"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class LineItem:
    name: str
    quantity: int
    unit_price: Decimal

    @property
    def total(self) -> Decimal:
        return self.unit_price * self.quantity


@dataclass
class Order:
    """An order in a merchant's Cimplify account; `total` is stated, as a real API would."""

    order_id: str
    business_name: str
    currency: str
    line_items: tuple[LineItem, ...]
    total: Decimal
    state: OrderState = OrderState.OPEN


@dataclass(frozen=True)
class Attempt:
    """How the customer is paying: `mobile_money` (with provider and phone), `card` or
    `bank_transfer`."""

    method: str
    provider: str | None = None
    phone: str | None = None

    @property
    def reference_prefix(self) -> str:
        return {"mobile_money": "MOMO", "card": "CARD"}.get(self.method, "BANK")


@dataclass
class Link:
    """A payment link; `status` is as last set, before expiry is taken into account."""

    token: str
    order_id: str
    status: LinkStatus
    created_at: datetime
    expires_at: datetime
    updated_at: datetime
    reference: str | None = None
    attempt: Attempt | None = None  # the payment under way, or the last one


def money(amount: Decimal) -> str:
    """An amount as the API writes it: a string with two decimals, never a float."""
    return str(amount.quantize(_CENTS))


def rfc3339(moment: datetime) -> str:
    """A moment as the API writes it: RFC 3339, UTC, whole seconds, with `Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utcnow() -> datetime:
    return datetime.now(UTC)
