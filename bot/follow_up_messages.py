"""What a follow-up says, and to whom (bot/follow_ups.py handles them when due): the
customers' reminders within what each channel allows, the merchant's word on who was
reminded, and the offer of a new link. Queued in the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from bot import render, render_follow_up
from bot.i18n import Voice, Voices
from bot.models import Button, ChatRef, Link, MessageKind, Outgoing, Role
from bot.ports import Tx

# WhatsApp's customer-service window (handlers/whatsapp_send.py, WINDOW): outside it a
# business writes first only with an approved template.
WHATSAPP_WINDOW = timedelta(hours=24)
# A WhatsApp reminder is an invoice-kind message (the QR again) with this one button,
# which WhatsApp does not show: it tells the sender to use the reminder's template
# (TWILIO_REMINDER_CONTENT_SID) outside the window rather than the invoice's.
REMINDER_ACTION = "reminder"
RENEW_ACTION = "renew:"  # + the old link's id: the New link button's callback data


async def remind(
    tx: Tx,
    voices: Voices,
    reminder_template: bool,
    link: Link,
    now: datetime,
    failed: bool,
    asker: ChatRef | None = None,
) -> None:
    """Each customer chat of the link is reminded, as far as its channel allows; the
    merchants (and whoever asked) hear who was, or get the link to forward."""
    subscribers = await tx.subscriptions.for_link(link.id)
    customers = [s.chat for s in subscribers if s.role is Role.CUSTOMER]
    merchants = [s.chat for s in subscribers if s.role is Role.MERCHANT]
    if asker is not None and asker not in merchants:
        merchants.append(asker)
    messages, reached, unreached = [], [], []
    for chat in customers:
        message = await _reminder_for(tx, voices, reminder_template, chat, link, now, failed)
        if message is None:
            unreached.append(chat)
        else:
            messages.append(message)
            reached.append(chat)
    for chat in merchants:
        voice = await voices.of(tx, chat)
        text = _merchant_report(voice, link, customers, reached, unreached, failed)
        messages.append(Outgoing(chat, MessageKind.TEXT, text, link.id))
    # One enqueue for every chat: the store locks each chat's queue in one order.
    await tx.outbox.enqueue(messages, now)


async def _reminder_for(
    tx: Tx,
    voices: Voices,
    reminder_template: bool,
    chat: ChatRef,
    link: Link,
    now: datetime,
    failed: bool,
) -> Outgoing | None:
    """The customer's reminder; None when WhatsApp's window is shut and no template
    is set up."""
    voice = await voices.of(tx, chat)
    words = render_follow_up.try_again if failed else render_follow_up.reminder
    text = words(voice, link)
    if chat.channel != "whatsapp":
        pay = Button(render_follow_up.pay_now_label(voice), url=link.url)
        return Outgoing(chat, MessageKind.TEXT, text, link.id, (pay,))
    last = await tx.contacts.last_inbound_at(chat)
    in_window = last is not None and now - last < WHATSAPP_WINDOW
    if not in_window and not reminder_template:
        return None
    marker = Button(render_follow_up.pay_now_label(voice), action=REMINDER_ACTION)
    return Outgoing(chat, MessageKind.INVOICE, text, link.id, (marker,))


async def offer_renewal(tx: Tx, voices: Voices, link: Link, now: datetime, expired: bool) -> None:
    """The merchants are offered a new link: a button on Telegram, a reply on WhatsApp."""
    messages = []
    for sub in await tx.subscriptions.for_link(link.id):
        if sub.role is not Role.MERCHANT:
            continue
        voice = await voices.of(tx, sub.chat)
        words = render_follow_up.expired_offer if expired else render_follow_up.expiry_warning
        text = words(voice, link)
        buttons: tuple[Button, ...] = ()
        if sub.chat.channel == "whatsapp":
            text += " " + render_follow_up.renew_by_reply(voice, link.order_id)
        else:
            text += " " + render_follow_up.renew_offer_on_telegram(voice)
            label = render_follow_up.new_link_label(voice)
            buttons = (Button(label, action=RENEW_ACTION + link.id),)
        messages.append(Outgoing(sub.chat, MessageKind.TEXT, text, link.id, buttons))
    await tx.outbox.enqueue(messages, now)


def _merchant_report(
    voice: Voice,
    link: Link,
    customers: Sequence[ChatRef],
    reached: Sequence[ChatRef],
    unreached: Sequence[ChatRef],
    failed: bool,
) -> str:
    if not customers:
        if failed:
            return render_follow_up.forward_try_again(voice, link)
        return render_follow_up.forward_reminder(voice, link)
    lines = []
    if reached:
        names = [render.customer_name(chat) for chat in reached]
        if failed:
            lines.append(render_follow_up.customers_asked_to_retry(voice, link, names))
        else:
            lines.append(render_follow_up.customers_reminded(voice, link, names))
    lines += [
        render_follow_up.customer_not_reminded(voice, link, render.customer_name(chat))
        for chat in unreached
    ]
    return "\n".join(lines)
