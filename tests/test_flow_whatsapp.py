"""WhatsApp through Twilio: merchants' commands, customers' copies, receipts, the 24 h window.

The real bot against a fake Twilio on loopback that signs its posts with twilio's
own RequestValidator, as Twilio does, over PAYBOT_PUBLIC_URL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.models import ChatRef, MessageKind
from tests.flow_events import event
from tests.harness import PUBLIC_URL, WA_MERCHANT, World, running_world
from tests.qr import decode_qr

CUSTOMER = "+233241234567"
STRANGER = "+233209999999"


@pytest.fixture
async def wa(tmp_path: Path, database: str) -> AsyncIterator[World]:
    """paybot with WhatsApp on, on each store in turn."""
    async with running_world(tmp_path, whatsapp=True, database=database) as world:
        yield world


def local(world: World, public: str) -> str:
    """A URL paybot gave out under PAYBOT_PUBLIC_URL, as reached on loopback."""
    assert public.startswith(PUBLIC_URL)
    return world.local_url + public.removeprefix(PUBLIC_URL)


async def test_invoice_is_one_message_with_the_qr_as_media(wa: World) -> None:
    assert (await wa.whatsapp(WA_MERCHANT, "invoice 1001")).status_code == 200
    message = await wa.wa_message(WA_MERCHANT, "Order 1001")
    link = await wa.link_for("1001")

    assert message.body is not None and link.url in message.body
    assert "Total: GH₵75.00" in message.body and "Jollof rice" in message.body
    assert message.media_urls == [f"{PUBLIC_URL}/qr/{link.id}.png"]
    assert message.status_callback == f"{PUBLIC_URL}/webhooks/twilio/status"
    image = await wa.http.get(local(wa, message.media_urls[0]))
    assert image.headers["content-type"] == "image/png"
    assert decode_qr(image.content) == (link.url, "QRCode")


@pytest.mark.parametrize("text", ["invoice 1001", "/invoice 1001", "INVOICE 1001", "Invoice 1001"])
async def test_commands_with_or_without_the_slash_in_any_case(wa: World, text: str) -> None:
    await wa.whatsapp(WA_MERCHANT, text)
    await wa.wa_message(WA_MERCHANT, "Pay here")


async def test_a_stranger_is_refused_and_nothing_reaches_cimplify(wa: World) -> None:
    await wa.whatsapp(STRANGER, "invoice 1001")
    refusal = await wa.wa_message(STRANGER, "not authorized")
    assert STRANGER in (refusal.body or "") and "WHATSAPP_MERCHANTS" in (refusal.body or "")
    assert wa.sandbox.requests == []


async def test_forged_unsigned_and_wrongly_addressed_posts_get_403(wa: World) -> None:
    assert wa.twilio is not None
    forged = await wa.whatsapp(WA_MERCHANT, "invoice 1001", signature="bm90IGEgc2lnbmF0dXJl")
    unsigned = await wa.whatsapp(WA_MERCHANT, "invoice 1001", signature="")
    # Signed over the URL the server sees, not PAYBOT_PUBLIC_URL: refused.
    seen_url = await wa.twilio.send_inbound(wa.local_url, WA_MERCHANT, "invoice 1001")
    assert [r.status_code for r in (forged, unsigned, seen_url)] == [403, 403, 403]
    await wa.whatsapp(WA_MERCHANT, "help")  # a real one, to know the others were not handled
    await wa.wa_message(WA_MERCHANT, "/invoice <order_id>")
    await wa.wait_idle()
    assert wa.twilio.to(WA_MERCHANT)[0].body is not None
    assert len(wa.twilio.to(WA_MERCHANT)) == 1
    assert wa.sandbox.requests == []


async def test_a_repeated_message_sid_is_handled_once(wa: World) -> None:
    assert wa.twilio is not None
    for _ in range(3):
        response = await wa.whatsapp(WA_MERCHANT, "help", message_sid="SM" + "a" * 32)
        assert response.status_code == 200
    await wa.wa_message(WA_MERCHANT, "/invoice <order_id>")
    await wa.wait_idle()
    assert len(wa.twilio.to(WA_MERCHANT)) == 1


async def test_a_customer_who_never_wrote_cannot_be_reached_without_a_template(
    wa: World,
) -> None:
    assert wa.twilio is not None
    await wa.whatsapp(WA_MERCHANT, f"invoice 1001 {CUSTOMER}")
    notice = await wa.wa_message(WA_MERCHANT, "could not reach the customer")
    link = await wa.link_for("1001")
    assert link.url in (notice.body or "") and "write" in (notice.body or "")
    assert wa.twilio.to(CUSTOMER) == []


async def test_the_customer_gets_the_link_progress_and_a_receipt(wa: World) -> None:
    await wa.whatsapp(CUSTOMER, "hello")  # opens WhatsApp's 24-hour window
    await wa.wa_message(CUSTOMER, "Type status")
    await wa.whatsapp(WA_MERCHANT, "invoice 1001 024 123 4567")  # read in WHATSAPP_DEFAULT_REGION
    copy = await wa.wa_message(CUSTOMER, "Order 1001")
    await wa.wa_message(WA_MERCHANT, "on its way to the customer +233241234567")
    link = await wa.link_for("1001")
    assert wa.twilio is not None and copy.media_urls == [f"{PUBLIC_URL}/qr/{link.id}.png"]

    await wa.twilio.report_status(copy, "delivered", deliver_to=wa.local_url)
    await wa.wa_message(WA_MERCHANT, "has received the payment link")
    await wa.whatsapp(WA_MERCHANT, "status 1001")
    await wa.wa_message(WA_MERCHANT, f"Customer {CUSTOMER}: link delivered")

    for status, words in (
        ("processing", "Processing"),
        ("awaiting_authorization", "Awaiting authorization"),
        ("paid", "Paid"),
    ):
        wa.sandbox.set_status(link.token, status)
        await wa.wa_message(CUSTOMER, f"for order 1001: {words}")
    await wa.post_event(event("payment.succeeded", token=link.token))
    receipt = await wa.wa_message(CUSTOMER, "thank you")
    assert "Total paid: GH₵75.00" in (receipt.body or "")

    await wa.whatsapp(CUSTOMER, "status")
    answer = await wa.wa_message(CUSTOMER, "Your payments")
    assert "Confirmed" in (answer.body or "")
    await wa.wait_idle()
    assert wa.wa_count(CUSTOMER, "Confirmed") == 2  # the receipt, and the status answer
    assert wa.wa_count(WA_MERCHANT, "Confirmed") == 1


async def test_a_permanent_twilio_error_tells_the_merchant(wa: World) -> None:
    assert wa.twilio is not None
    await wa.whatsapp(CUSTOMER, "hello")
    await wa.wa_message(CUSTOMER, "Type status")
    wa.twilio.reject(CUSTOMER, code=21610, message="Attempt to send to unsubscribed recipient")
    await wa.whatsapp(WA_MERCHANT, f"invoice 1001 {CUSTOMER}")
    notice = await wa.wa_message(WA_MERCHANT, "could not reach the customer")
    assert "21610" in (notice.body or "")


async def test_a_transient_twilio_error_is_retried_and_sent_once(wa: World) -> None:
    assert wa.twilio is not None
    wa.twilio.fail_next(status=503, code=20503, message="Service unavailable")
    await wa.whatsapp(WA_MERCHANT, "invoice 1001")
    await wa.wa_message(WA_MERCHANT, "Pay here", timeout=8)
    await wa.wait_idle()
    assert wa.wa_count(WA_MERCHANT, "Pay here") == 1


async def test_a_bad_number_gets_one_clear_answer_and_no_request(wa: World) -> None:
    await wa.whatsapp(WA_MERCHANT, "invoice 1001 +99912")
    await wa.wa_message(WA_MERCHANT, "I cannot send to")
    await wa.whatsapp(WA_MERCHANT, "invoice 10/01 +233241234567")
    await wa.wa_message(WA_MERCHANT, "not an order id")
    assert wa.sandbox.requests == []


async def test_a_telegram_merchant_can_send_the_customer_their_copy(wa: World) -> None:
    await wa.whatsapp(CUSTOMER, "hi")
    await wa.wa_message(CUSTOMER, "Type status")
    wa.say(f"/invoice 1001 {CUSTOMER}")
    await wa.wait_message("on its way to the customer")
    await wa.wa_message(CUSTOMER, "Order 1001")


async def test_templates_reach_a_customer_outside_the_window(tmp_path: Path, database: str) -> None:
    templates = {
        "TWILIO_INVOICE_CONTENT_SID": "HX" + "1" * 32,
        "TWILIO_STATUS_CONTENT_SID": "HX" + "2" * 32,
    }
    async with running_world(tmp_path, whatsapp=True, env=templates, database=database) as wa:
        assert wa.twilio is not None
        await wa.whatsapp(WA_MERCHANT, f"invoice 1001 {CUSTOMER}")
        twilio = wa.twilio
        invoice = await twilio.wait_for(lambda: next(iter(twilio.to(CUSTOMER)), None))
        link = await wa.link_for("1001")
        assert invoice.content_sid == templates["TWILIO_INVOICE_CONTENT_SID"]
        assert invoice.content_variables == {
            "1": "Kofi's Kitchen",
            "2": "1001",
            "3": "GH₵75.00",
            "4": link.url,
        }
        wa.sandbox.set_status(link.token, "processing")
        update = await twilio.wait_for(lambda: next((m for m in twilio.to(CUSTOMER)[1:]), None))
        assert update.content_sid == templates["TWILIO_STATUS_CONTENT_SID"]
        assert update.content_variables == {"1": "1001", "2": "Processing"}


async def test_whatsapp_routes_are_off_without_twilio(world: World) -> None:
    response = await world.http.post(f"{world.local_url}/webhooks/twilio", data={"Body": "hi"})
    assert response.status_code == 404
    world.say("/invoice 1001 +233241234567")
    await world.wait_message("cannot reach customers on Whatsapp")
    assert world.sandbox.requests == []


async def test_a_forged_delivery_receipt_is_refused_and_changes_nothing(wa: World) -> None:
    await wa.whatsapp(CUSTOMER, "hello")
    await wa.wa_message(CUSTOMER, "Type status")
    await wa.whatsapp(WA_MERCHANT, f"invoice 1001 {CUSTOMER}")
    copy = await wa.wa_message(CUSTOMER, "Order 1001")
    form = {"MessageSid": copy.sid, "MessageStatus": "delivered"}
    url = f"{wa.local_url}/webhooks/twilio/status"

    unsigned = await wa.http.post(url, data=form)
    forged = await wa.http.post(url, data=form, headers={"X-Twilio-Signature": "Zm9yZ2Vk"})
    assert (unsigned.status_code, forged.status_code) == (403, 403)
    await wa.wait_idle()
    assert wa.wa_count(WA_MERCHANT, "has received the payment link") == 0
    link = await wa.link_for("1001")
    async with wa.paybot.store.transaction() as tx:
        status = await tx.outbox.delivery_status(
            link.id, ChatRef("whatsapp", CUSTOMER), MessageKind.INVOICE
        )
    assert status is None
