"""A cancelled order's payment page, in headless Chromium: the merchant's /cancel reaches
the customer who opens the link afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.browser.customer import Customer, phone_context
from tests.browser.test_payment_page import invoice, sandbox_url
from tests.harness import World, running_world


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with running_world(tmp_path) as running:
        running.sandbox.base_url = sandbox_url(running)  # links the browser can open
        yield running


async def test_a_cancelled_order_shows_it_is_cancelled(
    world: World, browser: Browser, screenshots: Path
) -> None:
    url, _ = await invoice(world, "1001")
    world.say("/cancel 1001")
    await world.wait_message("Order 1001 (Kofi's Kitchen): Cancelled")
    customer = await Customer.arrive(await phone_context(browser), screenshots)
    await customer.open(url)
    await customer.sees("error", "error_cancelled")
    await expect(customer.page.locator("#error-message")).to_have_text(
        "This order was cancelled: there is nothing to pay."
    )
