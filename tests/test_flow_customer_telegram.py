"""The customer on Telegram: a share link from the merchant's invoice, progress, receipt."""

from __future__ import annotations

import re

from tests.flow_events import event
from tests.harness import MERCHANT, World
from tests.qr import decode_qr

CUSTOMER = 7777  # a Telegram user who is no merchant
SHARE = re.compile(r"For the customer on Telegram: https://t\.me/(\w+)\?start=([\w-]+)")


async def shared_code(world: World) -> str:
    world.say("/invoice 1001")
    invoice = await world.wait_message("For the customer on Telegram")
    found = SHARE.search(invoice.caption or "")
    assert found is not None
    assert found[1] == world.paybot.telegram.app.bot.username  # type: ignore[union-attr]
    return found[2]


async def test_the_customer_opens_the_share_link_and_sees_the_invoice(world: World) -> None:
    code = await shared_code(world)
    link = await world.link_for("1001")
    assert code not in link.token and link.token not in code  # not the payment token

    world.say(f"/start {code}", user_id=CUSTOMER)
    invoice = await world.wait_message("Order 1001", chat_id=CUSTOMER)
    await world.wait_message("the customer opened the payment link")

    assert invoice.photo is not None and decode_qr(invoice.photo) == (link.url, "QRCode")
    assert "Total: GH₵75.00" in (invoice.caption or "")
    assert "For the customer" not in (invoice.caption or "")
    buttons = invoice.reply_markup["inline_keyboard"][0]  # type: ignore[index]
    assert buttons == [{"text": "Pay now", "url": link.url}]


async def test_the_customer_hears_progress_and_gets_a_receipt(world: World) -> None:
    code = await shared_code(world)
    world.say(f"/start {code}", user_id=CUSTOMER)
    await world.wait_message("Order 1001", chat_id=CUSTOMER)
    link = await world.link_for("1001")

    world.sandbox.set_status(link.token, "processing")
    await world.wait_message(
        "Your payment to Kofi's Kitchen for order 1001: Processing", chat_id=CUSTOMER
    )
    await world.post_event(event("payment.succeeded", token=link.token))
    receipt = await world.wait_message("thank you", chat_id=CUSTOMER)
    await world.wait_idle()

    text = receipt.text or ""
    for words in (
        "Confirmed",
        "Kofi's Kitchen",
        "Order 1001",
        "Total paid: GH₵75.00",
        "Reference: MOMO-77812",
    ):
        assert words in text, words
    assert world.count("Confirmed", CUSTOMER) == 1
    assert world.count("Confirmed") == 1


async def test_opening_twice_tells_the_merchant_once(world: World) -> None:
    code = await shared_code(world)
    for _ in range(2):
        world.say(f"/start {code}", user_id=CUSTOMER)
    await world.fake.wait_for(lambda: len(world.photos(CUSTOMER)) == 2)
    await world.wait_idle()
    assert world.count("the customer opened the payment link") == 1


async def test_a_code_that_is_no_link_gets_one_clear_answer(world: World) -> None:
    world.say("/start notacodeofanylink0000", user_id=CUSTOMER)
    await world.wait_message("not valid any more", chat_id=CUSTOMER)
    world.say("/start", user_id=CUSTOMER)
    await world.wait_message("Type status", chat_id=CUSTOMER)
    assert world.sandbox.requests == []


async def test_a_customer_asks_for_status(world: World) -> None:
    code = await shared_code(world)
    world.say(f"/start {code}", user_id=CUSTOMER)
    await world.wait_message("Order 1001", chat_id=CUSTOMER)
    world.say("/status", user_id=CUSTOMER)
    answer = await world.wait_message("Your payments", chat_id=CUSTOMER)
    assert "Order 1001 from Kofi's Kitchen: GH₵75.00, Pending" in (answer.text or "")
    assert MERCHANT != CUSTOMER
