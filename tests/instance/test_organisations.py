"""Organisations and their members, through the pages people use."""

from __future__ import annotations

import re

from starlette.testclient import TestClient
from support import make_settings, post_form, sign_up

from instance.app import create_app

ORG = {
    "name": "La Fabrique du Coin",
    "slug": "",
    "kind": "tiers-lieu",
    "description": "A fablab in Lyon.",
    "website": "https://fabrique.example",
    "territory": "department:69",
    "siret": "",
}


def create_org(client: TestClient, **changes: str):
    return post_form(client, "/orgs/new", {**ORG, **changes})


def test_a_member_creates_an_organisation_and_becomes_its_admin(client: TestClient) -> None:
    sign_up(client, "amina@example.org", name="Amina")
    response = create_org(client)
    assert response.status_code == 303
    assert response.headers["location"] == "/orgs/la-fabrique-du-coin"  # slug made from the name
    page = client.get("/orgs/la-fabrique-du-coin")
    assert "La Fabrique du Coin" in page.text
    assert "Rhône (69)" in page.text
    assert "Tiers-lieu" in page.text
    assert 'href="/orgs/la-fabrique-du-coin/settings"' in page.text
    assert "Amina · admin" in page.text
    assert "La Fabrique du Coin" in client.get("/orgs").text
    assert "La Fabrique du Coin" in client.get("/account").text


def test_creating_an_organisation_needs_an_account(client: TestClient) -> None:
    response = client.get("/orgs/new", follow_redirects=False)
    assert response.headers["location"] == "/login?next=/orgs/new"


def test_wrong_fields_are_shown_beside_each_input(client: TestClient) -> None:
    sign_up(client, "a@example.org")
    response = create_org(
        client,
        name="",
        slug="Bad Slug!",
        kind="castle",
        website="fabrique.example",
        territory="department:99",
        siret="73282932000075",
    )
    assert response.status_code == 422
    errors = dict(re.findall(r'id="f-(\w+)-error">([^<]+)<', response.text))
    assert set(errors) == {"name", "slug", "kind", "website", "territory", "siret"}
    assert "check digit" in errors["siret"]


def test_a_duplicate_slug_is_refused(client: TestClient) -> None:
    sign_up(client, "a@example.org")
    assert create_org(client, slug="fabrique").status_code == 303
    response = create_org(client, slug="fabrique", name="Another")
    assert response.status_code == 422
    assert "Another organisation already uses this address." in response.text


def test_a_valid_siret_is_kept_without_spaces(client: TestClient) -> None:
    sign_up(client, "a@example.org")
    assert create_org(client, siret="732 829 320 00074").status_code == 303
    assert "73282932000074" in client.get("/orgs/la-fabrique-du-coin").text


def test_the_admin_edits_settings_and_others_may_not(client: TestClient, other_client) -> None:
    admin, other = client, other_client()
    if True:
        sign_up(admin, "admin@example.org")
        create_org(admin)
        response = post_form(
            admin,
            "/orgs/la-fabrique-du-coin/settings",
            {**ORG, "name": "La Fabrique", "kind": "association"},
        )
        assert response.status_code == 303
        assert "La Fabrique" in admin.get("/orgs/la-fabrique-du-coin").text
        sign_up(other, "other@example.org")
        assert other.get("/orgs/la-fabrique-du-coin/settings").status_code == 403
        assert other.get("/orgs/la-fabrique-du-coin/members").status_code == 403
        assert "/settings" not in other.get("/orgs/la-fabrique-du-coin").text


def test_an_admin_adds_changes_and_removes_members(client: TestClient, other_client) -> None:
    admin, louis = client, other_client()
    if True:
        sign_up(louis, "louis@example.org", name="Louis")
        sign_up(admin, "admin@example.org", name="Amina")
        create_org(admin)
        members = "/orgs/la-fabrique-du-coin/members"

        unknown = post_form(admin, members, {"email": "nobody@example.org", "role": "member"})
        assert unknown.status_code == 422 and "ask them to sign up first" in unknown.text

        assert (
            post_form(admin, members, {"email": "Louis@example.org", "role": "member"}).status_code
            == 303
        )
        again = post_form(admin, members, {"email": "louis@example.org", "role": "member"})
        assert again.status_code == 422 and "already a member" in again.text
        assert "La Fabrique du Coin" in louis.get("/account").text
        assert louis.get("/orgs/la-fabrique-du-coin/settings").status_code == 403

        page = admin.get(members).text
        louis_id = re.search(
            r'members/(\d+)/role"[^>]*>\s*<input[^>]*>\s*<label[^>]*>Role of Louis', page
        )
        assert louis_id
        role_url = f"{members}/{louis_id.group(1)}/role"
        assert post_form(admin, role_url, {"role": "admin"}, page=members).status_code == 303
        assert louis.get("/orgs/la-fabrique-du-coin/settings").status_code == 200

        remove_url = f"{members}/{louis_id.group(1)}/remove"
        assert post_form(admin, remove_url, {}, page=members).status_code == 303
        assert "La Fabrique du Coin" not in louis.get("/account").text
        assert louis.get("/orgs/la-fabrique-du-coin/settings").status_code == 403


def test_the_last_admin_cannot_leave(client: TestClient) -> None:
    sign_up(client, "admin@example.org", name="Amina")
    create_org(client)
    members = "/orgs/la-fabrique-du-coin/members"
    own_id = re.search(r"members/(\d+)/remove", client.get(members).text)
    assert own_id
    response = post_form(client, f"{members}/{own_id.group(1)}/remove", {}, page=members)
    assert response.status_code == 409
    assert "keeps at least one admin" in response.text
    demote = post_form(
        client, f"{members}/{own_id.group(1)}/role", {"role": "member"}, page=members
    )
    assert demote.status_code == 409


def test_the_list_sorts_accented_names_among_the_others(client: TestClient) -> None:
    sign_up(client, "a@example.org")
    for name in ("Terre Commune", "Élan Coopératif", "atelier des communs"):
        create_org(client, name=name)
    page = client.get("/orgs").text
    positions = [
        page.index(f">{name}<")
        for name in ("atelier des communs", "Élan Coopératif", "Terre Commune")
    ]
    assert positions == sorted(positions)


def test_unknown_organisations_and_bad_pages_get_clear_errors(client: TestClient) -> None:
    assert client.get("/orgs/nope").status_code == 404
    assert client.get("/orgs?page=zero").status_code == 400
    assert client.get("/orgs?kind=castle").status_code == 400


def test_the_list_filters_by_kind_and_paginates(database_url: str, tmp_path) -> None:
    settings = make_settings(database_url, tmp_path, limits={"page_size": 2})
    with TestClient(create_app(settings)) as client:
        sign_up(client, "a@example.org")
        for index in range(3):
            create_org(client, name=f"Lieu {index}", slug=f"lieu-{index}")
        create_org(client, name="Une CAE", slug="une-cae", kind="cae")
        client.get("/")  # shows, and so clears, the "created" message
        page_one = client.get("/orgs?kind=tiers-lieu")
        assert "3 organisations" in page_one.text and "Lieu 0" in page_one.text
        assert "Une CAE" not in page_one.text
        assert "Page 1 of 2" in page_one.text
        assert "Lieu 2" not in page_one.text
        assert "Lieu 2" in client.get("/orgs?kind=tiers-lieu&page=2").text


def test_a_wrong_setting_redisplays_the_form(client: TestClient) -> None:
    sign_up(client, "a@example.org")
    create_org(client)
    response = post_form(client, "/orgs/la-fabrique-du-coin/settings", {**ORG, "name": ""})
    assert response.status_code == 422
    assert "Give the organisation&#39;s name." in response.text
    assert "La Fabrique du Coin" in client.get("/orgs/la-fabrique-du-coin").text
