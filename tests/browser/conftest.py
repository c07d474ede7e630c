"""Headless Chromium for the payment page tests: Debian's `chromium`, driven by Playwright.

Playwright's own browser download cannot run here, so it is pointed at the system
browser. Without one, these tests skip and say why, unless PAYBOT_REQUIRE_BROWSER=1
(CI sets it), when they fail instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

SCREENSHOTS = Path(__file__).parent / "screenshots"  # git-ignored; the last run's states
PHONE_WIDTH = 360  # the narrowest common phone screen, in CSS pixels
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str | None:
    """PAYBOT_CHROMIUM, or Debian's chromium on the PATH; None when it is not there."""
    given = os.environ.get("PAYBOT_CHROMIUM")
    if given:
        return given if os.access(given, os.X_OK) else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _no_browser(reason: str) -> None:
    if os.environ.get("PAYBOT_REQUIRE_BROWSER") == "1":
        pytest.fail(f"PAYBOT_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(f"payment page tests need a browser: {reason}")


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _no_browser("the playwright package is not installed (pip install -e '.[test]')")
    executable = chromium_path()
    if executable is None:
        _no_browser("no chromium found (Debian: apt-get install chromium; or set PAYBOT_CHROMIUM)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    return SCREENSHOTS
