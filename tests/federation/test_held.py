"""Out of order: an activity that needs an object we do not hold yet is held, then applied.

A handler raises ``Missing(uri)``; the row waits (state ``held``) until an activity about that
uri is applied, then goes back in line; without it, it is tried again later, and fails for
good after ``HOLD_TRIES`` waits, with its reason kept.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from peers import Peer, Peers, local_commons, local_organisation
from sqlmodel import select
from support import statements

from catalogue import operations as ops
from catalogue.columns import utcnow
from federation import handlers
from federation.commons_feed import _group
from federation.handlers import HOLD_TRIES, Missing, process_pending
from federation.models import InboxItem, InboxState
from federation.service import Federation

Pair = tuple[Peer, Peer, Peers]


async def needs_the_commons(
    session: Any, federation: Federation, activity: dict[str, Any], item: InboxItem
) -> None:
    """A handler of a made-up type that needs the copy of the commons it names."""
    uri = activity["object"]
    if await ops.get_remote_commons(session, uri.rsplit("/", 1)[1], "a.test") is None:
        raise Missing(uri, "no copy of that commons yet")


@pytest.fixture(autouse=True)
def register(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(handlers.HANDLERS, "Needs", [needs_the_commons])


async def store(peer: Peer, activity: dict[str, Any], at_minutes: int) -> None:
    async with peer.federation.sessions() as session:
        session.add(
            InboxItem(
                activity_id=activity["id"],
                type=activity["type"],
                actor_uri=activity["actor"],
                body=json.dumps(activity),
                received_at=utcnow() + timedelta(minutes=at_minutes),
            )
        )
        await session.commit()


async def items(peer: Peer) -> dict[str, InboxItem]:
    async with peer.federation.sessions() as session:
        return {i.type: i for i in (await session.exec(select(InboxItem))).all()}


async def commons_create(a: Peer) -> dict[str, Any]:
    """a's real announcement of its commons, as its instance actor sends it."""
    commons = await local_commons(a, "yeswiki", await local_organisation(a, "lieu"))
    async with a.federation.sessions() as session:
        context, group = await _group(session, a.federation, commons)
    actor = a.federation.config.instance_actor_uri
    return {
        "@context": context,
        "id": f"{a.base_url}/activities/create-yeswiki",
        "type": "Create",
        "actor": actor,
        "object": group,
    }


def needs(a: Peer, number: int = 1) -> dict[str, Any]:
    return {
        "id": f"{a.base_url}/activities/needs-{number}",
        "type": "Needs",
        "actor": a.federation.config.instance_actor_uri,
        "object": f"{a.base_url}/commons/yeswiki",
    }


async def test_an_activity_before_what_it_needs_is_held_then_applied(pair: Pair) -> None:
    a, b, _network = pair
    create = await commons_create(a)
    await store(b, needs(a), at_minutes=0)
    assert await process_pending(b.federation) == 1
    held = (await items(b))["Needs"]
    assert held.state == InboxState.HELD
    assert held.waiting_for == f"{a.base_url}/commons/yeswiki"
    assert "no copy of that commons yet" in held.error

    await store(b, create, at_minutes=1)  # the Create arrives late
    await process_pending(b.federation)
    applied = await items(b)
    assert applied["Create"].state == InboxState.DONE
    assert applied["Needs"].state == InboxState.DONE, applied["Needs"].error
    assert applied["Needs"].waiting_for is None


async def test_a_held_activity_is_tried_again_then_fails_with_its_reason(pair: Pair) -> None:
    a, b, _network = pair
    await store(b, needs(a), at_minutes=0)
    waits = []
    for _ in range(HOLD_TRIES):
        await process_pending(b.federation)
        item = (await items(b))["Needs"]
        if item.state != InboxState.HELD:
            break
        assert item.next_attempt_at is not None
        waits.append(item.next_attempt_at - utcnow())
        async with b.federation.sessions() as session:  # its wait is over
            row = await session.get(InboxItem, item.id)
            assert row is not None
            row.next_attempt_at = utcnow() - timedelta(seconds=1)
            await session.commit()
    assert item.state == InboxState.FAILED
    assert item.attempts == HOLD_TRIES
    assert item.error.startswith("still missing after")
    assert waits[1] > waits[0]  # the waits grow
    assert max(waits) <= handlers.HOLD_LONGEST


async def test_a_held_activity_stays_held_before_its_time(pair: Pair) -> None:
    a, b, _network = pair
    await store(b, needs(a), at_minutes=0)
    await process_pending(b.federation)
    assert await process_pending(b.federation) == 0  # nothing to do: it waits
    assert (await items(b))["Needs"].attempts == 1


async def test_an_idle_pass_writes_nothing(pair: Pair) -> None:
    """The worker looks for held activities on every pass: with none due, it only reads
    (on SQLite an UPDATE of no row would still take the one write lock)."""
    _a, b, _network = pair
    with statements(b.app.state.db.engine) as run:
        assert await process_pending(b.federation) == 0
    assert run and all(statement.startswith("SELECT") for statement in run), run
