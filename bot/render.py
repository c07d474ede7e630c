"""Every word a chat sees, in one place. Pure functions: no I/O.

Each takes the `voice` of the chat it is for (bot/i18n.py): the sentences are the
English message ids of the catalogue, money and moments are formatted by the voice.
The default voice is English in UTC, what tests and the console read.

Text is plain (no Markdown or HTML parse mode), so names from Cimplify need no
escaping; they are made one line of visible text (`plain_name`), so that a name
cannot draw lines of its own (a forged "Status: Paid") or reorder what follows.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from datetime import datetime

from bot import errors
from bot.i18n import ENGLISH_VOICE, Voice
from bot.models import (
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


def usage(voice: Voice = ENGLISH_VOICE) -> str:
    return voice.t("Type /invoice <order_id>, for example /invoice 1001.")


def invoice_for_customer(voice: Voice = ENGLISH_VOICE) -> str:
    return voice.t(
        "To send the link to a customer on WhatsApp, type /invoice <order_id> <their number>, "
        "for example /invoice 1001 +233241234567."
    )


def help_text(voice: Voice = ENGLISH_VOICE) -> str:
    return voice.t(
        "paybot sends Cimplify payment links and tells you when the money is in.\n\n"
        "/invoice <order_id> - the payment link and QR code for an order\n"
        "/invoice <order_id> <phone> - the same, also sent to the customer on WhatsApp\n"
        "/status <order_id> - where the order's payment stands\n"
        "/open - your links that are not paid yet\n"
        "/cancel <order_id> - cancel an unpaid order and its link\n"
        "/remind <order_id> - remind the order's customers to pay, now\n"
        "/today - today's links: issued, paid, open, expired\n"
        "/export [days] - a CSV file of your links of the last 7 (or [days]) days\n"
        "/lang <en|fr> - the language I speak in this chat\n"
        "/help - this message"
    )


def status_name(status: Status, voice: Voice = ENGLISH_VOICE) -> str:
    """A status in plain words (CONTRACT §5)."""
    return {
        Status.PENDING: voice.t("Pending"),
        Status.PROCESSING: voice.t("Processing"),
        Status.AWAITING_AUTHORIZATION: voice.t("Awaiting authorization"),
        Status.PAID: voice.t("Paid"),
        Status.FAILED: voice.t("Failed"),
        Status.EXPIRED: voice.t("Expired"),
        Status.CANCELLED: voice.t("Cancelled"),
    }[status]


def confirmed_words(voice: Voice = ENGLISH_VOICE) -> str:
    return voice.t("Confirmed")


def already_paid_words(voice: Voice = ENGLISH_VOICE) -> str:
    return voice.t("Already paid")


def status_words(link: Link, voice: Voice = ENGLISH_VOICE) -> str:
    """`Confirmed` once a webhook confirmed it, else its status's words."""
    return confirmed_words(voice) if link.confirmed_at else status_name(link.status, voice)


def money(value: Money, voice: Voice = ENGLISH_VOICE) -> str:
    """`GH₵75.00`; never rounds away a digit that is there."""
    return voice.money(value)


def expiry(expires_at: datetime, now: datetime, voice: Voice = ENGLISH_VOICE) -> str:
    """`expires in 6 days (30 Nov 2026, 12:00 UTC)`, or `expired 5 minutes ago (...)`."""
    when, span = voice.zoned_moment(expires_at), voice.span(expires_at - now)
    if expires_at > now:
        return voice.t("expires {span} ({when})", span=span, when=when)
    return voice.t("expired {span} ({when})", span=span, when=when)


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


def invoice_caption(link: Link, now: datetime, voice: Voice = ENGLISH_VOICE) -> str:
    """The invoice photo's caption: who, what, how much, where to pay, until when, status.

    The link and the status are always whole: items give way first ("… and N more
    items"); for a link too long even for the rest, only the order id stays with them."""
    order = voice.t("Order {order}", order=link.order_id)
    pay_here = voice.t("Pay here: {url}", url=link.url)
    status = voice.t("Status: {status}", status=status_words(link, voice))
    head = f"{_business(link)}\n{order}"
    until = voice.t("Link {expiry}", expiry=expiry(link.expires_at, now, voice))
    total = voice.t("Total: {total}", total=money(link.total, voice))
    tail = f"{total}\n\n{pay_here}\n{until}\n{status}"
    items = [_item_line(link, i, voice) for i in range(len(link.line_items))]
    for shown in range(len(items), -1, -1):
        lines = items[:shown]
        if shown < len(items):
            left = len(items) - shown
            lines.append(voice.tn("… and {count} more items", "… and {count} more items", left))
        caption = "\n\n".join([head, *(["\n".join(lines)] if lines else []), tail])
        if len(caption) <= CAPTION_LIMIT:
            return caption
    caption = f"{head}\n\n{tail}"
    if len(caption) <= CAPTION_LIMIT:
        return caption
    return f"{order}\n{pay_here}\n{status}"


def _business(link: Link) -> str:
    return plain_name(link.business_name)


def _item_line(link: Link, index: int, voice: Voice) -> str:
    item = link.line_items[index]
    total = money(Money(item.total, link.total.currency), voice)
    name = plain_name(item.name, ITEM_NAME_MOST)
    return voice.t("{quantity} × {name}: {total}", quantity=item.quantity, name=name, total=total)


def invoice_buttons(
    link: Link, role: Role = Role.MERCHANT, voice: Voice = ENGLISH_VOICE
) -> tuple[Button, ...]:
    if link.confirmed_at or link.status.is_final:
        return ()
    if role is Role.CUSTOMER:
        return (Button(voice.t("Pay now"), url=link.url),)
    return (
        Button(voice.t("Open payment page"), url=link.url),
        Button(voice.t("Refresh status"), action=f"refresh:{link.id}"),
    )


def _status_detail(status: Status, voice: Voice) -> str:
    return {
        Status.PENDING: voice.t("waiting for the customer to pay."),
        Status.PROCESSING: voice.t("the customer has started paying."),
        Status.AWAITING_AUTHORIZATION: voice.t("waiting for the customer to approve the payment."),
        Status.PAID: voice.t("Cimplify reports the payment; its confirmation follows."),
        Status.FAILED: voice.t(
            "the payment did not go through. The customer can try again with the same link."
        ),
        Status.EXPIRED: voice.t("the link ran out before it was paid."),
        Status.CANCELLED: voice.t("the order was cancelled; its link takes no payment."),
    }[status]


def _customer_detail(status: Status, business: str, voice: Voice) -> str:
    return {
        Status.PENDING: voice.t("waiting for your payment."),
        Status.PROCESSING: voice.t("your payment is being processed."),
        Status.AWAITING_AUTHORIZATION: voice.t("approve the payment on your phone to finish."),
        Status.PAID: voice.t("your payment went through; its confirmation follows."),
        Status.FAILED: voice.t(
            "the payment did not go through. You can try again with the same link:"
        ),
        Status.EXPIRED: voice.t(
            "this link has expired. Ask {business} for a new one.", business=business
        ),
        Status.CANCELLED: voice.t(
            "{business} cancelled this order. There is nothing to pay.", business=business
        ),
    }[status]


def status_change(link: Link, role: Role = Role.MERCHANT, voice: Voice = ENGLISH_VOICE) -> str:
    """The message for a change the bot learned of; `link` is already in its new state."""
    words = status_name(link.status, voice)
    if role is Role.CUSTOMER:
        text = voice.t(
            "Your payment to {business} for order {order}: {status} - {detail}",
            business=_business(link),
            order=link.order_id,
            status=words,
            detail=_customer_detail(link.status, _business(link), voice),
        )
        return f"{text} {link.url}" if link.status is Status.FAILED else text
    detail = _status_detail(link.status, voice)
    text = voice.t(
        "{title}: {status} - {detail}", title=_title(link, voice), status=words, detail=detail
    )
    if link.status is Status.EXPIRED:
        text += " " + voice.t("Type /invoice {order} for a new one.", order=link.order_id)
    return text


def confirmed(link: Link, role: Role = Role.MERCHANT, voice: Voice = ENGLISH_VOICE) -> str:
    if role is Role.CUSTOMER:
        return receipt(link, voice)
    text = voice.t(
        "{title}: {confirmed} - {total} received.",
        title=_title(link, voice),
        confirmed=confirmed_words(voice),
        total=money(link.total, voice),
    )
    if link.reference:
        text += " " + voice.t("Reference {reference}.", reference=link.reference)
    return text


def receipt(link: Link, voice: Voice = ENGLISH_VOICE) -> str:
    """The customer's thank-you receipt, once the payment is confirmed."""
    items = [_item_line(link, i, voice) for i in range(len(link.line_items))][:20]
    lines = [
        voice.t(
            "{confirmed} - thank you! Your receipt from {business}",
            confirmed=confirmed_words(voice),
            business=_business(link),
        ),
        voice.t("Order {order}", order=link.order_id),
        *items,
        voice.t("Total paid: {total}", total=money(link.total, voice)),
    ]
    if link.reference:
        lines.append(voice.t("Reference: {reference}", reference=link.reference))
    if link.confirmed_at:
        lines.append(voice.t("Paid on {when}", when=voice.zoned_moment(link.confirmed_at)))
    return "\n".join(lines)


def customer_name(chat: ChatRef, voice: Voice = ENGLISH_VOICE) -> str:
    """How a merchant reads which customer: the number on WhatsApp."""
    if chat.channel == "whatsapp":
        return chat.chat_id
    return voice.t("on {channel}", channel=chat.channel.title())


def sent_to_customer(link: Link, customer: ChatRef, voice: Voice = ENGLISH_VOICE) -> str:
    return voice.t(
        "Order {order}: the link is on its way to the customer {customer}. "
        "I will tell you when it is delivered.",
        order=link.order_id,
        customer=customer_name(customer, voice),
    )


def customer_received(link: Link, customer: ChatRef, voice: Voice = ENGLISH_VOICE) -> str:
    return voice.t(
        "Order {order}: the customer {customer} has received the payment link.",
        order=link.order_id,
        customer=customer_name(customer, voice),
    )


def customer_opened(link: Link, voice: Voice = ENGLISH_VOICE) -> str:
    return voice.t(
        "Order {order}: the customer opened the payment link on Telegram.", order=link.order_id
    )


def not_delivered_by_whatsapp(voice: Voice = ENGLISH_VOICE) -> str:
    return voice.t("WhatsApp did not deliver it")


def customer_unreachable(
    link: Link, customer: ChatRef, why: str, voice: Voice = ENGLISH_VOICE
) -> str:
    """`why` is the channel's own reason (kept as it came), or one of ours already said."""
    if "24-hour" in why:
        why = voice.t(
            "WhatsApp lets a business write first only with an approved template, and "
            "none is set up; they can be reached once they write to this number"
        )
    return voice.t(
        "Order {order}: I could not reach the customer {customer} ({why}). "
        "Forward them the link yourself: {url}",
        order=link.order_id,
        customer=customer_name(customer, voice),
        why=why,
        url=link.url,
    )


def customer_help(voice: Voice = ENGLISH_VOICE) -> str:
    return voice.t(
        "paybot sends you payment links from the businesses you buy from, and tells you "
        "how your payment is going. Type status to see where your payment stands."
    )


def customer_status(links: Iterable[Link], now: datetime, voice: Voice = ENGLISH_VOICE) -> str:
    lines = [_customer_status_line(link, now, voice) for link in links]
    if not lines:
        return voice.t("You have no payment links from paybot.")
    return voice.t("Your payments:") + "\n" + "\n".join(lines)


def _customer_status_line(link: Link, now: datetime, voice: Voice) -> str:
    line = voice.t(
        "• Order {order} from {business}: {total}, {status}",
        order=link.order_id,
        business=_business(link),
        total=money(link.total, voice),
        status=status_words(link, voice),
    )
    if link.is_live(now):
        line += ". " + voice.t("Pay here: {url}", url=link.url)
    return line


def _delivery_words(status: DeliveryStatus | None, voice: Voice) -> str:
    return {
        None: voice.t("sent, not yet reported"),
        DeliveryStatus.SENT: voice.t("sent"),
        DeliveryStatus.DELIVERED: voice.t("delivered"),
        DeliveryStatus.READ: voice.t("read"),
        DeliveryStatus.FAILED: voice.t("not delivered"),
    }[status]


def customer_deliveries(
    customers: Iterable[tuple[ChatRef, DeliveryStatus | None]], voice: Voice = ENGLISH_VOICE
) -> str:
    return "\n".join(
        voice.t(
            "Customer {customer}: link {delivery}",
            customer=customer_name(chat, voice),
            delivery=_delivery_words(status, voice),
        )
        for chat, status in customers
    )


def amount_mismatch(link: Link, paid: Money, voice: Voice = ENGLISH_VOICE) -> str:
    return voice.t(
        "{title}: Cimplify reported a payment of {paid}, which is not the total of {total}. "
        "Not confirmed: check the payment in Cimplify.",
        title=_title(link, voice),
        paid=money(paid, voice),
        total=money(link.total, voice),
    )


def too_many_asks(per_minute: int, voice: Voice = ENGLISH_VOICE) -> str:
    return voice.t(
        "That is more than {most} requests to Cimplify in a minute. Wait a minute, then try again.",
        most=per_minute,
    )


def message_lost(link: Link, chat: ChatRef, voice: Voice = ENGLISH_VOICE) -> str:
    return voice.t(
        "{title}: a message to {chat} could not be delivered and was given up. "
        "Send them the link yourself: {url}",
        title=_title(link, voice),
        chat=str(chat),
        url=link.url,
    )


def event_mismatch(link: Link, event_id: str, why: str, voice: Voice = ENGLISH_VOICE) -> str:
    return voice.t(
        "{title}: Cimplify sent a payment event ({event}) that does not match this link: "
        "{why}. Not confirmed: check the payment in Cimplify.",
        title=_title(link, voice),
        event=event_id,
        why=why,
    )


def already_paid(
    order_id: str, business_name: str | None = None, voice: Voice = ENGLISH_VOICE
) -> str:
    who = f" ({plain_name(business_name)})" if business_name else ""
    return voice.t(
        "Order {order}{who}: {already_paid}. There is nothing left to pay.",
        order=order_id,
        who=who,
        already_paid=already_paid_words(voice),
    )


def status_summary(
    link: Link, now: datetime, stale: bool = False, voice: Voice = ENGLISH_VOICE
) -> str:
    lines = [
        voice.t("{title}: {status}", title=_title(link, voice), status=status_words(link, voice)),
        voice.t("Total: {total}", total=money(link.total, voice)),
    ]
    if link.is_live(now):
        until = voice.t("Link {expiry}", expiry=expiry(link.expires_at, now, voice))
        lines += [until, link.url]
    if stale:
        lines.append(
            voice.t("(Cimplify did not answer just now: this is the last status paybot knows.)")
        )
    return "\n".join(lines)


def open_links(links: Iterable[Link], now: datetime, voice: Voice = ENGLISH_VOICE) -> str:
    lines = [
        voice.t(
            "• {order} {business}: {total}, {status}, {expiry}",
            order=link.order_id,
            business=_business(link),
            total=money(link.total, voice),
            status=status_words(link, voice),
            expiry=expiry(link.expires_at, now, voice),
        )
        for link in links
    ]
    if not lines:
        return voice.t("No open payment links.") + " " + usage(voice)
    return voice.t("Open payment links:") + "\n" + "\n".join(lines)


def no_link(order_id: str, voice: Voice = ENGLISH_VOICE) -> str:
    # paybot knows only the orders it invoiced: it cannot say whether Cimplify has this one.
    return voice.t(
        "paybot has made no payment link for order {order}, so it cannot tell whether "
        "Cimplify knows that order. Type /invoice {order} to make one.",
        order=order_id,
    )


def not_authorized(sender: str, setting: str, voice: Voice = ENGLISH_VOICE) -> str:
    return voice.t(
        "You are not authorized to issue invoices. Ask the operator to add your id "
        "{sender} to {setting}.",
        sender=sender,
        setting=setting,
    )


def unknown_command(voice: Voice = ENGLISH_VOICE) -> str:
    return voice.t("I don't know that command. Type /help to see what I can do.")


def _title(link: Link, voice: Voice) -> str:
    return voice.t("Order {order} ({business})", order=link.order_id, business=_business(link))


def explain(
    error: errors.PaybotError, order_id: str | None = None, voice: Voice = ENGLISH_VOICE
) -> str:
    """The one place an error becomes words for a chat."""
    order = voice.t("order {order}", order=order_id) if order_id else voice.t("that order")
    if isinstance(error, errors.InvalidOrderId):
        text = voice.t(
            "That is not an order id: order ids are 1 to 64 letters, digits, '-' or '_'."
        )
        return f"{text} {usage(voice)}"
    if isinstance(error, errors.InvalidPhone):
        # Echo only the start: the whole of a long "number" would pass Telegram's 4096.
        typed = error.text if len(error.text) <= 40 else error.text[:40] + "…"
        why = voice.t(str(error))  # one of bot/phones.py's reasons, marked N_ there
        text = voice.t("I cannot send to {typed}: {why}.", typed=repr(typed), why=why)
        return f"{text} {invoice_for_customer(voice)}"
    if isinstance(error, errors.ChannelOff):
        return voice.t(
            "I cannot reach customers on {channel}: the {name} channel is not set up. "
            "Forward them the link instead.",
            channel=error.channel.title(),
            name=error.channel,
        )
    return _cimplify_error(error, order, voice)


def _cimplify_error(error: errors.PaybotError, order: str, voice: Voice) -> str:
    if isinstance(error, errors.OrderNotFound):
        return voice.t("Cimplify does not know {order}. Check the id.", order=order) + (
            " " + usage(voice)
        )
    if isinstance(error, errors.OrderNotPayable):
        return voice.t(
            "Cimplify says {order} cannot take payment: it may be cancelled.", order=order
        )
    if isinstance(error, errors.LinkExpired):
        return voice.t(
            "The payment link for {order} has expired. Type /invoice again for a new one.",
            order=order,
        )
    if isinstance(error, errors.CimplifyAuthError):
        return voice.t(
            "Cimplify refused paybot's key. The operator must check CIMPLIFY_SECRET_KEY."
        )
    if isinstance(error, errors.CimplifyUnavailable):
        return voice.t(
            "Cimplify is not answering right now. Nothing was created: try again in a minute."
        )
    return voice.t("Something went wrong talking to Cimplify. Try again in a minute.")


# What the conversation answers (handlers/commands.py), and the channels' own words.


def status_usage(voice: Voice = ENGLISH_VOICE) -> str:
    return voice.t("Type /status <order_id>, for example /status 1001.")


def not_a_number(voice: Voice = ENGLISH_VOICE) -> str:
    return voice.t("That is not a phone number, so only you got the link.")


def share_link_gone(voice: Voice = ENGLISH_VOICE) -> str:
    return voice.t("That payment link is not valid any more. Ask the business for a new one.")


def not_this_chats_link(voice: Voice = ENGLISH_VOICE) -> str:
    return voice.t("That link is not one of this chat's.")


def refreshed(link: Link, voice: Voice = ENGLISH_VOICE) -> str:
    return voice.t("Order {order}: {status}", order=link.order_id, status=status_words(link, voice))


def customer_help_with_refusal(refusal: str, voice: Voice = ENGLISH_VOICE) -> str:
    merchants = voice.t("Merchants: {refusal}", refusal=refusal)
    return f"{customer_help(voice)}\n\n{merchants}"


def language_set(voice: Voice) -> str:
    """Said in the language just chosen."""
    return voice.t("From now on I speak English in this chat.")


def language_usage(voice: Voice = ENGLISH_VOICE) -> str:
    return voice.t(
        "Type /lang en for English or /lang fr for French (français), for example /lang fr."
    )


def for_the_customer_on_telegram(share: str, voice: Voice = ENGLISH_VOICE) -> str:
    return voice.t("For the customer on Telegram: {share}", share=share)


def command_menu(voice: Voice = ENGLISH_VOICE) -> list[tuple[str, str]]:
    """Telegram's command menu: each command and what it does."""
    return [
        ("invoice", voice.t("Payment link and QR code for an order")),
        ("status", voice.t("Where an order's payment stands")),
        ("open", voice.t("Your links that are not paid yet")),
        ("cancel", voice.t("Cancel an unpaid order and its link")),
        ("remind", voice.t("Remind an order's customers to pay")),
        ("today", voice.t("Today's links: issued, paid, open, expired")),
        ("export", voice.t("A CSV file of your links, for a spreadsheet")),
        ("lang", voice.t("The language of this chat: en or fr")),
        ("help", voice.t("What paybot can do")),
    ]
