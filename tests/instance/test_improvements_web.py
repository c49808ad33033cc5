"""Improvements through their pages: planning, budgets, drafts, the life cycle, funding shown."""

from __future__ import annotations

import re
from typing import Any

import pytest
from starlette.testclient import TestClient
from support import post_form, sign_up

from instance.views.improvements import transitions

COMMONS = {
    "name": "YesWiki",
    "kind": "software",
    "summary": "Un wiki pour coopérer en équipe",
    "licence": "AGPL-3.0-or-later",
}
IMPROVEMENT = {
    "title": "Export PDF",
    "description": "Exporter une page en **PDF**.",
    "budget": "4000",
    "milestones": "Maquette: 1000\nDéveloppement: 2500",
    "provider": "",
    "deadline": "2027-03-31",
}
URL = "/commons/yeswiki/improvements"


def maintainer(client: TestClient) -> str:
    """Amina, her organisation and its commons YesWiki; returns the organisation's slug."""
    sign_up(client, "amina@example.org")
    post_form(client, "/orgs/new", {"name": "La Fabrique", "kind": "cae"})
    response = post_form(client, "/commons/new", {**COMMONS, "maintainers": ["la-fabrique"]})
    assert response.status_code == 303, response.text
    return "la-fabrique"


def plan(client: TestClient, **changes: Any) -> Any:
    return post_form(client, f"{URL}/new", {**IMPROVEMENT, **changes})


def set_status(client: TestClient, number: int, status: str) -> Any:
    return post_form(client, f"{URL}/{number}/status", {"status": status}, page=f"{URL}/{number}")


def field_errors(html: str) -> dict[str, str]:
    return dict(re.findall(r'id="f-(\w+)-error">([^<]+)<', html))


def test_transitions_follow_the_life_cycle() -> None:
    assert [target for target, _ in transitions("draft")] == ["open", "cancelled"]
    assert [target for target, _ in transitions("open")] == ["draft", "funded", "cancelled"]
    assert transitions("delivered") == []


def test_a_maintainer_plans_an_improvement_with_milestones_and_provider(
    client: TestClient,
) -> None:
    org = maintainer(client)
    response = plan(client, provider=org, allow_overfunding="1")
    assert response.status_code == 303
    assert response.headers["location"] == f"{URL}/1"
    page = client.get(f"{URL}/1").text
    assert "<h1>Export PDF</h1>" in page
    assert "Draft" in page
    assert "Exporter une page en <strong>PDF</strong>." in page
    assert "€4,000" in page
    assert "Maquette" in page and "€1,000" in page and "€2,500" in page
    assert 'href="/orgs/la-fabrique">La Fabrique</a>' in page
    assert "March 31, 2027" in page
    assert "€0 of €4,000 funded (0%)" in page
    assert '<progress max="400000" value="0"' in page
    assert "allows over-funding" in page
    assert "Open for funding" in page  # the button to the next status


def test_bad_budgets_and_milestones_are_shown_and_nothing_is_saved(client: TestClient) -> None:
    maintainer(client)
    for budget, message in (("-5", "positive amount"), ("abc", "positive amount")):
        response = plan(client, budget=budget)
        assert response.status_code == 422
        assert message in field_errors(response.text)["budget"]
    too_much = plan(client, milestones="A: 3000\nB: 3000")
    assert too_much.status_code == 422
    assert "more than the budget" in field_errors(too_much.text)["milestones"]
    unknown = plan(client, provider="nobody", title="")
    assert unknown.status_code == 422
    assert set(field_errors(unknown.text)) == {"provider", "title"}
    assert client.get(f"{URL}/1").status_code == 404


def test_drafts_are_hidden_from_outsiders(client: TestClient, other_client) -> None:
    maintainer(client)
    plan(client)
    outsider = other_client()
    assert outsider.get(f"{URL}/1").status_code == 404
    assert "Export PDF" not in outsider.get("/commons/yeswiki").text
    sign_up(outsider, "louis@example.org")
    assert outsider.get(f"{URL}/1").status_code == 404
    assert outsider.get(f"{URL}/new").status_code == 403
    assert plan(client).status_code == 303
    assert "Export PDF" in client.get("/commons/yeswiki").text  # maintainers see drafts


def test_opening_an_improvement_shows_it_everywhere_with_its_funding(
    client: TestClient, other_client
) -> None:
    maintainer(client)
    plan(client)
    assert set_status(client, 1, "open").status_code == 303
    outsider = other_client()
    page = outsider.get(f"{URL}/1")
    assert page.status_code == 200 and "Open for funding" in page.text
    assert "€0 of €4,000 funded (0%)" in outsider.get("/commons/yeswiki").text
    home = outsider.get("/").text
    assert f'href="{URL}/1"' in home and "€0 of €4,000 funded (0%)" in home
    listing = outsider.get("/commons?open=1").text
    assert "1 improvement open for funding: €4,000 needed" in listing
    assert set_status(outsider, 1, "funded").status_code == 401
    sign_up(outsider, "louis@example.org")
    assert set_status(outsider, 1, "funded").status_code == 403
    assert "Open for funding" in outsider.get(f"{URL}/1").text


def test_an_illegal_status_change_is_refused_with_a_message(client: TestClient) -> None:
    maintainer(client)
    plan(client)
    refused = set_status(client, 1, "delivered")
    assert refused.status_code == 409
    assert "cannot go from Draft to Delivered" in refused.text
    assert set_status(client, 1, "cancelled").status_code == 303
    finished = client.get(f"{URL}/1").text
    assert "Cancelled" in finished and "no longer changes" in finished
    assert set_status(client, 1, "open").status_code == 409


def test_a_maintainer_edits_an_improvement(client: TestClient) -> None:
    org = maintainer(client)
    plan(client)
    form = client.get(f"{URL}/1/edit").text
    assert 'value="4000"' in form and "Maquette: 1000" in form
    saved = post_form(
        client, f"{URL}/1/edit", {**IMPROVEMENT, "budget": "5000,50", "provider": org}
    )
    assert saved.status_code == 303
    page = client.get(f"{URL}/1").text
    assert "€5,000.50" in page and 'href="/orgs/la-fabrique"' in page
    bad = post_form(client, f"{URL}/1/edit", {**IMPROVEMENT, "budget": "0"})
    assert bad.status_code == 422
    assert "more than zero" in field_errors(bad.text)["budget"]


def test_payment_links_are_set_shown_and_changed(client: TestClient, other_client) -> None:
    maintainer(client)
    links = (
        "Payer la facture | https://pay.example.org/export?x=1&y=2\nDon <libre> | http://d.example"
    )
    assert plan(client, payment_links=links).status_code == 303
    assert set_status(client, 1, "open").status_code == 303
    page = other_client().get(f"{URL}/1").text
    assert "Support / pay" in page
    assert (
        '<a href="https://pay.example.org/export?x=1&amp;y=2" rel="payment noopener">'
        "Payer la facture</a>" in page
    )
    assert '<a href="http://d.example" rel="payment noopener">Don &lt;libre&gt;</a>' in page
    form = client.get(f"{URL}/1/edit").text
    assert "Payer la facture | https://pay.example.org/export?x=1&amp;y=2" in form

    changed = {**IMPROVEMENT, "payment_links": "Virement | https://bank.example/iban"}
    assert post_form(client, f"{URL}/1/edit", changed).status_code == 303
    page = client.get(f"{URL}/1").text
    assert 'href="https://bank.example/iban" rel="payment noopener">Virement</a>' in page
    assert "Payer la facture" not in page


def test_bad_payment_links_are_named_and_nothing_is_saved(client: TestClient) -> None:
    maintainer(client)
    refused = plan(client, payment_links="Payer | javascript:alert(1)")
    assert refused.status_code == 422
    assert field_errors(refused.text)["payment_links"] == (
        "Line 1: give a full web address starting with https://."
    )
    assert client.get(f"{URL}/1").status_code == 404

    assert plan(client, payment_links="Payer | https://pay.example.org").status_code == 303
    too_many = "\n".join(f"Part {n} | https://pay.example.org/{n}" for n in range(6))
    bad = post_form(
        client, f"{URL}/1/edit", {**IMPROVEMENT, "title": "Autre", "payment_links": too_many}
    )
    assert bad.status_code == 422
    assert field_errors(bad.text) == {"payment_links": "At most 5 payment links."}
    page = client.get(f"{URL}/1").text
    assert "<h1>Export PDF</h1>" in page  # unchanged
    assert 'href="https://pay.example.org" rel="payment noopener">Payer</a>' in page


def test_french_readers_see_french_amounts(client: TestClient) -> None:
    maintainer(client)
    plan(client)
    post_form(client, "/lang", {"lang": "fr", "next": "/"}, page="/")
    page = client.get(f"{URL}/1").text
    assert "4\u202f000\xa0€" in page


@pytest.mark.parametrize("path", [f"{URL}/9", f"{URL}/9/edit", "/commons/nothing/improvements/1"])
def test_unknown_improvements_are_not_found(client: TestClient, path: str) -> None:
    maintainer(client)
    assert client.get(path).status_code == 404
