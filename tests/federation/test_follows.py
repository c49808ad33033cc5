"""One instance follows another's commons, hears its changes, survives the other being down."""

from __future__ import annotations

import json
from typing import Any

from peers import Peer, Peers, drain, local_commons, local_organisation
from sqlalchemy import update
from sqlmodel import select

from catalogue import operations as ops
from catalogue.columns import utcnow
from federation.follows import follow, resolve_actor, unfollow
from federation.models import (
    Delivery,
    DeliveryState,
    FetchFailure,
    Follower,
    Following,
    FollowState,
    InboxItem,
)
from federation.profiles import publish_profile_update

Pair = tuple[Peer, Peer, Peers]


async def rows(peer: Peer, model: Any) -> list[Any]:
    async with peer.federation.sessions() as session:
        return list((await session.exec(select(model))).all())


async def a_follows(a: Peer, target: str) -> Following:
    async with a.federation.sessions() as session:
        actor = await resolve_actor(a.federation, target)
        return await follow(session, a.federation, a.federation.config.instance_actor_uri, actor)


async def rename(peer: Peer, slug: str, name: str) -> None:
    """A maintainer saves the commons under a new name, and its followers are told."""
    async with peer.federation.sessions() as session:
        commons = await ops.get_local_commons(session, slug)
        assert commons is not None
        data = {"name": name, "summary": "Un wiki", "kind": "software", "maturity": "stable"}
        await ops.update_commons(session, commons, data, editor_id=None)
        assert await publish_profile_update(session, peer.federation, commons.uri)
        await session.commit()


async def test_following_a_commons_by_its_address_is_accepted(pair: Pair) -> None:
    a, b, _network = pair
    commons = await local_commons(b, "yeswiki", await local_organisation(b, "lieu"))
    row = await a_follows(a, "@yeswiki@b.test")  # WebFinger, as a person types it
    assert (row.followed_uri, row.state) == (commons.uri, FollowState.PENDING)
    await drain(a, b)
    [following] = await rows(a, Following)
    assert following.state == FollowState.ACCEPTED
    [follower] = await rows(b, Follower)
    assert follower.follower_uri == a.federation.config.instance_actor_uri


async def test_a_renamed_commons_is_announced_to_its_followers(pair: Pair) -> None:
    a, b, _network = pair
    commons = await local_commons(b, "yeswiki", await local_organisation(b, "lieu"))
    await a_follows(a, commons.uri)
    await drain(a, b)
    await rename(b, "yeswiki", "YesWiki 5")
    await drain(a, b)
    updates = [i for i in await rows(a, InboxItem) if i.type == "Update"]
    assert len(updates) == 1
    document = json.loads(updates[0].body)["object"]
    assert (document["id"], document["name"], document["type"]) == (
        commons.uri,
        "YesWiki 5",
        "Group",
    )


async def test_a_peer_down_for_a_while_gets_everything_once_back(pair: Pair) -> None:
    a, b, network = pair
    commons = await local_commons(b, "yeswiki", await local_organisation(b, "lieu"))
    await a_follows(a, commons.uri)
    await drain(a, b)
    network.down.add("a.test")
    for number in range(3):
        await rename(b, "yeswiki", f"YesWiki {number}")
    await b.work()
    pending = [d for d in await rows(b, Delivery) if d.state == DeliveryState.NEW]
    assert len(pending) == 3
    assert all(d.attempts == 1 and d.next_attempt_at > utcnow() for d in pending)
    await b.work()  # not due yet: nothing is tried
    assert all(d.attempts == 1 for d in await rows(b, Delivery) if d.state == DeliveryState.NEW)

    network.down.discard("a.test")
    async with b.federation.sessions() as session:  # time passes: the retries fall due
        await session.exec(update(Delivery).values(next_attempt_at=utcnow()))  # type: ignore[call-overload]
        await session.commit()
    await drain(a, b)
    assert {d.state for d in await rows(b, Delivery)} == {DeliveryState.SENT}
    names = [
        json.loads(i.body)["object"]["name"] for i in await rows(a, InboxItem) if i.type == "Update"
    ]
    assert sorted(names) == ["YesWiki 0", "YesWiki 1", "YesWiki 2"]


async def due_now(peer: Peer, model: Any, column: Any) -> None:
    """Time passes on ``peer``: what waits until ``column`` waits no longer."""
    async with peer.federation.sessions() as session:
        await session.exec(update(model).values({column: utcnow()}))  # type: ignore[call-overload]
        await session.commit()


async def test_a_follow_b_cannot_check_yet_gets_401_and_goes_through_later(pair: Pair) -> None:
    """b cannot fetch a's actor (a's server answers no GET for a while), so it cannot check
    the Follow's signature: 401. a tries again; while b remembers the failed fetch it still
    answers 401 without fetching; once that has passed it fetches, checks and accepts."""
    a, b, network = pair
    commons = await local_commons(b, "yeswiki", await local_organisation(b, "lieu"))
    await a_follows(a, commons.uri)
    network.down.add("a.test")  # only a's own server: a's worker still reaches b
    await a.work()
    await b.work()
    [follow_row] = await rows(a, Delivery)
    assert (follow_row.state, follow_row.attempts, follow_row.last_status) == (
        DeliveryState.NEW,
        1,
        401,
    )
    assert follow_row.next_attempt_at is not None and follow_row.next_attempt_at > utcnow()
    assert await rows(b, Follower) == [] and await rows(b, InboxItem) == []
    [failure] = await rows(b, FetchFailure)
    assert failure.uri.startswith("http://a.test/actor")

    network.down.discard("a.test")
    await due_now(a, Delivery, Delivery.next_attempt_at)
    await a.work()  # b still remembers the failure: 401 again, no fetch
    [follow_row] = await rows(a, Delivery)
    assert (follow_row.state, follow_row.attempts, follow_row.last_status) == (
        DeliveryState.NEW,
        2,
        401,
    )

    await due_now(b, FetchFailure, FetchFailure.retry_after)  # an hour later
    await due_now(a, Delivery, Delivery.next_attempt_at)
    await drain(a, b)
    [follow_row, *_answers] = sorted(await rows(a, Delivery), key=lambda d: d.id)
    assert (follow_row.state, follow_row.attempts) == (DeliveryState.SENT, 3)
    assert [f.follower_uri for f in await rows(b, Follower)] == [a.base_url + "/actor"]
    assert [f.state for f in await rows(a, Following)] == [FollowState.ACCEPTED]


async def test_unfollowing_removes_the_follower_there(pair: Pair) -> None:
    a, b, _network = pair
    commons = await local_commons(b, "yeswiki", await local_organisation(b, "lieu"))
    await a_follows(a, commons.uri)
    await drain(a, b)
    async with a.federation.sessions() as session:
        actor = a.federation.config.instance_actor_uri
        assert await unfollow(session, a.federation, actor, commons.uri)
    await drain(a, b)
    assert await rows(a, Following) == []
    assert await rows(b, Follower) == []
