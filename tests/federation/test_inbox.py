"""The inbox, between two real instances in one process: what it takes, what it refuses, and why.

Every refusal in the issue has its test here: bad JSON, a blocked domain, no signature, a bad
one, a signer that is not the actor, an expired Date, a digest that does not match, a body too
large, and a key that lives at a private address. A replayed activity is stored and applied
once, also when both copies arrive at the same moment; an activity from a sender we know costs
one read, one insert and one commit, and from one heard a moment ago no read at all;
activities arriving together share a commit.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx
import pytest
from peers import Peer, Peers, local_commons, local_organisation
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from support import statements

from catalogue.columns import utcnow
from federation import instances
from federation.activities import instance_signer
from federation.context import FederationConfig
from federation.fetch import Fetcher
from federation.keys import Signer, key_for, signer_of
from federation.models import (
    Delivery,
    DeliveryState,
    Follower,
    InboxItem,
    InboxState,
    KnownInstance,
    OutboxActivity,
)
from federation.service import Federation
from federation.signatures import sign_request
from instance.database import Database

Pair = tuple[Peer, Peer, Peers]


async def signer(peer: Peer, actor_uri: str | None = None) -> Signer:
    async with peer.federation.sessions() as session:
        key = await key_for(session, actor_uri or peer.federation.config.instance_actor_uri)
        await session.commit()
        return signer_of(key)


def follow(sender: Peer, target: str, number: int = 1) -> dict[str, Any]:
    actor = sender.federation.config.instance_actor_uri
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{sender.base_url}/activities/follow-{number}",
        "type": "Follow",
        "actor": actor,
        "object": target,
    }


async def post(
    receiver: Peer,
    path: str,
    activity: dict[str, Any] | bytes,
    by: Signer | None,
    *,
    body: bytes | None = None,
    when_signed: Any = None,
) -> httpx.Response:
    """POST an activity signed by ``by`` (``body`` replaces what is sent after signing)."""
    signed_body = activity if isinstance(activity, bytes) else json.dumps(activity).encode()
    headers = {"Content-Type": "application/activity+json"}
    if by is not None:
        url = f"{receiver.base_url}{path}"
        headers |= sign_request("POST", url, signed_body, by, now=when_signed)
    return await receiver.client.post(path, content=body or signed_body, headers=headers)


async def rows(peer: Peer, model: Any) -> list[Any]:
    async with peer.federation.sessions() as session:
        return list((await session.exec(select(model))).all())


async def test_a_signed_follow_is_stored_then_accepted(pair: Pair) -> None:
    a, b, _network = pair
    maintainer = await local_organisation(b, "tiers-lieux")
    commons = await local_commons(b, "yeswiki", maintainer)
    response = await post(b, "/commons/yeswiki/inbox", follow(a, commons.uri), await signer(a))
    assert response.status_code == 202, response.text
    [item] = await rows(b, InboxItem)
    assert (item.type, item.state, item.recipient_uri) == ("Follow", InboxState.NEW, commons.uri)
    assert await rows(b, Follower) == []  # effects run later, from the stored row

    await b.work()  # applies the Follow, queues the Accept and sends it
    [follower] = await rows(b, Follower)
    assert (follower.actor_uri, follower.follower_uri) == (commons.uri, f"{a.base_url}/actor")
    assert follower.shared_inbox == f"{a.base_url}/inbox"
    [accept] = await rows(b, OutboxActivity)
    assert json.loads(accept.body)["object"]["id"] == f"{a.base_url}/activities/follow-1"
    [delivery] = await rows(b, Delivery)
    assert delivery.state == DeliveryState.SENT
    [received] = await rows(a, InboxItem)
    assert received.type == "Accept"
    assert [i.host for i in await rows(b, KnownInstance)] == ["a.test"]


async def test_a_replayed_activity_is_applied_once(pair: Pair) -> None:
    a, b, _network = pair
    commons = await local_commons(b, "yeswiki", await local_organisation(b, "lieu"))
    key = await signer(a)
    first = await post(b, "/inbox", follow(a, commons.uri), key)
    again = await post(b, "/inbox", follow(a, commons.uri), key)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json() == {"status": "duplicate"}
    await b.work()
    await b.work()
    assert len(await rows(b, InboxItem)) == 1
    assert len(await rows(b, Follower)) == 1
    assert len(await rows(b, OutboxActivity)) == 1  # one Accept


async def test_undo_removes_the_follower(pair: Pair) -> None:
    a, b, _network = pair
    commons = await local_commons(b, "yeswiki", await local_organisation(b, "lieu"))
    key = await signer(a)
    request = follow(a, commons.uri)
    await post(b, "/inbox", request, key)
    await b.work()
    undo = {
        "id": f"{a.base_url}/activities/undo-1",
        "type": "Undo",
        "actor": request["actor"],
        "object": request,
    }
    assert (await post(b, "/inbox", undo, key)).status_code == 202
    await b.work()
    assert await rows(b, Follower) == []


async def test_an_actor_deleting_itself_takes_its_follows_with_it(pair: Pair) -> None:
    a, b, _network = pair
    commons = await local_commons(b, "yeswiki", await local_organisation(b, "lieu"))
    key = await signer(a)
    await post(b, "/inbox", follow(a, commons.uri), key)
    await b.work()
    assert len(await rows(b, Follower)) == 1
    actor = a.federation.config.instance_actor_uri
    deletion = {"id": f"{actor}#delete", "type": "Delete", "actor": actor, "object": actor}
    assert (await post(b, "/inbox", deletion, key)).status_code == 202
    await b.work()
    assert await rows(b, Follower) == []
    assert [i.state for i in await rows(b, InboxItem)] == [InboxState.DONE, InboxState.DONE]


REFUSALS = [
    # (what is wrong, status, words of the logged reason)
    ("malformed JSON", 400, "malformed JSON"),
    ("JSON in UTF-16", 400, "malformed JSON"),
    ("no actor", 400, "no actor"),
    ("id on another server", 400, "not on its actor's server"),
    ("unsigned", 401, "signature"),
    ("signer is not the actor", 401, "not the actor"),
    ("signed with another key", 401, "signature"),
    ("Date ten minutes old", 401, "signature"),
    ("body changed after signing", 401, "signature"),
    ("blocked domain", 403, "blocked"),
]


@pytest.mark.parametrize(("case", "status", "reason"), REFUSALS, ids=[r[0] for r in REFUSALS])
async def test_bad_activities_are_refused_with_a_reason(
    pair: Pair, caplog: pytest.LogCaptureFixture, case: str, status: int, reason: str
) -> None:
    a, b, _network = pair
    commons = await local_commons(b, "yeswiki", await local_organisation(b, "lieu"))
    key = await signer(a)
    activity: dict[str, Any] | bytes = follow(a, commons.uri)
    options: dict[str, Any] = {}
    assert isinstance(activity, dict)
    if case == "malformed JSON":
        activity = b'{"type": "Follow",'
    elif case == "JSON in UTF-16":
        activity = json.dumps(activity).encode("utf-16")  # signed as sent
    elif case == "no actor":
        del activity["actor"]
    elif case == "id on another server":
        activity["id"] = "http://b.test/activities/forged"
    elif case == "unsigned":
        key = None  # type: ignore[assignment]
    elif case == "signer is not the actor":
        await local_organisation(a, "cae")
        activity["actor"] = f"{a.base_url}/orgs/cae"  # signed with the instance actor's key
        activity["id"] = f"{a.base_url}/activities/impersonation"
    elif case == "signed with another key":
        key = Signer(key.key_id, (await signer(b)).private_pem)  # claims a's key, signs with b's
    elif case == "Date ten minutes old":
        options["when_signed"] = utcnow() - timedelta(minutes=10)
    elif case == "body changed after signing":
        options["body"] = json.dumps({**activity, "object": f"{b.base_url}/actor"}).encode()
    elif case == "blocked domain":
        async with b.federation.sessions() as session:
            session.add(KnownInstance(host="a.test", blocked=True))
            await session.commit()
    with caplog.at_level(logging.WARNING, logger="terreau.federation.inbox"):
        response = await post(b, "/inbox", activity, key, **options)
    assert response.status_code == status, response.text
    assert reason in response.json()["error"]
    assert any(reason in record.getMessage() for record in caplog.records)
    assert await rows(b, InboxItem) == []


async def test_a_body_over_the_limit_is_refused_before_anything_else(pair: Pair) -> None:
    a, b, _network = pair
    huge = json.dumps({**follow(a, f"{b.base_url}/actor"), "padding": "x" * 5_000_000}).encode()
    response = await post(b, "/inbox", huge, await signer(a))
    assert response.status_code == 413
    assert await rows(b, InboxItem) == []


async def test_an_actor_at_a_private_address_is_not_fetched(
    pair: Pair, caplog: pytest.LogCaptureFixture
) -> None:
    """With private addresses refused (the default), a key at 10.0.0.1 is never asked for."""
    a, b, network = pair
    b.federation.config = replace(b.federation.config, allow_private_addresses=False)
    b.federation.fetcher.config = b.federation.config
    forged = {
        "id": "http://10.0.0.1/activities/1",
        "type": "Follow",
        "actor": "http://10.0.0.1/actor",
        "object": f"{b.base_url}/actor",
    }
    intruder = Signer("http://10.0.0.1/actor#main-key", (await key_for_pem(a)))
    seen_before = len(network.requests)
    with caplog.at_level(logging.INFO, logger="terreau.federation"):
        response = await post(b, "/inbox", forged, intruder)
    assert response.status_code == 401
    assert "signature" in response.json()["error"]
    assert any("10.0.0.1" in record.getMessage() for record in caplog.records)
    assert [r for r in network.requests[seen_before:] if r.url.host == "10.0.0.1"] == []


async def key_for_pem(peer: Peer) -> str:
    return (await signer(peer)).private_pem


async def test_an_unknown_actor_deleting_itself_costs_no_fetch(pair: Pair) -> None:
    a, b, network = pair
    gone = f"{a.base_url}/orgs/gone"
    deletion = {"id": f"{gone}#delete", "type": "Delete", "actor": gone, "object": gone}
    seen_before = len(network.requests)
    response = await post(b, "/inbox", deletion, None)
    assert response.status_code == 202
    assert network.requests[seen_before:] == []
    assert await rows(b, InboxItem) == []


async def test_an_inbox_of_an_actor_we_do_not_have_is_404(pair: Pair) -> None:
    a, b, _network = pair
    response = await post(b, "/commons/nothing/inbox", follow(a, "x"), await signer(a))
    assert response.status_code == 404


# The fast path: what an activity costs, and what happens when copies race


def engine_of(peer: Peer) -> AsyncEngine:
    database: Database = peer.app.state.db
    return database.engine


async def test_a_known_sender_costs_one_read_one_insert_and_one_commit(pair: Pair) -> None:
    """No read of our own key, no separate duplicate check, and no write of the sender's
    host row, which was written by its first activity a moment ago."""
    a, b, _network = pair
    commons = await local_commons(b, "yeswiki", await local_organisation(b, "lieu"))
    key = await signer(a)
    assert (await post(b, "/inbox", follow(a, commons.uri, 1), key)).status_code == 202
    with statements(engine_of(b)) as run:
        response = await post(b, "/inbox", follow(a, commons.uri, 2), key)
    assert response.json() == {"status": "stored"}
    assert [statement.split()[0] for statement in run] == ["SELECT", "INSERT", "COMMIT"]
    assert run[1].startswith("INSERT INTO inbox_item")
    assert len(await rows(b, InboxItem)) == 2


async def test_the_instance_key_is_read_once_and_only_to_fetch(pair: Pair) -> None:
    a, b, _network = pair
    commons = await local_commons(b, "yeswiki", await local_organisation(b, "lieu"))
    await local_organisation(a, "cae")
    cae = f"{a.base_url}/orgs/cae"
    with statements(engine_of(b)) as first_contact:
        first = await post(b, "/inbox", follow(a, commons.uri, 1), await signer(a))
    from_cae = {**follow(a, commons.uri, 2), "actor": cae}
    with statements(engine_of(b)) as second_contact:
        second = await post(b, "/inbox", from_cae, await signer(a, cae))
    assert (first.status_code, second.status_code) == (202, 202), second.text
    assert any("actor_key" in statement for statement in first_contact)  # signed the fetch
    assert not any("actor_key" in statement for statement in second_contact)  # kept
    # The new actor's row in its own commit (kept even if the activity were refused), then
    # the activity's.
    assert sum(statement == "COMMIT" for statement in second_contact) == 2


async def test_copies_of_one_activity_posted_at_once_are_stored_once(pair: Pair) -> None:
    """At first contact too: the copies all fetch the sender and race to store it."""
    a, b, _network = pair
    commons = await local_commons(b, "yeswiki", await local_organisation(b, "lieu"))
    key = await signer(a)
    for number in (1, 2):  # the sender unknown, then known
        copies = [post(b, "/inbox", follow(a, commons.uri, number), key) for _ in range(4)]
        answers = await asyncio.gather(*copies)
        assert sorted(answer.json()["status"] for answer in answers) == [
            "duplicate",
            "duplicate",
            "duplicate",
            "stored",
        ]
    assert len(await rows(b, InboxItem)) == 2
    await b.work()
    assert len(await rows(b, Follower)) == 1


async def test_a_gone_host_that_speaks_again_is_back_at_once(pair: Pair) -> None:
    a, b, _network = pair
    commons = await local_commons(b, "yeswiki", await local_organisation(b, "lieu"))
    key = await signer(a)
    await post(b, "/inbox", follow(a, commons.uri, 1), key)
    async with b.federation.sessions() as session:
        await instances.mark_gone(session, "a.test", utcnow())
        await session.commit()
    assert (await post(b, "/inbox", follow(a, commons.uri, 2), key)).status_code == 202
    [known] = await rows(b, KnownInstance)
    assert known.gone_at is None


async def test_a_duplicate_writes_nothing(pair: Pair) -> None:
    a, b, _network = pair
    commons = await local_commons(b, "yeswiki", await local_organisation(b, "lieu"))
    key = await signer(a)
    await post(b, "/inbox", follow(a, commons.uri, 1), key)
    async with b.federation.sessions() as session:
        await instances.mark_gone(session, "a.test", utcnow())  # seen() would clear it
        await session.commit()
    again = await post(b, "/inbox", follow(a, commons.uri, 1), key)
    assert again.json() == {"status": "duplicate"}
    [known] = await rows(b, KnownInstance)
    assert known.gone_at is not None


# The instance's signer


async def test_instance_signer_commits_only_when_it_makes_the_key(pair: Pair) -> None:
    """Once the key exists, the caller's transaction is left alone (a handler holds its inbox
    row with FOR UPDATE until it commits)."""
    _a, b, _network = pair
    config = b.federation.config
    async with b.federation.sessions() as session:
        made = await instance_signer(session, config)
        session.add(KnownInstance(host="pending.example"))
        again = await instance_signer(session, config)
        await session.rollback()
    assert again == made
    assert await rows(b, KnownInstance) == []


async def test_two_processes_sign_with_the_key_stored_first(database_url: str) -> None:
    config = FederationConfig(base_url="https://terreau.test")
    database = Database(database_url)
    try:
        async with httpx.AsyncClient() as client:
            processes = [
                Federation(config, database.session, Fetcher(client, config)) for _ in range(2)
            ]

            async def first_use(federation: Federation) -> Signer:
                async with federation.sessions() as session:
                    return await federation.instance_signer(session)

            first, second = await asyncio.gather(*(first_use(f) for f in processes))
            with statements(database.engine) as run:
                again = await first_use(processes[0])
        async with database.session() as session:
            stored = signer_of(await key_for(session, config.instance_actor_uri))
    finally:
        await database.dispose()
    assert first == second == again == stored
    assert run == []  # kept by the process once read


# What the inbox keeps between requests (federation.inbox_store)


async def test_a_sender_heard_a_moment_ago_costs_one_insert_and_one_commit(pair: Pair) -> None:
    """Its host's and actor's rows were read by the activity before: no read at all."""
    a, b, _network = pair
    commons = await local_commons(b, "yeswiki", await local_organisation(b, "lieu"))
    key = await signer(a)
    for number in (1, 2):
        assert (await post(b, "/inbox", follow(a, commons.uri, number), key)).status_code == 202
    with statements(engine_of(b)) as run:
        response = await post(b, "/inbox", follow(a, commons.uri, 3), key)
    assert response.json() == {"status": "stored"}
    assert [statement.split()[0] for statement in run] == ["INSERT", "COMMIT"]
    assert len(await rows(b, InboxItem)) == 3


async def test_activities_that_arrive_together_share_one_commit(pair: Pair) -> None:
    """Group commit: each still answers once its row is committed, each with its own id."""
    a, b, _network = pair
    commons = await local_commons(b, "yeswiki", await local_organisation(b, "lieu"))
    key = await signer(a)
    for number in (1, 2):  # the sender's rows are read and cached
        await post(b, "/inbox", follow(a, commons.uri, number), key)
    with statements(engine_of(b)) as run:
        answers = await asyncio.gather(
            *(post(b, "/inbox", follow(a, commons.uri, n), key) for n in range(3, 11))
        )
    assert [answer.json() for answer in answers] == [{"status": "stored"}] * 8
    commits = sum(statement == "COMMIT" for statement in run)
    assert commits < 8, run  # the first alone, the others together
    stored = await rows(b, InboxItem)
    assert len(stored) == 10
    assert len({item.activity_id for item in stored}) == 10


async def test_one_bad_row_in_a_batch_fails_alone(pair: Pair) -> None:
    """A row the database refuses (an id longer than its column, on PostgreSQL) is answered
    500; the activities written with it are stored all the same."""
    a, b, _network = pair
    commons = await local_commons(b, "yeswiki", await local_organisation(b, "lieu"))
    writer = b.federation.inbox_writer
    good = inbox_row(a, commons.uri, "good")
    bad = {**good, "activity_id": f"{a.base_url}/activities/bad", "state": None}  # NOT NULL
    results = await asyncio.gather(
        writer.store(good, None), writer.store(bad, None), return_exceptions=True
    )
    assert isinstance(results[0], int)
    assert isinstance(results[1], Exception)
    [item] = await rows(b, InboxItem)
    assert item.activity_id == good["activity_id"]
    # The writer goes on: a later activity is stored.
    assert await writer.store({**good, "activity_id": f"{a.base_url}/activities/later"}, None)


def inbox_row(a: Peer, recipient: str, name: str) -> dict[str, Any]:
    return {
        "activity_id": f"{a.base_url}/activities/{name}",
        "type": "Follow",
        "actor_uri": f"{a.base_url}/actor",
        "recipient_uri": recipient,
        "body": "{}",
        "state": InboxState.NEW,
        "attempts": 0,
        "error": "",
        "received_at": utcnow(),
        "processed_at": None,
    }


async def test_a_row_stored_the_moment_a_drain_ends_is_written_too(pair: Pair) -> None:
    """A request answered by the last batch of a drain may store again before that drain's
    task is done: it must start a drain of its own, not wait for one that is ending (a
    version that forgot its drain in a done callback hung here)."""
    a, b, _network = pair
    commons = await local_commons(b, "yeswiki", await local_organisation(b, "lieu"))
    writer = b.federation.inbox_writer

    async def one_after_another() -> list[int | None]:
        return [await writer.store(inbox_row(a, commons.uri, f"n{n}"), None) for n in range(6)]

    ids = await asyncio.wait_for(one_after_another(), timeout=10)
    assert None not in ids and len(set(ids)) == 6


async def test_copies_of_an_activity_stored_at_once_are_kept_once(pair: Pair) -> None:
    """Copies in one batch, or in batches one after the other: one row, one id handed back."""
    a, b, _network = pair
    commons = await local_commons(b, "yeswiki", await local_organisation(b, "lieu"))
    writer = b.federation.inbox_writer
    await writer.store(inbox_row(a, commons.uri, "first"), None)
    rows_to_store = [inbox_row(a, commons.uri, f"n{n % 3}") for n in range(12)]

    ids = await asyncio.gather(*(writer.store(row, None) for row in rows_to_store))

    stored = [i for i in ids if i is not None]
    assert len(stored) == len(set(stored)) == 3
    assert len(await rows(b, InboxItem)) == 4


async def test_a_block_bites_at_once_in_the_process_that_made_it(pair: Pair) -> None:
    """The inbox keeps the sender's host row a few seconds; blocking from the admin page
    empties that copy."""
    a, b, _network = pair
    commons = await local_commons(b, "yeswiki", await local_organisation(b, "lieu"))
    key = await signer(a)
    for number in (1, 2):
        assert (await post(b, "/inbox", follow(a, commons.uri, number), key)).status_code == 202
    assert b.federation.senders.get("a.test", f"{a.base_url}/actor") is not None
    async with b.federation.sessions() as session:
        await instances.block(session, "a.test")
        await session.commit()
    b.federation.senders.clear()  # what the admin page does (test_federation_admin.py)
    refused = await post(b, "/inbox", follow(a, commons.uri, 3), key)
    assert refused.status_code == 403
