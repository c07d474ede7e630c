"""`/cancel <order_id>` (CONTRACT §1, §7): Cimplify's cancel, then `Cancelled` to every chat
of the link, its invoice caption edited and tracking stopped; each refusal answered once,
and nothing repeated upstream. Real PTB, fake Twilio, the sandbox as Cimplify."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandbox.records import OrderState
from tests.flow_events import event
from tests.harness import OTHER_MERCHANT, WA_MERCHANT, World, running_world

CUSTOMER = "+233241234567"


@pytest.fixture
async def wa(tmp_path: Path, database: str) -> AsyncIterator[World]:
    """paybot with Telegram and WhatsApp on, on each store in turn."""
    async with running_world(tmp_path, whatsapp=True, database=database) as world:
        yield world


def cancel_requests(world: World) -> int:
    return sum(path.endswith("/cancel") for _, path in world.sandbox.requests)


async def test_cancel_tells_every_chat_edits_the_invoice_and_stops_tracking(wa: World) -> None:
    await wa.whatsapp(CUSTOMER, "hello")  # WhatsApp's 24-hour window
    await wa.wa_message(CUSTOMER, "Type status")
    wa.say(f"/invoice 1001 {CUSTOMER}")
    invoice = await wa.wait_message("Order 1001")
    await wa.wa_message(CUSTOMER, "Order 1001")
    wa.say("/invoice 1001", user_id=OTHER_MERCHANT)
    await wa.wait_message("Order 1001", chat_id=OTHER_MERCHANT)

    wa.say("/cancel 1001")
    told = await wa.wait_message("Order 1001 (Kofi's Kitchen): Cancelled")
    await wa.wait_message("Order 1001 (Kofi's Kitchen): Cancelled", chat_id=OTHER_MERCHANT)
    customer = await wa.wa_message(CUSTOMER, "for order 1001: Cancelled")
    await wa.fake.wait_for(lambda: any("Status: Cancelled" in e for e in invoice.edits))
    await wa.wait_idle()

    link = await wa.link_for("1001")
    assert link.status.value == "cancelled" and link.next_poll_at is None  # no more polls
    assert wa.sandbox.ledger.status(wa.sandbox.ledger.link(link.token)).value == "cancelled"
    assert cancel_requests(wa) == 1
    assert "nothing to pay" in (customer.body or "")
    assert wa.count("Cancelled") == 1  # the status change, no second answer for the merchant
    assert told.text is not None and "the order was cancelled" in told.text


async def test_a_second_cancel_is_answered_and_not_sent_upstream(wa: World) -> None:
    wa.say("/invoice 1001")
    await wa.wait_message("Order 1001")
    wa.say("/cancel 1001")
    await wa.wait_message("Cancelled")
    wa.say("/cancel 1001")
    await wa.wait_message("Order 1001 is already cancelled")
    await wa.wait_idle()

    assert cancel_requests(wa) == 1
    assert wa.count("Cancelled") == 1


async def test_a_paid_order_cannot_be_cancelled(wa: World) -> None:
    wa.say("/invoice 1001")
    await wa.wait_message("Order 1001")
    link = await wa.link_for("1001")
    await wa.post_event(event("payment.succeeded", token=link.token))
    await wa.wait_message("Confirmed")
    wa.say("/cancel 1001")
    await wa.wait_message("Order 1001 is already paid, so it cannot be cancelled")

    assert cancel_requests(wa) == 0  # the store knew: Cimplify was not asked


async def test_an_order_paid_before_paybot_heard_is_refused_by_cimplify(wa: World) -> None:
    wa.say("/invoice 1001")
    await wa.wait_message("Order 1001")
    wa.sandbox.ledger.order("1001").state = OrderState.PAID  # paid, not yet seen by paybot
    wa.say("/cancel 1001")
    await wa.wait_message("Order 1001 is already paid, so it cannot be cancelled")

    assert cancel_requests(wa) == 1  # Cimplify's 409
    assert (await wa.link_for("1001")).status.value != "cancelled"


async def test_an_unknown_order_gets_one_clear_answer(wa: World) -> None:
    wa.say("/cancel 9999")
    await wa.wait_message("no payment link for order 9999")
    wa.say("/cancel 10/01")
    await wa.wait_message("not an order id")
    wa.say("/cancel")
    await wa.wait_message("Type /cancel <order_id>")

    assert wa.sandbox.requests == []


async def test_cimplify_down_changes_nothing_and_says_so(wa: World) -> None:
    wa.say("/invoice 1001")
    await wa.wait_message("Order 1001")
    wa.sandbox.fail_next("/cancel", status=503, count=1000)
    wa.say("/cancel 1001")
    await wa.wait_message("order 1001 is NOT cancelled", timeout=10)
    await wa.wait_idle()

    link = await wa.link_for("1001")
    assert link.status.value == "pending" and link.next_poll_at is not None  # still tracked
    assert wa.sandbox.ledger.order("1001").state is OrderState.OPEN
    assert wa.count("Cancelled") == 0


async def test_whatsapp_cancel_without_the_slash(wa: World) -> None:
    await wa.whatsapp(WA_MERCHANT, "invoice 1001")
    await wa.wa_message(WA_MERCHANT, "Order 1001")
    await wa.whatsapp(WA_MERCHANT, "cancel 1001")
    await wa.wa_message(WA_MERCHANT, "Order 1001 (Kofi's Kitchen): Cancelled")

    assert cancel_requests(wa) == 1
    assert (await wa.link_for("1001")).status.value == "cancelled"


async def test_an_owner_who_holds_no_copy_is_answered_directly(wa: World) -> None:
    wa.say("/invoice 1001")
    await wa.wait_message("Order 1001")
    wa.say("/cancel 1001", user_id=OTHER_MERCHANT)  # an owner, not subscribed to the link
    await wa.wait_message("Order 1001 is cancelled", chat_id=OTHER_MERCHANT)
    await wa.wait_message("Order 1001 (Kofi's Kitchen): Cancelled")  # the issuer hears it
