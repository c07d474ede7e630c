"""The README's first minute: `paybot demo` on a terminal, /invoice 1001, the printed link
opened in Chromium, paid as a guest, and the console chat says Confirmed."""

from __future__ import annotations

import asyncio
import html
from pathlib import Path

from playwright.async_api import Browser

from tests.browser.customer import Customer, phone_context
from tests.terminal import CTRL_C, Terminal, paybot_on_terminal

LINK = r"http://127\.0\.0\.1:[0-9]+/plt_[A-Za-z0-9_-]+"


async def test_a_newcomer_pays_order_1001_in_the_browser_and_the_chat_says_confirmed(
    tmp_path: Path, browser: Browser, screenshots: Path
) -> None:
    with paybot_on_terminal(["demo"], tmp_path) as terminal:
        await asyncio.to_thread(terminal.wait_for, "you › ")
        terminal.type("/invoice 1001\r")
        url = (await asyncio.to_thread(terminal.wait_for, rf"Pay here: ({LINK})"))[1]
        customer = await Customer.arrive(await phone_context(browser), screenshots)
        await customer.open(url)
        await customer.pay_as_guest_by_momo("MTN MoMo", "024 123 4567")
        await customer.sees("awaiting_authorization")
        # The chat follows the page live: the customer's phone is ringing.
        waiting = r"paybot › Order 1001 \(Kofi's Kitchen\): Awaiting authorization"
        await asyncio.to_thread(terminal.wait_for, waiting)
        await customer.click("Approve")
        await customer.sees("success")
        confirmed = r"paybot › Order 1001 \(Kofi's Kitchen\): Confirmed - GH₵75\.00 received"
        await asyncio.to_thread(terminal.wait_for, confirmed)
        await asyncio.to_thread(terminal.wait_for, rf"{confirmed}.*\n\nyou › $")
        await _keep_console(browser, terminal, screenshots / "console_chat.png")
        terminal.type(CTRL_C)
        assert await asyncio.to_thread(terminal.wait_exit, 3.0) == 0


async def _keep_console(browser: Browser, terminal: Terminal, path: Path) -> None:
    """The console chat as a picture, for the README: from the invoice to Confirmed."""
    start = terminal.screen.index("you › /invoice 1001")
    text = terminal.screen[start:].rstrip()
    page = await browser.new_page(viewport={"width": 900, "height": 400})
    style = (
        "body{margin:0;background:#111827;color:#e5e7eb}"
        "pre{margin:0;padding:12px 16px;font:12px/1 'DejaVu Sans Mono',monospace}"
    )
    await page.set_content(f"<style>{style}</style><pre>{html.escape(text)}</pre>")
    await page.locator("pre").screenshot(path=path)
    await page.close()
