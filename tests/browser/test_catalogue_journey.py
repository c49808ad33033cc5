"""The catalogue end to end, in a real browser against a real instance.

Amina signs up, creates her organisation, proposes YesWiki (with a logo), declares that her
organisation uses it, plans an improvement and opens it for funding. Then a visitor with no
account finds YesWiki by typing "equipe" (no accent) and sees the improvement and its funding.
Fields are found by their labels and buttons by their names, as a screen reader would.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from browsing import Watch, open_page
from live import LiveInstance
from PIL import Image
from playwright.sync_api import Browser, expect

pytestmark = pytest.mark.browser

PASSWORD = "compost et communs"
ORGANISATION = "La Fabrique du Coin"


def logo_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (47, 107, 58)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_propose_declare_fund_and_find_a_commons(
    browser: Browser, live: LiveInstance, tmp_path: Path
) -> None:
    watch = Watch()
    context, page = open_page(browser, live, watch)

    # Amina signs up and creates her organisation.
    page.goto("/signup")
    page.get_by_label("Your name").fill("Amina Diallo")
    page.get_by_label("Email address").fill("amina@fabrique.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create my account").click()
    expect(page).to_have_url(re.compile(r"/account$"))
    page.get_by_role("link", name="Create an organisation").click()
    page.get_by_label("Name").fill(ORGANISATION)
    page.get_by_label("Kind").select_option(label="Tiers-lieu")
    page.get_by_role("button", name="Create", exact=True).click()
    expect(page).to_have_url(re.compile(r"/orgs/la-fabrique-du-coin$"))

    # She proposes YesWiki from the catalogue, with a logo.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Commons").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Commons")
    page.get_by_role("link", name="Propose a commons").click()
    page.get_by_label("Name").fill("YesWiki")
    page.get_by_label("Kind").select_option(label="Software")
    page.get_by_label("Summary").fill("Un wiki pour coopérer en équipe")
    page.get_by_label("Description").fill("Un **wiki** facile à prendre en main.")
    page.get_by_label("Tags").fill("wiki, coopération")
    page.get_by_label("Licence").fill("AGPL-3.0-or-later")
    expect(page.get_by_role("checkbox", name=ORGANISATION)).to_be_checked()  # her only one
    page.get_by_label("Logo").set_input_files(
        {"name": "logo.png", "mimeType": "image/png", "buffer": logo_png()}
    )
    page.get_by_role("button", name="Propose").click()
    expect(page).to_have_url(re.compile(r"/commons/yeswiki$"))
    expect(page.get_by_role("status")).to_have_text("YesWiki is in the catalogue.")
    expect(page.get_by_role("heading", level=1)).to_have_text("YesWiki")
    expect(page.get_by_role("img", name="Logo of YesWiki")).to_be_visible()
    facts = page.locator("dl.facts")
    expect(facts).to_contain_text("Software")
    expect(facts.get_by_role("link", name=ORGANISATION)).to_be_visible()

    # She declares that her organisation uses it.
    uses = page.get_by_role("form", name="We use it")
    expect(uses.get_by_label("Organisation")).to_have_value("la-fabrique-du-coin")
    uses.get_by_label("Since").fill("2024-09-01")
    uses.get_by_label("Satisfaction").select_option(label="4 out of 5")
    uses.get_by_label("Comment").fill("Notre wiki interne.")
    uses.get_by_role("button", name="Declare that we use it").click()
    expect(page.get_by_role("status")).to_have_text(
        f"{ORGANISATION} now says it uses this commons."
    )
    users = page.get_by_role("region", name="Used by 1 organisation")
    expect(users.get_by_role("link", name=ORGANISATION)).to_be_visible()
    expect(users).to_contain_text("satisfaction 4/5")
    expect(users).to_contain_text("Notre wiki interne.")

    # She plans an improvement, then opens it for funding.
    page.get_by_role("link", name="New improvement").click()
    page.get_by_label("Title").fill("Export PDF")
    page.get_by_label("Budget (EUR)").fill("4000")
    page.get_by_label("Description").fill("Exporter une page en PDF.")
    page.get_by_role("button", name="Save as a draft").click()
    expect(page).to_have_url(re.compile(r"/commons/yeswiki/improvements/1$"))
    expect(page.locator("p.status")).to_have_text("Draft")
    page.get_by_role("button", name="Open for funding").click()
    expect(page.get_by_role("status")).to_have_text("The improvement is now: Open for funding.")
    expect(page.locator("p.status")).to_have_text("Open for funding")
    context.close()

    # A visitor finds it by searching a word of its summary without its accent.
    visitor_context, visitor = open_page(browser, live, watch)
    visitor.goto("/")
    expect(visitor.get_by_role("region", name="Improvements open for funding")).to_contain_text(
        "€0 of €4,000 funded (0%)"
    )
    visitor.get_by_role("navigation", name="Main").get_by_role("link", name="Commons").click()
    visitor.get_by_role("searchbox", name="Search").fill("equipe")
    visitor.get_by_role("button", name="Search").click()
    expect(visitor).to_have_url(re.compile(r"/commons\?q=equipe"))
    expect(visitor.get_by_text("1 commons")).to_be_visible()
    card = visitor.locator(".commons-card")
    expect(card).to_contain_text("Used by 1 organisation")
    expect(card).to_contain_text("1 improvement open for funding: €4,000 needed")
    card.get_by_role("link", name="YesWiki").click()
    improvements = visitor.get_by_role("region", name="Improvements")
    expect(improvements).to_contain_text("Open for funding")
    expect(improvements).to_contain_text("€0 of €4,000 funded (0%)")
    improvements.get_by_role("link", name="Export PDF").click()
    expect(visitor.get_by_role("heading", level=1)).to_have_text("Export PDF")
    bar = visitor.get_by_role("progressbar", name="Funding")
    expect(bar).to_have_attribute("max", "400000")
    expect(bar).to_have_attribute("value", "0")
    expect(visitor.get_by_text("€0 of €4,000 funded (0%)")).to_be_visible()
    expect(visitor.get_by_role("button", name="Open for funding")).to_have_count(0)

    screenshot = tmp_path / "improvement.png"
    visitor.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.read_bytes().startswith(b"\x89PNG")
    visitor_context.close()

    assert watch.outside == [], "pages tried to reach beyond 127.0.0.1"
    assert watch.problems == []
