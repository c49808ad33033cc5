"""Declarations as activities and back (pure), and the terms they and organisations use."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from catalogue.declarations import Declaration
from catalogue.organisations import Organisation
from federation.actors import actor_document, local_actor
from federation.context import FederationConfig
from federation.declarations import (
    BadDeclaration,
    declaration_activity,
    parse_declaration,
    undo_activity,
    update_activity,
)
from federation.keys import key_for
from federation.organisation_documents import BadOrganisation, organisation_fields
from federation.vocabulary import CONTEXT_FILE, DECLARATION_TERMS

BASE = "https://cae.example"
CONFIG = FederationConfig(base_url=BASE, name="Coopératives")
ORG = f"{BASE}/orgs/oxalis"
COMMONS = "https://tiers-lieux.example/commons/yeswiki"
TODAY = date(2025, 3, 1)


def declaration(**changes: Any) -> Declaration:
    values: dict[str, Any] = {
        "uri": f"{ORG}/declarations/0123",
        "organisation_id": 1,
        "commons_id": 1,
        "kind": "uses",
        "since": date(2024, 9, 1),
        "satisfaction": 4,
        "comment": "Très <bien>,\nvraiment.",
        "created_at": datetime(2025, 1, 2, 3, 4, 5, 678, tzinfo=UTC),
    }
    values.update(changes)
    return Declaration(**values)


def test_a_use_is_our_own_activity_with_its_terms() -> None:
    sent = declaration_activity(CONFIG, declaration(), ORG, COMMONS)
    assert sent["@context"] == ["https://www.w3.org/ns/activitystreams", f"{BASE}/ns/terreau"]
    assert (sent["id"], sent["type"], sent["actor"], sent["object"]) == (
        f"{ORG}/declarations/0123",
        "Use",
        ORG,
        COMMONS,
    )
    assert (sent["since"], sent["satisfaction"], sent["published"]) == (
        "2024-09-01",
        4,
        "2025-01-02T03:04:05Z",
    )
    # The comment is plain text: escaped as HTML for readers, exact in ``source``.
    assert sent["content"] == "<p>Très &lt;bien&gt;,<br>vraiment.</p>"
    assert sent["source"] == {"content": "Très <bien>,\nvraiment.", "mediaType": "text/plain"}
    assert sent["to"] == ["https://www.w3.org/ns/activitystreams#Public"]
    assert sent["cc"] == [f"{ORG}/followers", COMMONS]


def test_an_interest_leaves_out_what_it_has_not() -> None:
    sent = declaration_activity(
        CONFIG,
        declaration(kind="interested", since=None, satisfaction=None, comment=""),
        ORG,
        COMMONS,
    )
    assert sent["type"] == "Interest"
    assert not {"since", "satisfaction", "content", "source"} & set(sent)


def test_a_use_reads_back_as_it_was_sent() -> None:
    read = parse_declaration(declaration_activity(CONFIG, declaration(), ORG, COMMONS), today=TODAY)
    assert (read.uri, read.kind, read.actor, read.commons) == (
        f"{ORG}/declarations/0123",
        "uses",
        ORG,
        COMMONS,
    )
    assert (read.since, read.satisfaction, read.comment) == (
        date(2024, 9, 1),
        4,
        "Très <bien>,\nvraiment.",
    )
    assert read.published == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_a_comment_from_html_alone_is_its_text() -> None:
    sent = {**declaration_activity(CONFIG, declaration(), ORG, COMMONS)}
    del sent["source"]
    sent["content"] = "<p>Un <b>outil</b><script>alert(1)</script></p><p>&lt;libre&gt;</p>"
    assert parse_declaration(sent, today=TODAY).comment == "Un outil <libre>"


def test_undo_and_update_embed_the_declaration() -> None:
    undo = undo_activity(CONFIG, declaration(), ORG, COMMONS)
    assert (undo["type"], undo["actor"]) == ("Undo", ORG)
    assert undo["id"].startswith(f"{BASE}/activities/")
    assert undo["object"]["id"] == f"{ORG}/declarations/0123" and "@context" not in undo["object"]
    update = update_activity(CONFIG, declaration(satisfaction=2), ORG, COMMONS)
    assert (update["type"], update["object"]["satisfaction"]) == ("Update", 2)
    assert "updated" in update["object"]


def document(**changes: Any) -> dict[str, Any]:
    sent = declaration_activity(CONFIG, declaration(), ORG, COMMONS)
    sent.update(changes)
    return {key: value for key, value in sent.items() if value is not None}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"type": "Like"}, "type"),
        ({"type": ["Use"]}, "type"),
        ({"id": None}, "id"),
        ({"id": "urn:uuid:1"}, "id"),
        ({"actor": None}, "actor"),
        ({"actor": 12}, "actor"),
        ({"object": None}, "object"),
        ({"object": {"type": "Group"}}, "object"),
        ({"satisfaction": 0}, "satisfaction"),
        ({"satisfaction": 6}, "satisfaction"),
        ({"satisfaction": 4.5}, "satisfaction"),
        ({"satisfaction": 4.0}, "satisfaction"),
        ({"satisfaction": "4"}, "satisfaction"),
        ({"satisfaction": False}, "satisfaction"),
        ({"since": "2024-9-1"}, "since"),
        ({"since": "20240901"}, "since"),
        ({"since": "2024-13-01"}, "since"),
        ({"since": "2025-03-03"}, "since"),  # two days ahead
        ({"since": ["2024-09-01"]}, "since"),
        ({"type": "Interest", "satisfaction": 3, "since": None}, "satisfaction"),
        ({"content": {"fr": "x"}, "source": None}, "content"),
        ({"source": "texte"}, "source"),
        ({"source": {"content": 3, "mediaType": "text/plain"}}, "source"),
        ({"published": "2025-01-02"}, "published"),
        ({"published": 1735786800}, "published"),
    ],
)
def test_a_bad_declaration_is_refused_naming_the_property(
    changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(BadDeclaration) as refused:
        parse_declaration(document(**changes), today=TODAY)
    assert str(refused.value).startswith(f"{field}:")


def test_a_date_of_tomorrow_is_allowed() -> None:
    assert parse_declaration(document(since="2025-03-02"), today=TODAY).since == date(2025, 3, 2)


def test_not_an_object_at_all() -> None:
    with pytest.raises(BadDeclaration, match="object"):
        parse_declaration("https://cae.example/orgs/oxalis/declarations/1")


# --- Terms --------------------------------------------------------------------------------------


def test_the_context_defines_the_declaration_terms() -> None:
    definitions = json.loads(CONTEXT_FILE.read_text())["@context"]
    for term in DECLARATION_TERMS:
        definition = definitions[term]
        iri = definition["@id"] if isinstance(definition, dict) else definition
        assert iri == f"terreau:{term}", term
    assert definitions["since"]["@type"] == "xsd:date"


async def test_an_organisation_actor_says_its_kind(session: AsyncSession) -> None:
    organisation = Organisation(
        uri=ORG, slug="oxalis", name="Oxalis", sort_key="oxalis", kind="cae"
    )
    session.add(organisation)
    await session.commit()
    actor = await local_actor(session, CONFIG, ORG)
    assert actor is not None
    sent = actor_document(actor, await key_for(session, ORG), CONFIG)
    assert sent["type"] == "Organization" and sent["organisationKind"] == "cae"
    assert f"{BASE}/ns/terreau" in sent["@context"]
    fields = organisation_fields(sent)
    assert fields == {
        "uri": ORG,
        "slug": "oxalis",
        "name": "Oxalis",
        "kind": "cae",
        "description": "",
    }


def test_an_organisation_copy_is_read_leniently_but_must_be_an_organisation() -> None:
    actor = {
        "id": ORG,
        "type": "Organization",
        "preferredUsername": "Oxalis",
        "summary": "<p>Une <b>CAE</b></p><script>x</script>",
        "organisationKind": "spaceship",
    }
    fields = organisation_fields(actor)
    assert (fields["slug"], fields["name"], fields["kind"], fields["description"]) == (
        "oxalis",
        "oxalis",
        "association",
        "Une CAE",
    )
    for changes, field in (
        ({"type": "Person"}, "type"),
        ({"id": "oxalis"}, "id"),
        ({"preferredUsername": "ox alis"}, "preferredUsername"),
    ):
        with pytest.raises(BadOrganisation, match=field):
            organisation_fields({**actor, **changes})
