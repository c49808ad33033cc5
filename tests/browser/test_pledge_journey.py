"""Pledging end to end, in a real browser against a real instance loaded with the demo data.

The demo admin (a member of several demo organisations) logs in, opens an improvement that is
open for funding, asks what a 100 € pledge brings, confirms it and finds it listed. Fields are
found by their labels and buttons by their names, as a screen reader would.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from live import LOOPBACK, LiveInstance, live_instance
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Route, expect

pytestmark = pytest.mark.browser

PASSWORD = "compost et communs"
ADMIN = "admin@terreau.example"


@dataclass
class Watch:
    """Requests beyond 127.0.0.1 and console errors (CSP violations among them)."""

    outside: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def guard(self, route: Route) -> None:
        if urlsplit(route.request.url).hostname == LOOPBACK:
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()

    def console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.problems.append(f"console: {message.text}")


def open_page(browser: Browser, live: LiveInstance, watch: Watch) -> tuple[BrowserContext, Page]:
    context = browser.new_context(
        locale="en-US", base_url=live.base_url, viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(10_000)
    context.route("**/*", watch.guard)
    page = context.new_page()
    page.on("console", watch.console)
    page.on("pageerror", lambda error: watch.problems.append(f"page error: {error}"))
    return context, page


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveInstance]:
    with live_instance(
        tmp_path / "instance", database_url=f"sqlite+aiosqlite:///{tmp_path / 'terreau.db'}"
    ) as instance:
        instance.terreau("demo", "--admin-password", PASSWORD)
        yield instance


def test_pledge_with_the_estimate_then_confirm(browser: Browser, live: LiveInstance) -> None:
    watch = Watch()
    context, page = open_page(browser, live, watch)

    page.goto("/login")
    page.get_by_label("Email address").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).not_to_have_url(re.compile(r"/login"))

    # An improvement open for funding, from the home page.
    page.goto("/")
    open_now = page.get_by_role("region", name="Improvements open for funding")
    open_now.get_by_role("heading", level=3).first.get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"/commons/[\w-]+/improvements/\d+$"))
    expect(page.locator("p.status")).to_have_text("Open for funding")
    pledges = page.get_by_role("region", name="Pledges")
    organisation = pledges.get_by_label("Organisation")
    chosen = organisation.locator("option:checked").inner_text()

    # Step 1: the estimate, before anything is recorded.
    pledges.get_by_label("Amount (EUR)").fill("100")
    pledges.get_by_role("button", name="See what it brings").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm the pledge")
    expect(page.locator("p.estimate")).to_contain_text("Your €100 brings")

    # Step 2: confirmed, listed with its organisation, amount and status.
    page.get_by_role("button", name="Confirm").click()
    expect(page).to_have_url(re.compile(r"/improvements/\d+#pledges$"))
    expect(page.get_by_role("status")).to_have_text(f"{chosen} pledges €100. Thank you!")
    row = page.get_by_role("region", name="Pledges").get_by_role("row").filter(has_text=chosen)
    expect(row).to_contain_text("€100")
    expect(row).to_contain_text("Pledged")
    expect(row.get_by_role("button", name="Cancel the pledge")).to_be_visible()
    context.close()

    assert watch.outside == [], "pages tried to reach beyond 127.0.0.1"
    assert watch.problems == []
