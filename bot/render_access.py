"""What chats are told about roles and /cancel (CONTRACT §7), in the chat's voice.

A refusal for another merchant's order names the order the sender typed and nothing
of the order itself: no amount, no customer, no business.
"""

from __future__ import annotations

from bot.i18n import Voice


def not_yours(voice: Voice, order_id: str) -> str:
    return voice.t(
        "Order {order} was issued by another merchant. A cashier sees and acts only on "
        "the links they issued; ask an owner.",
        order=order_id,
    )


def held_by_another(voice: Voice, order_id: str) -> str:
    return voice.t(
        "Order {order} already has a live payment link, issued by another merchant, so "
        "you were not given it. Ask them, or an owner, to share it.",
        order=order_id,
    )


def cancel_usage(voice: Voice) -> str:
    return voice.t("Type /cancel <order_id>, for example /cancel 1001.")


def cancelled(voice: Voice, order_id: str) -> str:
    return voice.t(
        "Order {order} is cancelled: its payment link takes no payment any more.",
        order=order_id,
    )


def already_cancelled(voice: Voice, order_id: str) -> str:
    return voice.t(
        "Order {order} is already cancelled. There is nothing more to do.", order=order_id
    )


def paid_cannot_cancel(voice: Voice, order_id: str) -> str:
    return voice.t("Order {order} is already paid, so it cannot be cancelled.", order=order_id)


def nothing_to_cancel(voice: Voice, order_id: str) -> str:
    return voice.t(
        "paybot has made no payment link for order {order}, so there is nothing to cancel. "
        "Check the order id.",
        order=order_id,
    )


def unknown_to_cimplify(voice: Voice, order_id: str) -> str:
    return voice.t(
        "Cimplify does not know order {order}, so nothing was cancelled. Check the order id.",
        order=order_id,
    )


def cancel_unavailable(voice: Voice, order_id: str) -> str:
    return voice.t(
        "Cimplify is not answering right now, so order {order} is NOT cancelled. "
        "Type /cancel {order} again in a minute.",
        order=order_id,
    )
