"""A commons of another instance, found and funded from this one, in a real browser (issue #6).

Two real instances on loopback ports, each ``terreau serve`` with its in-process worker: A, a
tiers-lieux network with the demo catalogue, and B, a federation of worker cooperatives (CAE)
that follows A as an instance (``terreau follow``). A's admin opens two improvements of YesWiki
for funding in A's own pages; their ``Create`` reaches B, which stores YesWiki and both
improvements as read-only copies. On B, Camille signs up, creates her cooperative, finds YesWiki
in B's catalogue (from A, no edit link), pledges to one of its improvements with the estimate
then confirm steps, and sees the thank-you. A accepts the pledge (its page lists Camille's
cooperative, from B's host, and counts the money), and B's copy then shows A's new total.

Fields are found by their labels and buttons by their names, as a screen reader would: on a
page with two pledge forms, each form's fields must be labelled within that form.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from browsing import Watch, open_page
from live import LiveInstance, live_instance
from playwright.sync_api import Browser, Locator, Page, expect

pytestmark = pytest.mark.browser

PASSWORD = "compost et communs"
ADMIN = "admin@terreau.example"  # the demo admin
FEDERATING = {"federation": {"allow_private_addresses": True, "allow_http": True}}
#: A demo improvement of YesWiki left as a draft by ``terreau demo`` (budget 2 500 €).
DRAFT = "Traduction en occitan et en breton"
#: The improvement A's admin writes in the test, and B's cooperative pledges to.
NEW = "Agenda partagé entre tiers-lieux"
CAMILLE = ("Camille Roux", "camille@oxalis.example")
COOPERATIVE = "Oxalis"
#: How long federation may take to bring a change from one instance to the other.
FEDERATION_TIMEOUT = 20.0


def database(instance: LiveInstance) -> sqlite3.Connection:
    return sqlite3.connect(instance.directory / "data" / "terreau.db", timeout=10)


def host_of(instance: LiveInstance) -> str:
    return instance.base_url.removeprefix("http://")


def wait_for(what: str, check: Callable[[], bool], timeout: float = FEDERATION_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def reload_until(page: Page, locator: Locator, text: str) -> None:
    """Reload ``page`` until ``locator`` contains ``text`` (news from the other instance)."""
    deadline = time.monotonic() + FEDERATION_TIMEOUT
    while True:
        try:
            expect(locator).to_contain_text(text, timeout=1_000)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        page.reload()


def duplicate_ids(page: Page) -> list[str]:
    """The ids used more than once on the page (a label's ``for`` finds only the first)."""
    found: list[str] = page.evaluate(
        """() => {
            const ids = [...document.querySelectorAll("[id]")].map((e) => e.id);
            return [...new Set(ids.filter((id, i) => ids.indexOf(id) !== i))];
        }"""
    )
    return found


@pytest.fixture
def instances(tmp_path: Path) -> Iterator[tuple[LiveInstance, LiveInstance]]:
    """A (the tiers-lieux network, with the demo data) and B (the CAE federation), B following A."""
    with (
        live_instance(
            tmp_path / "tiers-lieux", name="Réseau des tiers-lieux", settings=FEDERATING
        ) as network,
        live_instance(tmp_path / "cae", name="Fédération des CAE", settings=FEDERATING) as cae,
    ):
        network.terreau("demo", "--admin-password", PASSWORD)
        cae.terreau("follow", network.base_url)

        def accepted() -> bool:
            with database(cae) as db:
                rows = db.execute("SELECT followed_uri, state FROM following").fetchall()
            return rows == [(f"{network.base_url}/actor", "accepted")]

        wait_for("A to accept B's follow", accepted)
        yield network, cae


def open_for_funding(browser: Browser, network: LiveInstance, watch: Watch) -> None:
    """On A, the demo admin opens the draft improvement and a new one for funding."""
    context, page = open_page(browser, network, watch)
    page.goto("/login")
    page.get_by_label("Email address").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).not_to_have_url(re.compile(r"/login"))

    page.goto("/commons/yeswiki")
    page.get_by_role("link", name=DRAFT).click()
    page.get_by_role("button", name="Open for funding").click()
    expect(page.locator("p.status")).to_have_text("Open for funding")

    page.goto("/commons/yeswiki")
    page.get_by_role("link", name="New improvement").click()
    page.get_by_label("Title").fill(NEW)
    page.get_by_label("Description").fill("Un agenda **commun** aux lieux du réseau.")
    page.get_by_label("Budget (EUR)").fill("3000")
    page.get_by_role("button", name="Save as a draft").click()
    page.get_by_role("button", name="Open for funding").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(NEW)
    expect(page.locator("p.status")).to_have_text("Open for funding")
    context.close()


def copies_on(cae: LiveInstance, network: LiveInstance) -> list[tuple[str, str]]:
    """The improvements B holds from A's YesWiki: (title, status)."""
    with database(cae) as db:
        return db.execute(
            "SELECT improvement.title, improvement.status FROM improvement"
            " JOIN commons ON commons.id = improvement.commons_id"
            " WHERE commons.origin = ? AND commons.slug = 'yeswiki' ORDER BY improvement.title",
            (host_of(network),),
        ).fetchall()


def test_a_cooperative_pledges_to_a_remote_commons(
    browser: Browser, instances: tuple[LiveInstance, LiveInstance]
) -> None:
    network, cae = instances
    origin = host_of(network)
    watch = Watch()

    open_for_funding(browser, network, watch)
    # B also holds the two the demo opened (``terreau demo`` announces what it loads).
    wait_for(
        "B to hold both improvements of A's YesWiki",
        lambda: {(NEW, "open"), (DRAFT, "open")} <= set(copies_on(cae, network)),
    )

    # On B, Camille signs up and creates her cooperative.
    context, page = open_page(browser, cae, watch)
    page.goto("/signup")
    page.get_by_label("Your name").fill(CAMILLE[0])
    page.get_by_label("Email address").fill(CAMILLE[1])
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create my account").click()
    expect(page).to_have_url(re.compile(r"/account$"))
    page.get_by_role("link", name="Create an organisation").click()
    page.get_by_label("Name").fill(COOPERATIVE)
    page.get_by_label("Kind").select_option(label="Worker cooperative (CAE)")
    page.get_by_role("button", name="Create", exact=True).click()
    expect(page).to_have_url(re.compile(r"/orgs/oxalis$"))

    # She finds YesWiki in B's catalogue: a copy, from A.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Commons").click()
    page.get_by_role("search").get_by_label("Search").fill("yeswiki")
    page.get_by_role("search").get_by_role("button", name="Search").click()
    # exact: the demo's catalogue, read from A too, has other commons named after YesWiki.
    yeswiki = page.get_by_role("link", name="YesWiki", exact=True)
    card = page.locator("li.commons-card").filter(has=yeswiki)
    expect(card).to_have_count(1)
    expect(card).to_contain_text(f"from {origin}")
    expect(card).to_contain_text("4 improvements open for funding")  # the demo's two, and A's
    card.get_by_role("link", name="YesWiki", exact=True).click()

    # Its page says where it comes from, and is read-only here.
    expect(page).to_have_url(re.compile(rf"/commons/yeswiki@{re.escape(origin)}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("YesWiki")
    expect(page.locator("header .origin")).to_have_text(f"from {origin}")
    expect(page.get_by_role("link", name=f"See it on {origin}")).to_have_attribute(
        "href", f"{network.base_url}/commons/yeswiki"
    )
    expect(page.get_by_text(f"This commons is edited on {origin}")).to_be_visible()
    expect(page.get_by_role("link", name="Edit", exact=True)).to_have_count(0)
    expect(page.get_by_role("link", name="New improvement")).to_have_count(0)
    assert duplicate_ids(page) == []

    # Both improvements are listed with A's figures; she pledges 250 € to the new one.
    improvements = page.get_by_role("region", name="Improvements")
    chosen = improvements.get_by_role("listitem").filter(has=page.get_by_role("heading", name=NEW))
    other = improvements.get_by_role("listitem").filter(has=page.get_by_role("heading", name=DRAFT))
    expect(chosen.get_by_role("link", name=NEW)).to_have_attribute(
        "href", re.compile(rf"^{re.escape(network.base_url)}/commons/yeswiki/improvements/\d+$")
    )
    expect(chosen.locator(".funding-text")).to_have_text("€0 of €3,000 funded (0%)")
    expect(other.locator(".funding-text")).to_have_text("€0 of €2,500 funded (0%)")
    chosen.get_by_text(f"Pledge to {NEW}").click()
    form = chosen.get_by_role("form")
    expect(form.get_by_label("Organisation")).to_have_value("oxalis")
    form.get_by_label("Amount (EUR)").fill("250")
    form.get_by_role("button", name="See what it brings").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm the pledge")
    expect(page.locator("p.estimate")).to_have_text(
        "Your €250 brings no matching funds at the moment."
    )
    page.get_by_role("button", name="Confirm").click()
    expect(page).to_have_url(re.compile(rf"/commons/yeswiki@{re.escape(origin)}#improvement-\d+$"))
    expect(page.get_by_role("status")).to_have_text(f"{COOPERATIVE} pledges €250. Thank you!")
    # Back on the improvement's card, which lists the pledge made here.
    anchor = page.url.rsplit("#", 1)[1]
    expect(page.locator(f"#{anchor}").get_by_role("heading", name=NEW)).to_be_visible()
    expect(chosen.locator(".pledges-here")).to_contain_text(f"{COOPERATIVE}: €250 · Pledged")

    # A accepted it: its own page lists the cooperative, from B, and counts the money.
    with database(cae) as db:
        (pledge_uri,) = db.execute("SELECT uri FROM pledge").fetchone()
    assert pledge_uri.startswith(f"{cae.base_url}/")

    def accepted_on_a() -> bool:
        with database(network) as db:
            held = db.execute(
                "SELECT status, amount_cents, currency, origin FROM pledge WHERE uri = ?",
                (pledge_uri,),
            ).fetchall()
        return held == [("pledged", 25_000, "EUR", host_of(cae))]

    wait_for("A to accept the pledge", accepted_on_a)
    chosen.get_by_role("link", name=NEW).click()  # the improvement's page, on A
    expect(page).to_have_url(re.compile(rf"^{re.escape(network.base_url)}/commons/yeswiki/"))
    expect(page.get_by_role("heading", level=1)).to_have_text(NEW)
    expect(page.locator(".funding-text")).to_have_text("€250 of €3,000 funded (8%)")
    row = page.get_by_role("region", name="Pledges").get_by_role("row").filter(has_text=COOPERATIVE)
    expect(row).to_contain_text(f"from {host_of(cae)}")
    expect(row).to_contain_text("€250")
    expect(row).to_contain_text("Pledged")

    # A's Update of the improvement reaches B: its copy shows the same total, and only there.
    page.go_back()
    expect(page).to_have_url(re.compile(rf"/commons/yeswiki@{re.escape(origin)}"))
    reload_until(page, chosen.locator(".funding-text"), "€250 of €3,000 funded (8%)")
    expect(other.locator(".funding-text")).to_have_text("€0 of €2,500 funded (0%)")
    context.close()

    assert watch.outside == [], "pages tried to reach beyond 127.0.0.1"
    assert watch.problems == []
