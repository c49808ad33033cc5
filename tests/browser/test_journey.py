"""One person's first visit, end to end, in a real browser against a real instance.

Amina signs up, creates her tiers-lieu's organisation, adds Louis (who signed up before her) as
a member, logs out, logs back in and switches the site to French. Every field is found by its
label and every button or link by its role and name, as a screen reader would: a form that
loses its labels fails here, not only in an audit.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from browsing import Watch, open_page
from live import LiveInstance
from playwright.sync_api import (
    Browser,
    Locator,
    Page,
    expect,
)

pytestmark = pytest.mark.browser

PASSWORD = "compost et communs"
AMINA = ("Amina Diallo", "amina@fabrique.example")
LOUIS = ("Louis Martin", "louis@fabrique.example")
ORGANISATION = "La Fabrique du Coin"


def main_nav(page: Page) -> Locator:
    """The site's menu (English pages), where the account links and buttons live."""
    return page.get_by_role("navigation", name="Main")


def sign_up(page: Page, name: str, email: str) -> None:
    page.goto("/")
    main_nav(page).get_by_role("link", name="Sign up").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Create an account")
    # Labels end with an aria-hidden "*": found by their text, heard without the star.
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    expect(page.get_by_role("textbox", name="Your name", exact=True)).to_have_value(name)
    page.get_by_role("button", name="Create my account").click()
    expect(page).to_have_url(re.compile(r"/account$"))
    expect(page.get_by_role("status")).to_have_text(f"Welcome, {name}! Your account is ready.")
    expect(page.get_by_role("heading", level=1)).to_have_text(name)


def log_out(page: Page) -> None:
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("status")).to_have_text("You are logged out.")
    expect(main_nav(page).get_by_role("link", name="Log in")).to_be_visible()


def test_sign_up_create_an_organisation_add_a_member_and_switch_to_french(
    browser: Browser, live: LiveInstance, tmp_path: Path
) -> None:
    watch = Watch()

    # Louis has an account already (only someone with an account can be added as a member).
    louis_context, louis = open_page(browser, live, watch)
    sign_up(louis, *LOUIS)
    log_out(louis)
    louis_context.close()

    context, page = open_page(browser, live, watch)
    page.goto("/")
    expect(page.locator("html")).to_have_attribute("lang", "en")  # from Accept-Language
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()

    # Amina signs up and lands on her profile.
    sign_up(page, *AMINA)
    expect(page.get_by_text(AMINA[1])).to_be_visible()
    expect(page.get_by_text("You are not a member of any organisation yet.")).to_be_visible()

    # She creates her tiers-lieu's organisation.
    page.get_by_role("link", name="Create an organisation").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Create an organisation")
    page.get_by_label("Name").fill(ORGANISATION)
    page.get_by_label("Kind").select_option(label="Tiers-lieu")
    page.get_by_label("Territory", exact=True).select_option(label="Rhône (69)")
    page.get_by_role("button", name="Create", exact=True).click()
    expect(page).to_have_url(re.compile(r"/orgs/la-fabrique-du-coin$"))
    expect(page.get_by_role("status")).to_have_text(
        f"{ORGANISATION} is created; you are its admin."
    )
    expect(page.get_by_role("heading", level=1)).to_have_text(ORGANISATION)
    facts = page.locator("dl.facts")
    expect(facts).to_contain_text("Tiers-lieu")
    expect(facts).to_contain_text("Rhône (69)")
    people = page.get_by_role("region", name="Members")
    expect(people.get_by_role("listitem")).to_have_text([f"{AMINA[0]} · admin"])

    # She adds Louis by the email address of his account.
    page.get_by_role("link", name="Members", exact=True).click()
    expect(page).to_have_url(re.compile(r"/orgs/la-fabrique-du-coin/members$"))
    page.get_by_label("Email address of their account").fill(LOUIS[1])
    expect(page.get_by_label("Role", exact=True)).to_have_value("member")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("The member is added.")
    table = page.get_by_role("table", name="Members and their roles")
    louis_row = table.get_by_role("row").filter(has_text=LOUIS[0])
    expect(louis_row).to_have_count(1)
    expect(louis_row).to_contain_text(LOUIS[1])
    expect(page.get_by_label(f"Role of {LOUIS[0]}", exact=True)).to_have_value("member")
    expect(page.get_by_role("button", name=f"Remove {LOUIS[0]}")).to_be_visible()
    expect(page.get_by_role("button", name=f"Change the role of {LOUIS[0]}")).to_be_visible()
    expect(page.get_by_label(f"Role of {AMINA[0]}", exact=True)).to_have_value("admin")

    # She logs out and back in, then opens her profile from the menu.
    log_out(page)
    main_nav(page).get_by_role("link", name="Log in").click()
    page.get_by_label("Email address").fill(AMINA[1])
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    main_nav(page).get_by_role("link", name="My account").click()
    expect(page).to_have_url(re.compile(r"/account$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(AMINA[0])
    mine = page.get_by_role("region", name="My organisations")
    expect(mine.get_by_role("link", name=ORGANISATION)).to_be_visible()

    # She switches the site to French with the header's form, and stays on the same page.
    page.get_by_label("Language", exact=True).select_option(label="Français")
    page.get_by_role("button", name="Change language").click()
    expect(page).to_have_url(re.compile(r"/account$"))
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    french_nav = page.get_by_role("navigation", name="Menu principal")
    expect(french_nav.get_by_role("link", name="Mon compte")).to_be_visible()
    expect(french_nav.get_by_role("button", name="Se déconnecter")).to_be_visible()
    expect(page.get_by_role("heading", name="Mes organisations")).to_be_visible()

    # The choice sticks on the next page, though the browser still asks for English.
    page.get_by_role("region", name="Mes organisations").get_by_role(
        "link", name=ORGANISATION
    ).click()
    expect(page).to_have_url(re.compile(r"/orgs/la-fabrique-du-coin$"))
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.get_by_role("link", name="Aller au contenu")).to_be_attached()
    expect(page.locator("dl.facts dt").first).to_have_text("Type")
    expect(page.get_by_role("link", name="Paramètres")).to_be_visible()
    expect(page.get_by_role("region", name="Membres").get_by_role("listitem")).to_have_text(
        [f"{AMINA[0]} · admin", LOUIS[0]]
    )

    # Proof that the page renders (kept in tmp_path for a look when the test fails).
    screenshot = tmp_path / "organisation.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.read_bytes().startswith(b"\x89PNG")
    context.close()

    # Her account remembers it too: logging in from another browser brings French back.
    elsewhere, page = open_page(browser, live, watch)
    page.goto("/login")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.get_by_label("Email address").fill(AMINA[1])
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.get_by_role("button", name="Se déconnecter")).to_be_visible()
    elsewhere.close()

    assert watch.outside == [], "pages tried to reach beyond 127.0.0.1"
    assert watch.problems == []
