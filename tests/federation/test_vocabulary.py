"""Terreau's JSON-LD context: bundled, served as is, and what commons' Group documents use."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.testclient import TestClient

from catalogue.commons import Commons, CommonsTag
from catalogue.organisations import Organisation
from federation.actors import actor_document, local_actor
from federation.context import FederationConfig
from federation.keys import key_for
from federation.vocabulary import (
    COMMONS_TERMS,
    CONTEXT_FILE,
    NAMESPACE,
    TERMS,
    VALUEFLOWS,
    bundled_context,
)

BASE = "https://tiers-lieux.example"
CONFIG = FederationConfig(base_url=BASE, name="Tiers-lieux du Rhône")
CREATED = datetime(2024, 5, 17, 8, 30, 12, tzinfo=UTC)


def context() -> dict[str, object]:
    definitions: dict[str, object] = json.loads(CONTEXT_FILE.read_text())["@context"]
    return definitions


def test_the_context_defines_every_term_under_our_namespace() -> None:
    definitions = context()
    assert (definitions["terreau"], definitions["vf"]) == (NAMESPACE, VALUEFLOWS)
    for term in TERMS:
        definition = definitions[term]
        iri = definition["@id"] if isinstance(definition, dict) else definition
        assert iri == f"terreau:{term}", term
    assert definitions["Hashtag"] == "as:Hashtag"


def test_every_instance_serves_the_bundled_file(client: TestClient) -> None:
    response = client.get("/ns/terreau")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/ld+json"
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.content == CONTEXT_FILE.read_bytes() == bundled_context()


async def _commons_document(session: AsyncSession) -> dict[str, object]:
    commons = Commons(
        uri=f"{BASE}/commons/yeswiki",
        slug="yeswiki",
        name="YesWiki",
        kind="software",
        maturity="stable",
        summary="Un wiki pour coopérer",
        description="Un **wiki**.",
        description_html="<p>Un <strong>wiki</strong>.</p>",
        licence="AGPL-3.0-or-later",
        website="https://yeswiki.net",
        repository="https://github.com/YesWiki/yeswiki",
        languages="fr,en",
        territory="region:84",
        uses_count=12,
        interested_count=3,
        created_at=CREATED,
        updated_at=CREATED,
    )
    session.add(commons)
    await session.flush()
    assert commons.id is not None
    session.add_all([CommonsTag(commons_id=commons.id, tag=t) for t in ("wiki", "open data")])
    await session.commit()
    actor = await local_actor(session, CONFIG, commons.uri)
    assert actor is not None
    return actor_document(actor, await key_for(session, actor.uri), CONFIG)


async def test_a_commons_actor_carries_our_terms(session: AsyncSession) -> None:
    document = await _commons_document(session)
    assert f"{BASE}/ns/terreau" in document["@context"]  # type: ignore[operator]
    assert {term: document.get(term) for term in COMMONS_TERMS} == {
        "commonsKind": "software",
        "maturity": "stable",
        "licence": "AGPL-3.0-or-later",
        "languages": ["fr", "en"],
        "territory": "region:84",
        "website": "https://yeswiki.net",
        "repository": "https://github.com/YesWiki/yeswiki",
        "usesCount": 12,
        "interestedCount": 3,
    }
    assert document["tag"] == [
        {"type": "Hashtag", "name": "#open data", "href": f"{BASE}/commons?tag=open%20data"},
        {"type": "Hashtag", "name": "#wiki", "href": f"{BASE}/commons?tag=wiki"},
    ]
    assert document["content"] == "<p>Un <strong>wiki</strong>.</p>"
    assert document["source"] == {"content": "Un **wiki**.", "mediaType": "text/markdown"}
    assert document["updated"] == "2024-05-17T08:30:12.000000Z"  # to the microsecond: see Counts


async def test_empty_values_are_left_out(session: AsyncSession) -> None:
    commons = Commons(uri=f"{BASE}/commons/bare", slug="bare", name="Bare", kind="data")
    session.add(commons)
    await session.commit()
    actor = await local_actor(session, CONFIG, commons.uri)
    assert actor is not None
    document = actor_document(actor, await key_for(session, actor.uri), CONFIG)
    ours = {term for term in TERMS if term in document}
    assert ours == {"commonsKind", "maturity", "usesCount", "interestedCount"}
    assert "tag" not in document and "content" not in document


async def test_other_actors_name_the_context_only_for_their_own_terms(
    session: AsyncSession,
) -> None:
    """The instance actor has none of our terms; an organisation only its ``organisationKind``
    (so an instance it declares to can store its copy with the right kind)."""
    session.add(Organisation(uri=f"{BASE}/orgs/lieu", slug="lieu", name="Lieu", kind="tiers-lieu"))
    await session.commit()
    for uri, named in ((f"{BASE}/actor", False), (f"{BASE}/orgs/lieu", True)):
        actor = await local_actor(session, CONFIG, uri)
        assert actor is not None
        document = actor_document(actor, await key_for(session, actor.uri), CONFIG)
        assert (f"{BASE}/ns/terreau" in document["@context"]) is named
        assert "commonsKind" not in document
        assert document.get("organisationKind") == ("tiers-lieu" if named else None)
