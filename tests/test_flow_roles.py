"""Merchants' roles (CONTRACT §7): owners see every link, a cashier only the links they
issued; another's order is refused without its details. Real PTB, fake Twilio, sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.models import ChatRef
from tests.harness import MERCHANT, World, running_world

OWNER = MERCHANT
CASHIER = 1002
OTHER_CASHIER = 1003
CUSTOMER = "+233241234567"
WA_CASHIER = "+233200000002"
ROLES = {
    "TELEGRAM_MERCHANTS": f"{OWNER}, {CASHIER}:cashier, {OTHER_CASHIER}:cashier",
    "WHATSAPP_MERCHANTS": f"+233200000001, {WA_CASHIER}:cashier",
}


@pytest.fixture
async def shop(tmp_path: Path, database: str) -> AsyncIterator[World]:
    """An owner and two cashiers on Telegram, a cashier on WhatsApp; each store in turn."""
    async with running_world(tmp_path, whatsapp=True, env=ROLES, database=database) as world:
        yield world


async def invoice_with_customer(shop: World, order_id: str, user_id: int) -> None:
    """The user invoices the order, the customer (who wrote first) getting their copy."""
    await shop.whatsapp(CUSTOMER, "hello")  # WhatsApp's 24-hour window
    await shop.wa_message(CUSTOMER, "Type status")
    shop.say(f"/invoice {order_id} {CUSTOMER}", user_id=user_id)
    await shop.wait_message(f"Order {order_id}", chat_id=user_id)
    await shop.wa_message(CUSTOMER, f"Order {order_id}")


async def test_a_link_remembers_the_merchant_who_issued_it(shop: World) -> None:
    shop.say("/invoice 1001", user_id=CASHIER)
    await shop.wait_message("Order 1001", chat_id=CASHIER)
    await shop.whatsapp(WA_CASHIER, "invoice 1002")
    await shop.wa_message(WA_CASHIER, "Order 1002")

    assert (await shop.link_for("1001")).issued_by == f"telegram:{CASHIER}"
    assert (await shop.link_for("1002")).issued_by == f"whatsapp:{WA_CASHIER}"


async def test_a_cashier_sees_their_own_order_with_the_customers_number(shop: World) -> None:
    await invoice_with_customer(shop, "1001", CASHIER)
    shop.say("/status 1001", user_id=CASHIER)
    answer = await shop.wait_message("Order 1001 (Kofi's Kitchen)", chat_id=CASHIER)

    assert "GH₵75.00" in (answer.text or "")
    assert f"Customer {CUSTOMER}" in (answer.text or "")


async def test_another_cashier_is_refused_without_details(shop: World) -> None:
    await invoice_with_customer(shop, "1001", CASHIER)
    commands = ("/status 1001", "/cancel 1001", "/remind 1001", "/renew 1001")
    for command in commands:
        shop.say(command, user_id=OTHER_CASHIER)
    await shop.fake.wait_for(lambda: len(shop.texts(OTHER_CASHIER)) == len(commands))

    for refusal in shop.texts(OTHER_CASHIER):
        assert "Order 1001 was issued by another merchant" in refusal
        for detail in ("75", "Kofi", CUSTOMER, "http", "Pending"):
            assert detail not in refusal, detail
    assert not any(path.endswith("/cancel") for _, path in shop.sandbox.requests)
    assert (await shop.link_for("1001")).status.value == "pending"


async def test_the_owner_sees_a_cashiers_order_and_its_customer(shop: World) -> None:
    await invoice_with_customer(shop, "1001", CASHIER)
    shop.say("/status 1001", user_id=OWNER)
    answer = await shop.wait_message("Order 1001 (Kofi's Kitchen)", chat_id=OWNER)
    assert f"Customer {CUSTOMER}" in (answer.text or "")


async def test_invoice_of_another_cashiers_live_link_is_refused_not_subscribed(
    shop: World,
) -> None:
    await invoice_with_customer(shop, "1001", CASHIER)
    shop.say("/invoice 1001", user_id=OTHER_CASHIER)
    refusal = await shop.wait_message("already has a live payment link", chat_id=OTHER_CASHIER)
    shop.say("/invoice 1001", user_id=OWNER)  # an owner is given it, as today
    await shop.wait_message("Pay here", chat_id=OWNER)

    assert shop.photos(OTHER_CASHIER) == []
    assert CUSTOMER not in (refusal.text or "") and "75" not in (refusal.text or "")
    link = await shop.link_for("1001")
    async with shop.paybot.store.transaction() as tx:
        chats = {sub.chat for sub in await tx.subscriptions.for_link(link.id)}
    assert ChatRef("telegram", str(OTHER_CASHIER)) not in chats
    assert ChatRef("telegram", str(OWNER)) in chats
    assert link.issued_by == f"telegram:{CASHIER}"  # the owner's ask did not take it over
    assert sum(path.endswith("/payment-link") for _, path in shop.sandbox.requests) == 1


async def test_a_cashiers_open_lists_only_their_own_links(shop: World) -> None:
    shop.say("/invoice 1001", user_id=CASHIER)
    await shop.wait_message("Order 1001", chat_id=CASHIER)
    shop.say("/invoice 1002", user_id=OWNER)
    await shop.wait_message("Order 1002", chat_id=OWNER)
    owners = await shop.link_for("1002")
    shop.say(f"/start {owners.share_code}", user_id=CASHIER)  # the customer's share link
    await shop.wait_message("Order 1002", chat_id=CASHIER)  # subscribed to it, as customers are

    shop.say("/open", user_id=CASHIER)
    mine = await shop.wait_message("Open payment links", chat_id=CASHIER)
    shop.say("/open", user_id=OWNER)
    every = await shop.wait_message("Open payment links", chat_id=OWNER)

    assert "1001" in (mine.text or "") and "1002" not in (mine.text or "")
    assert "1002" in (every.text or "")


async def test_a_whatsapp_cashier_is_refused_a_telegram_cashiers_order(shop: World) -> None:
    shop.say("/invoice 1001", user_id=CASHIER)
    await shop.wait_message("Order 1001", chat_id=CASHIER)
    await shop.whatsapp(WA_CASHIER, "status 1001")
    refusal = await shop.wa_message(WA_CASHIER, "issued by another merchant")
    assert "75" not in (refusal.body or "")
