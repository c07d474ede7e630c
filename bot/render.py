"""Every word a chat sees, in one place. Pure functions: no I/O.

Text is plain (no Markdown or HTML parse mode), so names from Cimplify can hold
any character without escaping trouble.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from babel.dates import format_datetime, format_timedelta
from babel.numbers import format_currency

from bot import errors
from bot.models import (
    ALREADY_PAID_WORDS,
    CONFIRMED_WORDS,
    Button,
    Link,
    Money,
    Status,
)

# Telegram's limit for a photo caption (Bot API, sendPhoto).
CAPTION_LIMIT = 1024

# A locale per currency, so that amounts read as they do at home: GH₵, ₦, Ksh.
_CURRENCY_LOCALES = {
    "GHS": "en_GH",
    "NGN": "en_NG",
    "KES": "en_KE",
    "UGX": "en_UG",
    "TZS": "en_TZ",
    "RWF": "en_RW",
    "ZAR": "en_ZA",
    "XOF": "fr_SN",
    "XAF": "fr_CM",
    "EGP": "ar_EG",
}

USAGE = "Type /invoice <order_id>, for example /invoice 1001."

HELP = (
    "paybot sends Cimplify payment links and tells you when the money is in.\n\n"
    "/invoice <order_id> - the payment link and QR code for an order\n"
    "/status <order_id> - where the order's payment stands\n"
    "/open - your links that are not paid yet\n"
    "/help - this message"
)


def money(value: Money) -> str:
    """`GH₵75.00`; never rounds away a digit that is there."""
    locale = _CURRENCY_LOCALES.get(value.currency, "en")
    return format_currency(value.amount, value.currency, locale=locale, decimal_quantization=False)


def expiry(expires_at: datetime, now: datetime) -> str:
    """`expires in 6 days (30 Nov 2026, 12:00 UTC)`, or `expired 5 minutes ago (...)`."""
    when = format_datetime(expires_at, "d MMM y, HH:mm 'UTC'", tzinfo=UTC, locale="en")
    delta = format_timedelta(expires_at - now, locale="en", add_direction=True)
    verb = "expires" if expires_at > now else "expired"
    return f"{verb} {delta} ({when})"


def invoice_caption(link: Link, now: datetime) -> str:
    """The invoice photo's caption: who, what, how much, where to pay, until when, status."""
    head = f"{link.business_name}\nOrder {link.order_id}"
    tail = (
        f"Total: {money(link.total)}\n\nPay here: {link.url}\n"
        f"Link {expiry(link.expires_at, now)}\nStatus: {link.status_words}"
    )
    items = [_item_line(link, i) for i in range(len(link.line_items))]
    shown = len(items)
    while True:
        lines = items[:shown]
        if shown < len(items):
            lines.append(f"… and {len(items) - shown} more items")
        caption = "\n\n".join([head, "\n".join(lines), tail]) if lines else f"{head}\n\n{tail}"
        if len(caption) <= CAPTION_LIMIT or shown == 0:
            return caption[:CAPTION_LIMIT]
        shown -= 1


def _item_line(link: Link, index: int) -> str:
    item = link.line_items[index]
    total = money(Money(item.total, link.total.currency))
    return f"{item.quantity} × {item.name}: {total}"


def invoice_buttons(link: Link) -> tuple[Button, ...]:
    if link.confirmed_at or link.status.is_final:
        return ()
    return (
        Button("Open payment page", url=link.url),
        Button("Refresh status", action=f"refresh:{link.id}"),
    )


_STATUS_DETAIL = {
    Status.PENDING: "waiting for the customer to pay.",
    Status.PROCESSING: "the customer has started paying.",
    Status.AWAITING_AUTHORIZATION: "waiting for the customer to approve the payment.",
    Status.PAID: "Cimplify reports the payment; its confirmation follows.",
    Status.FAILED: "the payment did not go through. The customer can try again with the same link.",
    Status.EXPIRED: "the link ran out before it was paid.",
}


def status_change(link: Link) -> str:
    """The message for a change the bot learned of; `link` is already in its new state."""
    text = f"{_title(link)}: {link.status.words} - {_STATUS_DETAIL[link.status]}"
    if link.status is Status.EXPIRED:
        text += f" Type /invoice {link.order_id} for a new one."
    return text


def confirmed(link: Link) -> str:
    reference = f" Reference {link.reference}." if link.reference else ""
    return f"{_title(link)}: {CONFIRMED_WORDS} - {money(link.total)} received.{reference}"


def amount_mismatch(link: Link, paid: Money) -> str:
    return (
        f"{_title(link)}: Cimplify reported a payment of {money(paid)}, which is not the "
        f"total of {money(link.total)}. Not confirmed: check the payment in Cimplify."
    )


def already_paid(order_id: str, business_name: str | None = None) -> str:
    who = f" ({business_name})" if business_name else ""
    return f"Order {order_id}{who}: {ALREADY_PAID_WORDS}. There is nothing left to pay."


def status_summary(link: Link, now: datetime, stale: bool = False) -> str:
    lines = [f"{_title(link)}: {link.status_words}", f"Total: {money(link.total)}"]
    if link.is_live(now):
        lines += [f"Link {expiry(link.expires_at, now)}", link.url]
    if stale:
        lines.append("(Cimplify did not answer just now: this is the last status paybot knows.)")
    return "\n".join(lines)


def open_links(links: Iterable[Link], now: datetime) -> str:
    lines = [
        f"• {link.order_id} {link.business_name}: {money(link.total)}, {link.status_words}, "
        f"{expiry(link.expires_at, now)}"
        for link in links
    ]
    if not lines:
        return "No open payment links. " + USAGE
    return "Open payment links:\n" + "\n".join(lines)


def no_link(order_id: str) -> str:
    return f"No payment link for order {order_id} yet. Type /invoice {order_id} to create one."


def not_authorized(sender: str, setting: str) -> str:
    return (
        f"You are not authorized to issue invoices. Ask the operator to add your id "
        f"{sender} to {setting}."
    )


def unknown_command() -> str:
    return "I don't know that command. Type /help to see what I can do."


def _title(link: Link) -> str:
    return f"Order {link.order_id} ({link.business_name})"


def explain(error: errors.PaybotError, order_id: str | None = None) -> str:
    """The one place an error becomes words for a chat."""
    order = f"order {order_id}" if order_id else "that order"
    if isinstance(error, errors.InvalidOrderId):
        return f"That is not an order id: {error}. {USAGE}"
    if isinstance(error, errors.OrderNotFound):
        return f"Cimplify does not know {order}. Check the id. {USAGE}"
    if isinstance(error, errors.OrderNotPayable):
        return f"Cimplify says {order} cannot take payment: it may be cancelled."
    if isinstance(error, errors.LinkExpired):
        return f"The payment link for {order} has expired. Type /invoice again for a new one."
    if isinstance(error, errors.CimplifyAuthError):
        return "Cimplify refused paybot's key. The operator must check CIMPLIFY_SECRET_KEY."
    if isinstance(error, errors.CimplifyUnavailable):
        return "Cimplify is not answering right now. Nothing was created: try again in a minute."
    return "Something went wrong talking to Cimplify. Try again in a minute."
