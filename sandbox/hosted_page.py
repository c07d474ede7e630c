"""The customer's payment page that a link's `url` (and so the QR code) opens.

Plain HTML; every value from an order is escaped.
"""

from __future__ import annotations

from html import escape

from sandbox.records import Order, money

_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Pay {business}</title></head>
<body>
<h1>{business}</h1>
<p>Order {order_id}</p>
<table>
<tr><th>Item</th><th>Qty</th><th>Price</th><th>Total</th></tr>
{rows}
</table>
<p><strong>Total: {currency} {total}</strong></p>
<p>Status: <strong id="status">{status}</strong></p>
<p><small>Cimplify sandbox: no real money moves here.</small></p>
</body>
</html>
"""

_ROW = "<tr><td>{name}</td><td>{quantity}</td><td>{unit_price}</td><td>{total}</td></tr>"


def render_page(order: Order, status: str) -> str:
    rows = "\n".join(
        _ROW.format(
            name=escape(item.name),
            quantity=item.quantity,
            unit_price=money(item.unit_price),
            total=money(item.total),
        )
        for item in order.line_items
    )
    return _PAGE.format(
        business=escape(order.business_name),
        order_id=escape(order.order_id),
        rows=rows,
        currency=escape(order.currency),
        total=money(order.total),
        status=escape(status.replace("_", " ")),
    )


def render_not_found() -> str:
    return "<!doctype html><title>Not found</title><p>No such payment link.</p>"
