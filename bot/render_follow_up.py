"""Every word of reminders, the failed payment's "try again", expiry warnings and renewals.

Pure functions of a chat's voice and the values they carry (bot/i18n.py): each
sentence's English text is its message id, with `{names}` for what it carries.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.i18n import Voice
from bot.models import Link
from bot.render import plain_name, status_name


def _title(link: Link) -> dict[str, str]:
    return {"order": link.order_id, "business": plain_name(link.business_name)}


def reminder(voice: Voice, link: Link) -> str:
    """A customer's reminder to pay, with the link."""
    return voice.t(
        "A reminder from {business}: order {order}, {total}, is not paid yet. Pay here: {url}",
        total=voice.money(link.total),
        url=link.url,
        **_title(link),
    )


def try_again(voice: Voice, link: Link) -> str:
    """A customer's word after a failed payment, with the link."""
    return voice.t(
        "Your payment to {business} for order {order} did not go through. "
        "Please try again here: {url}",
        url=link.url,
        **_title(link),
    )


def pay_now_label(voice: Voice) -> str:
    return voice.t("Pay now")


def customers_reminded(voice: Voice, link: Link, names: Sequence[str]) -> str:
    """The merchant hears who was reminded."""
    return voice.tn(
        "Order {order}: reminded the customer {names} to pay.",
        "Order {order}: reminded {count} customers to pay: {names}.",
        len(names),
        order=link.order_id,
        names=", ".join(names),
    )


def customers_asked_to_retry(voice: Voice, link: Link, names: Sequence[str]) -> str:
    return voice.tn(
        "Order {order}: the payment failed; asked the customer {names} to try again.",
        "Order {order}: the payment failed; asked {count} customers to try again: {names}.",
        len(names),
        order=link.order_id,
        names=", ".join(names),
    )


def customer_not_reminded(voice: Voice, link: Link, name: str) -> str:
    """A WhatsApp customer outside the 24-hour window, and no reminder template set up."""
    return voice.t(
        "Order {order}: I could not remind the customer {name}: WhatsApp lets a business "
        "write first only with an approved template, and none is set up for reminders. "
        "Forward them the link yourself: {url}",
        order=link.order_id,
        name=name,
        url=link.url,
    )


def forward_reminder(voice: Voice, link: Link) -> str:
    """A link with no customer chat: the merchant is reminded, with the link to forward."""
    return voice.t(
        "Order {order} ({business}), {total}, is not paid yet. paybot has no chat with the "
        "customer: forward them the link as a reminder: {url}",
        total=voice.money(link.total),
        url=link.url,
        **_title(link),
    )


def forward_try_again(voice: Voice, link: Link) -> str:
    return voice.t(
        "Order {order} ({business}): the payment did not go through. paybot has no chat "
        "with the customer: forward them the link to try again: {url}",
        url=link.url,
        **_title(link),
    )


def expiry_warning(voice: Voice, link: Link) -> str:
    return voice.t(
        "Order {order} ({business}): the payment link expires on {when} and is not paid yet.",
        when=voice.moment(link.expires_at),
        **_title(link),
    )


def expired_offer(voice: Voice, link: Link) -> str:
    return voice.t(
        "Order {order} ({business}): the payment link expired before it was paid.",
        **_title(link),
    )


def new_link_label(voice: Voice) -> str:
    """The renewal button's text: CONTRACT §7 wants `New link` in it."""
    return voice.t("New link")


def renew_by_reply(voice: Voice, order_id: str) -> str:
    """WhatsApp has no inline buttons: the merchant replies instead."""
    return voice.t("Reply renew {order} for a new link.", order=order_id)


def renew_offer_on_telegram(voice: Voice) -> str:
    return voice.t("Press New link for a new one.")


def still_live(voice: Voice, link: Link) -> str:
    return voice.t(
        "Order {order}: its payment link is still live, so there is no new one: {url} "
        "Type /remind {order} to remind the customer.",
        order=link.order_id,
        url=link.url,
    )


def no_live_link(voice: Voice, link: Link) -> str:
    return voice.t(
        "Order {order} has no live payment link to remind about (it is {status}). "
        "Type renew {order} for a new one.",
        order=link.order_id,
        status=status_name(link.status, voice),
    )


def new_link_coming(voice: Voice) -> str:
    """The answer to pressing New link."""
    return voice.t("A new payment link is on its way.")


def remind_usage(voice: Voice) -> str:
    return voice.t("Type /remind <order_id>, for example /remind 1001.")


def renew_usage(voice: Voice) -> str:
    return voice.t("Type /renew <order_id>, for example /renew 1001.")


def not_this_chats(voice: Voice) -> str:
    return voice.t("That link is not one of this chat's.")
