"""Chromium driven by Playwright's sync API, for end-to-end tests against a live instance.

The browser is Debian's own Chromium (``apt-get install chromium``): Playwright's downloaded
builds are never used (no ``playwright install``), so the tests need no network and run the
browser the operating system keeps patched. Locally a missing Chromium skips these tests; in
CI (``CI`` set) it fails them, so a green CI run always includes the browser.

Everything here is plain synchronous code on purpose: the sync API refuses to run inside an
asyncio loop, and pytest-asyncio (``asyncio_mode = "auto"``) only gives one to ``async def``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from live import LiveInstance, live_instance
from playwright.sync_api import Browser, sync_playwright
from screenshot import CHROMIUM, CHROMIUM_ARGS  # scripts/screenshot.py: one list of flags


@pytest.fixture
def browser() -> Iterator[Browser]:
    """A headless Chromium, new for each test and closed after it (with Playwright's driver).

    Function-scoped so nothing of Playwright (its driver process, its private event loop)
    outlives the test and meets the asyncio tests that run after it in the same session.
    """
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install chromium"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests: {message}")
        pytest.skip(message)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveInstance]:
    with live_instance(
        tmp_path / "instance", database_url=f"sqlite+aiosqlite:///{tmp_path / 'terreau.db'}"
    ) as instance:
        yield instance
