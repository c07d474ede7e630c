"""A customer at the payment page, in Chromium: what they see, what they click.

Every wait is for a condition on the page (Playwright's `expect`), with a deadline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from playwright.async_api import Browser, BrowserContext, Page, Request, expect

from tests.browser.conftest import PHONE_WIDTH

STATE_TIMEOUT = 10_000  # ms: a payment's slowest step is the provider's delay, 1 s here


@dataclass
class Customer:
    page: Page
    screenshots: Path
    requested: list[str] = field(default_factory=list)  # every URL the page asked for

    @classmethod
    async def arrive(cls, context: BrowserContext, screenshots: Path) -> Customer:
        page = await context.new_page()
        customer = cls(page, screenshots)
        page.on("request", customer._note)
        return customer

    def _note(self, request: Request) -> None:
        self.requested.append(request.url)

    async def open(self, url: str) -> None:
        await self.page.goto(url)

    async def sees(self, state: str, shot: str | None = None) -> None:
        """The page reaches `state`; keep a screenshot of it under `shot`."""
        await expect(self.page.locator("main")).to_have_attribute(
            "data-state", state, timeout=STATE_TIMEOUT
        )
        if shot is not None:
            await self.page.screenshot(path=self.screenshots / f"{shot}.png", full_page=True)

    async def click(self, name: str) -> None:
        await self.page.get_by_role("button", name=name, exact=True).click()

    async def pay_as_guest_by_momo(self, provider: str, phone: str) -> None:
        await self.click("Pay as guest")
        await self.sees("guest_flow", "guest_flow")
        await self.page.get_by_label("Mobile money", exact=True).check()
        await self.page.get_by_label("Mobile money provider").select_option(label=provider)
        await self.page.get_by_label("Mobile money number").fill(phone)
        await self.page.get_by_role("button", name="Pay ").click()

    def only_asked_the_sandbox(self, sandbox_url: str) -> bool:
        """Nothing came from outside the sandbox: the page works offline."""
        origin = urlsplit(sandbox_url).netloc
        return bool(self.requested) and all(urlsplit(u).netloc == origin for u in self.requested)


async def phone_context(browser: Browser) -> BrowserContext:
    """A fresh browser profile the size of a small phone."""
    return await browser.new_context(viewport={"width": PHONE_WIDTH, "height": 740})
