"""Pledging end to end, in a real browser against a real instance loaded with the demo data.

The demo admin (a member of several demo organisations) logs in, opens an improvement that is
open for funding, asks what a 100 € pledge brings, confirms it and finds it listed. Fields are
found by their labels and buttons by their names, as a screen reader would.
"""

from __future__ import annotations

import re

import pytest
from browsing import Watch, open_page
from live import LiveInstance
from playwright.sync_api import Browser, expect

pytestmark = pytest.mark.browser

PASSWORD = "compost et communs"
ADMIN = "admin@terreau.example"


@pytest.fixture
def demo(live: LiveInstance) -> LiveInstance:
    """The live instance with the demo data, whose admin belongs to several organisations."""
    live.terreau("demo", "--admin-password", PASSWORD)
    return live


def test_pledge_with_the_estimate_then_confirm(browser: Browser, demo: LiveInstance) -> None:
    live = demo
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
