"""`/pay` in the demo: the customer paying, played by the sandbox, answered in chat words."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sandbox.ledger import PaymentInProgress
from sandbox.records import OrderState

if TYPE_CHECKING:
    from paybot.demo import Demo

USAGE = "Type /pay <order_id>, or /pay <order_id> failed for a payment that fails."


async def pay_command(demo: Demo, args: list[str], step_delay: float, wait: bool) -> None:
    sandbox = demo.paybot.sandbox
    if sandbox is None or not args or args[1:] not in ([], ["failed"]):
        demo.note(USAGE)
        return
    order_id, outcome = args[0], "failed" if args[1:] == ["failed"] else "paid"
    refusal = unpayable(demo, order_id)
    if refusal is not None:
        demo.note(refusal)
        return
    demo.note(f"The customer opens the link for order {order_id} and pays by mobile money…")
    try:
        if wait:
            await sandbox.pay(order_id, outcome=outcome, step_delay=step_delay)
        else:
            sandbox.pay_later(order_id, outcome=outcome, step_delay=step_delay)
    except PaymentInProgress:
        demo.note(f"A payment for order {order_id} is already under way: watch this chat.")


def unpayable(demo: Demo, order_id: str) -> str | None:
    """Why the customer cannot pay `order_id` now, in chat words; None when they can."""
    sandbox = demo.paybot.sandbox
    assert sandbox is not None
    order = sandbox.ledger.orders.get(order_id)
    if order is None:
        known = ", ".join(sandbox.ledger.orders)
        return f"There is no order {order_id!r} to pay. The sandbox knows {known}."
    if order.state is OrderState.PAID:
        return f"Order {order_id} is already paid: there is nothing left to pay."
    if order.state is OrderState.CANCELLED:
        return f"Order {order_id} is cancelled: it cannot be paid."
    if sandbox.ledger.live_link(order_id) is None:
        return f"The customer has no link for order {order_id} yet: type /invoice {order_id} first."
    return None
