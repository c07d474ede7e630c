"""The payment page without a mouse, as a screen reader user meets it: each new state is
announced and takes the focus, and Tab goes through its controls in reading order."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from sandbox import Sandbox, SandboxServer
from tests.browser.customer import Customer, phone_context

SECRET_KEY = "sk_test_keyboard_0123456789"
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
async def page_url() -> AsyncIterator[str]:
    """A link of order 1001 on a sandbox of its own: no bot needed to read a page."""
    sandbox = Sandbox(secret_key=SECRET_KEY, webhook_secret=WEBHOOK_SECRET)
    async with SandboxServer(sandbox):
        link, _ = sandbox.ledger.issue_link("1001")
        yield sandbox.link_url(link.token)
    await sandbox.close()


async def focused(page: Page) -> str:
    """The focused element's accessible name, or its tag when it has none."""
    name: str = await page.evaluate(
        "() => { const e = document.activeElement;"
        " return e.labels && e.labels.length ? e.labels[0].textContent.trim()"
        " : (e.textContent || e.tagName).trim(); }"
    )
    return name


async def announced(page: Page, heading: str) -> None:
    await expect(page.locator("#announce")).to_have_text(heading)
    assert await focused(page) == heading


async def test_states_are_announced_and_tab_follows_reading_order(
    page_url: str, browser: Browser, screenshots: Path
) -> None:
    customer = await Customer.arrive(await phone_context(browser), screenshots)
    page = customer.page
    await customer.open(page_url)
    await customer.sees("auth_choice")
    await announced(page, "How would you like to pay?")
    order = []
    for _ in range(2):
        await page.keyboard.press("Tab")
        order.append(await focused(page))
    assert order == ["Sign in with Cimplify Link", "Pay as guest"]
    await page.keyboard.press("Enter")
    await customer.sees("guest_flow")
    await announced(page, "Pay as guest")
    order = []
    for _ in range(4):
        await page.keyboard.press("Tab")
        order.append(await focused(page))
    assert order == ["Mobile money", "Mobile money provider", "Mobile money number", "Pay GH₵75.00"]
    await page.keyboard.press("Shift+Tab")
    await page.keyboard.type("024 123 4567")
    await page.keyboard.press("Enter")  # submits the form, as a keyboard user would
    await customer.sees("awaiting_authorization")
    await announced(page, "Approve the payment")
