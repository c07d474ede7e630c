"""`/invoice`, `/status`, `/open`, `/help` and refusals, through real PTB and the sandbox."""

from __future__ import annotations

import re

from tests.harness import MERCHANT, OTHER_MERCHANT, STRANGER, World, wait_until
from tests.qr import decode_qr


def link_requests(world: World) -> list[tuple[str, str]]:
    return [r for r in world.sandbox.requests if r[1].endswith("/payment-link")]


async def test_invoice_is_one_photo_with_everything_a_customer_needs(world: World) -> None:
    world.say("/invoice 1001")
    message = await world.wait_message("Order 1001")
    link = await world.link_for("1001")

    assert message.photo is not None
    assert decode_qr(message.photo) == (link.url, "QRCode")  # exactly the link; never Micro QR
    caption = message.caption or ""
    for words in (
        "Kofi's Kitchen",
        "Order 1001",
        "2 × Jollof rice",
        "1 × Sobolo",
        "Total: GH₵75.00",
        link.url,
        "expires in",
        "Status: Pending",
    ):
        assert words in caption, words
    buttons = message.reply_markup["inline_keyboard"][0]  # type: ignore[index]
    assert buttons[0]["url"] == link.url
    assert buttons[1]["callback_data"] == f"refresh:{link.id}"


async def test_a_second_invoice_for_a_live_link_returns_the_same_link(world: World) -> None:
    world.say("/invoice 1001")
    first = await world.wait_message("Order 1001")
    world.say("/invoice 1001", user_id=OTHER_MERCHANT)
    second = await world.wait_message("Order 1001", chat_id=OTHER_MERCHANT)
    world.say("/invoice 1001")
    await world.fake.wait_for(lambda: len(world.photos()) == 2)

    url = re.compile(r"Pay here: (\S+)")
    assert url.findall(first.caption or "") == url.findall(second.caption or "")
    assert len(link_requests(world)) == 1


async def test_a_stranger_is_refused_and_nothing_reaches_cimplify(world: World) -> None:
    for command in ("/invoice 1001", "/status 1001", "/open"):
        world.say(command, user_id=STRANGER)
    await world.fake.wait_for(lambda: world.count("not authorized", STRANGER) == 1)
    await wait_until(lambda: unfinished(world), lambda n: n == 0)  # all three handled
    await world.wait_idle()

    assert world.count("not authorized", STRANGER) == 1  # one answer a minute to a stranger
    assert world.sandbox.requests == []
    assert str(STRANGER) in world.texts(STRANGER)[0]


async def unfinished(world: World) -> int:
    async with world.paybot.store.transaction() as tx:
        return await tx.inbox.unfinished_count()


async def test_malformed_order_ids_get_one_clear_answer_and_no_request(world: World) -> None:
    for text in ("/invoice ../../admin", "/invoice 1001;DROP", "/invoice " + "9" * 65):
        world.say(text)
    world.say("/invoice")
    await world.fake.wait_for(lambda: len(world.texts()) == 4)

    texts = world.texts()
    assert sum("not an order id" in t for t in texts) == 3
    assert "Type /invoice <order_id>" in texts[3]
    assert world.sandbox.requests == []


async def test_unknown_cancelled_and_paid_orders_say_what_is_wrong(world: World) -> None:
    world.say("/invoice 9999")
    await world.wait_message("Cimplify does not know order 9999")
    world.say("/invoice 1005")
    await world.wait_message("cannot take payment")
    world.say("/invoice 1004")
    await world.wait_message("Already paid")

    world.say("/invoice 1001")  # and the bot goes on serving
    await world.wait_message("Order 1001")


async def test_help_start_and_unknown_commands(world: World) -> None:
    world.say("/help")
    await world.wait_message("/invoice <order_id>")
    world.say("/start", user_id=STRANGER)
    await world.wait_message("not authorized", chat_id=STRANGER)
    world.say("/frobnicate")
    await world.wait_message("Type /help")


async def test_status_and_open(world: World) -> None:
    world.say("/status 1001")
    await world.wait_message("paybot has made no payment link for order 1001")
    world.say("/invoice 1001")
    await world.wait_message("Pay here")
    world.say("/status 1001")
    status = await world.wait_message("Order 1001 (Kofi's Kitchen): Pending")
    world.say("/open")
    listing = await world.wait_message("Open payment links")

    assert "GH₵75.00" in (status.text or "")
    assert "1001 Kofi's Kitchen" in (listing.text or "")


async def test_refresh_button_answers_with_the_current_status(world: World) -> None:
    world.say("/invoice 1001")
    message = await world.wait_message("Pay here")
    link = await world.link_for("1001")
    world.sandbox.set_status(link.token, "processing")
    world.fake.press_button(f"refresh:{link.id}", message_id=message.message_id)

    answer = await world.fake.wait_for(
        lambda: next((c for c in world.fake.calls if c.method == "answerCallbackQuery"), None)
    )
    assert "Processing" in answer.params["text"]


async def test_an_order_already_paid_on_a_known_link_says_already_paid(world: World) -> None:
    world.say("/invoice 1001")
    await world.wait_message("Pay here")
    link = await world.link_for("1001")
    await world.sandbox.pay("1001")
    await world.wait_message("Confirmed")
    world.say("/invoice 1001")
    await world.wait_message("Already paid")
    assert len(link_requests(world)) == 1
    assert link.order_id == "1001"


async def test_merchant_id_must_be_listed_exactly(world: World) -> None:
    world.say("/invoice 1001", user_id=MERCHANT * 10)
    await world.wait_message("not authorized", chat_id=MERCHANT * 10)
    assert world.sandbox.requests == []


async def test_links_on_local_addresses_get_no_url_button(world: World) -> None:
    # Telegram refuses a URL button to a loopback address and with it the photo.
    world.sandbox.base_url = "http://127.0.0.1:9"
    world.say("/invoice 1001")
    message = await world.wait_message("Pay here: http://127.0.0.1:9/plt_")
    buttons = message.reply_markup["inline_keyboard"][0]  # type: ignore[index]
    assert [b["text"] for b in buttons] == ["Refresh status"]


async def test_a_second_word_that_is_no_number_gets_the_usage_line_and_the_invoice(
    world: World,
) -> None:
    world.say("/invoice 1001 tomorrow")
    await world.wait_message("Pay here")
    await world.wait_message("That is not a phone number, so only you got the link.")
