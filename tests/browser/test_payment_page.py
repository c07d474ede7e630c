"""The payment page in headless Chromium, clicked through as a customer would, while the
real bot follows the payment in the merchant's (fake) Telegram chat.

Each state's screenshot of the last run is kept in tests/browser/screenshots/.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.browser.customer import Customer, phone_context
from tests.harness import World, running_world

PROVIDER_DELAY = 1.0  # seconds from `init` to the prompt on the customer's phone
_PAY_HERE = re.compile(r"Pay here: (\S+)")


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with running_world(tmp_path) as running:
        # Links on the sandbox itself, so that the browser can open them.
        running.sandbox.base_url = sandbox_url(running)
        running.sandbox.checkout.provider_delay = PROVIDER_DELAY
        yield running


def sandbox_url(world: World) -> str:
    url = world.settings.cimplify_api_base
    assert url is not None
    return url


async def invoice(world: World, order_id: str) -> tuple[str, str]:
    """The merchant asks for an invoice: the link's url and the caption, as the chat got them."""
    world.say(f"/invoice {order_id}")
    message = await world.wait_message(f"Order {order_id}\n")
    caption = message.caption or ""
    found = _PAY_HERE.search(caption)
    assert found, caption
    return found[1], caption


def unknown_to_the_bot(world: World, order_id: str) -> str:
    """A link made in the sandbox alone, so that the bot's polls take none of its faults."""
    link, _ = world.sandbox.ledger.issue_link(order_id)
    return world.sandbox.link_url(link.token)


async def test_a_guest_pays_by_mtn_momo_and_the_merchant_hears_confirmed(
    world: World, browser: Browser, screenshots: Path
) -> None:
    url, caption = await invoice(world, "1001")
    customer = await Customer.arrive(await phone_context(browser), screenshots)
    await customer.open(url)
    await customer.sees("auth_choice", "auth_choice")
    total = customer.page.locator(".total strong")
    await expect(total).to_have_text("GH₵75.00")
    assert "Total: GH₵75.00" in caption  # the page writes money as the chat does
    await customer.pay_as_guest_by_momo("MTN MoMo", "024 123 4567")
    await customer.sees("processing", "processing")
    await customer.sees("awaiting_authorization", "awaiting_authorization")
    await expect(customer.page.get_by_text("+233241234567")).to_be_visible()
    await world.wait_message("Awaiting authorization")
    await customer.click("Approve")
    await customer.sees("success", "success")
    await world.wait_message("Confirmed")
    told = [t.split(": ", 1)[1].split(" - ")[0] for t in world.texts() if t.startswith("Order 1")]
    # A poll may see `paid` before the webhook lands, and say Paid before Confirmed.
    moving = [words for words in told if words != "Paid"]
    assert moving[-3:] == ["Processing", "Awaiting authorization", "Confirmed"], told
    assert customer.only_asked_the_sandbox(sandbox_url(world)), customer.requested


async def test_a_declined_approval_shows_error_and_retry_pays(
    world: World, browser: Browser, screenshots: Path
) -> None:
    url, _ = await invoice(world, "1002")
    customer = await Customer.arrive(await phone_context(browser), screenshots)
    await customer.open(url)
    await customer.sees("auth_choice")
    await customer.pay_as_guest_by_momo("Telecel Cash", "+233201234567")
    await customer.sees("awaiting_authorization")
    await customer.click("Decline")
    await customer.sees("error", "error")
    await expect(customer.page.locator("#error-message")).to_contain_text("declined")
    await world.wait_message("Failed")
    await customer.click("Retry")
    await customer.sees("awaiting_authorization")
    await customer.click("Approve")
    await customer.sees("success")
    await world.wait_message("Confirmed")


async def test_a_card_goes_through_the_challenge_and_back(
    world: World, browser: Browser, screenshots: Path
) -> None:
    url, caption = await invoice(world, "2001")
    assert "Total: ₦10,000.00" in caption
    customer = await Customer.arrive(await phone_context(browser), screenshots)
    await customer.open(url)
    await customer.sees("auth_choice")
    await customer.click("Pay as guest")
    methods = customer.page.locator("#guest-form input[name=method]")
    await expect(methods).to_have_count(2)  # NGN: card and bank transfer
    await customer.page.get_by_label("Card", exact=True).check()
    await customer.click("Pay ₦10,000.00")
    await customer.sees("challenge", "card_challenge")
    await customer.click("Confirm payment")
    await expect(customer.page).to_have_url(re.compile(rf"{re.escape(url)}\?reference=CARD-"))
    await customer.sees("success")
    await world.wait_message("Confirmed")


async def test_a_guest_enrols_in_link_and_the_next_link_skips_the_choice(
    world: World, browser: Browser, screenshots: Path
) -> None:
    first, _ = await invoice(world, "1001")
    context = await phone_context(browser)
    customer = await Customer.arrive(context, screenshots)
    await customer.open(first)
    await customer.pay_as_guest_by_momo("MTN MoMo", "0241234567")
    await customer.sees("awaiting_authorization")
    await customer.click("Approve")
    await customer.sees("success")
    await customer.click("Enrol in Cimplify Link")
    await expect(customer.page.locator("#enrolled")).to_contain_text("+233241234567")
    second, _ = await invoice(world, "1002")
    await customer.open(second)
    await customer.sees("link_flow", "link_flow_saved")
    await expect(customer.page.get_by_label("MTN MoMo +233241234567")).to_be_checked()
    await customer.click("Pay GH₵52.00")
    await customer.sees("awaiting_authorization")
    await customer.click("Approve")
    await customer.sees("success")
    await expect(customer.page.locator("#enrol-form")).to_be_hidden()  # already in Link
    await world.wait_message("Order 1002 (Kofi's Kitchen): Confirmed")


async def test_link_signs_in_with_the_code_the_sandbox_shows(
    world: World, browser: Browser, screenshots: Path
) -> None:
    first, _ = await invoice(world, "1001")
    payer = await Customer.arrive(await phone_context(browser), screenshots)
    await payer.open(first)
    await payer.pay_as_guest_by_momo("AirtelTigo Money", "+233261234567")
    await payer.click("Approve")
    await payer.sees("success")
    await payer.click("Enrol in Cimplify Link")
    await expect(payer.page.locator("#enrolled")).to_be_visible()
    second, _ = await invoice(world, "1002")
    elsewhere = await Customer.arrive(await phone_context(browser), screenshots)  # a new browser
    await elsewhere.open(second)
    await elsewhere.sees("auth_choice")
    await elsewhere.click("Sign in with Cimplify Link")
    await elsewhere.sees("link_flow")
    link_flow = elsewhere.page.locator("[data-view=link_flow]")
    await link_flow.get_by_label("Your phone number").fill("+233261234567")
    await elsewhere.click("Send me a code")
    note = elsewhere.page.locator("#link-code-note")
    await expect(note).to_contain_text("the code sent to +233261234567 is")
    code = (await note.text_content() or "").rstrip(".").rsplit(" ", 1)[-1]
    await elsewhere.page.get_by_label("One-time code").fill(code)
    await elsewhere.page.screenshot(path=screenshots / "link_flow_code.png", full_page=True)
    await elsewhere.click("Sign in")
    await expect(elsewhere.page.get_by_label("AirtelTigo Money +233261234567")).to_be_checked()
    await elsewhere.click("Pay GH₵52.00")
    await elsewhere.sees("awaiting_authorization")
    await elsewhere.click("Approve")
    await elsewhere.sees("success")
    await world.wait_message("Order 1002 (Kofi's Kitchen): Confirmed")


async def test_a_paid_order_shows_already_paid(
    world: World, browser: Browser, screenshots: Path
) -> None:
    customer = await Customer.arrive(await phone_context(browser), screenshots)
    await customer.open(unknown_to_the_bot(world, "1004"))  # seeded as paid
    await customer.sees("already_paid", "already_paid")


async def test_a_failed_load_shows_error_and_retry_recovers(
    world: World, browser: Browser, screenshots: Path
) -> None:
    url = unknown_to_the_bot(world, "3001")
    world.sandbox.fail_next("/v1/pay/orders/", status=503)
    customer = await Customer.arrive(await phone_context(browser), screenshots)
    await customer.open(url)
    await customer.sees("error")
    await customer.click("Retry")
    await customer.sees("auth_choice")
    await customer.click("Pay as guest")
    providers = customer.page.get_by_label("Mobile money provider").locator("option")
    await expect(providers).to_have_text(["M-Pesa", "Airtel Money"])  # KES
    await expect(customer.page.locator(".total strong")).to_have_text("Ksh2,300.00")


async def test_an_unknown_link_shows_error(
    world: World, browser: Browser, screenshots: Path
) -> None:
    customer = await Customer.arrive(await phone_context(browser), screenshots)
    await customer.open(f"{sandbox_url(world)}/plt_no-such-link")
    await customer.sees("error", "error_unknown_link")
    await expect(customer.page.locator("#error-message")).to_have_text(
        "This payment link does not exist."
    )


async def test_the_page_fits_a_360_px_screen_and_loads_while_slow(
    world: World, browser: Browser, screenshots: Path
) -> None:
    url = unknown_to_the_bot(world, "1006")  # the longest order
    world.sandbox.fail_next("/v1/pay/orders/", status=200, delay=1.0)  # a slow network
    customer = await Customer.arrive(await phone_context(browser), screenshots)
    await customer.open(url)
    await customer.sees("loading", "loading")
    await customer.sees("auth_choice")
    width = await customer.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360  # nothing sticks out sideways on a small phone


async def test_a_bank_transfer_shows_where_to_send_the_money(
    world: World, browser: Browser, screenshots: Path
) -> None:
    url, _ = await invoice(world, "2001")
    customer = await Customer.arrive(await phone_context(browser), screenshots)
    await customer.open(url)
    await customer.click("Pay as guest")
    await customer.page.get_by_label("Bank transfer", exact=True).check()
    await customer.click("Pay ₦10,000.00")
    await customer.sees("awaiting_authorization", "bank_transfer")
    instructions = customer.page.locator("#authorize-instructions")
    await expect(instructions).to_contain_text("Transfer ₦10,000.00 to Sandbox Bank")
    await customer.click("Approve")
    await customer.sees("success")
    await world.wait_message("Order 2001 (Mama Put Lagos): Confirmed")
