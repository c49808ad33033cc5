"""Remote actors: fetched signed, cached, refreshed, failures remembered, keys bound to owners.

The remote servers are httpx MockTransports; the database is real (SQLite and PostgreSQL).
"""

from __future__ import annotations

import asyncio
import copy
import json
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from bovine.crypto import generate_rsa_public_private_key
from sqlmodel import col, func, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from catalogue.columns import utcnow
from federation.context import FederationConfig
from federation.fetch import Fetcher, FetchError
from federation.keys import Signer
from federation.models import FetchFailure, Follower, Following, RemoteActor
from federation.remote_actors import forget_actor, get_remote_actor, lookup_key, parse_actor
from federation.signatures import verify_request
from instance.database import Database

ALICE = "https://mastodon.example/users/alice"
ALICE_KEY = f"{ALICE}#main-key"
OURS = "https://tiers-lieux.example/actor"
CONFIG = FederationConfig(
    base_url="https://tiers-lieux.example",
    allow_private_addresses=True,  # the mock hosts are never resolved
    actor_cache_seconds=3600,
    failed_fetch_seconds=600,
)
MASTODON_ACTOR = json.loads(
    (Path(__file__).parents[1] / "data" / "mastodon" / "actor.json").read_text()
)


@cache
def rsa_pair(name: str) -> tuple[str, str]:
    return generate_rsa_public_private_key()


SIGNER = Signer(f"{OURS}#main-key", rsa_pair("ours")[1])


def alice(**changes: Any) -> dict[str, Any]:
    """Mastodon's actor document, with a real key."""
    document = copy.deepcopy(MASTODON_ACTOR)
    document["publicKey"]["publicKeyPem"] = rsa_pair("alice")[0]
    document.update(changes)
    return document


class Remote:
    """Fake servers: documents by URL (or a status), and every request they were sent."""

    def __init__(self, documents: dict[str, Any]) -> None:
        self.documents = documents
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.documents.get(str(request.url), 404)
        if isinstance(answer, int):
            return httpx.Response(answer)
        if isinstance(answer, str):
            return httpx.Response(301, headers={"Location": answer})
        return httpx.Response(200, json=answer)

    def fetcher(self) -> Fetcher:
        client = httpx.AsyncClient(transport=httpx.MockTransport(self), follow_redirects=False)
        return Fetcher(client, CONFIG)

    def urls(self) -> list[str]:
        return [str(request.url) for request in self.requests]


async def get(session: AsyncSession, remote: Remote, uri: str = ALICE, **kw: Any) -> RemoteActor:
    return await get_remote_actor(session, remote.fetcher(), CONFIG, uri, signer=SIGNER, **kw)


async def key(
    session: AsyncSession, remote: Remote, key_id: str = ALICE_KEY, **kw: Any
) -> tuple[str, str] | None:
    return await lookup_key(session, remote.fetcher(), CONFIG, key_id, signer=SIGNER, **kw)


async def count(session: AsyncSession, model: Any) -> int:
    return (await session.exec(select(func.count()).select_from(model))).one()


async def age(session: AsyncSession, seconds: int) -> None:
    """Make every cached actor ``seconds`` older."""
    when = utcnow() - timedelta(seconds=seconds)
    await session.exec(update(RemoteActor).values(fetched_at=when))


# --- parse_actor ---------------------------------------------------------------------------------


def test_parse_reads_a_mastodon_actor() -> None:
    fields = parse_actor(alice(), ALICE, ALICE)

    assert fields.uri == ALICE
    assert fields.host == "mastodon.example"
    assert fields.type == "Person"
    assert fields.preferred_username == "alice"
    assert fields.name == "Alice · Tiers-lieu de la Vallée"
    assert fields.url == "https://mastodon.example/@alice"
    assert fields.inbox == f"{ALICE}/inbox"
    assert fields.shared_inbox == "https://mastodon.example/inbox"
    assert fields.key_id == ALICE_KEY
    assert fields.public_key_pem == rsa_pair("alice")[0]
    assert json.loads(fields.document)["id"] == ALICE


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"id": "https://elsewhere.example/users/alice"}, "not on the host asked"),
        ({"id": None}, "has no id"),
        ({"id": "urn:uuid:1"}, "has no id"),
        ({"inbox": None}, "has no inbox"),
        ({"inbox": "/relative/inbox"}, "has no inbox"),
        ({"publicKey": {"id": ALICE_KEY, "owner": "https://mastodon.example/users/mallory",
                        "publicKeyPem": "PEM"}}, "owner is not the actor"),
        ({"publicKey": {"id": ALICE_KEY, "owner": ALICE}}, "needs an id and a publicKeyPem"),
        ({"publicKey": "a string"}, "not an object"),
    ],
)  # fmt: skip
def test_parse_refuses(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_actor(alice(**changes), ALICE, ALICE)


def test_an_id_on_another_host_is_accepted_when_that_is_where_it_was_served_from() -> None:
    moved = "https://new.example/users/alice"
    document = alice(id=moved, publicKey={"id": f"{moved}#k", "owner": moved, "publicKeyPem": "P"})

    assert parse_actor(document, ALICE, moved).uri == moved


def test_parse_tolerates_the_variety_of_the_fediverse() -> None:
    document = alice(
        type=["Service"],
        name=None,
        preferredUsername="x" * 300,
        url=[{"type": "Link", "href": "https://mastodon.example/@alice"}],
        endpoints="not an object",
    )
    del document["publicKey"]

    fields = parse_actor(document, ALICE, ALICE)

    assert (fields.type, fields.name, fields.url) == ("Person", "", document["url"][0]["href"])
    assert len(fields.preferred_username) == 255
    assert fields.shared_inbox is None
    assert (fields.key_id, fields.public_key_pem) == ("", "")


# --- get_remote_actor ---------------------------------------------------------------------------


async def test_an_actor_is_fetched_signed_and_stored(session: AsyncSession) -> None:
    remote = Remote({ALICE: alice()})

    actor = await get(session, remote)
    await session.commit()

    assert actor.uri == ALICE
    assert actor.inbox == f"{ALICE}/inbox"
    assert actor.shared_inbox == "https://mastodon.example/inbox"
    assert actor.key_id == ALICE_KEY
    stored = (await session.exec(select(RemoteActor))).one()
    assert stored.preferred_username == "alice"
    request = remote.requests[0]

    async def our_key(key_id: str, refresh: bool) -> tuple[str, str]:
        return rsa_pair("ours")[0], OURS

    signed_by = await verify_request(
        "GET",
        str(request.url),
        request.headers,
        b"",
        our_key,
        now=datetime.now(UTC),
        window_seconds=300,
    )
    assert signed_by.key_id == SIGNER.key_id


async def test_a_fresh_actor_comes_from_the_cache(session: AsyncSession) -> None:
    remote = Remote({ALICE: alice()})
    await get(session, remote)
    await age(session, CONFIG.actor_cache_seconds - 60)

    await get(session, remote)

    assert remote.urls() == [ALICE]


async def test_a_stale_actor_is_fetched_again_and_updated(session: AsyncSession) -> None:
    remote = Remote({ALICE: alice()})
    first = await get(session, remote)
    await age(session, CONFIG.actor_cache_seconds + 60)
    remote.documents[ALICE] = alice(name="Alice, renamed")

    again = await get(session, remote)

    assert remote.urls() == [ALICE, ALICE]
    assert again.id == first.id
    assert again.name == "Alice, renamed"
    assert utcnow() - again.fetched_at < timedelta(minutes=1)
    assert await count(session, RemoteActor) == 1


async def test_refresh_fetches_even_a_fresh_actor(session: AsyncSession) -> None:
    remote = Remote({ALICE: alice()})
    await get(session, remote)

    await get(session, remote, refresh=True)

    assert remote.urls() == [ALICE, ALICE]


async def test_a_redirect_to_the_actor_is_followed(session: AsyncSession) -> None:
    remote = Remote({"https://mastodon.example/@alice": ALICE, ALICE: alice()})

    actor = await get(session, remote, "https://mastodon.example/@alice")

    assert actor.uri == ALICE


async def test_a_document_claiming_another_hosts_actor_is_refused(session: AsyncSession) -> None:
    """evil.example serves a copy of alice's document, with alice's id: not believed."""
    evil = "https://evil.example/users/alice"
    remote = Remote({evil: alice()})

    with pytest.raises(FetchError, match="not on the host asked"):
        await get(session, remote, evil)

    assert await count(session, RemoteActor) == 0


async def test_a_failure_is_remembered_and_not_retried_until_it_expires(
    session: AsyncSession,
) -> None:
    remote = Remote({ALICE: 410})

    with pytest.raises(FetchError) as first:
        await get(session, remote)
    await session.commit()
    with pytest.raises(FetchError) as second:
        await get(session, remote)

    assert first.value.status == 410
    assert "failed recently (HTTP 410)" in second.value.reason
    assert remote.urls() == [ALICE]
    failure = (await session.exec(select(FetchFailure))).one()
    expected = utcnow() + timedelta(seconds=CONFIG.failed_fetch_seconds)
    assert abs(failure.retry_after - expected) < timedelta(minutes=1)

    # Once it expires, the actor is fetched again; success forgets the failure.
    await session.exec(update(FetchFailure).values(retry_after=utcnow() - timedelta(seconds=1)))
    remote.documents[ALICE] = alice()
    assert (await get(session, remote)).uri == ALICE
    assert remote.urls() == [ALICE, ALICE]
    assert await count(session, FetchFailure) == 0


async def test_an_unusable_document_is_a_remembered_failure(session: AsyncSession) -> None:
    remote = Remote({ALICE: alice(inbox=None)})

    with pytest.raises(FetchError, match="no inbox"):
        await get(session, remote)
    with pytest.raises(FetchError, match="failed recently"):
        await get(session, remote)

    assert len(remote.requests) == 1


async def test_a_failed_refresh_of_a_stale_actor_is_an_error(session: AsyncSession) -> None:
    remote = Remote({ALICE: alice()})
    await get(session, remote)
    await age(session, CONFIG.actor_cache_seconds + 60)
    remote.documents[ALICE] = 503

    with pytest.raises(FetchError):
        await get(session, remote)


async def test_two_sessions_storing_the_same_new_actor_do_not_collide(database_url: str) -> None:
    """Two activities from a new actor at once: the second store must not fail on ``uri``."""
    database = Database(database_url)
    remote = Remote({ALICE: alice()})
    try:
        async with database.session() as first, database.session() as second:
            await get(first, remote)  # written, not committed

            async def commit_soon() -> None:
                await asyncio.sleep(0.3)
                await first.commit()

            actor, _ = await asyncio.gather(get(second, remote), commit_soon())
            await second.commit()

            assert actor.uri == ALICE
            assert await count(second, RemoteActor) == 1
    finally:
        await database.dispose()


# --- lookup_key ----------------------------------------------------------------------------------


async def test_a_key_is_found_through_its_actor(session: AsyncSession) -> None:
    remote = Remote({ALICE: alice()})

    assert await key(session, remote) == (rsa_pair("alice")[0], ALICE)
    assert remote.urls() == [ALICE]


async def test_a_known_key_comes_from_the_cache(session: AsyncSession) -> None:
    remote = Remote({ALICE: alice()})
    await key(session, remote)

    assert await key(session, remote) == (rsa_pair("alice")[0], ALICE)
    assert remote.urls() == [ALICE]


async def test_refresh_fetches_the_key_again(session: AsyncSession) -> None:
    remote = Remote({ALICE: alice()})
    await key(session, remote)
    rotated = alice()
    rotated["publicKey"]["publicKeyPem"] = rsa_pair("alice-rotated")[0]
    remote.documents[ALICE] = rotated

    assert await key(session, remote, refresh=True) == (rsa_pair("alice-rotated")[0], ALICE)
    assert remote.urls() == [ALICE, ALICE]


async def test_a_new_key_id_of_a_cached_actor_fetches_it_again_once(session: AsyncSession) -> None:
    remote = Remote({ALICE: alice()})
    await get(session, remote)
    new_key = {"id": f"{ALICE}#key-2", "owner": ALICE, "publicKeyPem": rsa_pair("alice-2")[0]}
    remote.documents[ALICE] = alice(publicKey=new_key)

    assert await key(session, remote, f"{ALICE}#key-2") == (rsa_pair("alice-2")[0], ALICE)
    assert remote.urls() == [ALICE, ALICE]


async def test_a_key_its_actor_does_not_name_is_unknown(session: AsyncSession) -> None:
    remote = Remote({ALICE: alice()})

    assert await key(session, remote, f"{ALICE}#not-this-one") is None
    assert remote.urls() == [ALICE]  # just fetched: no second try


async def test_a_fragmentless_key_id_is_followed_to_its_owner(session: AsyncSession) -> None:
    key_id = f"{ALICE}/main-key"
    public_key = {"id": key_id, "owner": ALICE, "publicKeyPem": rsa_pair("alice")[0]}
    remote = Remote({key_id: {**public_key}, ALICE: alice(publicKey=public_key)})

    assert await key(session, remote, key_id) == (rsa_pair("alice")[0], ALICE)
    assert remote.urls() == [key_id, ALICE]
    assert await key(session, remote, key_id) == (rsa_pair("alice")[0], ALICE)
    assert len(remote.requests) == 2  # then cached by key id


async def test_a_fragmentless_key_served_as_an_actor_stub_is_followed(
    session: AsyncSession,
) -> None:
    """GoToSocial serves a stub actor, with its publicKey, at the key's own URL."""
    key_id = f"{ALICE}/main-key"
    public_key = {"id": key_id, "owner": ALICE, "publicKeyPem": rsa_pair("alice")[0]}
    stub = {"id": ALICE, "type": "Person", "publicKey": public_key}
    remote = Remote({key_id: stub, ALICE: alice(publicKey=public_key)})

    assert await key(session, remote, key_id) == (rsa_pair("alice")[0], ALICE)


async def test_a_key_document_cannot_make_an_actor_own_it(session: AsyncSession) -> None:
    """A key claiming alice as owner counts only if alice's document names that key."""
    key_id = "https://evil.example/keys/1"
    remote = Remote(
        {
            key_id: {"id": key_id, "owner": ALICE, "publicKeyPem": rsa_pair("mallory")[0]},
            ALICE: alice(),
        }
    )

    assert await key(session, remote, key_id) is None


async def test_another_hosts_actor_naming_a_key_id_does_not_answer_for_it(
    session: AsyncSession,
) -> None:
    mallory = "https://evil.example/users/mallory"
    stolen = {"id": ALICE_KEY, "owner": mallory, "publicKeyPem": rsa_pair("mallory")[0]}
    evil = alice(id=mallory, inbox=f"{mallory}/inbox", publicKey=stolen)
    remote = Remote({mallory: evil, ALICE: alice()})
    await get(session, remote, mallory)

    assert await key(session, remote) == (rsa_pair("alice")[0], ALICE)


async def test_a_key_of_an_unreachable_actor_is_a_fetch_error(session: AsyncSession) -> None:
    remote = Remote({})

    with pytest.raises(FetchError):
        await key(session, remote)


# --- forget_actor -------------------------------------------------------------------------------


async def test_forget_actor_drops_the_actor_and_its_follows(session: AsyncSession) -> None:
    bob = "https://mastodon.example/users/bob"
    remote = Remote({ALICE: alice()})
    await get(session, remote)
    for follower in (ALICE, bob):
        session.add(
            Follower(actor_uri=OURS, follower_uri=follower, inbox="i", follow_id=f"{follower}/f")
        )
        session.add(
            Following(actor_uri=OURS, followed_uri=follower, follow_id=f"{OURS}/{follower}")
        )
    await session.commit()

    await forget_actor(session, ALICE)
    await session.commit()

    assert await count(session, RemoteActor) == 0
    followers = (await session.exec(select(col(Follower.follower_uri)))).all()
    followed = (await session.exec(select(col(Following.followed_uri)))).all()
    assert (followers, followed) == ([bob], [bob])
