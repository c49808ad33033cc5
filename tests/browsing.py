"""Watching a browser page in end-to-end tests: it may only talk to 127.0.0.1, and must not fail.

Shared by the tests under tests/browser (plain functions, importable because pytest puts
tests/ on the path).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from live import LOOPBACK, LiveInstance
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Route


@dataclass
class Watch:
    """What the pages did that they should not: leave 127.0.0.1, fail, break their own CSP."""

    outside: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def guard(self, route: Route) -> None:
        """Let only loopback requests through: a test never reaches the outside world."""
        if urlsplit(route.request.url).hostname == LOOPBACK:
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()

    def console(self, message: ConsoleMessage) -> None:
        if message.type == "error":  # CSP violations and failed loads are reported here
            self.problems.append(f"console: {message.text}")


def open_page(browser: Browser, live: LiveInstance, watch: Watch) -> tuple[BrowserContext, Page]:
    """A fresh browser profile (own cookies) whose reader asks for English, watched."""
    context = browser.new_context(
        locale="en-US", base_url=live.base_url, viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(10_000)
    context.route("**/*", watch.guard)
    page = context.new_page()
    page.on("console", watch.console)
    page.on("pageerror", lambda error: watch.problems.append(f"page error: {error}"))
    return context, page
