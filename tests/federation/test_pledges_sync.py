"""Pledges between instances, and the funder that matches them.

In-process instances on one fake network (tests/peers.py): ``a.test`` is the tiers-lieux
network whose commons needs an improvement; ``b.test`` a CAE federation whose member pledges to
it; ``c.test`` a funder whose program matches pledges from a and b; ``d.test`` a rogue instance.
b's Offer goes to a, which checks it against the budget and stores it, or refuses it; a's
Accept (with b's proof inside) reaches c, which follows a, and c's program matches it. Changes
of status follow the same path; replays change nothing; forged relays are refused.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from peers import Peer, Peers, rows
from pledging_peers import (
    Pair,
    announce,
    cancel_on,
    drain,
    follows,
    funded,
    improvement_on,
    items,
    matches_on,
    organisation,
    origin_funded,
    pay_on,
    pledge_from,
    pledges_on,
    program_on,
    sent,
)
from sqlalchemy import update
from sqlmodel import col, select

from catalogue import operations as ops
from catalogue.errors import InvalidFields
from catalogue.improvements import Improvement
from catalogue.organisations import Organisation
from federation.activities import new_activity_id
from federation.media import AS_CONTEXT
from federation.models import InboxItem, InboxState, OutboxActivity
from federation.outbox import publish
from federation.pledges_feed import (
    signed_by,
)
from pledges import operations as pledge_ops
from pledges.models import MatchingProgram, Pledge, PledgeStatus

# --- Two instances: b's member pledges to a's improvement ---------------------------------------


async def pair_with_improvement(pair: Pair) -> Improvement:
    a, b, _network = pair
    improvement = await improvement_on(a)
    await follows(b, a)
    await organisation(b, "oxalis", "cae")
    return improvement


async def test_a_pledge_made_on_b_is_stored_and_accepted_on_a(pair: Pair) -> None:
    a, b, _network = pair
    improvement = await pair_with_improvement(pair)
    made = await pledge_from(b, "oxalis", improvement.uri, 30_000)
    await drain(a, b)

    [offer] = sent(await rows(b, OutboxActivity), "Offer")
    assert offer["actor"] == f"{b.base_url}/orgs/oxalis"
    assert offer["object"]["amountCents"] == 30_000
    assert offer["proof"]["verificationMethod"] == f"{b.base_url}/orgs/oxalis#ed25519-key"

    [stored] = await pledges_on(a)
    assert (stored.uri, stored.origin, stored.amount_cents, stored.status) == (
        made.uri,
        "b.test",
        30_000,
        "pledged",
    )
    giver = [o for o in await rows(a, Organisation) if o.origin == "b.test"]
    assert [(o.slug, o.kind, o.uri) for o in giver] == [
        ("oxalis", "cae", f"{b.base_url}/orgs/oxalis")
    ]
    assert await funded(a, improvement.uri) == (30_000, 0)
    # a sent its Article again: b's copy shows what a counts.
    assert await origin_funded(b, improvement.uri) == 30_000
    accept = (await items(b, "Accept"))[-1]
    assert accept.state == InboxState.DONE
    body = json.loads(accept.body)
    assert body["actor"] == f"{a.base_url}/commons/yeswiki"
    assert body["object"] == offer  # as sent, proof included

    await cancel_on(b, made.id)
    await drain(a, b)
    assert [p.status for p in await pledges_on(a)] == ["cancelled"]
    assert [p.status for p in await pledges_on(b)] == ["cancelled"]
    assert await funded(a, improvement.uri) == (0, 0)
    assert await origin_funded(b, improvement.uri) == 0


async def test_replays_change_nothing(pair: Pair) -> None:
    a, b, _network = pair
    improvement = await pair_with_improvement(pair)
    await pledge_from(b, "oxalis", improvement.uri, 30_000)
    await drain(a, b)
    accepts = len(sent(await rows(a, OutboxActivity), "Accept"))
    async with a.federation.sessions() as session:  # every stored activity applied again
        await session.exec(
            update(InboxItem).where(col(InboxItem.type) == "Offer").values(state=InboxState.NEW)
        )
        await session.commit()
    await drain(a, b)
    assert len(await pledges_on(a)) == 1
    assert len(sent(await rows(a, OutboxActivity), "Accept")) == accepts


async def most_taken_on_a(a: Peer, improvement: Improvement) -> None:
    """a's own member pledges 3 800 € of the 4 000 € budget: b's copy does not know yet."""
    await organisation(a, "lieu")
    async with a.federation.sessions() as session:
        giver = await ops.get_local_organisation(session, "lieu")
        stored = await session.get(Improvement, improvement.id)
        assert giver is not None and stored is not None
        await pledge_ops.make_pledge(
            session, giver, stored, 380_000, base_url=a.base_url, created_by_id=None
        )


async def test_a_pledge_over_the_budget_is_rejected_and_refused_where_it_was_made(
    pair: Pair,
) -> None:
    a, b, _network = pair
    improvement = await pair_with_improvement(pair)
    await most_taken_on_a(a, improvement)
    made = await pledge_from(b, "oxalis", improvement.uri, 50_000)  # b does not know yet
    await drain(a, b)

    assert [(p.origin, p.amount_cents) for p in await pledges_on(a)] == [(None, 380_000)]
    [offer] = await items(a, "Offer")
    assert offer.state == InboxState.DONE
    assert "refused" in offer.error and "20000.00" not in offer.error  # 200.00 EUR left
    assert "Only 200.00 EUR is still needed." in offer.error
    [reject] = sent(await rows(a, OutboxActivity), "Reject")
    assert reject["object"]["object"]["id"] == made.uri
    [refused] = await pledges_on(b)
    assert refused.status == PledgeStatus.REFUSED and not refused.refund_due
    assert await funded(b, improvement.uri) == (0, 0)
    assert not [o for o in await rows(a, Organisation) if o.origin == "b.test"]


async def test_a_pledge_paid_before_its_refusal_came_back_is_a_refund_due_counted_nowhere(
    pair: Pair,
) -> None:
    """b records the payment while a has not answered yet (a was out of reach): the Reject
    then makes it a refund due on b. It counts nowhere, and b's own program lets its match
    go, so every instance shows a's totals."""
    a, b, _network = pair
    improvement = await pair_with_improvement(pair)
    await most_taken_on_a(a, improvement)
    await program_on(b, "a.test,b.test")
    made = await pledge_from(b, "oxalis", improvement.uri, 50_000)
    assert await matches_on(b) == {made.uri: 50_000}
    await pay_on(b, made.id)
    await drain(a, b)

    [refused] = await pledges_on(b)
    assert refused.status == PledgeStatus.REFUSED and refused.refund_due
    assert refused.paid_on is not None and refused.payment_method == "virement"
    assert not {uri: cents for uri, cents in (await matches_on(b)).items() if cents}
    assert await funded(b, improvement.uri) == (0, 0)
    assert await funded(a, improvement.uri) == (380_000, 0)
    await announce(a, improvement.id)
    await drain(a, b)
    assert await origin_funded(b, improvement.uri) == 380_000
    # The Update (paid) that reached a first is about a pledge a never took: not applied.
    [paid] = await items(a, "Update")
    assert paid.state != InboxState.DONE
    assert [p.origin for p in await pledges_on(a)] == [None]

    # A Reject replayed, or one for a pledge refunded since, changes nothing.
    async with b.federation.sessions() as session:
        held = await session.get(Pledge, made.id)
        assert held is not None
        assert not await pledge_ops.refuse_pledge(session, held, base_url=b.base_url)
        await pledge_ops.refund_pledge(session, held, base_url=b.base_url)
        assert not await pledge_ops.refuse_pledge(session, held, base_url=b.base_url)
        assert held.status == PledgeStatus.REFUNDED


async def send_offer(b: Peer, a: Peer, commitment: dict[str, Any]) -> InboxItem:
    """b's ``oxalis`` sends an Offer of ``commitment`` to a; what a made of it."""
    config = b.federation.config
    actor = f"{b.base_url}/orgs/oxalis"
    offer = {
        "@context": [AS_CONTEXT, f"{b.base_url}/ns/terreau"],
        "id": new_activity_id(config),
        "type": "Offer",
        "actor": actor,
        "object": commitment,
        "to": [commitment.get("receiver")],
    }
    async with b.federation.sessions() as session:
        await publish(
            session, config, await signed_by(session, actor, offer), [a.base_url + "/inbox"]
        )
        await session.commit()
    await drain(a, b)
    return next(i for i in await rows(a, InboxItem) if i.activity_id == offer["id"])


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"amountCents": 300.5}, "amountCents: expected a whole number of cents"),
        ({"amountCents": -100}, "amountCents: expected a whole number of cents from 1"),
        ({"currency": "XYZ"}, "currency: expected an ISO 4217 code"),
        ({"status": "paid"}, "an Offer is of a pledge not yet paid"),
        ({"id": "http://a.test/pledges/forged"}, "is not on the host of"),
        ({"provider": "http://a.test/orgs/lieu"}, "provider is not the Offer's actor"),
        ({"improvement": "http://a.test/commons/yeswiki/improvements/9"}, "unknown improvement"),
        ({"receiver": "http://a.test/commons/other"}, "receiver is not the commons"),
    ],
)
async def test_bad_offers_are_refused_with_their_reason(
    pair: Pair, changes: dict[str, Any], reason: str
) -> None:
    a, b, _network = pair
    improvement = await pair_with_improvement(pair)
    commitment = {
        "id": f"{b.base_url}/pledges/0123456789abcdef",
        "type": "Commitment",
        "action": "transfer",
        "provider": f"{b.base_url}/orgs/oxalis",
        "receiver": f"{a.base_url}/commons/yeswiki",
        "improvement": improvement.uri,
        "amountCents": 30_000,
        "currency": "EUR",
        "status": "pledged",
    }
    for key, value in changes.items():
        if value is None:
            commitment.pop(key, None)
        else:
            commitment[key] = value
    item = await send_offer(b, a, commitment)
    assert item.state == InboxState.FAILED
    assert reason in item.error
    assert await pledges_on(a) == []


async def test_a_pledge_in_another_currency_is_rejected(pair: Pair) -> None:
    a, b, _network = pair
    improvement = await pair_with_improvement(pair)
    commitment = {
        "id": f"{b.base_url}/pledges/0123456789abcdef",
        "type": "Commitment",
        "action": "transfer",
        "provider": f"{b.base_url}/orgs/oxalis",
        "receiver": f"{a.base_url}/commons/yeswiki",
        "improvement": improvement.uri,
        "amountCents": 30_000,
        "currency": "CHF",
        "status": "pledged",
    }
    item = await send_offer(b, a, commitment)
    assert item.state == InboxState.DONE  # answered: a Reject, with the reason kept
    assert "currency: CHF is not the improvement's currency (EUR)" in item.error
    [reject] = sent(await rows(a, OutboxActivity), "Reject")
    assert reject["summary"] == "currency: CHF is not the improvement's currency (EUR)"
    assert await pledges_on(a) == []


# --- Three (and four) instances: the funder matches pledges made elsewhere ----------------------


async def test_the_funder_matches_pledges_made_on_other_instances(
    network: tuple[Peer, Peer, Peer, Peer, Peers],
) -> None:
    a, b, c, d, _peers = network
    improvement = await improvement_on(a)
    await program_on(c, "a.test,b.test")
    for follower in (b, c, d):
        await follows(follower, a)
    await organisation(b, "oxalis", "cae")
    await organisation(d, "rogue", "cae")

    from_b = await pledge_from(b, "oxalis", improvement.uri, 70_000)  # capped at 500 €
    from_a = await pledge_from(a, "lieu", improvement.uri, 10_000)  # a's own member
    from_d = await pledge_from(d, "rogue", improvement.uri, 20_000)  # d is not eligible
    await drain(a, b, c, d)

    held = {p.uri: p for p in await pledges_on(c)}
    assert {uri: (p.origin, p.amount_cents) for uri, p in held.items()} == {
        from_b.uri: ("b.test", 70_000),
        from_a.uri: ("a.test", 10_000),
        from_d.uri: ("d.test", 20_000),
    }
    assert await matches_on(c) == {from_b.uri: 50_000, from_a.uri: 10_000}
    # Every instance that knows the pledges counts the same money pledged.
    assert (await funded(a, improvement.uri))[0] == (await funded(c, improvement.uri))[0] == 100_000

    # b cancels: a applies it and relays it, c releases its match.
    await cancel_on(b, from_b.id)
    await drain(a, b, c, d)
    assert {p.uri: p.status for p in await pledges_on(c)}[from_b.uri] == "cancelled"
    assert await matches_on(c) == {from_a.uri: 10_000}
    assert [p.status for p in await pledges_on(a) if p.uri == from_b.uri] == ["cancelled"]

    # Everything c received, applied once more, changes nothing.
    async with c.federation.sessions() as session:
        replayed = col(InboxItem.type).in_(["Offer", "Accept", "Update"])
        await session.exec(update(InboxItem).where(replayed).values(state=InboxState.NEW))
        await session.commit()
    await drain(a, b, c, d)
    assert len(await pledges_on(c)) == 3
    assert await matches_on(c) == {from_a.uri: 10_000}


async def test_a_relay_without_a_valid_proof_is_not_matched(
    network: tuple[Peer, Peer, Peer, Peer, Peers], caplog: pytest.LogCaptureFixture
) -> None:
    a, b, c, d, peers = network
    improvement = await improvement_on(a)
    await program_on(c, "a.test,b.test")
    for follower in (b, c, d):
        await follows(follower, a)
    await organisation(b, "oxalis", "cae")
    await organisation(d, "rogue", "cae")
    made = await pledge_from(b, "oxalis", improvement.uri, 30_000)
    peers.down.add("c.test")  # a's genuine relay does not reach c (it is retried later)
    await drain(a, b)
    peers.down.clear()
    [genuine] = sent(await rows(b, OutboxActivity), "Offer")

    async def relay(by: Peer, actor: str, offer: dict[str, Any]) -> InboxItem:
        config = by.federation.config
        accept = {
            "@context": [AS_CONTEXT],
            "id": new_activity_id(config),
            "type": "Accept",
            "actor": actor,
            "object": offer,
            "to": [offer["actor"]],
        }
        async with by.federation.sessions() as session:
            await publish(session, config, accept, [c.base_url + "/inbox"])
            await session.commit()
        await drain(by, c)
        return next(i for i in await rows(c, InboxItem) if i.activity_id == accept["id"])

    commons = f"{a.base_url}/commons/yeswiki"
    stripped = {k: v for k, v in genuine.items() if k != "proof"}
    quantity = {"hasUnit": "EUR", "hasNumericalValue": "30000.00"}
    inflated = {
        **genuine,
        "object": {**genuine["object"], "amountCents": 3_000_000, "resourceQuantity": quantity},
    }
    # d signs a pledge in b's member's name with its own member's key.
    async with d.federation.sessions() as session:
        forged = await signed_by(session, f"{d.base_url}/orgs/rogue", stripped)
        await session.commit()
    cases = [
        (await relay(d, f"{d.base_url}/actor", genuine), "only the improvement's own instance"),
        (await relay(a, commons, stripped), "without a valid proof"),
        (await relay(a, commons, inflated), "signature does not match"),
        (await relay(a, commons, forged), "is not an assertionMethod of"),
    ]
    for item, reason in cases:
        assert item.state == InboxState.FAILED, item.error
        assert reason in item.error
    assert made.uri not in {p.uri for p in await pledges_on(c)}
    assert await matches_on(c) == {}
    assert "relayed pledge" in caplog.text

    genuine_relay = await relay(a, commons, genuine)  # as a's retried delivery will bring it
    assert genuine_relay.state == InboxState.DONE
    assert await matches_on(c) == {made.uri: 30_000}


# --- Through the pages: pledging to a remote commons' improvement ------------------------------

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def post(peer: Peer, path: str, data: dict[str, str], page: str) -> httpx.Response:
    """Submit a form as a browser would, with the CSRF token of the page it is on."""
    found = CSRF.search((await peer.client.get(page)).text)
    assert found, f"no form on {page}"
    return await peer.client.post(path, data={**data, "csrf_token": found.group(1)})


async def test_a_member_pledges_from_the_page_of_a_remote_commons(pair: Pair) -> None:
    a, b, _network = pair
    improvement = await improvement_on(a)
    await follows(b, a)
    signup = {"email": "ana@example.org", "password": "correct horse battery"}
    response = await post(b, "/signup", {**signup, "display_name": "Ana"}, page="/signup")
    assert response.status_code == 303, response.text
    org = {"name": "Oxalis", "slug": "oxalis", "kind": "cae", "description": "", "website": ""}
    response = await post(b, "/orgs/new", {**org, "territory": "", "siret": ""}, "/orgs/new")
    assert response.status_code == 303, response.text

    page = "/commons/yeswiki@a.test"
    shown = (await b.client.get(page)).text
    [copy] = [i for i in await rows(b, Improvement) if i.uri == improvement.uri]
    pledging = f"/commons/yeswiki@a.test/improvements/{copy.number}/pledges"
    assert f'action="{pledging}/estimate"' in shown
    form = {"organisation": "oxalis", "amount": "300"}
    estimate = await post(b, f"{pledging}/estimate", form, page)
    assert estimate.status_code == 200, estimate.text
    assert f'action="{pledging}"' in estimate.text
    made = await post(b, pledging, form, page)
    assert made.status_code == 303, made.text
    assert made.headers["location"].startswith(page)
    await drain(a, b)

    [mine] = await pledges_on(b)
    [theirs] = await pledges_on(a)
    assert (theirs.uri, theirs.origin, theirs.amount_cents) == (mine.uri, "b.test", 30_000)
    assert await funded(a, improvement.uri) == (30_000, 0)


async def test_a_relay_waits_for_the_improvement_it_names(
    network: tuple[Peer, Peer, Peer, Peer, Peers],
) -> None:
    a, b, c, _d, _peers = network
    improvement = await improvement_on(a)
    await program_on(c, "a.test,b.test")
    for follower in (b, c):
        await follows(follower, a)
    await organisation(b, "oxalis", "cae")
    async with c.federation.sessions() as session:  # as if c had not heard of it yet
        query = select(Improvement).where(Improvement.uri == improvement.uri)
        await session.delete((await session.exec(query)).one())
        await session.commit()
    # An origin that does not send its Article again with the Accept (as a's own worker does
    # when a pledge moves the funding): the relay has to wait for the next announcement.
    a.federation.describe = None

    made = await pledge_from(b, "oxalis", improvement.uri, 30_000)
    await drain(a, b, c)
    [held] = [i for i in await items(c, "Accept") if "proof" in json.loads(i.body)["object"]]
    assert (held.state, held.waiting_for) == (InboxState.HELD, improvement.uri)
    assert await pledges_on(c) == []

    await announce(a, improvement.id)  # its funding changed: the Article's Update brings it
    await drain(a, b, c)
    assert await matches_on(c) == {made.uri: 30_000}


async def test_a_program_with_manual_approval_matches_only_approved_contributors(
    network: tuple[Peer, Peer, Peer, Peer, Peers],
) -> None:
    a, b, c, _d, _peers = network
    improvement = await improvement_on(a)
    program = await program_on(c, "a.test,b.test")
    async with c.federation.sessions() as session:
        stored = await session.get(MatchingProgram, program.id)
        assert stored is not None
        await pledge_ops.update_program(
            session,
            stored,
            {
                "name": stored.name,
                "ratio": stored.ratio,
                "budget": "20000",
                "per_contributor_cap": "500",
                "starts": stored.starts_at.isoformat(),
                "ends": stored.ends_at.isoformat(),
                "eligible_instances": stored.eligible_instances,
                "manual_approval": True,
            },
            base_url=c.base_url,
        )
    for follower in (b, c):
        await follows(follower, a)
    await organisation(b, "oxalis", "cae")
    made = await pledge_from(b, "oxalis", improvement.uri, 30_000)
    await drain(a, b, c)
    assert made.uri in {p.uri for p in await pledges_on(c)}
    assert await matches_on(c) == {}  # not approved yet

    async with c.federation.sessions() as session:
        stored = await session.get(MatchingProgram, program.id)
        query = select(Organisation).where(Organisation.uri == f"{b.base_url}/orgs/oxalis")
        giver = (await session.exec(query)).one()
        assert stored is not None and stored.manual_approval
        await pledge_ops.decide_approval(session, stored, giver, True, base_url=c.base_url)
    assert await matches_on(c) == {made.uri: 30_000}


async def test_a_copy_knows_what_its_origin_says_is_still_needed(pair: Pair) -> None:
    a, b, _network = pair
    improvement = await pair_with_improvement(pair)
    async with a.federation.sessions() as session:
        giver = await ops.get_local_organisation(session, "lieu")
        stored = await session.get(Improvement, improvement.id)
        assert giver is not None and stored is not None
        await pledge_ops.make_pledge(
            session, giver, stored, 380_000, base_url=a.base_url, created_by_id=None
        )
    await announce(a, improvement.id)  # the Article's fundedAmount says so
    await drain(a, b)
    with pytest.raises(InvalidFields, match=r"Only 200\.00 EUR is still needed"):
        await pledge_from(b, "oxalis", improvement.uri, 50_000)
    assert await pledges_on(b) == []


async def test_the_improvement_page_lists_a_remote_pledge_with_its_origin(pair: Pair) -> None:
    a, b, _network = pair
    improvement = await pair_with_improvement(pair)
    await pledge_from(b, "oxalis", improvement.uri, 30_000)
    await drain(a, b)
    page = (await a.client.get(f"/commons/yeswiki/improvements/{improvement.number}")).text
    assert f'<a href="{b.base_url}/orgs/oxalis" rel="nofollow noopener">Oxalis</a>' in page
    assert "from b.test" in page


async def test_a_funder_that_follows_late_reads_the_pledges_back(
    network: tuple[Peer, Peer, Peer, Peer, Peers],
) -> None:
    a, b, c, _d, _peers = network
    improvement = await improvement_on(a)
    await follows(b, a)
    await organisation(b, "oxalis", "cae")
    made = await pledge_from(b, "oxalis", improvement.uri, 70_000)
    cancelled = await pledge_from(b, "oxalis", improvement.uri, 10_000)
    await drain(a, b)
    await cancel_on(b, cancelled.id)
    await drain(a, b)

    await program_on(c, "a.test,b.test")
    await follows(c, a)  # the commons' outbox lists a's Accepts: Offers, then the Update
    assert {p.uri: p.status for p in await pledges_on(c)} == {
        made.uri: "pledged",
        cancelled.uri: "cancelled",
    }
    assert await matches_on(c) == {made.uri: 50_000}
