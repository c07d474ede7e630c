"""The card's 3-D Secure challenge, as the customer's bank would show it.

A plain HTML form (no script): it posts the answer and the sandbox sends the
browser back to the payment page with the payment's reference.
"""

from __future__ import annotations

from html import escape
from string import Template

from sandbox import catalogue
from sandbox.records import Order

_PAGE = Template("""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Confirm your card payment · Sandbox Bank</title>
<link rel="stylesheet" href="/sandbox/assets/page.css">
</head>
<body>
<main id="challenge" data-state="$state">
<section aria-labelledby="h-3ds">
<h1 id="h-3ds">Sandbox Bank: confirm your payment</h1>
$body
</section>
<footer><small>Cimplify sandbox: no real money moves here.</small></footer>
</main>
</body>
</html>
""")

_FORM = Template("""<p>$business asks for <strong>$total</strong> from your card.</p>
<p>Reference $reference</p>
<form method="post" action="/sandbox/3ds/$token">
<input type="hidden" name="reference" value="$reference">
<button type="submit" name="answer" value="approve">Confirm payment</button>
<button type="submit" name="answer" value="decline" class="secondary">Cancel payment</button>
</form>
""")

_GONE = "<p>There is no card payment waiting here. Go back to the payment page.</p>"


def render_challenge(order: Order | None, token: str, reference: str) -> str:
    """The challenge for `order`'s payment `reference`; None: nothing is waiting."""
    if order is None:
        return _PAGE.substitute(state="gone", body=_GONE)
    body = _FORM.substitute(
        business=escape(order.business_name),
        total=escape(catalogue.format_money(order.total, order.currency)),
        reference=escape(reference),
        token=escape(token),
    )
    return _PAGE.substitute(state="challenge", body=body)
