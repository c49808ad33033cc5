"""Commons copied from other instances, as people see them: listed with their origin, read-only.

And the other way round: what the catalogue's pages tell other instances when a commons is
proposed, edited, hidden or merged (the instance actor's Create, Update and Delete).
"""

from __future__ import annotations

import json
import re
from typing import Any

from sqlmodel import col, select
from starlette.testclient import TestClient
from support import post_form, sign_up

from catalogue import operations as ops
from federation.models import Delivery, OutboxActivity, RemoteActor
from instance.accounts import Account
from instance.database import Database

REMOTE = "https://b.example/commons/yeswiki"
FIELDS: dict[str, Any] = {
    "slug": "yeswiki",
    "name": "YesWiki de B",
    "kind": "software",
    "maturity": "stable",
    "summary": "Un wiki venu d'ailleurs",
    "description": "Un wiki.",
    "description_html": "<p>Un <strong>wiki</strong> partagé.</p>",
    "licence": "AGPL-3.0-or-later",
    "website": "https://yeswiki.net",
    "languages": "fr",
    "uses_count": 7,
    "interested_count": 2,
}
LOCAL = {
    "name": "Nextcloud",
    "slug": "nextcloud",
    "kind": "software",
    "maturity": "stable",
    "summary": "Des fichiers partagés",
    "description": "",
    "tags": "fichiers",
    "licence": "",
    "website": "",
    "repository": "",
    "languages": "",
    "territory": "",
}


async def add_remote(database_url: str, *, hidden: bool = False, **changes: Any) -> None:
    database = Database(database_url)
    async with database.session() as session:
        await ops.upsert_remote_commons(
            session, REMOTE, "b.example", {**FIELDS, **changes}, ["wiki", "coopération"]
        )
        if hidden:
            await ops.hide_remote_commons(session, REMOTE, "b.example")
        await session.commit()
    await database.dispose()


async def make_moderator(database_url: str, email: str) -> None:
    database = Database(database_url)
    async with database.session() as session:
        account = (await session.exec(select(Account).where(Account.email == email))).one()
        account.instance_role = "moderator"
        session.add(account)
        await session.commit()
    await database.dispose()


async def announcements(database_url: str) -> list[dict[str, Any]]:
    database = Database(database_url)
    async with database.session() as session:
        query = select(OutboxActivity).where(OutboxActivity.actor_uri == "http://testserver/actor")
        found = (await session.exec(query.order_by(col(OutboxActivity.id)))).all()
    await database.dispose()
    return [json.loads(row.body) for row in found]


async def test_the_catalogue_lists_a_remote_commons_with_its_origin(
    client: TestClient, database_url: str
) -> None:
    await add_remote(database_url)
    page = client.get("/commons").text
    assert 'href="/commons/yeswiki@b.example"' in page
    assert "YesWiki de B" in page and "from b.example" in page
    found = client.get("/commons", params={"q": "venu ailleurs"}).text
    assert "YesWiki de B" in found
    assert "YesWiki de B" in client.get("/commons", params={"tag": "coopération"}).text
    assert "YesWiki de B" not in client.get("/commons", params={"kind": "data"}).text


async def test_its_page_is_read_only_and_points_to_the_origin(
    client: TestClient, database_url: str
) -> None:
    await add_remote(database_url)
    sign_up(client, "mod@example.org")
    await make_moderator(database_url, "mod@example.org")
    response = client.get("/commons/yeswiki@b.example")
    assert response.status_code == 200
    page = response.text
    assert "YesWiki de B" in page and "Un wiki venu d&#39;ailleurs" in page
    assert f'href="{REMOTE}"' in page and "See it on b.example" in page
    assert "This commons is edited on b.example" in page
    assert "<p>Un <strong>wiki</strong> partagé.</p>" in page
    assert "Used by 7 organisations" in page and "as counted on b.example" in page
    for form in ("/edit", "/declarations", "/improvements/new", "/hide", "/merge"):
        assert f"/commons/yeswiki@b.example{form}" not in page
        assert f"/commons/yeswiki{form}" not in page
    assert 'method="post" action="/commons' not in page
    assert client.get("/commons/YesWiki@B.example").status_code == 200


async def test_edit_and_moderation_routes_refuse_it(client: TestClient, database_url: str) -> None:
    await add_remote(database_url)
    sign_up(client, "mod@example.org")
    await make_moderator(database_url, "mod@example.org")
    assert client.get("/commons/yeswiki@b.example/edit").status_code == 404
    assert client.get("/commons/yeswiki/edit").status_code == 404  # no local one by that slug
    page = "/commons/yeswiki@b.example"
    for action in ("edit", "hide", "unhide", "merge"):
        response = post_form(client, f"{page}/{action}", {"target": "x"}, page="/commons")
        assert response.status_code == 404, action
    assert client.get(f"{page}/improvements/new").status_code == 404


async def test_unknown_or_hidden_remote_commons_are_not_found(
    client: TestClient, database_url: str
) -> None:
    assert client.get("/commons/yeswiki@b.example").status_code == 404
    await add_remote(database_url, hidden=True)
    assert client.get("/commons/yeswiki@b.example").status_code == 404
    assert client.get("/commons/yeswiki@c.example").status_code == 404
    assert "YesWiki de B" not in client.get("/commons").text


async def test_a_servers_request_for_it_is_not_answered_as_our_actor(
    client: TestClient, database_url: str
) -> None:
    await add_remote(database_url)
    response = client.get(
        "/commons/yeswiki@b.example", headers={"Accept": "application/activity+json"}
    )
    assert response.status_code == 404


async def test_the_pages_announce_local_commons_to_other_instances(
    client: TestClient, database_url: str
) -> None:
    sign_up(client, "amina@example.org")
    created = post_form(client, "/orgs/new", {"name": "Lieu", "kind": "tiers-lieu", "slug": ""})
    org = str(created.headers["location"]).rsplit("/", 1)[1]
    await make_moderator(database_url, "amina@example.org")
    data = {**LOCAL, "maintainers": [org]}
    assert post_form(client, "/commons/new", data).status_code == 303
    edited = {**data, "name": "Nextcloud Hub"}
    assert post_form(client, "/commons/nextcloud/edit", edited).status_code == 303
    assert post_form(client, "/commons/nextcloud/hide", {}, page="/commons").status_code == 303
    assert post_form(client, "/commons/nextcloud/unhide", {}, page="/commons").status_code == 303
    sent = await announcements(database_url)
    assert [(a["type"], a["object"]["id"]) for a in sent] == [
        ("Create", "http://testserver/commons/nextcloud"),
        ("Update", "http://testserver/commons/nextcloud"),
        ("Delete", "http://testserver/commons/nextcloud"),
        ("Create", "http://testserver/commons/nextcloud"),
    ]
    assert sent[1]["object"]["name"] == "Nextcloud Hub"
    assert sent[1]["object"]["tag"][0]["name"] == "#fichiers"


async def test_a_merge_announces_the_duplicate_gone_and_the_target_changed(
    client: TestClient, database_url: str
) -> None:
    sign_up(client, "amina@example.org")
    created = post_form(client, "/orgs/new", {"name": "Lieu", "kind": "tiers-lieu", "slug": ""})
    org = str(created.headers["location"]).rsplit("/", 1)[1]
    await make_moderator(database_url, "amina@example.org")
    post_form(client, "/commons/new", {**LOCAL, "maintainers": [org]})
    duplicate = {**LOCAL, "slug": "nextcloud-2", "tags": "cloud", "maintainers": [org]}
    post_form(client, "/commons/new", duplicate)
    merged = post_form(client, "/commons/nextcloud-2/merge", {"target": "nextcloud"}, page="/")
    assert merged.status_code == 303
    sent = await announcements(database_url)
    assert [(a["type"], a["object"]["id"]) for a in sent[-2:]] == [
        ("Delete", "http://testserver/commons/nextcloud-2"),
        ("Update", "http://testserver/commons/nextcloud"),
    ]
    assert {tag["name"] for tag in sent[-1]["object"]["tag"]} == {"#cloud", "#fichiers"}


# --- Declaring from a remote commons' page ------------------------------------------------------


async def cache_remote_actor(database_url: str) -> None:
    """The commons' actor as fetched a moment ago: the page finds its inbox without a request."""
    database = Database(database_url)
    async with database.session() as session:
        session.add(
            RemoteActor(
                uri=REMOTE,
                host="b.example",
                type="Group",
                preferred_username="yeswiki",
                inbox=f"{REMOTE}/inbox",
                shared_inbox="https://b.example/inbox",
            )
        )
        await session.commit()
    await database.dispose()


async def sent_by(database_url: str, actor: str) -> list[tuple[dict[str, Any], list[str]]]:
    """What ``actor`` published, oldest first, with the inboxes each was queued for."""
    database = Database(database_url)
    async with database.session() as session:
        query = select(OutboxActivity).where(OutboxActivity.actor_uri == actor)
        found = []
        for row in (await session.exec(query.order_by(col(OutboxActivity.id)))).all():
            inboxes = await session.exec(
                select(Delivery.inbox).where(Delivery.activity_id == row.id)
            )
            found.append((json.loads(row.body), list(inboxes.all())))
    await database.dispose()
    return found


async def test_an_organisation_declares_it_uses_a_remote_commons(
    client: TestClient, database_url: str
) -> None:
    await add_remote(database_url)
    await cache_remote_actor(database_url)
    sign_up(client, "amina@example.org")
    post_form(client, "/orgs/new", {"name": "Lieu", "kind": "tiers-lieu", "slug": "lieu"})
    page = "/commons/yeswiki@b.example"
    shown = client.get(page).text
    assert f'action="{page}/declarations"' in shown and "Speak for your organisation" in shown
    assert "A declaration made here is sent to b.example" in shown
    declaration = {"organisation": "lieu", "kind": "uses", "satisfaction": "4", "since": ""}

    refused = client.post(f"{page}/declarations", data=declaration, follow_redirects=False)
    assert refused.status_code == 403  # no CSRF token
    wrong = post_form(client, f"{page}/declarations", {**declaration, "satisfaction": "9"})
    assert wrong.status_code == 422 and "Choose from 1 to 5." in wrong.text
    assert "YesWiki de B" in wrong.text  # the remote page again, with the error
    response = post_form(client, f"{page}/declarations", declaration)
    assert response.status_code == 303 and response.headers["location"] == page

    shown = client.get(page).text
    assert "Lieu uses it." in shown
    # The copy keeps b.example's figure until b.example counts the declaration and says so.
    assert "Used by 7 organisations" in shown
    [(use, inboxes)] = await sent_by(database_url, "http://testserver/orgs/lieu")
    assert (use["type"], use["actor"], use["object"], use["satisfaction"]) == (
        "Use",
        "http://testserver/orgs/lieu",
        REMOTE,
        4,
    )
    assert inboxes == ["https://b.example/inbox"]

    withdraw = re.findall(rf'action="({page}/declarations/\d+/withdraw)"', shown)
    assert len(withdraw) == 1
    assert post_form(client, withdraw[0], {}, page=page).status_code == 303
    assert "Lieu uses it." not in client.get(page).text
    undo = (await sent_by(database_url, "http://testserver/orgs/lieu"))[-1][0]
    assert (undo["type"], undo["object"]["id"]) == ("Undo", use["id"])


async def test_declaring_on_a_local_commons_announces_its_new_figures(
    client: TestClient, database_url: str
) -> None:
    sign_up(client, "amina@example.org")
    post_form(client, "/orgs/new", {"name": "Lieu", "kind": "tiers-lieu", "slug": "lieu"})
    post_form(client, "/commons/new", {**LOCAL, "maintainers": ["lieu"]})
    declaration = {"organisation": "lieu", "kind": "interested", "comment": "Bientôt"}
    post_form(client, "/commons/nextcloud/declarations", declaration, page="/commons/nextcloud")
    sent = await announcements(database_url)
    assert [a["type"] for a in sent] == ["Create", "Update"]
    assert (sent[-1]["object"]["usesCount"], sent[-1]["object"]["interestedCount"]) == (0, 1)
    [(interest, _inboxes)] = await sent_by(database_url, "http://testserver/orgs/lieu")
    assert (interest["type"], interest["content"]) == ("Interest", "<p>Bientôt</p>")
