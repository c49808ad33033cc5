"""Our actors: which rows are actors, and the documents other servers read about them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.hashes import SHA256
from sqlmodel.ext.asyncio.session import AsyncSession

from catalogue.commons import Commons
from catalogue.organisations import Organisation
from federation.actors import (
    ActorKind,
    LocalActor,
    actor_document,
    as_html,
    as_time,
    local_actor,
    local_actor_by_username,
)
from federation.context import FederationConfig
from federation.keys import key_for

BASE = "https://tiers-lieux.example"
CONFIG = FederationConfig(base_url=BASE, name="Tiers-lieux du Rhône", description="Un réseau.")
BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
CREATED = datetime(2024, 5, 17, 8, 30, 12, 345678, tzinfo=UTC)


def base58_decode(text: str) -> bytes:
    """Base58btc, written out here so the Multikey is checked by other code than bovine's."""
    number = 0
    for char in text:
        number = number * 58 + BASE58.index(char)
    body = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return b"\0" * (len(text) - len(text.lstrip("1"))) + body


def organisation(slug: str = "atelier", **changes: object) -> Organisation:
    values: dict[str, object] = {
        "uri": f"{BASE}/orgs/{slug}",
        "slug": slug,
        "name": "L'Atelier",
        "kind": "tiers-lieu",
        "description": "Un fablab <b>à Lyon</b>.\n\nOuvert le jeudi.",
        "created_at": CREATED,
        **changes,
    }
    return Organisation.model_validate(values)


def commons(slug: str = "yeswiki", **changes: object) -> Commons:
    values: dict[str, object] = {
        "uri": f"{BASE}/commons/{slug}",
        "slug": slug,
        "name": "YesWiki",
        "kind": "software",
        "summary": "Un wiki pour coopérer",
        "created_at": CREATED,
        **changes,
    }
    return Commons.model_validate(values)


async def add(session: AsyncSession, *rows: Organisation | Commons) -> None:
    for row in rows:
        session.add(row)
    await session.commit()


# Which rows are actors.


async def test_the_instance_actor_is_found_by_its_id(session: AsyncSession) -> None:
    actor = await local_actor(session, CONFIG, f"{BASE}/actor")
    assert actor is not None
    assert actor.kind == ActorKind.INSTANCE
    assert actor.username == "instance"
    assert actor.name == "Tiers-lieux du Rhône"
    assert actor.url == f"{BASE}/"


async def test_local_organisations_and_visible_commons_are_actors(session: AsyncSession) -> None:
    await add(session, organisation(), commons())
    org = await local_actor(session, CONFIG, f"{BASE}/orgs/atelier")
    shared = await local_actor(session, CONFIG, f"{BASE}/commons/yeswiki")
    assert org is not None and org.kind == ActorKind.ORGANISATION and org.username == "atelier"
    assert shared is not None and shared.kind == ActorKind.COMMONS and shared.name == "YesWiki"
    assert shared.outbox == f"{BASE}/commons/yeswiki/outbox"
    assert await local_actor(session, CONFIG, f"{BASE}/orgs/nobody") is None


async def test_hidden_merged_and_remote_rows_are_not_our_actors(session: AsyncSession) -> None:
    target = commons()
    await add(session, target)
    await add(
        session,
        commons("cache", hidden=True),
        commons("doublon", merged_into_id=target.id),
        organisation("ailleurs", uri="https://other.example/orgs/ailleurs", origin="other.example"),
    )
    for uri in (
        f"{BASE}/commons/cache",
        f"{BASE}/commons/doublon",
        "https://other.example/orgs/ailleurs",
    ):
        assert await local_actor(session, CONFIG, uri) is None, uri
    assert await local_actor_by_username(session, CONFIG, "cache") is None
    assert await local_actor_by_username(session, CONFIG, "ailleurs") is None


async def test_usernames_find_commons_before_organisations_then_the_instance(
    session: AsyncSession,
) -> None:
    # Rows from before slugs became one namespace: the commons wins, as documented.
    await add(session, organisation("commun"), commons("commun"), organisation("atelier"))
    first = await local_actor_by_username(session, CONFIG, "commun")
    assert first is not None and first.kind == ActorKind.COMMONS
    org = await local_actor_by_username(session, CONFIG, "Atelier")  # slugs are lower case
    assert org is not None and org.uri == f"{BASE}/orgs/atelier"
    instance = await local_actor_by_username(session, CONFIG, "instance")
    assert instance is not None and instance.uri == CONFIG.instance_actor_uri
    assert await local_actor_by_username(session, CONFIG, "nobody") is None


# The documents.


def check_keys(document: dict, actor_uri: str) -> None:
    """The RSA key is a usable 2048-bit public key; the Multikey is a 32-byte Ed25519 key."""
    public_key = document["publicKey"]
    assert public_key["id"] == f"{actor_uri}#main-key"
    assert public_key["owner"] == actor_uri
    rsa_key = serialization.load_pem_public_key(public_key["publicKeyPem"].encode())
    assert isinstance(rsa_key, rsa.RSAPublicKey) and rsa_key.key_size == 2048

    (method,) = document["assertionMethod"]
    assert method["id"] == f"{actor_uri}#ed25519-key"
    assert method["type"] == "Multikey"
    assert method["controller"] == actor_uri
    multibase = method["publicKeyMultibase"]
    assert multibase.startswith("z")
    decoded = base58_decode(multibase[1:])
    assert decoded[:2] == b"\xed\x01"  # the multicodec prefix of an Ed25519 public key
    assert len(decoded[2:]) == 32
    ed25519.Ed25519PublicKey.from_public_bytes(decoded[2:])


def check_common_fields(document: dict, actor: LocalActor) -> None:
    assert document["@context"][:3] == [
        "https://www.w3.org/ns/activitystreams",
        "https://w3id.org/security/v1",
        "https://w3id.org/security/multikey/v1",
    ]
    assert document["id"] == actor.uri
    assert document["preferredUsername"] == actor.username
    assert document["inbox"] == f"{actor.uri}/inbox"
    assert document["outbox"] == f"{actor.uri}/outbox"
    assert document["followers"] == f"{actor.uri}/followers"
    assert document["endpoints"] == {"sharedInbox": f"{BASE}/inbox"}
    assert document["discoverable"] is True
    assert document["manuallyApprovesFollowers"] is False
    check_keys(document, actor.uri)


async def test_an_organisation_is_an_organization_with_escaped_summary(
    session: AsyncSession,
) -> None:
    await add(session, organisation())
    actor = await local_actor(session, CONFIG, f"{BASE}/orgs/atelier")
    assert actor is not None
    document = actor_document(actor, await key_for(session, actor.uri), CONFIG)
    check_common_fields(document, actor)
    assert document["type"] == "Organization"
    assert document["name"] == "L'Atelier"
    assert document["url"] == f"{BASE}/orgs/atelier"
    assert (
        document["summary"] == "<p>Un fablab &lt;b&gt;à Lyon&lt;/b&gt;.</p><p>Ouvert le jeudi.</p>"
    )
    assert document["published"] == "2024-05-17T08:30:12Z"
    assert "icon" not in document


async def test_a_commons_is_a_group_with_its_logo_as_icon(session: AsyncSession) -> None:
    await add(session, commons(logo="0123456789abcdef0123456789abcdef.png"))
    actor = await local_actor(session, CONFIG, f"{BASE}/commons/yeswiki")
    assert actor is not None
    key = await key_for(session, actor.uri)
    document = actor_document(actor, key, CONFIG)
    check_common_fields(document, actor)
    assert document["type"] == "Group"
    assert document["summary"] == "<p>Un wiki pour coopérer</p>"
    assert document["icon"] == {
        "type": "Image",
        "url": f"{BASE}/media/logos/0123456789abcdef0123456789abcdef.png",
        "mediaType": "image/png",
    }
    # The key in the document is the one the signer will use.
    private = serialization.load_pem_private_key(key.rsa_private_pem.encode(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    public = serialization.load_pem_public_key(document["publicKey"]["publicKeyPem"].encode())
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(
        private.sign(b"m", padding.PKCS1v15(), SHA256()), b"m", padding.PKCS1v15(), SHA256()
    )


async def test_the_instance_is_an_application_published_when_its_keys_were_made(
    session: AsyncSession,
) -> None:
    actor = await local_actor(session, CONFIG, CONFIG.instance_actor_uri)
    assert actor is not None
    key = await key_for(session, actor.uri)
    document = actor_document(actor, key, CONFIG)
    check_common_fields(document, actor)
    assert document["type"] == "Application"
    assert document["preferredUsername"] == "instance"
    assert document["summary"] == "<p>Un réseau.</p>"
    assert document["published"] == as_time(key.created_at)


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("", ""),
        ("one line", "<p>one line</p>"),
        ("a\nb", "<p>a<br>b</p>"),
        ("a\r\n\r\nb", "<p>a</p><p>b</p>"),
        ("<script>&", "<p>&lt;script&gt;&amp;</p>"),
        ("\n\n  \n\nx\n\n\n\n", "<p>x</p>"),
    ],
)
def test_plain_text_becomes_harmless_html(text: str, html: str) -> None:
    assert as_html(text) == html
