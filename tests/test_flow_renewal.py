"""Renewal: PAYBOT_EXPIRY_WARNING before an unpaid link expires, and again at its expiry,
the merchant is offered a new link (the New link button on Telegram, `renew <order>` on
WhatsApp); renewing makes a new link in Cimplify and sends it to every chat of the old one."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from bot.models import Link
from tests.clocks import MovableClock
from tests.fakes.bot_api import SentMessage
from tests.flow_events import event
from tests.follow_up_support import clocked_world, move_on
from tests.harness import wait_until
from tests.qr import decode_qr
from tests.test_flow_customer_telegram import CUSTOMER
from tests.test_flow_reminders import WA_CUSTOMER, WA_MERCHANT, telegram_customer

TWO_HOURS = timedelta(hours=2)
MINUTE = timedelta(minutes=1)


def new_link_button(message: SentMessage) -> dict[str, str]:
    assert message.reply_markup is not None
    [button] = message.reply_markup["inline_keyboard"][0]
    assert "New link" in button["text"]
    return dict(button)


async def test_the_warning_and_the_expiry_offer_a_new_link_that_reaches_the_customer(
    tmp_path: Path, database: str
) -> None:
    clock = MovableClock()
    env = {"PAYBOT_REMINDERS": "off"}
    async with clocked_world(tmp_path, database, clock, TWO_HOURS, env=env) as world:
        await telegram_customer(world)
        old = await world.link_for("1001")

        await move_on(world, clock, timedelta(minutes=61))
        warning = await world.wait_message("the payment link expires on")
        assert new_link_button(warning)["callback_data"] == f"renew:{old.id}"
        assert world.count("expires on", CUSTOMER) == 0  # the merchant's business only

        world.sandbox.expire(old.token)  # Cimplify's own clock agrees
        await move_on(world, clock, TWO_HOURS)
        offer = await world.wait_message("expired before it was paid")
        button = new_link_button(offer)
        await world.restart()
        await move_on(world, clock, MINUTE)
        assert world.count("expired before it was paid") == 1  # once, restart or not

        world.fake.press_button(button["callback_data"], message_id=offer.message_id)
        answer = await world.fake.wait_for(
            lambda: next((c for c in world.fake.calls if c.method == "answerCallbackQuery"), None)
        )
        assert "new payment link is on its way" in answer.params["text"]

        async def renewed() -> Link | None:
            link = await world.link_for("1001")
            return None if link.id == old.id else link

        link = await wait_until(renewed, lambda found: found is not None)
        await world.fake.wait_for(lambda: len(world.photos(CUSTOMER)) == 2)
        copy = world.photos(CUSTOMER)[-1]
        assert copy.photo is not None and decode_qr(copy.photo)[0] == link.url
        assert link.url != old.url
        await world.fake.wait_for(lambda: len(world.photos()) == 2)  # the merchant's invoice
        assert link.url in (world.photos()[-1].caption or "")


async def test_renewing_a_live_or_paid_link_answers_instead(tmp_path: Path, database: str) -> None:
    clock = MovableClock()
    async with clocked_world(tmp_path, database, clock, env={"PAYBOT_REMINDERS": "off"}) as world:
        world.say("/renew 1001")
        await world.wait_message("paybot has made no payment link for order 1001")
        world.say("/invoice 1001")
        await world.wait_message("Pay here")
        world.say("/renew 1001")
        await world.wait_message("still live, so there is no new one")
        link = await world.link_for("1001")
        # A New link button pressed by someone who is no merchant of the link: refused.
        world.fake.press_button(f"renew:{link.id}", message_id=1, user_id=CUSTOMER)
        answer = await world.fake.wait_for(
            lambda: next((c for c in world.fake.calls if c.method == "answerCallbackQuery"), None)
        )
        assert "not one of this chat's" in answer.params["text"]
        await world.post_event(event("payment.succeeded", token=link.token))
        await world.wait_message("Confirmed")
        world.say("/renew 1001")
        await world.wait_message("Already paid")
        await world.wait_idle()
        assert len(world.photos()) == 1
        assert (await world.link_for("1001")).id == link.id


async def test_whatsapp_merchant_renews_by_reply(tmp_path: Path, database: str) -> None:
    clock = MovableClock()
    env = {"PAYBOT_REMINDERS": "off"}
    async with clocked_world(tmp_path, database, clock, TWO_HOURS, whatsapp=True, env=env) as wa:
        assert wa.twilio is not None
        await wa.whatsapp(WA_CUSTOMER, "hello")  # opens WhatsApp's 24-hour window
        await wa.wa_message(WA_CUSTOMER, "Type status")
        await wa.whatsapp(WA_MERCHANT, f"invoice 1001 {WA_CUSTOMER}")
        await wa.wa_message(WA_CUSTOMER, "Order 1001")
        old = await wa.link_for("1001")

        await move_on(wa, clock, timedelta(minutes=61))
        await wa.wa_message(WA_MERCHANT, "Reply renew 1001 for a new link")
        wa.sandbox.expire(old.token)
        await move_on(wa, clock, TWO_HOURS)
        await wa.wa_message(WA_MERCHANT, "expired before it was paid")

        await wa.whatsapp(WA_MERCHANT, "renew 1001")
        twilio = wa.twilio
        await twilio.wait_for(lambda: wa.wa_count(WA_CUSTOMER, "Order 1001") >= 2)
        new = await wa.link_for("1001")
        assert new.id != old.id
        copy = [m for m in twilio.to(WA_CUSTOMER) if new.url in (m.body or "")]
        assert copy and copy[0].media_urls == [f"{wa.settings.public_url}/qr/{new.id}.png"]
        await twilio.wait_for(
            lambda: any(new.url in (m.body or "") for m in twilio.to(WA_MERCHANT))
        )
