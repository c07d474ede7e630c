"""Reminders (PAYBOT_REMINDERS), the failed payment's "try again" (PAYBOT_FAILED_REMINDER)
and /remind, to customers on Telegram and WhatsApp; the merchant hears who was reminded.

The bot's clock is moved past each mark (no sleeping); the schedule is in the store, so a
restart on the same database neither loses a reminder nor sends one twice.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from paybot.app import Paybot
from tests.clocks import MovableClock
from tests.flow_events import event
from tests.follow_up_support import clocked_world, move_on
from tests.harness import World
from tests.test_flow_customer_telegram import CUSTOMER, shared_code

REMINDED = "reminded the customer on Telegram"
WA_CUSTOMER = "+233241234567"
WA_MERCHANT = "+233200000001"
MINUTE = timedelta(minutes=1)
MARKS = 24  # reminders due at one moment, for two instances to share (48 messages: 2 s of sending)


async def telegram_customer(world: World) -> None:
    """The share-link flow: the merchant invoices, the customer opens the link."""
    code = await shared_code(world)
    world.say(f"/start {code}", user_id=CUSTOMER)
    await world.wait_message("Order 1001", chat_id=CUSTOMER)
    await world.wait_message("the customer opened the payment link")


async def test_each_mark_reminds_the_telegram_customer_once_even_across_a_restart(
    tmp_path: Path, database: str
) -> None:
    clock = MovableClock()
    env = {"PAYBOT_REMINDERS": "1h,3h"}
    async with clocked_world(tmp_path, database, clock, env=env) as world:
        await telegram_customer(world)
        link = await world.link_for("1001")

        await move_on(world, clock, timedelta(hours=1) + MINUTE)
        reminder = await world.wait_message("A reminder from Kofi's Kitchen", chat_id=CUSTOMER)
        assert link.url in (reminder.text or "") and "GH₵75.00" in (reminder.text or "")
        buttons = reminder.reply_markup["inline_keyboard"][0]  # type: ignore[index]
        assert buttons == [{"text": "Pay now", "url": link.url}]
        await world.wait_message(REMINDED)

        await world.restart()  # a new paybot on the same database
        await move_on(world, clock, MINUTE)
        assert world.count("A reminder", CUSTOMER) == 1  # the 1h mark is not repeated
        await move_on(world, clock, timedelta(hours=2))
        await world.restart()
        await move_on(world, clock, timedelta(hours=5))
        assert world.count("A reminder", CUSTOMER) == 2
        assert world.count(REMINDED) == 2


async def test_no_reminder_once_paid(tmp_path: Path, database: str) -> None:
    clock = MovableClock()
    async with clocked_world(tmp_path, database, clock, env={"PAYBOT_REMINDERS": "1h"}) as world:
        await telegram_customer(world)
        link = await world.link_for("1001")
        await world.post_event(event("payment.succeeded", token=link.token))
        await world.wait_message("Confirmed")
        await move_on(world, clock, timedelta(hours=2))
        assert world.count("A reminder", CUSTOMER) == 0
        assert world.count("reminded") == 0


async def test_no_reminder_once_expired(tmp_path: Path, database: str) -> None:
    clock = MovableClock()
    async with clocked_world(tmp_path, database, clock, env={"PAYBOT_REMINDERS": "1h"}) as world:
        await telegram_customer(world)
        link = await world.link_for("1001")
        world.sandbox.expire(link.token)
        await world.wait_message("Expired", chat_id=CUSTOMER)
        await move_on(world, clock, timedelta(hours=2))
        assert world.count("A reminder", CUSTOMER) == 0
        assert world.count("reminded") == 0


async def test_no_reminder_nor_new_link_offer_once_cancelled(tmp_path: Path, database: str) -> None:
    clock = MovableClock()
    async with clocked_world(tmp_path, database, clock, env={"PAYBOT_REMINDERS": "1h"}) as world:
        await telegram_customer(world)
        world.say("/cancel 1001")
        await world.wait_message("Cancelled", chat_id=CUSTOMER)
        await move_on(world, clock, timedelta(hours=2))
        await move_on(world, clock, timedelta(days=2))  # past the warning and the expiry
        assert world.count("A reminder", CUSTOMER) == 0
        assert world.count("reminded") == 0
        assert world.count("New link") == 0


async def test_a_failed_payment_is_followed_by_try_again_unless_paid_meanwhile(
    tmp_path: Path, database: str
) -> None:
    clock = MovableClock()
    env = {"PAYBOT_REMINDERS": "off", "PAYBOT_FAILED_REMINDER": "30m"}
    async with clocked_world(tmp_path, database, clock, env=env) as world:
        await telegram_customer(world)
        link = await world.link_for("1001")
        world.sandbox.set_status(link.token, "failed")
        await world.wait_message("Failed", chat_id=CUSTOMER)
        await move_on(world, clock, timedelta(minutes=29))
        assert world.count("try again here", CUSTOMER) == 0  # not yet
        await move_on(world, clock, timedelta(minutes=2))
        retry = await world.wait_message("did not go through. Please try again", CUSTOMER)
        assert link.url in (retry.text or "")
        await world.wait_message("asked the customer on Telegram to try again")

        # A second failure, then the payment goes through before its mark: nothing more.
        world.sandbox.set_status(link.token, "processing")
        await world.wait_message("Processing", chat_id=CUSTOMER)
        world.sandbox.set_status(link.token, "failed")
        await world.fake.wait_for(lambda: world.count("Failed", CUSTOMER) == 2)
        await world.post_event(event("payment.succeeded", token=link.token))
        await world.wait_message("thank you", chat_id=CUSTOMER)
        await move_on(world, clock, timedelta(hours=1))
        assert world.count("try again here", CUSTOMER) == 1


async def test_a_link_without_customer_chat_reminds_the_merchant(
    tmp_path: Path, database: str
) -> None:
    clock = MovableClock()
    async with clocked_world(tmp_path, database, clock, env={"PAYBOT_REMINDERS": "1h"}) as world:
        world.say("/invoice 1001")
        await world.wait_message("Pay here")
        link = await world.link_for("1001")
        await move_on(world, clock, timedelta(hours=1, minutes=1))
        forward = await world.wait_message("forward them the link as a reminder")
        assert link.url in (forward.text or "")
        assert world.count("forward them the link") == 1


async def test_remind_sends_one_now_or_says_why_not(tmp_path: Path, database: str) -> None:
    clock = MovableClock()
    async with clocked_world(tmp_path, database, clock, env={"PAYBOT_REMINDERS": "off"}) as world:
        world.say("/remind 1001")
        await world.wait_message("paybot has made no payment link for order 1001")
        world.say("/remind")
        await world.wait_message("Type /remind <order_id>")

        await telegram_customer(world)
        world.say("/remind 1001")
        await world.wait_message("A reminder from Kofi's Kitchen", chat_id=CUSTOMER)
        await world.wait_message(REMINDED)

        link = await world.link_for("1001")
        await world.post_event(event("payment.succeeded", token=link.token))
        await world.wait_message("Confirmed")
        world.say("/remind 1001")
        await world.wait_message("Already paid")
        await world.wait_idle()
        assert world.count("A reminder", CUSTOMER) == 1


async def test_whatsapp_customer_in_the_window_gets_the_qr_again(
    tmp_path: Path, database: str
) -> None:
    clock = MovableClock()
    env = {"PAYBOT_REMINDERS": "30m"}
    async with clocked_world(tmp_path, database, clock, whatsapp=True, env=env) as wa:
        assert wa.twilio is not None
        await wa.whatsapp(WA_CUSTOMER, "hello")  # opens WhatsApp's 24-hour window
        await wa.wa_message(WA_CUSTOMER, "Type status")
        await wa.whatsapp(WA_MERCHANT, f"invoice 1001 {WA_CUSTOMER}")
        await wa.wa_message(WA_CUSTOMER, "Order 1001")
        link = await wa.link_for("1001")

        await move_on(wa, clock, timedelta(minutes=31))
        reminder = await wa.wa_message(WA_CUSTOMER, "A reminder from Kofi's Kitchen")
        assert link.url in (reminder.body or "")
        assert reminder.media_urls == [f"{wa.settings.public_url}/qr/{link.id}.png"]
        await wa.wa_message(WA_MERCHANT, f"reminded the customer {WA_CUSTOMER}")

        await wa.whatsapp(WA_MERCHANT, "remind 1001")
        await wa.twilio.wait_for(lambda: wa.wa_count(WA_CUSTOMER, "A reminder") == 2)


async def test_whatsapp_outside_the_window_without_a_template_tells_the_merchant(
    tmp_path: Path, database: str
) -> None:
    clock = MovableClock()
    env = {"PAYBOT_REMINDERS": "1h", "TWILIO_INVOICE_CONTENT_SID": "HX" + "1" * 32}
    async with clocked_world(tmp_path, database, clock, whatsapp=True, env=env) as wa:
        assert wa.twilio is not None
        await wa.whatsapp(WA_MERCHANT, f"invoice 1001 {WA_CUSTOMER}")  # the customer never wrote
        twilio = wa.twilio
        await twilio.wait_for(lambda: len(twilio.to(WA_CUSTOMER)) == 1)  # the invoice template
        link = await wa.link_for("1001")
        await move_on(wa, clock, timedelta(hours=1, minutes=1))
        notice = await wa.wa_message(WA_MERCHANT, f"could not remind the customer {WA_CUSTOMER}")
        assert link.url in (notice.body or "")
        assert len(twilio.to(WA_CUSTOMER)) == 1  # nothing more was sent to them


async def test_whatsapp_outside_the_window_with_the_reminder_template(
    tmp_path: Path, database: str
) -> None:
    clock = MovableClock()
    templates = {
        "TWILIO_INVOICE_CONTENT_SID": "HX" + "1" * 32,
        "TWILIO_REMINDER_CONTENT_SID": "HX" + "3" * 32,
    }
    env = {"PAYBOT_REMINDERS": "1h"} | templates
    async with clocked_world(tmp_path, database, clock, whatsapp=True, env=env) as wa:
        assert wa.twilio is not None
        twilio = wa.twilio
        await wa.whatsapp(WA_MERCHANT, f"invoice 1001 {WA_CUSTOMER}")
        await twilio.wait_for(lambda: len(twilio.to(WA_CUSTOMER)) == 1)
        link = await wa.link_for("1001")
        await move_on(wa, clock, timedelta(hours=1, minutes=1))
        reminder = await twilio.wait_for(lambda: next(iter(twilio.to(WA_CUSTOMER)[1:]), None))
        assert reminder.content_sid == templates["TWILIO_REMINDER_CONTENT_SID"]
        assert reminder.content_variables == {
            "1": "Kofi's Kitchen",
            "2": "1001",
            "3": "GH₵75.00",
            "4": link.url,
        }
        await wa.wa_message(WA_MERCHANT, f"reminded the customer {WA_CUSTOMER}")


async def test_two_instances_on_one_database_remind_once_each_mark(
    tmp_path: Path, database: str
) -> None:
    clock = MovableClock()
    marks = ",".join(f"{n}m" for n in range(1, MARKS + 1))  # many at once: the workers race
    env = {"PAYBOT_REMINDERS": marks, "PAYBOT_EXPIRY_WARNING": "off"}
    async with clocked_world(tmp_path, database, clock, env=env) as world:
        await telegram_customer(world)
        other = Paybot(world.settings, world.tuning)  # a second process, as far as the store knows
        await other.start()
        try:
            clock.ahead += timedelta(minutes=MARKS + 1)
            # Both at the same moment, as two processes woken by the same clock would.
            await asyncio.gather(
                world.paybot.follow_ups.handle_due(), other.follow_ups.handle_due()
            )
            await move_on(world, clock, timedelta(0))
            await world.fake.wait_for(lambda: world.count("A reminder", CUSTOMER) >= MARKS)
            await world.wait_idle()
        finally:
            await other.stop()
        assert world.count("A reminder", CUSTOMER) == MARKS
        assert world.count(REMINDED) == MARKS
