"""Helpers of the console's browser tests: Debian's Chromium driven by Playwright, sign-in,
screenshots into docs/console/, and the accessibility checks every page gets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, ViewportSize, async_playwright, expect

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "console"
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
TABLET: ViewportSize = {"width": 768, "height": 1024}


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """A headless Chromium; no browser is downloaded (Debian's package, from scripts/setup)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run ./scripts/setup (it installs Debian's chromium)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield browser
        finally:
            await browser.close()


async def signed_in(browser: Browser, url: str, token: str) -> Page:
    """A page of a new browser context (its own cookies), signed in with ``token``."""
    page = await (await browser.new_context(viewport=DESKTOP)).new_page()
    await page.goto(f"{url}/console/sign-in")
    await page.get_by_label("API token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Districts")).to_be_visible()
    return page


async def csrf_token(page: Page) -> str:
    token = await page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert token
    return token


async def unlabelled(page: Page) -> list[str]:
    """Form controls of the page without a label a screen reader would read."""
    found: list[str] = await page.evaluate(
        """[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
             .filter(e => e.labels.length === 0 && !e.getAttribute('aria-label'))
             .map(e => e.name || e.id)"""
    )
    return found


async def shot(page: Page, name: str) -> None:
    """The page as a reader sees it (the viewport), into docs/console/NAME.png; every page shot is
    also checked for unlabelled controls and, at tablet width, for sideways scrolling."""
    assert await unlabelled(page) == [], f"{name}: controls without a label"
    if page.viewport_size and page.viewport_size["width"] <= TABLET["width"]:
        assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), (
            f"{name}: the page scrolls sideways at tablet width"
        )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / f"{name}.png")
