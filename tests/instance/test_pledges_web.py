"""Pledges through their pages: estimate, confirm, refusals, cancel, pay, refund, receipts."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient
from support import csrf_token, post_form, sign_up

from catalogue.columns import utcnow
from catalogue.errors import InvalidFields
from instance.memberships import get_local_organisation
from instance.views.pledges import EstimatedMatch, clean_amount, estimate_sentence
from pledges.operations import create_program, set_program_status

COMMONS = {
    "name": "YesWiki",
    "kind": "software",
    "summary": "Un wiki pour coopérer en équipe",
    "licence": "AGPL-3.0-or-later",
}
IMPROVEMENT = {"title": "Export PDF", "description": "Exporter en PDF.", "budget": "4000"}
PAGE = "/commons/yeswiki/improvements/1"

Clients = Callable[[], TestClient]


def field_errors(html: str) -> dict[str, str]:
    return dict(re.findall(r'id="pledge-(\w+)-error">([^<]+)<', html))


def open_improvement(client: TestClient, *, status: str = "open") -> None:
    """Amina's La Fabrique maintains YesWiki, whose improvement #1 (4,000 €) gets ``status``."""
    sign_up(client, "amina@example.org")
    post_form(client, "/orgs/new", {"name": "La Fabrique", "kind": "cae"})
    post_form(client, "/commons/new", {**COMMONS, "maintainers": ["la-fabrique"]})
    post_form(client, "/commons/yeswiki/improvements/new", IMPROVEMENT)
    if status != "draft":
        response = post_form(client, f"{PAGE}/status", {"status": status}, page=PAGE)
        assert response.status_code == 303, response.text


def pledger(other_client: Clients) -> TestClient:
    """Louis, member of the tiers-lieu Le Coin."""
    browser = other_client()
    sign_up(browser, "louis@example.org")
    post_form(browser, "/orgs/new", {"name": "Le Coin", "kind": "tiers-lieu"})
    return browser


async def _programs(client: TestClient, funder_slug: str, programs: list[dict[str, Any]]) -> None:
    async with client.app.state.db.session() as session:  # type: ignore[attr-defined]
        funder = await get_local_organisation(session, funder_slug)
        assert funder is not None
        for data in programs:
            program = await create_program(session, funder, data, base_url="http://testserver")
            await set_program_status(session, program, "active", base_url="http://testserver")


def run_programs(client: TestClient, other_client: Clients) -> None:
    """France Tiers-Lieux doubles every euro (up to 500 € each); the Region adds half on top."""
    funder = other_client()
    sign_up(funder, "sophie@example.org")
    post_form(funder, "/orgs/new", {"name": "France Tiers-Lieux", "kind": "funder"})
    post_form(funder, "/orgs/new", {"name": "Région Sud", "kind": "public-body"})
    window = {
        "starts": (utcnow() - timedelta(days=1)).isoformat(),
        "ends": (utcnow() + timedelta(days=30)).isoformat(),
    }
    client.portal.call(  # type: ignore[union-attr]
        _programs,
        client,
        "france-tiers-lieux",
        [{"name": "Fonds communs", "ratio": "1", "budget": "20000", **window}],
    )
    client.portal.call(  # type: ignore[union-attr]
        _programs,
        client,
        "region-sud",
        [{"name": "Logiciels libres", "ratio": "0.5", "budget": "5000", "priority": "1", **window}],
    )


def estimate(browser: TestClient, amount: str, organisation: str = "le-coin") -> Any:
    return post_form(
        browser,
        f"{PAGE}/pledges/estimate",
        {"organisation": organisation, "amount": amount},
        page=PAGE,
    )


def pledge(browser: TestClient, amount: str, organisation: str = "le-coin") -> Any:
    return post_form(
        browser, f"{PAGE}/pledges", {"organisation": organisation, "amount": amount}, page=PAGE
    )


def pledge_ids(html: str) -> list[str]:
    return re.findall(r'/pledges/(\d+)/(?:cancel|payment|refund|receipt)"', html)


def pay(browser: TestClient, pledge_id: str, **changes: str) -> Any:
    data = {"paid_on": utcnow().date().isoformat(), "method": "Virement", "reference": "VIR-42"}
    return post_form(browser, f"/pledges/{pledge_id}/payment", {**data, **changes})


# Pure helpers.


@pytest.mark.parametrize("raw", ["0", "-5", "abc", "1.234", "", "0.00"])
def test_bad_amounts_are_refused_with_a_message(raw: str) -> None:
    with pytest.raises(InvalidFields) as refused:
        clean_amount(raw)
    assert refused.value.errors[0].field == "amount"


def test_amounts_are_read_as_cents() -> None:
    assert clean_amount("300") == 30000
    assert clean_amount("300,5") == 30050


def test_the_estimate_sentence_names_each_program_and_the_total() -> None:
    matches = [EstimatedMatch("Fonds", "France Tiers-Lieux", 30000), EstimatedMatch("LL", "R", 100)]
    assert estimate_sentence(30000, matches, "EUR") == (
        "Your €300 brings €300 from France Tiers-Lieux (Fonds) and €1 from R (LL): €601 in all."
    )
    assert "no matching funds" in estimate_sentence(30000, [], "EUR")


# Pledging.


def test_a_member_pledges_in_two_steps_and_sees_the_pledge_and_its_matches(
    client: TestClient, other_client: Clients
) -> None:
    open_improvement(client)
    run_programs(client, other_client)
    louis = pledger(other_client)
    form = louis.get(PAGE).text
    assert 'action="/commons/yeswiki/improvements/1/pledges/estimate"' in form
    assert '<option value="le-coin"' in form and "la-fabrique" not in form.split("pledge-")[-1]

    confirm = estimate(louis, "300")
    assert confirm.status_code == 200
    assert (
        "Your €300 brings €300 from France Tiers-Lieux (Fonds communs) and €150 from "
        "Région Sud (Logiciels libres): €750 in all." in confirm.text
    )
    assert client.get(PAGE).text.count("No pledge yet.") == 1  # nothing recorded yet

    made = pledge(louis, "300.00")
    assert made.status_code == 303
    assert made.headers["location"] == f"{PAGE}#pledges"
    page = louis.get(PAGE).text
    assert "Le Coin pledges €300. Thank you!" in page
    assert 'href="/orgs/le-coin">Le Coin</a>' in page and "Pledged" in page
    assert "€300 from Fonds communs" in page and "€150 from Logiciels libres" in page
    assert "€750 of €4,000 funded (18%)" in page
    organisation = louis.get("/orgs/le-coin").text
    assert "Our pledges" in organisation
    assert 'href="/commons/yeswiki/improvements/1"' in organisation


def test_the_organisation_lists_its_pledges_newest_first(
    client: TestClient, other_client: Clients
) -> None:
    open_improvement(client)
    louis = pledger(other_client)
    assert pledge(louis, "100").status_code == 303
    assert pledge(louis, "250").status_code == 303
    page = client.get("/orgs/le-coin").text
    assert page.index("€250") < page.index("€100")


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("0", "more than zero"),
        ("-5", "such as 300"),
        ("abc", "such as 300"),
        ("1.234", "such as 300"),
        ("4000.01", "Only 4000.00 EUR is still needed."),
    ],
)
def test_bad_pledges_are_refused_beside_the_amount(
    client: TestClient, other_client: Clients, amount: str, message: str
) -> None:
    open_improvement(client)
    louis = pledger(other_client)
    for step in (estimate, pledge):
        refused = step(louis, amount)
        assert refused.status_code == 422
        assert message in field_errors(refused.text)["amount"]
        assert f'value="{amount}"' in refused.text
    assert "No pledge yet." in louis.get(PAGE).text


def test_a_pledge_beyond_what_is_left_is_refused(client: TestClient, other_client: Clients) -> None:
    open_improvement(client)
    louis = pledger(other_client)
    assert pledge(louis, "3900").status_code == 303
    refused = pledge(louis, "200")
    assert refused.status_code == 422
    assert "Only 100.00 EUR is still needed." in field_errors(refused.text)["amount"]


def test_only_members_pledge_for_an_organisation(client: TestClient, other_client: Clients) -> None:
    open_improvement(client)
    pledger(other_client)
    assert estimate(client, "100", organisation="le-coin").status_code == 403
    assert pledge(client, "100", organisation="le-coin").status_code == 403
    unknown = pledge(client, "100", organisation="nobody")
    assert unknown.status_code == 422 and "organisation" in field_errors(unknown.text)
    visitor = other_client()
    assert pledge(visitor, "100").status_code == 401
    assert "Log in to pledge" in visitor.get(PAGE).text
    assert "No pledge yet." in client.get(PAGE).text


@pytest.mark.parametrize("status", ["funded", "cancelled"])
def test_an_improvement_not_open_takes_no_pledge(
    client: TestClient, other_client: Clients, status: str
) -> None:
    open_improvement(client)
    post_form(client, f"{PAGE}/status", {"status": status}, page=PAGE)
    louis = pledger(other_client)
    assert "pledges/estimate" not in louis.get(PAGE).text
    for step in (estimate, pledge):
        refused = step(louis, "100")
        assert refused.status_code == 422
        assert "not open for funding" in refused.text


def test_drafts_take_no_pledge_from_outsiders(client: TestClient, other_client: Clients) -> None:
    open_improvement(client, status="draft")
    louis = pledger(other_client)
    assert pledge(louis, "100").status_code == 404


# Cancelling, paying, refunding.


def test_members_cancel_a_pledge_before_it_is_paid(
    client: TestClient, other_client: Clients
) -> None:
    open_improvement(client)
    louis = pledger(other_client)
    pledge(louis, "300")
    (pledge_id,) = set(pledge_ids(louis.get(PAGE).text))
    assert post_form(client, f"/pledges/{pledge_id}/cancel", {}, page=PAGE).status_code == 403
    done = post_form(louis, f"/pledges/{pledge_id}/cancel", {}, page=PAGE)
    assert done.status_code == 303
    page = louis.get(PAGE).text
    assert "The pledge is cancelled." in page and "Cancelled" in page
    assert "€0 of €4,000 funded (0%)" in page
    again = post_form(louis, f"/pledges/{pledge_id}/cancel", {}, page="/")
    assert again.status_code == 409 and "Only a pledge not yet paid can be cancelled." in again.text


def test_maintainers_record_a_payment_then_refund_it(
    client: TestClient, other_client: Clients
) -> None:
    open_improvement(client)
    louis = pledger(other_client)
    pledge(louis, "300")
    (pledge_id,) = set(pledge_ids(louis.get(PAGE).text))
    assert louis.get(f"/pledges/{pledge_id}/payment").status_code == 403
    assert client.post(f"/pledges/{pledge_id}/refund").status_code == 403  # no token
    refused = post_form(client, f"/pledges/{pledge_id}/refund", {}, page=PAGE)
    assert refused.status_code == 409 and "Only a paid pledge can be refunded." in refused.text

    form = client.get(f"/pledges/{pledge_id}/payment")
    assert form.status_code == 200 and 'name="paid_on"' in form.text
    bad = pay(client, pledge_id, method="", paid_on="demain")
    assert bad.status_code == 422 and 'id="f-paid_on-error"' in bad.text
    future = pay(client, pledge_id, paid_on=(utcnow().date() + timedelta(days=3)).isoformat())
    assert future.status_code == 422 and "in the future" in future.text
    assert pay(client, pledge_id).status_code == 303
    page = client.get(PAGE).text
    assert "Paid" in page and f"/pledges/{pledge_id}/refund" in page
    assert post_form(louis, f"/pledges/{pledge_id}/cancel", {}, page=PAGE).status_code == 409
    assert post_form(louis, f"/pledges/{pledge_id}/refund", {}, page=PAGE).status_code == 403

    assert post_form(client, f"/pledges/{pledge_id}/refund", {}, page=PAGE).status_code == 303
    page = client.get(PAGE).text
    assert "Refunded" in page and "€0 of €4,000 funded (0%)" in page


def test_paying_with_the_form_of_another_member_is_refused(
    client: TestClient, other_client: Clients
) -> None:
    open_improvement(client)
    louis = pledger(other_client)
    pledge(louis, "300")
    (pledge_id,) = set(pledge_ids(louis.get(PAGE).text))
    token = csrf_token(louis, PAGE)
    data = {"paid_on": "2026-01-01", "method": "x", "csrf_token": token}
    response = louis.post(f"/pledges/{pledge_id}/payment", data=data, follow_redirects=False)
    assert response.status_code == 403


# Receipts.


def test_a_paid_pledge_has_a_receipt_for_those_concerned(
    client: TestClient, other_client: Clients
) -> None:
    open_improvement(client)
    run_programs(client, other_client)
    louis = pledger(other_client)
    pledge(louis, "300")
    (pledge_id,) = set(pledge_ids(louis.get(PAGE).text))
    assert louis.get(f"/pledges/{pledge_id}/receipt").status_code == 404  # not paid yet
    pay(client, pledge_id)
    receipt = louis.get(f"/pledges/{pledge_id}/receipt")
    assert receipt.status_code == 200
    for text in (
        "Terreau",
        f"Receipt for pledge {pledge_id}",
        "http://testserver/pledges/",
        "Le Coin",
        "Export PDF",
        "YesWiki",
        "€300",
        "Virement",
        "VIR-42",
        "Fonds communs",
        "Logiciels libres",
        "€750",
    ):
        assert text in receipt.text, text
    assert client.get(f"/pledges/{pledge_id}/receipt").status_code == 200  # a maintainer
    stranger = other_client()
    assert stranger.get(f"/pledges/{pledge_id}/receipt").status_code == 403
    sign_up(stranger, "eve@example.org")
    assert stranger.get(f"/pledges/{pledge_id}/receipt").status_code == 403
    assert client.get("/pledges/999/receipt").status_code == 404


# CSRF.


@pytest.mark.parametrize(
    "path",
    [
        f"{PAGE}/pledges/estimate",
        f"{PAGE}/pledges",
        "/pledges/1/cancel",
        "/pledges/1/payment",
        "/pledges/1/refund",
        "/pledges/999/cancel",
    ],
)
def test_every_pledge_form_checks_the_csrf_token_first(
    client: TestClient, other_client: Clients, path: str
) -> None:
    open_improvement(client)
    louis = pledger(other_client)
    pledge(louis, "100")
    response = client.post(path, data={"organisation": "la-fabrique", "amount": "10"})
    assert response.status_code == 403
    assert "security token" in response.text


def test_french_readers_see_the_estimate_in_french_amounts(
    client: TestClient, other_client: Clients
) -> None:
    open_improvement(client)
    run_programs(client, other_client)
    louis = pledger(other_client)
    post_form(louis, "/lang", {"lang": "fr", "next": "/"}, page="/")
    confirm = estimate(louis, "300").text
    assert "300\xa0€" in confirm and "150\xa0€" in confirm and "750\xa0€" in confirm
    assert "(Fonds communs) et " in confirm
