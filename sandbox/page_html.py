"""The payment page's HTML: every state's section, drawn once on the server.

The script (`assets/page.js`) only shows the section of the current state, sets
`data-state` on `<main>`, and talks to the Pay API and the sandbox. Money is
written here with Babel, as the chat writes it; every value from an order is escaped.
"""

from __future__ import annotations

from html import escape
from string import Template

from sandbox import catalogue
from sandbox.records import Order

METHOD_NAMES = {"mobile_money": "Mobile money", "card": "Card", "bank_transfer": "Bank transfer"}
_METHOD_NOTES = {
    "card": "Your bank will ask you to confirm the card (3-D Secure).",
    "bank_transfer": "You will get an account number to transfer the money to.",
}

_HEAD = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<link rel="stylesheet" href="/sandbox/assets/page.css">
<script src="/sandbox/assets/page.js" defer></script>
</head>
<body>
"""

_ORDER = """<header class="order">
<p class="business">$business</p>
<h1>Order $order_id</h1>
<table>
<caption class="visually-hidden">Items</caption>
<thead><tr><th scope="col">Item</th><th scope="col">Qty</th><th scope="col">Amount</th></tr></thead>
<tbody>
$rows
</tbody>
</table>
<p class="total"><span>Total</span> <strong>$total</strong></p>
</header>
"""

_ROW = '<tr><td>$name</td><td class="num">$quantity</td><td class="num">$amount</td></tr>'

_PAY_BUTTON = '<button type="submit">Pay $total</button>'

_METHOD = (
    '<label class="choice"><input type="radio" name="method" value="$value"$checked> $name</label>'
)

_GUEST = """<section data-view="guest_flow" aria-labelledby="h-guest" hidden>
<h2 id="h-guest" tabindex="-1">Pay as guest</h2>
<form id="guest-form" novalidate>
<fieldset><legend>Payment method</legend>
$methods
</fieldset>
<div data-for="mobile_money"$momo_hidden>
<label for="provider">Mobile money provider</label>
<select id="provider" name="provider">$providers</select>
<label for="phone">Mobile money number</label>
<input id="phone" name="phone" type="tel" inputmode="tel" autocomplete="tel"
 placeholder="$placeholder" aria-describedby="guest-error">
</div>
$notes
<p class="form-error" id="guest-error" role="alert"></p>
$pay
</form>
<button type="button" class="plain" data-action="back">Back</button>
</section>
"""


def render_page(token: str, order: Order | None, page_template: Template) -> str:
    """The whole page for `token`; without an order, only its states (the script shows
    `error`, since the Pay API will not know the token either)."""
    if order is None:
        title, values = "Payment link not found · Cimplify sandbox", _empty_values()
    else:
        title, values = f"Pay {order.business_name} · Cimplify sandbox", _order_values(order)
    head = Template(_HEAD).substitute(title=escape(title))
    return head + page_template.substitute(token=escape(token), **values) + "</body>\n</html>\n"


def _order_values(order: Order) -> dict[str, str]:
    total = escape(catalogue.format_money(order.total, order.currency))
    rows = "\n".join(
        Template(_ROW).substitute(
            name=escape(item.name),
            quantity=item.quantity,
            amount=escape(catalogue.format_money(item.total, order.currency)),
        )
        for item in order.line_items
    )
    business, order_id = escape(order.business_name), escape(order.order_id)
    summary = Template(_ORDER).substitute(
        business=business, order_id=order_id, rows=rows, total=total
    )
    return {
        "summary": summary,
        "guest": _guest_form(order, total),
        "pay": Template(_PAY_BUTTON).substitute(total=total),
        "total": total,
        "business": escape(order.business_name),
        "dial": catalogue.DIAL_CODES.get(order.currency, ""),
    }


def _empty_values() -> dict[str, str]:
    return {"summary": "", "guest": "", "pay": "", "total": "", "business": "", "dial": ""}


def _guest_form(order: Order, total: str) -> str:
    offered = catalogue.methods(order.currency)
    methods = "\n".join(
        Template(_METHOD).substitute(
            value=method, name=METHOD_NAMES[method], checked=" checked" if i == 0 else ""
        )
        for i, method in enumerate(offered)
    )
    providers = "".join(
        f'<option value="{escape(p.code)}">{escape(p.name)}</option>'
        for p in catalogue.providers(order.currency)
    )
    notes = "\n".join(
        f'<p class="note" data-for="{method}" hidden>{_METHOD_NOTES[method]}</p>'
        for method in offered
        if method in _METHOD_NOTES
    )
    return Template(_GUEST).substitute(
        methods=methods,
        momo_hidden="" if "mobile_money" in offered else " hidden",
        providers=providers,
        placeholder="024 123 4567" if order.currency == "GHS" else "+000 000 000 000",
        notes=notes,
        pay=Template(_PAY_BUTTON).substitute(total=total),
    )
