"""Cimplify webhook bodies, as the contract shapes them (CONTRACT §2)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime


def event(
    kind: str,
    order_id: str = "1001",
    token: str | None = None,
    amount: str | None = "75.00",
    event_id: str | None = None,
) -> dict[str, object]:
    data: dict[str, object] = {"order_id": order_id, "currency": "GHS", "reference": "MOMO-77812"}
    if token is not None:
        data["token"] = token
    if amount is not None:
        data["amount"] = amount
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex}",
        "type": kind,
        "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "data": data,
    }
