"""The JSON both stores keep in a column: a link's line items and a message's buttons.

One shape for both, so that a row means the same thing whichever store holds it.
Amounts are decimal strings, never JSON numbers: a float would lose "75.00".
"""

from __future__ import annotations

import json
from decimal import Decimal

from bot.models import Button, LineItem


def decimal_text(amount: Decimal) -> str:
    """`amount` as text, refused when it is NaN or infinite."""
    if not amount.is_finite():
        raise ValueError(f"not a finite amount: {amount}")
    return str(amount)


def line_items_json(items: tuple[LineItem, ...]) -> str:
    return json.dumps(
        [
            {
                "name": item.name,
                "quantity": item.quantity,
                "unit_price": decimal_text(item.unit_price),
                "total": decimal_text(item.total),
            }
            for item in items
        ]
    )


def line_items_from(text: str) -> tuple[LineItem, ...]:
    return tuple(
        LineItem(
            name=item["name"],
            quantity=int(item["quantity"]),
            unit_price=Decimal(item["unit_price"]),
            total=Decimal(item["total"]),
        )
        for item in json.loads(text)
    )


def buttons_json(buttons: tuple[Button, ...]) -> str:
    return json.dumps([{"label": b.label, "url": b.url, "action": b.action} for b in buttons])


def buttons_from(text: str) -> tuple[Button, ...]:
    return tuple(Button(b["label"], b["url"], b["action"]) for b in json.loads(text))
