"""ActivityPub's read side through the running app: actors behind the pages' own addresses,
WebFinger, host-meta, NodeInfo, outboxes and followers, and one namespace of slugs."""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlmodel import select
from starlette.testclient import TestClient
from support import csrf_token, make_settings, post_form, sign_up

from catalogue.columns import utcnow
from federation.models import Follower, OutboxActivity
from instance.accounts import Account
from instance.app import create_app
from instance.database import Database

AS = "application/activity+json"
LD = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
MASTODON = f"{AS}, {LD}, text/html;q=0.1"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
BASE = "http://testserver"
COMMONS = {
    "name": "YesWiki",
    "slug": "",
    "kind": "software",
    "maturity": "stable",
    "summary": "Un wiki pour coopérer <vraiment>",
    "licence": "AGPL-3.0-or-later",
}


# Making things the way people do.


def new_organisation(client: TestClient, name: str = "La Fabrique", slug: str = "") -> Any:
    return post_form(client, "/orgs/new", {"name": name, "kind": "tiers-lieu", "slug": slug})


def new_commons(client: TestClient, maintainer: str, **changes: str) -> Any:
    return post_form(client, "/commons/new", {**COMMONS, **changes, "maintainers": [maintainer]})


def founder(client: TestClient) -> str:
    """Amina and her organisation, La Fabrique (slug ``la-fabrique``)."""
    sign_up(client, "amina@example.org")
    assert new_organisation(client).status_code == 303
    return "la-fabrique"


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (47, 107, 58)).save(buffer, format="PNG")
    return buffer.getvalue()


async def make_moderator(database_url: str, email: str) -> None:
    database = Database(database_url)
    async with database.session() as session:
        account = (await session.exec(select(Account).where(Account.email == email))).one()
        account.instance_role = "moderator"
        session.add(account)
        await session.commit()
    await database.dispose()


async def set_last_logins(database_url: str, logins: dict[str, timedelta | None]) -> None:
    database = Database(database_url)
    async with database.session() as session:
        for email, ago in logins.items():
            account = (await session.exec(select(Account).where(Account.email == email))).one()
            account.last_login_at = utcnow() - ago if ago is not None else None
            session.add(account)
        await session.commit()
    await database.dispose()


def get_as(client: TestClient, path: str, accept: str = AS) -> Any:
    return client.get(path, headers={"accept": accept}, follow_redirects=False)


def slug_error(html: str) -> str:
    errors = dict(re.findall(r'id="f-(\w+)-error">([^<]+)<', html))
    return errors.get("slug", "")


# One address, two documents.


@pytest.mark.parametrize("accept", [AS, LD, MASTODON, "application/ld+json"])
def test_an_organisations_address_gives_its_actor_to_servers(
    client: TestClient, accept: str
) -> None:
    org = founder(client)
    response = get_as(client, f"/orgs/{org}", accept)
    assert response.status_code == 200
    assert response.headers["content-type"] == AS
    assert "accept" in response.headers["vary"].lower()
    actor = response.json()
    assert actor["id"] == f"{BASE}/orgs/{org}"
    assert actor["type"] == "Organization"
    assert actor["preferredUsername"] == org
    assert actor["name"] == "La Fabrique"
    assert actor["url"] == f"{BASE}/orgs/{org}"
    assert actor["endpoints"]["sharedInbox"] == f"{BASE}/inbox"
    assert actor["publicKey"]["id"] == f"{BASE}/orgs/{org}#main-key"
    assert actor["assertionMethod"][0]["publicKeyMultibase"].startswith("z6Mk")


def test_the_same_address_gives_the_page_to_browsers(client: TestClient) -> None:
    org = founder(client)
    for accept in (BROWSER, "text/html", "", "*/*", f"text/html, {AS};q=0.5"):
        page = client.get(f"/orgs/{org}", headers={"accept": accept})
        assert page.status_code == 200, accept
        assert page.headers["content-type"].startswith("text/html"), accept
        assert "accept" in page.headers["vary"].lower(), accept
        assert "<html" in page.text and "La Fabrique" in page.text, accept


def test_the_actors_keys_stay_the_same_from_one_request_to_the_next(client: TestClient) -> None:
    org = founder(client)
    first = get_as(client, f"/orgs/{org}").json()
    again = get_as(client, f"/orgs/{org}", MASTODON).json()
    assert first["publicKey"] == again["publicKey"]
    assert first["assertionMethod"] == again["assertionMethod"]


def test_a_head_request_is_negotiated_too(client: TestClient) -> None:
    org = founder(client)
    response = client.head(f"/orgs/{org}", headers={"accept": AS})
    assert response.status_code == 200
    assert response.headers["content-type"] == AS


def test_a_commons_is_a_group_whose_logo_is_its_icon(client: TestClient) -> None:
    org = founder(client)
    token = csrf_token(client, "/commons/new")
    created = client.post(
        "/commons/new",
        data={**COMMONS, "maintainers": [org], "csrf_token": token},
        files={"logo": ("logo.png", png(), "image/png")},
        follow_redirects=False,
    )
    assert created.status_code == 303
    actor = get_as(client, "/commons/yeswiki", MASTODON).json()
    assert actor["type"] == "Group"
    assert actor["id"] == f"{BASE}/commons/yeswiki"
    assert actor["summary"] == "<p>Un wiki pour coopérer &lt;vraiment&gt;</p>"
    assert actor["icon"]["type"] == "Image"
    assert actor["icon"]["mediaType"] == "image/png"
    icon = client.get(actor["icon"]["url"].removeprefix(BASE))
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/png"
    page = client.get("/commons/yeswiki", headers={"accept": BROWSER})
    assert page.headers["content-type"].startswith("text/html")


def test_the_instance_actor_is_always_activitystreams(client: TestClient) -> None:
    for accept in (AS, BROWSER):
        response = client.get("/actor", headers={"accept": accept})
        assert response.status_code == 200
        assert response.headers["content-type"] == AS
        actor = response.json()
        assert actor["type"] == "Application"
        assert actor["id"] == f"{BASE}/actor"
        assert actor["preferredUsername"] == "instance"
        assert actor["inbox"] == f"{BASE}/actor/inbox"


def test_unknown_actors_are_404_with_a_reason(client: TestClient) -> None:
    for path in ("/orgs/nobody", "/commons/nothing", "/orgs/new"):
        response = get_as(client, path)
        assert response.status_code == 404, path
        assert response.json()["detail"] == "no such actor here"
        assert "accept" in response.headers["vary"].lower()


async def test_a_hidden_or_merged_commons_is_no_actor(
    client: TestClient, other_client: Any, database_url: str
) -> None:
    org = founder(client)
    assert new_commons(client, org).status_code == 303
    assert new_commons(client, org, name="Doublon", slug="doublon").status_code == 303
    assert new_commons(client, org, name="Caché", slug="cache").status_code == 303
    assert get_as(client, "/commons/cache").status_code == 200
    mod = other_client()
    sign_up(mod, "mod@example.org")
    await make_moderator(database_url, "mod@example.org")
    assert post_form(mod, "/commons/cache/hide", {}, page="/commons").status_code == 303
    merged = post_form(mod, "/commons/doublon/merge", {"target": "yeswiki"}, page="/commons")
    assert merged.status_code == 303

    for slug in ("cache", "doublon"):
        assert get_as(client, f"/commons/{slug}").status_code == 404
        assert get_as(client, f"/commons/{slug}/outbox").status_code == 404
        finger = client.get(f"/.well-known/webfinger?resource=acct:{slug}@testserver")
        assert finger.status_code == 404
    # People still get what the pages give them: the merged one leads to its target.
    assert client.get("/commons/doublon", follow_redirects=False).status_code == 301
    assert get_as(client, "/commons/yeswiki").status_code == 200


# WebFinger, host-meta, NodeInfo.


def test_webfinger_leads_from_each_actors_address_back_to_it(client: TestClient) -> None:
    org = founder(client)
    assert new_commons(client, org).status_code == 303
    for path in (f"/orgs/{org}", "/commons/yeswiki", "/actor"):
        actor = get_as(client, path).json()
        # What Mastodon does: preferredUsername@host must lead back to the same id.
        address = f"acct:{actor['preferredUsername']}@testserver"
        response = client.get("/.well-known/webfinger", params={"resource": address})
        assert response.status_code == 200, path
        assert response.headers["content-type"] == "application/jrd+json"
        assert response.headers["access-control-allow-origin"] == "*"
        jrd = response.json()
        assert jrd["subject"] == address
        (self_link,) = [link for link in jrd["links"] if link["rel"] == "self"]
        assert self_link == {"rel": "self", "type": AS, "href": actor["id"]}
        (page,) = [link for link in jrd["links"] if link["rel"].endswith("profile-page")]
        assert page["href"] == actor["url"] and page["type"] == "text/html"
        assert actor["id"] in jrd["aliases"]
        # The other forms of the question get the same answer.
        for other in (address.removeprefix("acct:"), actor["id"]):
            same = client.get("/.well-known/webfinger", params={"resource": other})
            assert same.json() == jrd, other


def test_webfinger_refuses_other_domains_and_bad_questions(client: TestClient) -> None:
    founder(client)
    foreign = client.get("/.well-known/webfinger?resource=acct:la-fabrique@mastodon.example")
    assert foreign.status_code == 404
    assert foreign.headers["access-control-allow-origin"] == "*"
    assert "testserver" in foreign.json()["detail"]
    assert client.get("/.well-known/webfinger?resource=acct:nobody@testserver").status_code == 404
    missing = client.get("/.well-known/webfinger")
    assert missing.status_code == 400
    assert missing.json()["detail"] == "the resource parameter is missing"
    assert client.get("/.well-known/webfinger?resource=la-fabrique").status_code == 400


def test_host_meta_gives_the_webfinger_template(client: TestClient) -> None:
    response = client.get("/.well-known/host-meta")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xrd+xml")
    root = ET.fromstring(response.text)  # noqa: S314 - our own document
    (link,) = list(root)
    template = link.get("template", "")
    assert template == f"{BASE}/.well-known/webfinger?resource={{uri}}"
    founder(client)
    followed = client.get(template.format(uri="acct:la-fabrique@testserver").removeprefix(BASE))
    assert followed.status_code == 200


async def test_nodeinfo_counts_people_and_public_things(
    client: TestClient, other_client: Any, database_url: str
) -> None:
    org = founder(client)
    people = [other_client() for _ in range(3)]
    for index, person in enumerate(people):
        sign_up(person, f"person{index}@example.org")
    for name, slug in (("YesWiki", "yeswiki"), ("Dokos", "dokos"), ("Caché", "cache")):
        assert new_commons(client, org, name=name, slug=slug).status_code == 303
    improvement = {"title": "Export PDF", "budget": "4000", "milestones": "", "provider": ""}
    url = "/commons/yeswiki/improvements"
    assert post_form(client, f"{url}/new", improvement).status_code == 303  # a draft: not counted
    assert post_form(client, f"{url}/new", {**improvement, "title": "Agenda"}).status_code == 303
    opened = post_form(client, f"{url}/2/status", {"status": "open"}, page=f"{url}/2")
    assert opened.status_code == 303
    await make_moderator(database_url, "person0@example.org")
    assert post_form(people[0], "/commons/cache/hide", {}, page="/commons").status_code == 303
    await set_last_logins(
        database_url,
        {
            "amina@example.org": timedelta(days=2),
            "person0@example.org": timedelta(days=100),
            "person1@example.org": timedelta(days=400),
            "person2@example.org": None,
        },
    )

    links = client.get("/.well-known/nodeinfo")
    assert links.headers["access-control-allow-origin"] == "*"
    (link,) = links.json()["links"]
    assert link["rel"] == "http://nodeinfo.diaspora.software/ns/schema/2.1"
    response = client.get(link["href"].removeprefix(BASE))
    assert response.status_code == 200
    assert response.headers["content-type"] == (
        'application/json; profile="http://nodeinfo.diaspora.software/ns/schema/2.1#"'
    )
    assert response.headers["access-control-allow-origin"] == "*"
    info = response.json()
    assert info["software"]["name"] == "terreau"
    assert info["protocols"] == ["activitypub"]
    assert info["openRegistrations"] is True
    assert info["usage"] == {
        "users": {"total": 4, "activeMonth": 1, "activeHalfyear": 2},
        "localPosts": 3,  # two visible commons and one open improvement
    }


# Outboxes and followers.


async def store(database_url: str, *rows: OutboxActivity | Follower) -> None:
    database = Database(database_url)
    async with database.session() as session:
        for row in rows:
            session.add(row)
        await session.commit()
    await database.dispose()


def activity(actor: str, number: int, public: bool = True) -> OutboxActivity:
    uri = f"{actor}/activities/{number}"
    body = {"@context": "https://www.w3.org/ns/activitystreams", "id": uri, "type": "Create"}
    return OutboxActivity(
        uri=uri, actor_uri=actor, type="Create", body=json.dumps(body), public=public
    )


async def test_an_outbox_pages_public_activities_newest_first(
    client: TestClient, database_url: str
) -> None:
    org = founder(client)
    actor = f"{BASE}/orgs/{org}"
    await store(
        database_url,
        *[activity(actor, n) for n in range(1, 24)],
        activity(actor, 24, public=False),
        activity(f"{BASE}/actor", 25),
    )
    box = f"{actor}/outbox"
    collection = get_as(client, f"/orgs/{org}/outbox").json()
    assert collection["type"] == "OrderedCollection"
    assert collection["id"] == box
    assert collection["totalItems"] == 23
    assert (collection["first"], collection["last"]) == (f"{box}?page=1", f"{box}?page=2")

    first = client.get(collection["first"].removeprefix(BASE))
    assert first.headers["content-type"] == AS
    page = first.json()
    assert page["type"] == "OrderedCollectionPage"
    assert page["partOf"] == box
    assert [item["id"] for item in page["orderedItems"]] == [
        f"{actor}/activities/{n}" for n in range(23, 3, -1)
    ]
    assert "prev" not in page
    second = client.get(page["next"].removeprefix(BASE)).json()
    assert [item["id"] for item in second["orderedItems"]] == [
        f"{actor}/activities/{n}" for n in (3, 2, 1)
    ]
    assert second["prev"] == f"{box}?page=1" and "next" not in second
    beyond = client.get(f"/orgs/{org}/outbox?page=7").json()
    assert beyond["orderedItems"] == [] and beyond["prev"] == f"{box}?page=2"

    instance = client.get("/actor/outbox").json()
    assert instance["totalItems"] == 1


@pytest.mark.parametrize("page", ["abc", "0", "-2", "", "1.5", "99999999999"])
def test_a_bad_page_number_is_400_with_a_reason(client: TestClient, page: str) -> None:
    for path in ("/actor/outbox", "/actor/followers"):
        response = client.get(path, params={"page": page})
        assert response.status_code == 400
        assert "whole number" in response.json()["detail"]


def test_an_empty_outbox_still_has_a_first_page(client: TestClient) -> None:
    org = founder(client)
    assert new_commons(client, org).status_code == 303
    collection = client.get("/commons/yeswiki/outbox").json()
    assert collection["totalItems"] == 0
    page = client.get("/commons/yeswiki/outbox?page=1").json()
    assert page["orderedItems"] == [] and "next" not in page
    assert client.get("/orgs/nobody/outbox").status_code == 404
    assert client.get("/commons/nothing/followers").status_code == 404


async def test_followers_are_counted_and_listed(client: TestClient, database_url: str) -> None:
    org = founder(client)
    assert new_commons(client, org).status_code == 303
    actor = f"{BASE}/commons/yeswiki"
    followers = [
        Follower(
            actor_uri=actor,
            follower_uri=f"https://mastodon.example/users/{n}",
            inbox=f"https://mastodon.example/users/{n}/inbox",
            follow_id=f"https://mastodon.example/follows/{n}",
        )
        for n in range(22)
    ]
    other = Follower(
        actor_uri=f"{BASE}/orgs/{org}",
        follower_uri="https://mastodon.example/users/0",
        inbox="https://mastodon.example/users/0/inbox",
        follow_id="https://mastodon.example/follows/x",
    )
    await store(database_url, *followers, other)
    collection = client.get("/commons/yeswiki/followers").json()
    assert collection["type"] == "OrderedCollection"
    assert collection["id"] == f"{actor}/followers"
    assert collection["totalItems"] == 22
    second = client.get("/commons/yeswiki/followers?page=2").json()
    assert second["orderedItems"] == [
        "https://mastodon.example/users/20",
        "https://mastodon.example/users/21",
    ]
    assert client.get(f"/orgs/{org}/followers").json()["totalItems"] == 1
    assert client.get("/actor/followers").json()["totalItems"] == 0


# When the instance does not federate.


def test_nothing_federates_when_federation_is_off(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path, federation={"enabled": False})
    with TestClient(create_app(settings), base_url=BASE) as client:
        org = founder(client)
        for path in (
            "/actor",
            "/actor/outbox",
            f"/orgs/{org}/followers",
            "/.well-known/webfinger?resource=acct:instance@testserver",
            "/.well-known/host-meta",
            "/.well-known/nodeinfo",
            "/nodeinfo/2.1",
        ):
            assert client.get(path, headers={"accept": AS}).status_code == 404, path
        page = get_as(client, f"/orgs/{org}")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")


# One namespace of slugs.


def test_a_commons_cannot_take_an_organisations_slug(client: TestClient) -> None:
    org = founder(client)
    response = new_commons(client, org, slug=org)
    assert response.status_code == 422
    assert slug_error(response.text) == (
        "An organisation already uses this address (organisations and commons share "
        "addresses); choose another."
    )
    assert get_as(client, f"/commons/{org}").status_code == 404


def test_an_organisation_cannot_take_a_commons_slug(client: TestClient) -> None:
    org = founder(client)
    assert new_commons(client, org).status_code == 303
    response = new_organisation(client, name="YesWiki")  # its slug would be "yeswiki"
    assert response.status_code == 422
    assert slug_error(response.text) == (
        "A commons already uses this address (organisations and commons share "
        "addresses); choose another."
    )
    assert new_organisation(client, name="YesWiki", slug="yeswiki-asso").status_code == 303


@pytest.mark.parametrize("slug", ["instance", "actor"])
def test_the_instance_actors_names_are_reserved(client: TestClient, slug: str) -> None:
    org = founder(client)
    refused = new_organisation(client, name="Instance", slug=slug)
    assert refused.status_code == 422 and "reserved" in slug_error(refused.text)
    refused = new_commons(client, org, slug=slug)
    assert refused.status_code == 422 and "reserved" in slug_error(refused.text)
