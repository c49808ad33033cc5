"""Declarations between instances: an organisation on b says it uses a's commons, and both agree.

Two in-process instances: b follows a's instance actor and holds a copy of a's commons. A person
on b declares for their organisation from the copy's page; the ``Use`` goes to a, which stores
it and announces the commons' new figures, which b's copy takes. Withdrawing converges too.
Then the other direction (a's own organisation declares), updates, replays, and bad input.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import httpx
import pytest
from peers import Peer, Peers, drain, local_commons, local_organisation, rows
from sqlmodel import select

from catalogue import operations as ops
from catalogue.commons import Commons
from catalogue.declarations import Declaration
from catalogue.organisations import Organisation
from federation.commons_feed import CommonsChange, publish_commons_change
from federation.commons_sync import apply_commons_document
from federation.declarations_feed import (
    Counts,
    announce_counts,
    declaration_inboxes,
    publish_declaration,
    publish_withdrawal,
)
from federation.declarations_sync import apply_declaration
from federation.follows import follow
from federation.handlers import Unusable
from federation.models import (
    Delivery,
    Following,
    FollowState,
    InboxItem,
    InboxState,
    OutboxActivity,
)
from federation.outbox import publish

Pair = tuple[Peer, Peer, Peers]
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


# --- Helpers ------------------------------------------------------------------------------------


async def follows(follower: Peer, followed: Peer) -> None:
    """``follower``'s instance follows ``followed``'s, and reads back its commons."""
    async with follower.federation.sessions() as session:
        config = follower.federation.config
        await follow(
            session, follower.federation, config.instance_actor_uri, followed.base_url + "/actor"
        )
    await drain(follower, followed)
    [following] = await rows(follower, Following)
    assert following.state == FollowState.ACCEPTED


async def commons_at(peer: Peer, uri: str) -> Commons:
    async with peer.federation.sessions() as session:
        return (await session.exec(select(Commons).where(Commons.uri == uri))).one()


async def counts(peer: Peer, uri: str) -> tuple[int, int]:
    commons = await commons_at(peer, uri)
    return commons.uses_count, commons.interested_count


async def declarations(peer: Peer) -> list[Declaration]:
    return await rows(peer, Declaration)


async def b_follows_a_with_commons(pair: Pair) -> Commons:
    """a has the commons ``yeswiki`` (maintained by its ``lieu``); b follows a and holds a copy."""
    a, b, _network = pair
    commons = await local_commons(a, "yeswiki", await local_organisation(a, "lieu"))
    async with a.federation.sessions() as session:  # announced, as the proposal page does
        await publish_commons_change(session, a.federation, commons, CommonsChange.CREATED)
        await session.commit()
    await follows(b, a)
    assert (await commons_at(b, commons.uri)).origin == "a.test"
    return commons


async def post(peer: Peer, path: str, data: dict[str, str], page: str) -> httpx.Response:
    """Submit a form as a browser would, with the CSRF token of the page it is on."""
    found = CSRF.search((await peer.client.get(page)).text)
    assert found, f"no form on {page}"
    return await peer.client.post(path, data={**data, "csrf_token": found.group(1)})


async def member_of_new_organisation(peer: Peer, slug: str, name: str) -> None:
    """A person signs up on ``peer`` and creates an organisation, through the pages."""
    signup = {"email": f"{slug}@example.org", "password": "correct horse battery"}
    response = await post(peer, "/signup", {**signup, "display_name": name}, page="/signup")
    assert response.status_code == 303, response.text
    org = {"name": name, "slug": slug, "kind": "cae", "description": "", "website": ""}
    response = await post(peer, "/orgs/new", {**org, "territory": "", "siret": ""}, "/orgs/new")
    assert response.status_code == 303, response.text


async def declare_locally(peer: Peer, slug: str, commons_uri: str, **cleaned: Any) -> Declaration:
    """What the commons page does when a local organisation declares, without the page."""
    federation = peer.federation
    async with federation.sessions() as session:
        organisation = await ops.get_local_organisation(session, slug)
        commons = (await session.exec(select(Commons).where(Commons.uri == commons_uri))).one()
        assert organisation is not None
        inboxes = await declaration_inboxes(session, federation, organisation, commons)
        before = Counts.of(commons)
        values = {"kind": "uses", "since": None, "comment": "", "satisfaction": None, **cleaned}
        declaration = await ops.declare(
            session,
            organisation,
            commons,
            values,
            base_url=peer.base_url,
            creator_id=None,
            commit=False,
        )
        await publish_declaration(session, federation, declaration, organisation, commons, inboxes)
        await announce_counts(session, federation, commons, before)
        await session.commit()
        return declaration


async def withdraw_locally(peer: Peer, declaration_id: int) -> None:
    federation = peer.federation
    async with federation.sessions() as session:
        declaration = await session.get(Declaration, declaration_id)
        assert declaration is not None
        organisation = await session.get(Organisation, declaration.organisation_id)
        commons = await session.get(Commons, declaration.commons_id)
        assert organisation is not None and commons is not None
        inboxes = await declaration_inboxes(session, federation, organisation, commons)
        before = Counts.of(commons)
        await ops.withdraw(session, declaration, commit=False)
        await publish_withdrawal(session, federation, declaration, organisation, commons, inboxes)
        await announce_counts(session, federation, commons, before)
        await session.commit()


# --- Convergence --------------------------------------------------------------------------------


async def test_an_organisation_on_b_declares_from_the_copy_and_both_agree(pair: Pair) -> None:
    a, b, _network = pair
    commons = await b_follows_a_with_commons(pair)
    await member_of_new_organisation(b, "cae-b", "CAE de B")
    page = "/commons/yeswiki@a.test"
    assert 'action="/commons/yeswiki@a.test/declarations"' in (await b.client.get(page)).text

    response = await post(
        b,
        f"{page}/declarations",
        {
            "organisation": "cae-b",
            "kind": "uses",
            "since": "2024-09-01",
            "satisfaction": "4",
            "comment": "Notre wiki <de tous>.\n\nDepuis un an.",
        },
        page,
    )
    assert response.status_code == 303 and response.headers["location"] == page
    await drain(a, b)

    assert await counts(a, commons.uri) == (1, 0)
    assert await counts(b, commons.uri) == (1, 0)  # the origin's figure, not counted twice
    [received] = await declarations(a)
    assert (received.origin, received.kind, received.satisfaction) == ("b.test", "uses", 4)
    assert received.since is not None and received.since.isoformat() == "2024-09-01"
    assert received.comment == "Notre wiki <de tous>.\n\nDepuis un an."
    [made] = await declarations(b)
    assert (made.uri, made.origin) == (received.uri, None)
    remote_org = [o for o in await rows(a, Organisation) if o.origin == "b.test"]
    assert [(o.uri, o.slug, o.name, o.kind) for o in remote_org] == [
        ("http://b.test/orgs/cae-b", "cae-b", "CAE de B", "cae")
    ]
    shown = (await a.client.get("/commons/yeswiki")).text
    assert "Used by 1 organisation" in shown
    assert 'href="http://b.test/orgs/cae-b"' in shown and "CAE de B" in shown
    assert "from b.test" in shown and "Notre wiki &lt;de tous&gt;." in shown
    assert "Used by 1 organisation" in (await b.client.get(page)).text
    assert f'href="{page}"' in (await b.client.get("/orgs/cae-b")).text  # "what we use"
    assert "CAE de B" not in (await a.client.get("/orgs")).text  # a copy, not a's member

    # Withdrawn from b's page: both go back to the same figures; a keeps the history.
    [withdraw] = re.findall(
        r'action="(/commons/yeswiki@a\.test/declarations/\d+/withdraw)"',
        (await b.client.get(page)).text,
    )
    response = await post(b, withdraw, {}, page)
    assert response.status_code == 303 and response.headers["location"] == page
    await drain(a, b)
    assert await counts(a, commons.uri) == (0, 0)
    assert await counts(b, commons.uri) == (0, 0)
    [kept] = await declarations(a)
    assert kept.withdrawn_at is not None
    assert "CAE de B" not in (await a.client.get("/commons/yeswiki")).text


async def test_what_b_sends_and_to_whom(pair: Pair) -> None:
    a, b, _network = pair
    commons = await b_follows_a_with_commons(pair)
    await local_organisation(b, "cae-b")
    declaration = await declare_locally(
        b, "cae-b", commons.uri, kind="interested", comment="Peut-être"
    )
    [row] = [r for r in await rows(b, OutboxActivity) if r.uri == declaration.uri]
    sent = json.loads(row.body)
    assert sent["@context"] == ["https://www.w3.org/ns/activitystreams", "http://b.test/ns/terreau"]
    assert (sent["type"], sent["actor"], sent["object"]) == (
        "Interest",
        "http://b.test/orgs/cae-b",
        commons.uri,
    )
    assert sent["content"] == "<p>Peut-être</p>" and "since" not in sent
    async with b.federation.sessions() as session:
        inboxes = (
            await session.exec(select(Delivery.inbox).where(Delivery.activity_id == row.id))
        ).all()
    assert list(inboxes) == ["http://a.test/inbox"]  # the commons' shared inbox, once
    # b does not count it itself: the copy keeps a's figures until a announces new ones.
    assert await counts(b, commons.uri) == (0, 0)
    await drain(a, b)
    assert await counts(b, commons.uri) == (0, 1)


async def test_a_own_organisation_declares_and_b_copy_follows(pair: Pair) -> None:
    a, b, _network = pair
    commons = await b_follows_a_with_commons(pair)
    declaration = await declare_locally(a, "lieu", commons.uri, satisfaction=5)
    await drain(a, b)
    assert await counts(a, commons.uri) == (1, 0)
    assert await counts(b, commons.uri) == (1, 0)
    assert declaration.id is not None
    await withdraw_locally(a, declaration.id)
    await drain(a, b)
    assert await counts(b, commons.uri) == (0, 0)


async def test_figures_delivered_out_of_order_leave_the_newest_on_the_copy(pair: Pair) -> None:
    """Each Update(Group) carries the time its figures moved: a late delivery of older
    counts changes nothing, though the commons itself was not edited in between."""
    a, b, _network = pair
    commons = await b_follows_a_with_commons(pair)
    declaration = await declare_locally(a, "lieu", commons.uri)
    assert declaration.id is not None
    await withdraw_locally(a, declaration.id)
    updates = [json.loads(r.body) for r in await rows(a, OutboxActivity) if r.type == "Update"]
    groups = [u for u in updates if u["object"].get("type") == "Group"]
    assert [g["object"]["usesCount"] for g in groups] == [1, 0]
    assert groups[0]["object"]["updated"] < groups[1]["object"]["updated"]

    async with b.federation.sessions() as session:
        for update in reversed(groups):  # the newest first, then the older one, late
            await apply_commons_document(session, update["object"], update["actor"])
        await session.commit()

    assert await counts(b, commons.uri) == (0, 0)


async def test_declaring_again_sends_an_update_that_changes_the_same_row(pair: Pair) -> None:
    a, b, _network = pair
    commons = await b_follows_a_with_commons(pair)
    await local_organisation(b, "cae-b")
    first = await declare_locally(b, "cae-b", commons.uri, satisfaction=2)
    await drain(a, b)
    again = await declare_locally(b, "cae-b", commons.uri, satisfaction=5, comment="Mieux")
    assert again.uri == first.uri
    types = [r.type for r in await rows(b, OutboxActivity) if r.actor_uri.endswith("/orgs/cae-b")]
    assert types == ["Use", "Update"]
    await drain(a, b)
    [stored] = await declarations(a)
    assert (stored.satisfaction, stored.comment, stored.withdrawn_at) == (5, "Mieux", None)
    assert await counts(a, commons.uri) == await counts(b, commons.uri) == (1, 0)


async def test_replays_change_nothing_more(pair: Pair) -> None:
    a, b, _network = pair
    commons = await b_follows_a_with_commons(pair)
    await local_organisation(b, "cae-b")
    declaration = await declare_locally(b, "cae-b", commons.uri)
    await drain(a, b)
    [row] = [r for r in await rows(b, OutboxActivity) if r.uri == declaration.uri]
    sent = json.loads(row.body)
    announced = len(await rows(a, OutboxActivity))
    async with a.federation.sessions() as session:
        await apply_declaration(session, a.federation, sent, "http://b.test/orgs/cae-b")
        await session.commit()
    assert len(await declarations(a)) == 1
    assert await counts(a, commons.uri) == (1, 0)
    assert len(await rows(a, OutboxActivity)) == announced  # the figures did not move

    # An Undo applied twice withdraws once; a late copy of the Use does not bring it back.
    async with a.federation.sessions() as session:
        for _ in range(2):
            await apply_declaration(
                session, a.federation, sent, "http://b.test/orgs/cae-b", withdrawn=True
            )
        await apply_declaration(session, a.federation, sent, "http://b.test/orgs/cae-b")
        await session.commit()
    [stored] = await declarations(a)
    assert stored.withdrawn_at is not None
    assert await counts(a, commons.uri) == (0, 0)


async def test_an_undo_heard_before_its_declaration_is_kept_withdrawn(pair: Pair) -> None:
    a, b, _network = pair
    commons = await b_follows_a_with_commons(pair)
    await local_organisation(b, "cae-b")
    document = use(b, commons.uri, "early")
    await send(b, a, embedded("Undo", b, "undo-early", document))
    await send(b, a, document)
    [stored] = await declarations(a)
    assert stored.withdrawn_at is not None
    assert await counts(a, commons.uri) == (0, 0)


# --- Bad input ----------------------------------------------------------------------------------


def use(peer: Peer, commons_uri: str, name: str, **changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "@context": ["https://www.w3.org/ns/activitystreams", f"{peer.base_url}/ns/terreau"],
        "id": f"{peer.base_url}/orgs/cae-b/declarations/{name}",
        "type": "Use",
        "actor": f"{peer.base_url}/orgs/cae-b",
        "object": commons_uri,
        "published": "2025-01-01T10:00:00Z",
        "since": "2024-09-01",
        "satisfaction": 4,
    }
    document.update(changes)
    return {key: value for key, value in document.items() if value is not None}


async def send(sender: Peer, receiver: Peer, body: dict[str, Any]) -> InboxItem:
    """``sender`` delivers ``body`` as is, signed by its ``actor``, to the receiver's inbox."""
    config = sender.federation.config
    async with sender.federation.sessions() as session:
        await publish(session, config, body, [f"{receiver.base_url}/inbox"])
        await session.commit()
    await drain(sender, receiver)
    [item] = [i for i in await rows(receiver, InboxItem) if i.activity_id == body["id"]]
    return item


def embedded(type_: str, peer: Peer, name: str, document: Any) -> dict[str, Any]:
    return {
        "id": f"{peer.base_url}/activities/{name}",
        "type": type_,
        "actor": f"{peer.base_url}/orgs/cae-b",
        "object": document,
    }


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"object": None}, "object: required"),
        ({"object": ["http://a.test/commons/yeswiki"]}, "object: required"),
        ({"satisfaction": 0}, "satisfaction: expected a whole number from 1 to 5"),
        ({"satisfaction": 6}, "satisfaction"),
        ({"satisfaction": 4.0}, "satisfaction"),
        ({"satisfaction": "4"}, "satisfaction"),
        ({"satisfaction": True}, "satisfaction"),
        ({"since": "yesterday"}, "since: expected a date"),
        ({"since": "2024-02-30"}, "since: '2024-02-30' is not a date"),
        ({"since": "2999-01-01"}, "since: 2999-01-01 is in the future"),
        ({"since": 20240901}, "since"),
        ({"type": "Interest"}, "since: only a Use has one"),
        ({"content": ["x"]}, "content: expected a string"),
        ({"published": "last week"}, "published"),
        ({"object": "http://a.test/commons/unknown"}, "a commons we do not have"),
    ],
)
async def test_a_bad_declaration_is_refused_and_a_good_one_still_works(
    pair: Pair, changes: dict[str, Any], reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    a, b, _network = pair
    commons = await b_follows_a_with_commons(pair)
    await local_organisation(b, "cae-b")
    with caplog.at_level(logging.WARNING, logger="terreau.federation"):
        item = await send(b, a, use(b, commons.uri, "bad", **changes))
    assert item.state == InboxState.FAILED
    assert reason in item.error and item.error.startswith("Unusable")
    assert reason in " ".join(record.getMessage() for record in caplog.records)
    # Nothing half-applied: no declaration, no copy of the organisation, figures unchanged.
    assert await declarations(a) == []
    assert [o for o in await rows(a, Organisation) if o.origin] == []
    assert await counts(a, commons.uri) == (0, 0)

    good = await send(b, a, use(b, commons.uri, "good"))
    assert good.state == InboxState.DONE
    await drain(a, b)
    assert await counts(a, commons.uri) == await counts(b, commons.uri) == (1, 0)


async def test_a_declaration_from_another_host_than_its_signer_is_refused(pair: Pair) -> None:
    a, b, _network = pair
    commons = await b_follows_a_with_commons(pair)
    await local_organisation(b, "cae-b")
    forged = use(b, commons.uri, "forged", id="http://c.test/orgs/cae/declarations/1")
    item = await send(b, a, embedded("Update", b, "forged-update", forged))
    assert item.state == InboxState.FAILED
    assert (
        "the declaration's id 'http://c.test/orgs/cae/declarations/1' is not on the host"
        in item.error
    )
    someone_else = use(b, commons.uri, "other-actor", actor="http://c.test/orgs/cae")
    item = await send(b, a, embedded("Undo", b, "forged-undo", someone_else))
    assert item.state == InboxState.FAILED and "the declaration's actor" in item.error
    assert await declarations(a) == []

    # Nor may b withdraw a declaration a made itself, even by its id alone.
    made = await declare_locally(a, "lieu", commons.uri)
    item = await send(b, a, embedded("Undo", b, "undo-theirs", made.uri))
    assert item.state == InboxState.FAILED and "was made on this instance" in item.error
    assert await counts(a, commons.uri) == (1, 0)


async def test_a_declaration_cannot_change_what_it_names(pair: Pair) -> None:
    a, b, _network = pair
    commons = await b_follows_a_with_commons(pair)
    await local_organisation(b, "cae-b")
    await send(b, a, use(b, commons.uri, "one"))
    turned = use(b, commons.uri, "one", type="Interest", since=None, satisfaction=None)
    item = await send(b, a, embedded("Update", b, "turned", turned))
    assert item.state == InboxState.FAILED and "names another organisation" in item.error
    [stored] = await declarations(a)
    assert stored.kind == "uses"


async def test_a_commons_copy_held_elsewhere_stores_the_declaration_without_counting_it(
    pair: Pair,
) -> None:
    """b holds a copy of a's commons; a declaration reaching b directly is kept there (to list
    who uses it), while the copy's figures stay a's."""
    a, b, _network = pair
    commons = await b_follows_a_with_commons(pair)
    async with b.federation.sessions() as session:
        unusable = use(
            a,
            commons.uri,
            "direct",
            actor="http://a.test/orgs/lieu",
            id="http://a.test/orgs/lieu/declarations/direct",
        )
        await apply_declaration(session, b.federation, unusable, "http://a.test/orgs/lieu")
        await session.commit()
    [stored] = await declarations(b)
    assert stored.origin == "a.test"
    assert await counts(b, commons.uri) == (0, 0)
    async with b.federation.sessions() as session:
        with pytest.raises(Unusable, match="not on the host"):
            await apply_declaration(session, b.federation, unusable, "http://c.test/actor")


async def test_an_organisation_that_deletes_itself_no_longer_counts(pair: Pair) -> None:
    a, b, _network = pair
    commons = await b_follows_a_with_commons(pair)
    await local_organisation(b, "cae-b")
    await declare_locally(b, "cae-b", commons.uri, satisfaction=3)
    await drain(a, b)
    assert await counts(a, commons.uri) == (1, 0)
    org = f"{b.base_url}/orgs/cae-b"
    deletion = {"id": f"{org}#delete", "type": "Delete", "actor": org, "object": org}
    item = await send(b, a, deletion)
    assert item.state == InboxState.DONE
    await drain(a, b)
    [kept] = await declarations(a)
    assert kept.withdrawn_at is not None  # the history stays
    assert await counts(a, commons.uri) == await counts(b, commons.uri) == (0, 0)


async def test_when_the_commons_actor_cannot_be_fetched_its_host_inbox_is_used(
    pair: Pair,
) -> None:
    _a, b, network = pair
    commons = await b_follows_a_with_commons(pair)
    await local_organisation(b, "cae-b")
    network.down.add("a.test")
    declaration = await declare_locally(b, "cae-b", commons.uri)
    async with b.federation.sessions() as session:
        row = (
            await session.exec(select(OutboxActivity).where(OutboxActivity.uri == declaration.uri))
        ).one()
        inboxes = await session.exec(select(Delivery.inbox).where(Delivery.activity_id == row.id))
        # a's instance actor, which b follows, is cached with a's shared inbox.
        assert list(inboxes.all()) == ["http://a.test/inbox"]
