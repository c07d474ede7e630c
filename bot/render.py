"""Every word a chat sees, in one place. Pure functions: no I/O.

Text is plain (no Markdown or HTML parse mode), so names from Cimplify need no
escaping; they are made one line of visible text (`plain_name`), so that a name
cannot draw lines of its own (a forged "Status: Paid") or reorder what follows.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from datetime import UTC, datetime

from babel.dates import format_datetime, format_timedelta
from babel.numbers import format_currency

from bot import errors
from bot.models import (
    ALREADY_PAID_WORDS,
    CONFIRMED_WORDS,
    Button,
    ChatRef,
    DeliveryStatus,
    Link,
    Money,
    Role,
    Status,
)

# Telegram's limit for a photo caption is 1024 (Bot API, sendPhoto); the rest is room
# for what a channel adds (the customer's share link on Telegram).
CAPTION_LIMIT = 1024 - 128
# Names are cut to these lengths: room for the link, the status and a few items.
BUSINESS_NAME_MOST = 100
ITEM_NAME_MOST = 80

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
INVOICE_FOR_CUSTOMER = (
    "To send the link to a customer on WhatsApp, type /invoice <order_id> <their number>, "
    "for example /invoice 1001 +233241234567."
)

HELP = (
    "paybot sends Cimplify payment links and tells you when the money is in.\n\n"
    "/invoice <order_id> - the payment link and QR code for an order\n"
    "/invoice <order_id> <phone> - the same, also sent to the customer on WhatsApp\n"
    "/status <order_id> - where the order's payment stands\n"
    "/open - your links that are not paid yet\n"
    "/remind <order_id> - remind the order's customers to pay, now\n"
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


def plain_name(name: str, most: int = BUSINESS_NAME_MOST) -> str:
    """A name from Cimplify as one line of visible text, at most `most` characters.

    Line breaks and other spacing controls become spaces; every other control,
    format (bidirectional overrides, zero-width), surrogate, private-use or
    unassigned character goes (Unicode category C*)."""
    kept = "".join(
        " " if char.isspace() else char
        for char in name
        if char.isspace() or not unicodedata.category(char).startswith("C")
    )
    line = " ".join(kept.split())  # also U+2028 and U+2029, which str.split takes as breaks
    if len(line) > most:
        line = line[: most - 1].rstrip() + "…"
    return line or "-"  # never empty: WhatsApp refuses an empty template variable


def invoice_caption(link: Link, now: datetime) -> str:
    """The invoice photo's caption: who, what, how much, where to pay, until when, status.

    The link and the status are always whole: items give way first ("… and N more
    items"); for a link too long even for the rest, only the order id stays with them."""
    head = f"{_business(link)}\nOrder {link.order_id}"
    pay = f"Pay here: {link.url}\nLink {expiry(link.expires_at, now)}"
    tail = f"Total: {money(link.total)}\n\n{pay}\nStatus: {link.status_words}"
    items = [_item_line(link, i) for i in range(len(link.line_items))]
    for shown in range(len(items), -1, -1):
        lines = items[:shown]
        if shown < len(items):
            lines.append(f"… and {len(items) - shown} more items")
        caption = "\n\n".join([head, *(["\n".join(lines)] if lines else []), tail])
        if len(caption) <= CAPTION_LIMIT:
            return caption
    caption = f"{head}\n\n{tail}"
    if len(caption) <= CAPTION_LIMIT:
        return caption
    return f"Order {link.order_id}\nPay here: {link.url}\nStatus: {link.status_words}"


def _business(link: Link) -> str:
    return plain_name(link.business_name)


def _item_line(link: Link, index: int) -> str:
    item = link.line_items[index]
    total = money(Money(item.total, link.total.currency))
    return f"{item.quantity} × {plain_name(item.name, ITEM_NAME_MOST)}: {total}"


def invoice_buttons(link: Link, role: Role = Role.MERCHANT) -> tuple[Button, ...]:
    if link.confirmed_at or link.status.is_final:
        return ()
    if role is Role.CUSTOMER:
        return (Button("Pay now", url=link.url),)
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


_CUSTOMER_DETAIL = {
    Status.PENDING: "waiting for your payment.",
    Status.PROCESSING: "your payment is being processed.",
    Status.AWAITING_AUTHORIZATION: "approve the payment on your phone to finish.",
    Status.PAID: "your payment went through; its confirmation follows.",
    Status.FAILED: "the payment did not go through. You can try again with the same link:",
    Status.EXPIRED: "this link has expired. Ask {business} for a new one.",
}


def status_change(link: Link, role: Role = Role.MERCHANT) -> str:
    """The message for a change the bot learned of; `link` is already in its new state."""
    if role is Role.CUSTOMER:
        detail = _CUSTOMER_DETAIL[link.status].format(business=_business(link))
        text = f"Your payment to {_business(link)} for order {link.order_id}: "
        text += f"{link.status.words} - {detail}"
        return f"{text} {link.url}" if link.status is Status.FAILED else text
    text = f"{_title(link)}: {link.status.words} - {_STATUS_DETAIL[link.status]}"
    if link.status is Status.EXPIRED:
        text += f" Type /invoice {link.order_id} for a new one."
    return text


def confirmed(link: Link, role: Role = Role.MERCHANT) -> str:
    if role is Role.CUSTOMER:
        return receipt(link)
    reference = f" Reference {link.reference}." if link.reference else ""
    return f"{_title(link)}: {CONFIRMED_WORDS} - {money(link.total)} received.{reference}"


def receipt(link: Link) -> str:
    """The customer's thank-you receipt, once the payment is confirmed."""
    items = [_item_line(link, i) for i in range(len(link.line_items))][:20]
    lines = [
        f"{CONFIRMED_WORDS} - thank you! Your receipt from {_business(link)}",
        f"Order {link.order_id}",
        *items,
        f"Total paid: {money(link.total)}",
    ]
    if link.reference:
        lines.append(f"Reference: {link.reference}")
    if link.confirmed_at:
        paid = format_datetime(link.confirmed_at, "d MMM y, HH:mm 'UTC'", tzinfo=UTC, locale="en")
        lines.append(f"Paid on {paid}")
    return "\n".join(lines)


def customer_name(chat: ChatRef) -> str:
    """How a merchant reads which customer: the number on WhatsApp."""
    return chat.chat_id if chat.channel == "whatsapp" else f"on {chat.channel.title()}"


def sent_to_customer(link: Link, customer: ChatRef) -> str:
    return (
        f"Order {link.order_id}: the link is on its way to the customer "
        f"{customer_name(customer)}. I will tell you when it is delivered."
    )


def customer_received(link: Link, customer: ChatRef) -> str:
    return (
        f"Order {link.order_id}: the customer {customer_name(customer)} "
        f"has received the payment link."
    )


def customer_opened(link: Link) -> str:
    return f"Order {link.order_id}: the customer opened the payment link on Telegram."


def customer_unreachable(link: Link, customer: ChatRef, why: str) -> str:
    if "24-hour" in why:
        why = (
            "WhatsApp lets a business write first only with an approved template, and "
            "none is set up; they can be reached once they write to this number"
        )
    return (
        f"Order {link.order_id}: I could not reach the customer {customer_name(customer)} "
        f"({why}). Forward them the link yourself: {link.url}"
    )


def customer_help() -> str:
    return (
        "paybot sends you payment links from the businesses you buy from, and tells you "
        "how your payment is going. Type status to see where your payment stands."
    )


def customer_status(links: Iterable[Link], now: datetime) -> str:
    lines = [
        f"• Order {link.order_id} from {_business(link)}: {money(link.total)}, "
        f"{link.status_words}" + (f". Pay here: {link.url}" if link.is_live(now) else "")
        for link in links
    ]
    if not lines:
        return "You have no payment links from paybot."
    return "Your payments:\n" + "\n".join(lines)


def customer_deliveries(customers: Iterable[tuple[ChatRef, DeliveryStatus | None]]) -> str:
    words = {
        None: "sent, not yet reported",
        DeliveryStatus.SENT: "sent",
        DeliveryStatus.DELIVERED: "delivered",
        DeliveryStatus.READ: "read",
        DeliveryStatus.FAILED: "not delivered",
    }
    return "\n".join(
        f"Customer {customer_name(chat)}: link {words[status]}" for chat, status in customers
    )


def amount_mismatch(link: Link, paid: Money) -> str:
    return (
        f"{_title(link)}: Cimplify reported a payment of {money(paid)}, which is not the "
        f"total of {money(link.total)}. Not confirmed: check the payment in Cimplify."
    )


def too_many_asks(per_minute: int) -> str:
    return (
        f"That is more than {per_minute} requests to Cimplify in a minute. "
        "Wait a minute, then try again."
    )


def message_lost(link: Link, chat: ChatRef) -> str:
    return (
        f"{_title(link)}: a message to {chat} could not be delivered and was given up. "
        f"Send them the link yourself: {link.url}"
    )


def event_mismatch(link: Link, event_id: str, why: str) -> str:
    return (
        f"{_title(link)}: Cimplify sent a payment event ({event_id}) that does not match this "
        f"link: {why}. Not confirmed: check the payment in Cimplify."
    )


def already_paid(order_id: str, business_name: str | None = None) -> str:
    who = f" ({plain_name(business_name)})" if business_name else ""
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
        f"• {link.order_id} {_business(link)}: {money(link.total)}, {link.status_words}, "
        f"{expiry(link.expires_at, now)}"
        for link in links
    ]
    if not lines:
        return "No open payment links. " + USAGE
    return "Open payment links:\n" + "\n".join(lines)


def no_link(order_id: str) -> str:
    # paybot knows only the orders it invoiced: it cannot say whether Cimplify has this one.
    return (
        f"paybot has made no payment link for order {order_id}, so it cannot tell whether "
        f"Cimplify knows that order. Type /invoice {order_id} to make one."
    )


def not_authorized(sender: str, setting: str) -> str:
    return (
        f"You are not authorized to issue invoices. Ask the operator to add your id "
        f"{sender} to {setting}."
    )


def unknown_command() -> str:
    return "I don't know that command. Type /help to see what I can do."


def _title(link: Link) -> str:
    return f"Order {link.order_id} ({_business(link)})"


def explain(error: errors.PaybotError, order_id: str | None = None) -> str:
    """The one place an error becomes words for a chat."""
    order = f"order {order_id}" if order_id else "that order"
    if isinstance(error, errors.InvalidOrderId):
        return f"That is not an order id: {error}. {USAGE}"
    if isinstance(error, errors.InvalidPhone):
        # Echo only the start: the whole of a long "number" would pass Telegram's 4096.
        typed = error.text if len(error.text) <= 40 else error.text[:40] + "…"
        return f"I cannot send to {typed!r}: {error}. {INVOICE_FOR_CUSTOMER}"
    if isinstance(error, errors.ChannelOff):
        return (
            f"I cannot reach customers on {error.channel.title()}: {error}. "
            "Forward them the link instead."
        )
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
