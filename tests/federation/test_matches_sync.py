"""A funder's matches travel: computed on the funder's instance, counted on the improvement's.

``a.test`` holds the commons and its improvement, ``b.test`` pledges to it, ``c.test`` runs a
program that matches b's pledge (it follows a and hears the pledge from a's relay), ``d.test``
is a rogue instance. c publishes its match (``Create``, ``Update``, ``Delete`` of a
Commitment); a counts it and sends its Article again, so b and c show a's total.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from peers import Peer, rows
from pledging_peers import (
    Network,
    cancel_on,
    drain,
    follows,
    funded,
    improvement_on,
    matches_on,
    organisation,
    origin_funded,
    pledge_from,
    program_on,
)
from sqlalchemy import update
from sqlmodel import col

from catalogue.improvements import Improvement
from federation.activities import new_activity_id
from federation.matches_feed import MatchMove, moves, publish_match_changes
from federation.media import AS_CONTEXT
from federation.models import InboxItem, InboxState, OutboxActivity
from federation.outbox import publish
from federation.pledges_documents import (
    BadCommitment,
    MatchCommitment,
    is_commitment,
    is_match,
    match_document,
    parse_match,
)
from federation.vocabulary import CONTEXT_FILE, MATCH_TERMS
from pledges import operations as pledge_ops
from pledges.models import LedgerEntry, MatchingProgram, Pledge, RemoteMatch

# --- The document, and the ledger read as news: pure ---------------------------------------------


MATCH = MatchCommitment(
    uri="https://c.example/programs/1/matches/7",
    provider="https://c.example/orgs/ftl",
    receiver="https://a.example/commons/yeswiki",
    improvement="https://a.example/commons/yeswiki/improvements/3",
    pledge="https://b.example/pledges/abc",
    program="https://c.example/programs/1",
    program_name="Un euro pour un euro",
    amount_cents=50_000,
    currency="EUR",
    updated=datetime(2026, 11, 28, 10, 0, 0, 123456, tzinfo=UTC),
    program_ratio="0.5",
)


def test_a_match_document_reads_back_as_it_was_written() -> None:
    document = match_document(MATCH)
    document["updated"] = "2026-11-28T10:00:00.123456Z"

    assert document["type"] == "Commitment"
    assert document["matches"] == MATCH.pledge
    assert document["program"] == {
        "id": MATCH.program,
        "type": "MatchingProgram",
        "name": "Un euro pour un euro",
        "ratio": "0.5",
    }
    assert document["resourceQuantity"] == {"hasUnit": "EUR", "hasNumericalValue": "500.00"}
    assert parse_match(json.loads(json.dumps(document))) == MATCH


def test_the_context_defines_the_match_terms() -> None:
    definitions: dict[str, Any] = json.loads(CONTEXT_FILE.read_text())["@context"]
    for term, iri in MATCH_TERMS.items():
        definition = definitions[term]
        assert (definition["@id"] if isinstance(definition, dict) else definition) == iri, term


def test_a_match_is_not_taken_for_a_pledge() -> None:
    document = match_document(MATCH)

    assert is_match(document) and not is_commitment(document)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"amountCents": 500.0}, "amountCents: expected a whole number of cents"),
        ({"amountCents": 0}, "amountCents: expected a whole number of cents from 1"),
        ({"currency": "ZZZ"}, "currency: expected an ISO 4217 code"),
        ({"matches": "javascript:alert(1)"}, "matches"),
        ({"program": {"name": "no id"}}, "program"),
        ({"program": {"id": "https://c.example/programs/1", "name": 3}}, "program: its name"),
        ({"action": "produce"}, "action: a match is a 'transfer'"),
        ({"program": {"id": "https://c.example/programs/1", "ratio": 1.5}}, "ratio must be"),
        ({"updated": "yesterday"}, "updated: expected a time"),
    ],
)
def test_a_bad_match_is_refused_naming_the_property(changes: dict[str, Any], reason: str) -> None:
    document = {**match_document(MATCH), **changes}

    with pytest.raises(BadCommitment, match=reason):
        parse_match(document)


def entry(program: int, pledge: int, before: int, after: int, at: int = 0) -> LedgerEntry:
    moment = datetime(2026, 11, 28, tzinfo=UTC) + timedelta(seconds=at)
    return LedgerEntry(
        program_id=program,
        pledge_id=pledge,
        kind="x",
        delta_cents=after - before,
        amount_after_cents=after,
        at=moment,
    )


def test_the_ledger_since_the_last_pass_becomes_one_move_per_match() -> None:
    found = moves(
        [
            entry(1, 10, 0, 500),  # made
            entry(1, 11, 300, 200),  # lowered…
            entry(1, 11, 200, 300, at=5),  # …and raised back: nothing to say
            entry(1, 12, 400, 0),  # released
            entry(2, 10, 0, 100),  # made…
            entry(2, 10, 100, 0, at=2),  # …and released before anyone heard of it
            entry(1, 13, 100, 250, at=3),  # adjusted
        ]
    )

    assert [(m.program, m.pledge, m.kind) for m in found] == [
        (1, 10, "Create"),
        (1, 11, None),
        (1, 12, "Delete"),
        (2, 10, None),
        (1, 13, "Update"),
    ]
    assert found[4] == MatchMove(1, 13, 100, 250, datetime(2026, 11, 28, 0, 0, 3, tzinfo=UTC))


# --- Three instances ----------------------------------------------------------------------------


async def matched_on_a(a: Peer, improvement_uri: str) -> int:
    return (await funded(a, improvement_uri))[1]


async def sent_matches(c: Peer) -> list[dict[str, Any]]:
    found = [json.loads(r.body) for r in await rows(c, OutboxActivity)]
    return [f for f in found if isinstance(f.get("object"), dict) and is_match(f["object"])]


async def funded_network(
    network: Network, *, b_follows_c: bool = False
) -> tuple[Improvement, Pledge]:
    """a's improvement (budget 4,000 €), c's program (1 € per €, at most 500 € a
    contributor, for a and b), b's pledge of 700 €: matched 500 € on c."""
    a, b, c, _d, _peers = network
    improvement = await improvement_on(a)
    await program_on(c, "a.test,b.test")
    for follower in (b, c):
        await follows(follower, a)
    if b_follows_c:
        await follows(b, c)
    await organisation(b, "oxalis", "cae")
    pledge = await pledge_from(b, "oxalis", improvement.uri, 70_000)
    await drain(*network[:4])
    return improvement, pledge


async def test_the_improvement_s_instance_counts_the_funder_s_match(network: Network) -> None:
    a, b, c, _d, _peers = network
    improvement, pledge = await funded_network(network)

    assert await matches_on(c) == {pledge.uri: 50_000}
    created = await sent_matches(c)
    assert [(m["type"], m["object"]["amountCents"]) for m in created] == [("Create", 50_000)]
    assert created[0]["actor"] == "http://c.test/orgs/ftl"
    assert created[0]["object"]["matches"] == pledge.uri
    assert created[0]["object"]["program"]["name"] == "Un euro pour un euro"

    assert await funded(a, improvement.uri) == (70_000, 50_000)
    held = await rows(a, RemoteMatch)
    assert [(m.origin, m.amount_cents, m.funder_uri) for m in held] == [
        ("c.test", 50_000, "http://c.test/orgs/ftl")
    ]
    # a sent its Article again: every copy shows the total a counts, and its readers the funder.
    articles = [json.loads(r.body) for r in await rows(a, OutboxActivity) if r.type == "Update"]
    summary = articles[-1]["object"]["summary"]
    assert summary == "Budget €4,000 · 30% funded · matched ×2 by Ftl"
    assert await origin_funded(b, improvement.uri) == 120_000
    assert await origin_funded(c, improvement.uri) == 120_000


async def cap_contributors(funder: Peer, euros: str) -> None:
    """The funder's admin sets its program's cap per contributor."""
    async with funder.federation.sessions() as session:
        program = (await rows(funder, MatchingProgram))[0]
        await pledge_ops.update_program(
            session,
            program,
            {
                "name": program.name,
                "ratio": "1",
                "budget": "20000",
                "per_contributor_cap": euros,
                "starts": program.starts_at.isoformat(),
                "ends": program.ends_at.isoformat(),
                "eligible_instances": "a.test,b.test",
            },
            base_url=funder.base_url,
        )


async def test_two_funders_matches_count_only_within_the_budget(network: Network) -> None:
    """c and d each match b's 700 € pledge with 500 €, each blind to the other: 1,700 € for
    a budget of 1,500 €. a, which sees both, counts them up to the budget; every copy shows
    that total, and a pledge has no room left."""
    a, b, c, d, _peers = network
    improvement = await improvement_on(a, budget="1500")
    for funder in (c, d):
        await program_on(funder, "a.test,b.test")
    for follower in (b, c, d):
        await follows(follower, a)
    await organisation(b, "oxalis", "cae")
    pledge = await pledge_from(b, "oxalis", improvement.uri, 70_000)
    await drain(a, b, c, d)

    assert await matches_on(c) == await matches_on(d) == {pledge.uri: 50_000}
    held = sorted((m.origin, m.amount_cents) for m in await rows(a, RemoteMatch))
    assert held == [("c.test", 50_000), ("d.test", 50_000)]  # recorded as each funder said
    assert await funded(a, improvement.uri) == (70_000, 80_000)  # counted up to the budget
    for copy in (b, c, d):
        assert await origin_funded(copy, improvement.uri) == 150_000
    async with a.federation.sessions() as session:
        stored = await session.get(Improvement, improvement.id)
        assert stored is not None
        assert await pledge_ops.still_needed(session, stored) == 0

    # d lowers its cap to 200 €: with c's 500 €, 1,400 € in all, every euro counts.
    await cap_contributors(d, "200")
    await drain(a, b, c, d)
    assert await funded(a, improvement.uri) == (70_000, 70_000)
    assert await origin_funded(b, improvement.uri) == 140_000


async def test_a_smaller_match_is_an_update_and_a_released_one_a_delete(
    network: Network,
) -> None:
    a, b, c, _d, _peers = network
    improvement, pledge = await funded_network(network)

    await cap_contributors(c, "300")
    await drain(*network[:4])
    assert await matched_on_a(a, improvement.uri) == 30_000
    assert await origin_funded(b, improvement.uri) == 100_000

    await cancel_on(b, pledge.id)
    await drain(*network[:4])
    assert [m["type"] for m in await sent_matches(c)] == ["Create", "Update", "Delete"]
    assert await funded(a, improvement.uri) == (0, 0)
    assert [m.amount_cents for m in await rows(a, RemoteMatch)] == [0]  # kept, as released
    assert await origin_funded(b, improvement.uri) == 0
    assert await origin_funded(c, improvement.uri) == 0


async def test_replayed_matches_change_nothing(network: Network) -> None:
    a, _b, _c, _d, _peers = network
    improvement, _pledge = await funded_network(network)
    articles_before = len([r for r in await rows(a, OutboxActivity) if r.type == "Update"])

    async with a.federation.sessions() as session:
        again = col(InboxItem.type).in_(["Create", "Update"])
        await session.exec(update(InboxItem).where(again).values(state=InboxState.NEW))
        await session.commit()
    await drain(*network[:4])

    assert await funded(a, improvement.uri) == (70_000, 50_000)
    articles_after = len([r for r in await rows(a, OutboxActivity) if r.type == "Update"])
    assert articles_after == articles_before


async def test_publishing_twice_sends_each_change_once(network: Network) -> None:
    _a, _b, c, _d, _peers = network
    await funded_network(network)

    async with c.federation.sessions() as session:
        assert await publish_match_changes(session, c.federation) == 0
        await session.commit()
    assert len(await sent_matches(c)) == 1


# --- What a is told by someone else, or out of order --------------------------------------------


async def send_match(
    sender: Peer, a: Peer, kind: str, document: dict[str, Any], actor: str
) -> InboxItem:
    """``sender`` delivers ``kind`` of ``document`` to a, by ``actor``; what a made of it."""
    config = sender.federation.config
    activity = {
        "@context": [AS_CONTEXT, f"{sender.base_url}/ns/terreau"],
        "id": new_activity_id(config),
        "type": kind,
        "actor": actor,
        "object": document,
    }
    async with sender.federation.sessions() as session:
        await publish(session, config, activity, [a.base_url + "/inbox"])
        await session.commit()
    await drain(a, sender)
    return next(i for i in await rows(a, InboxItem) if i.activity_id == activity["id"])


def match_of(
    pledge: Pledge, improvement: Improvement, host: str, amount: int = 10_000, **changes: Any
) -> dict[str, Any]:
    match = MatchCommitment(
        uri=f"http://{host}/programs/9/matches/{pledge.id}",
        provider=f"http://{host}/orgs/ftl",
        receiver=improvement.uri.split("/improvements/")[0],
        improvement=improvement.uri,
        pledge=pledge.uri,
        program=f"http://{host}/programs/9",
        program_name="Fonds",
        amount_cents=amount,
        currency="EUR",
    )
    document = match_document(match)
    document.update(changes)
    return document


async def test_only_the_funder_s_own_instance_speaks_for_its_match(network: Network) -> None:
    a, _b, _c, d, _peers = network
    improvement, pledge = await funded_network(network)
    await organisation(d, "ftl", "funder")

    forged = match_of(pledge, improvement, "c.test")  # c's id, said by d
    item = await send_match(d, a, "Create", forged, "http://d.test/orgs/ftl")

    assert item.state == InboxState.FAILED
    assert "spoken for by its funder" in (item.error or "")
    assert await matched_on_a(a, improvement.uri) == 50_000


async def test_a_match_waits_for_its_pledge_and_an_older_version_changes_nothing(
    network: Network,
) -> None:
    a, _b, _c, d, _peers = network
    improvement, pledge = await funded_network(network)
    await organisation(d, "ftl", "funder")
    later = datetime.now(UTC).isoformat()
    earlier = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()

    newer = match_of(pledge, improvement, "d.test", 20_000, updated=later)
    older = match_of(pledge, improvement, "d.test", 90_000, updated=earlier)
    actor = "http://d.test/orgs/ftl"
    assert (await send_match(d, a, "Update", newer, actor)).state == InboxState.DONE
    assert (await send_match(d, a, "Create", older, actor)).state == InboxState.DONE
    assert await matched_on_a(a, improvement.uri) == 50_000 + 20_000

    # A match of a pledge a has not received yet waits for it.
    unknown = Pledge(uri="http://b.test/pledges/not-yet", id=999, organisation_id=0)
    waiting = match_of(unknown, improvement, "d.test")
    waiting["id"] = "http://d.test/programs/9/matches/999"
    held = await send_match(d, a, "Create", waiting, actor)
    assert held.state == InboxState.HELD
    assert held.waiting_for == "http://b.test/pledges/not-yet"


async def test_a_release_that_comes_first_wins_over_a_late_create(network: Network) -> None:
    a, _b, _c, d, _peers = network
    improvement, pledge = await funded_network(network)
    await organisation(d, "ftl", "funder")
    now = datetime.now(UTC)
    actor = "http://d.test/orgs/ftl"

    released = match_of(pledge, improvement, "d.test", updated=now.isoformat())
    made = match_of(pledge, improvement, "d.test", updated=(now - timedelta(seconds=1)).isoformat())
    await send_match(d, a, "Delete", released, actor)
    await send_match(d, a, "Create", made, actor)

    assert await matched_on_a(a, improvement.uri) == 50_000  # c's match only
    assert {m.origin: m.amount_cents for m in await rows(a, RemoteMatch)}["d.test"] == 0


async def test_other_instances_leave_matches_to_the_improvement_s_origin(
    network: Network,
) -> None:
    _a, b, _c, _d, _peers = network
    improvement, _pledge = await funded_network(network, b_follows_c=True)

    # b follows c: it hears the match, and counts nothing of it (a's Article does).
    heard = [i for i in await rows(b, InboxItem) if i.type == "Create" and "matches" in i.body]
    assert [(i.state, i.error) for i in heard] == [
        (InboxState.DONE, "a match of another instance's improvement: counted at its origin")
    ]
    assert await rows(b, RemoteMatch) == []
    assert await origin_funded(b, improvement.uri) == 120_000


async def test_a_match_id_answers_with_the_match_as_it_stands(network: Network) -> None:
    _a, b, c, _d, _peers = network
    _improvement, pledge = await funded_network(network)
    [created] = await sent_matches(c)
    uri = created["object"]["id"]
    ask = {"Accept": "application/activity+json"}

    fetched = await c.client.get(uri, headers=ask)
    assert fetched.status_code == 200
    document = fetched.json()
    assert parse_match(document) == parse_match(created["object"])

    await cancel_on(b, pledge.id)
    await drain(*network[:4])
    assert (await c.client.get(uri, headers=ask)).status_code == 410
    assert (await c.client.get(uri + "0", headers=ask)).status_code == 404
