"""Instances that pledge, relay and match: the steps the pledge and match tests share.

Each function does what a page or the worker does on one in-process instance of
``tests/peers.py``: make an organisation or an open improvement, follow, pledge, cancel, run
a matching program, and read back what each instance counts.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from peers import Peer, Peers, local_organisation, rows
from peers import drain as drain_peers
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from catalogue import operations as ops
from catalogue.columns import utcnow
from catalogue.commons import Commons
from catalogue.improvements import Improvement, validate_improvement
from catalogue.organisations import Organisation
from federation.commons_feed import CommonsChange, publish_commons_change
from federation.follows import follow
from federation.improvements_feed import publish_improvement_changes
from federation.models import Following, FollowState, InboxItem, OutboxActivity
from federation.pledges_feed import (
    inboxes_of,
    pledge_inboxes,
    publish_pledge,
    publish_pledge_status,
)
from instance.summary_line import summary_writer
from pledges import operations as pledge_ops
from pledges.funding import LedgerFunding
from pledges.models import Match, MatchingProgram, Pledge

Pair = tuple[Peer, Peer, Peers]
Network = tuple[Peer, Peer, Peer, Peer, Peers]
EN = summary_writer("en")


async def drain(*peers: Peer) -> None:
    """Run workers until no peer has anything left to do: four instances need more turns."""
    await drain_peers(*peers, rounds=15)


async def follows(follower: Peer, followed: Peer) -> None:
    """``follower``'s instance follows ``followed``'s, and reads back its commons and
    improvements."""
    async with follower.federation.sessions() as session:
        config = follower.federation.config
        await follow(
            session, follower.federation, config.instance_actor_uri, followed.base_url + "/actor"
        )
    await drain(follower, followed)
    states = [f.state for f in await rows(follower, Following)]
    assert states[-1] == FollowState.ACCEPTED


async def organisation(peer: Peer, slug: str, kind: str = "tiers-lieu") -> Organisation:
    async with peer.federation.sessions() as session:
        found = await ops.get_local_organisation(session, slug)
    if found is not None:
        return found
    made = await local_organisation(peer, slug)
    if kind != made.kind:
        async with peer.federation.sessions() as session:
            stored = await session.get(Organisation, made.id)
            assert stored is not None
            stored.kind = kind
            session.add(stored)
            await session.commit()
            made = stored
    return made


async def improvement_on(peer: Peer, budget: str = "4000") -> Improvement:
    """An open improvement of the commons ``yeswiki``, announced as the pages do."""
    maintainer = await organisation(peer, "lieu")
    assert maintainer.id is not None
    async with peer.federation.sessions() as session:
        commons = await ops.create_commons(
            session,
            {"slug": "yeswiki", "name": "YesWiki", "summary": "Un wiki", "kind": "software"},
            base_url=peer.base_url,
            creator_id=None,
            maintainer_ids=[maintainer.id],
            commit=False,
        )
        await publish_commons_change(session, peer.federation, commons, CommonsChange.CREATED)
        await session.commit()
    return await another_improvement_on(peer, budget, "Export PDF")


async def another_improvement_on(peer: Peer, budget: str, title: str) -> Improvement:
    """One more open improvement of ``peer``'s commons ``yeswiki``, announced."""
    async with peer.federation.sessions() as session:
        commons = await ops.get_local_commons(session, "yeswiki")
        assert commons is not None
        improvement = await ops.create_improvement(
            session,
            commons,
            validate_improvement({"title": title, "description": "", "budget": budget}),
            base_url=peer.base_url,
            currency="EUR",
            provider_id=None,
            creator_id=None,
        )
        await ops.change_status(session, improvement, "open")
    await announce(peer, improvement.id)
    return improvement


async def announce(peer: Peer, *ids: int | None) -> None:
    async with peer.federation.sessions() as session:
        await publish_improvement_changes(
            session, peer.federation, EN, [i for i in ids if i is not None], funding=True
        )
        await session.commit()


async def pledge_from(peer: Peer, slug: str, improvement_uri: str, cents: int) -> Pledge:
    """What the pledge page does: look up where it goes, pledge, queue the Offer, commit."""
    federation = peer.federation
    async with federation.sessions() as session:
        giver = await ops.get_local_organisation(session, slug)
        query = select(Improvement).where(Improvement.uri == improvement_uri)
        improvement = (await session.exec(query)).one()
        commons = await session.get(Commons, improvement.commons_id)
        assert giver is not None and commons is not None
        inboxes = await pledge_inboxes(session, federation, giver, commons)
        made = await pledge_ops.make_pledge(
            session,
            giver,
            improvement,
            cents,
            base_url=peer.base_url,
            created_by_id=None,
            commit=False,
        )
        await publish_pledge(session, federation, made, inboxes)
        await session.commit()
        return made


async def _changed_on(
    peer: Peer, pledge_id: int | None, change: Callable[[AsyncSession, Pledge], Awaitable[None]]
) -> None:
    """What a pledge's page does: look up where the news goes, change it, queue the Update."""
    federation = peer.federation
    async with federation.sessions() as session:
        pledge = await session.get(Pledge, pledge_id)
        assert pledge is not None
        inboxes = await inboxes_of(session, federation, pledge)
        await change(session, pledge)
        await publish_pledge_status(session, federation, pledge, inboxes)
        await session.commit()


async def cancel_on(peer: Peer, pledge_id: int | None) -> None:
    async def cancel(session: AsyncSession, pledge: Pledge) -> None:
        await pledge_ops.cancel_pledge(session, pledge, base_url=peer.base_url, commit=False)

    await _changed_on(peer, pledge_id, cancel)


async def record_paid(session: AsyncSession, pledge: Pledge, base_url: str) -> None:
    """An admin records the pledge as paid by transfer today (no commit)."""
    await pledge_ops.record_payment(
        session,
        pledge,
        paid_on=utcnow().date(),
        method="virement",
        reference="",
        recorded_by_id=None,
        base_url=base_url,
        commit=False,
    )


async def pay_on(peer: Peer, pledge_id: int | None) -> None:
    async def pay(session: AsyncSession, pledge: Pledge) -> None:
        await record_paid(session, pledge, peer.base_url)

    await _changed_on(peer, pledge_id, pay)


async def pledges_on(peer: Peer) -> list[Pledge]:
    return await rows(peer, Pledge)


async def funded(peer: Peer, improvement_uri: str) -> tuple[int, int]:
    async with peer.federation.sessions() as session:
        query = select(Improvement.id).where(Improvement.uri == improvement_uri)
        improvement_id = (await session.exec(query)).one()
        assert improvement_id is not None
        totals = await LedgerFunding().totals(session, [improvement_id])
    return totals.get(improvement_id, (0, 0))


async def origin_funded(peer: Peer, improvement_uri: str) -> int | None:
    """What a copy says its origin counts as funded (pledges and matches)."""
    async with peer.federation.sessions() as session:
        query = select(Improvement).where(Improvement.uri == improvement_uri)
        return (await session.exec(query)).one().origin_funded_cents


async def items(peer: Peer, type_: str) -> list[InboxItem]:
    return [i for i in await rows(peer, InboxItem) if i.type == type_]


def sent(peer_rows: list[OutboxActivity], type_: str) -> list[dict[str, Any]]:
    """The activities of ``type_`` queued; an Accept or Reject only when it answers a pledge."""
    found = [json.loads(r.body) for r in peer_rows if r.type == type_]
    if type_ in ("Accept", "Reject"):
        return [f for f in found if isinstance(f["object"], dict) and "proof" in f["object"]]
    return found


async def program_on(peer: Peer, instances: str) -> MatchingProgram:
    funder = await organisation(peer, "ftl", "funder")
    now = utcnow()
    async with peer.federation.sessions() as session:
        program = await pledge_ops.create_program(
            session,
            funder,
            {
                "name": "Un euro pour un euro",
                "ratio": "1",
                "budget": "20000",
                "per_contributor_cap": "500",
                "starts": (now - timedelta(days=1)).isoformat(),
                "ends": (now + timedelta(days=30)).isoformat(),
                "eligible_instances": instances,
            },
            base_url=peer.base_url,
        )
        await pledge_ops.set_program_status(session, program, "active", base_url=peer.base_url)
    return program


async def matches_on(peer: Peer) -> dict[str, int]:
    """Pledge uri → matched cents, on ``peer``."""
    async with peer.federation.sessions() as session:
        found = await session.exec(
            select(Pledge.uri, Match.amount_cents).join(Pledge, col(Pledge.id) == Match.pledge_id)
        )
        return dict(found.all())
