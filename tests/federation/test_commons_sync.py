"""Remote commons in the local catalogue: b announces its commons, a keeps a copy of each.

Between two in-process instances: a follows b's instance actor; b's commons arrive as they are
created, edited and hidden, and those b had before the follow are read back from its outbox.
A third instance cannot change b's commons, and bad documents are refused or cleaned.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from peers import Peer, Peers, drain, local_organisation, rows, running_peers
from sqlmodel import select

from catalogue import operations as ops
from catalogue import queries
from catalogue.columns import utcnow
from catalogue.commons import Commons
from catalogue.organisations import Organisation
from catalogue.payment_links import PaymentLink
from federation.activities import activity
from federation.commons_documents import BadCommons, commons_fields
from federation.commons_feed import CommonsChange, publish_commons_change
from federation.commons_sync import apply_commons_document
from federation.follows import follow, resolve_actor
from federation.handlers import Unusable
from federation.media import PUBLIC
from federation.models import Following, FollowState, InboxItem, InboxState, OutboxActivity
from federation.outbox import publish
from federation.profiles import publish_profile_update

Pair = tuple[Peer, Peer, Peers]

YESWIKI = {
    "name": "YesWiki",
    "summary": "Un wiki pour coopérer",
    "description": "Un **wiki** facile, pour les *tiers-lieux*.",
    "kind": "software",
    "maturity": "stable",
    "licence": "AGPL-3.0-or-later",
    "website": "https://yeswiki.net",
    "repository": "https://github.com/YesWiki/yeswiki",
    "languages": "fr, en",
    "territory": "region:84",
    "tags": "wiki, coopération",
}


# --- Helpers ------------------------------------------------------------------------------------


async def a_follows(a: Peer, target: str) -> Following:
    async with a.federation.sessions() as session:
        actor = await resolve_actor(a.federation, target)
        return await follow(session, a.federation, a.federation.config.instance_actor_uri, actor)


async def maintainer(peer: Peer) -> Organisation:
    async with peer.federation.sessions() as session:
        found = await ops.get_local_organisation(session, "lieu")
    return found or await local_organisation(peer, "lieu")


async def create(peer: Peer, slug: str, **changes: str) -> Commons:
    """A maintainer proposes a commons, and the instance announces it in the same transaction."""
    organisation = await maintainer(peer)
    assert organisation.id is not None
    async with peer.federation.sessions() as session:
        commons = await ops.create_commons(
            session,
            {**YESWIKI, "slug": slug, **changes},
            base_url=peer.base_url,
            creator_id=None,
            maintainer_ids=[organisation.id],
            commit=False,
        )
        await publish_commons_change(session, peer.federation, commons, CommonsChange.CREATED)
        await session.commit()
        return commons


async def edit(peer: Peer, slug: str, **changes: str) -> None:
    async with peer.federation.sessions() as session:
        commons = await ops.get_local_commons(session, slug)
        assert commons is not None
        data = {**YESWIKI, **changes}
        await ops.update_commons(session, commons, data, editor_id=None, commit=False)
        await publish_commons_change(session, peer.federation, commons, CommonsChange.UPDATED)
        await session.commit()


async def hide(peer: Peer, slug: str) -> None:
    async with peer.federation.sessions() as session:
        commons = await ops.get_local_commons(session, slug)
        assert commons is not None
        await ops.set_hidden(session, commons, True)
        await publish_commons_change(session, peer.federation, commons, CommonsChange.REMOVED)
        await session.commit()


async def search(peer: Peer, **wanted: Any) -> list[Commons]:
    async with peer.federation.sessions() as session:
        page = await queries.list_commons(session, queries.CatalogueFilter(**wanted))
        return page.items


async def copy_of(peer: Peer, uri: str) -> Commons | None:
    async with peer.federation.sessions() as session:
        return (await session.exec(select(Commons).where(Commons.uri == uri))).first()


async def tags(peer: Peer, commons: Commons) -> list[str]:
    assert commons.id is not None
    async with peer.federation.sessions() as session:
        return (await queries.tags_of(session, [commons.id]))[commons.id]


async def a_follows_b(a: Peer, b: Peer) -> None:
    await a_follows(a, b.base_url)  # a bare address names a Terreau instance's own actor
    await drain(a, b)
    [following] = await rows(a, Following)
    assert following.state == FollowState.ACCEPTED


# --- Announcements ------------------------------------------------------------------------------


async def test_a_new_commons_on_b_appears_in_a_catalogue(pair: Pair) -> None:
    a, b, _network = pair
    await a_follows_b(a, b)
    commons = await create(b, "yeswiki")
    await drain(a, b)

    [found] = await search(a, text="yeswiki")
    assert (found.uri, found.origin, found.slug, found.name) == (
        commons.uri,
        "b.test",
        "yeswiki",
        "YesWiki",
    )
    assert (found.kind, found.maturity, found.licence) == (
        "software",
        "stable",
        "AGPL-3.0-or-later",
    )
    assert (found.website, found.repository) == ("https://yeswiki.net", YESWIKI["repository"])
    assert (found.languages, found.territory) == ("fr,en", "region:84")
    assert found.description == YESWIKI["description"]
    assert "<strong>wiki</strong>" in found.description_html
    assert sorted(await tags(a, found)) == ["coopération", "wiki"]
    # Searchable and filterable like a local one: the search index is fed by triggers.
    assert [c.uri for c in await search(a, text="cooperer")] == [commons.uri]
    assert [c.uri for c in await search(a, tag="wiki", kind="software")] == [commons.uri]
    assert [c.uri for c in await search(a, territory="region:84")] == [commons.uri]
    assert await search(a, kind="data") == []


async def test_edits_and_hiding_on_b_reach_a(pair: Pair) -> None:
    a, b, _network = pair
    await a_follows_b(a, b)
    commons = await create(b, "yeswiki")
    await drain(a, b)

    await edit(b, "yeswiki", name="YesWiki Cinq", tags="wiki, fédération")
    await drain(a, b)
    [found] = await search(a, text="cinq")
    assert found.name == "YesWiki Cinq"
    assert sorted(await tags(a, found)) == ["fédération", "wiki"]
    assert [c.name for c in await search(a, text="federation")] == ["YesWiki Cinq"]
    assert await search(a, tag="coopération") == []  # the old tag is gone

    await hide(b, "yeswiki")
    await drain(a, b)
    assert await search(a, text="yeswiki") == []
    copy = await copy_of(a, commons.uri)
    assert copy is not None and copy.hidden


async def test_payment_links_reach_the_copy_and_show_read_only_on_its_page(pair: Pair) -> None:
    a, b, _network = pair
    await a_follows_b(a, b)
    links = "Donate | https://opencollective.com/yeswiki\nAdhérer <vite> | https://yeswiki.net/a"
    commons = await create(b, "yeswiki", payment_links=links)
    await drain(a, b)
    copy = await copy_of(a, commons.uri)
    assert copy is not None
    assert copy.payment_links == (
        PaymentLink("Donate", "https://opencollective.com/yeswiki"),
        PaymentLink("Adhérer <vite>", "https://yeswiki.net/a"),
    )
    page = (await a.client.get("/commons/yeswiki@b.test")).text
    assert "Support / pay" in page
    assert (
        '<a href="https://opencollective.com/yeswiki" rel="payment nofollow noopener">Donate</a>'
        in page
    )
    assert ">Adhérer &lt;vite&gt;</a>" in page  # a label is text, never markup
    assert "payment_links" not in page  # no form: the copy is edited on b

    await edit(b, "yeswiki", payment_links="Soutenir | https://liberapay.com/yeswiki")
    await drain(a, b)
    copy = await copy_of(a, commons.uri)
    assert copy is not None
    assert copy.payment_links == (PaymentLink("Soutenir", "https://liberapay.com/yeswiki"),)
    await edit(b, "yeswiki", payment_links="")
    await drain(a, b)
    copy = await copy_of(a, commons.uri)
    assert copy is not None and copy.payment_links == ()
    assert "Support / pay" not in (await a.client.get("/commons/yeswiki@b.test")).text


async def test_b_announces_from_its_instance_actor_to_public_and_keeps_it(pair: Pair) -> None:
    _a, b, _network = pair
    commons = await create(b, "yeswiki")
    [row] = await rows(b, OutboxActivity)
    body = json.loads(row.body)
    assert (row.public, body["type"], body["actor"]) == (True, "Create", f"{b.base_url}/actor")
    assert body["to"] == [PUBLIC] and body["cc"] == [f"{b.base_url}/actor/followers"]
    assert f"{b.base_url}/ns/terreau" in body["@context"]
    group = body["object"]
    assert (group["id"], group["type"], group["commonsKind"]) == (commons.uri, "Group", "software")
    assert "@context" not in group  # once, on the activity

    await hide(b, "yeswiki")
    deletion = json.loads((await rows(b, OutboxActivity))[-1].body)
    assert deletion["type"] == "Delete"
    assert (deletion["object"]["id"], deletion["object"]["type"]) == (commons.uri, "Tombstone")


async def test_hidden_or_remote_commons_are_not_announced(pair: Pair) -> None:
    a, b, _network = pair
    await a_follows_b(a, b)
    await create(b, "yeswiki")
    await drain(a, b)
    async with a.federation.sessions() as session:
        copy = (await session.exec(select(Commons).where(Commons.origin == "b.test"))).one()
        assert (
            await publish_commons_change(session, a.federation, copy, CommonsChange.UPDATED) is None
        )
    async with b.federation.sessions() as session:
        hidden = await ops.get_local_commons(session, "yeswiki")
        assert hidden is not None
        await ops.set_hidden(session, hidden, True)
        assert (
            await publish_commons_change(session, b.federation, hidden, CommonsChange.UPDATED)
            is None
        )


# --- Back-fill ----------------------------------------------------------------------------------


async def test_commons_b_had_before_the_follow_are_read_back_from_its_outbox(pair: Pair) -> None:
    a, b, _network = pair
    yeswiki = await create(b, "yeswiki")
    await edit(b, "yeswiki", name="YesWiki 4.5")
    gone = await create(b, "gogocarto", name="GoGoCarto")
    await hide(b, "gogocarto")
    later = await create(b, "nextcloud", name="Nextcloud")

    await a_follows_b(a, b)
    found = {c.uri: c.name for c in await search(a, sort=queries.Sort.NAME)}
    # The newest word on each: the edit, not the Create; the hidden one not at all.
    assert found == {later.uri: "Nextcloud", yeswiki.uri: "YesWiki 4.5"}
    assert await copy_of(a, gone.uri) is None


async def test_back_fill_pages_through_a_long_outbox(pair: Pair) -> None:
    a, b, _network = pair
    for number in range(23):  # more than one outbox page of 20
        await create(b, f"commun-{number}", name=f"Commun {number}")
    await a_follows_b(a, b)
    assert len(await search(a, per_page=50)) == 23


async def test_following_one_commons_stores_it(pair: Pair) -> None:
    a, b, _network = pair
    commons = await create(b, "yeswiki")
    await a_follows(a, commons.uri)
    await drain(a, b)
    [found] = await search(a, text="yeswiki")
    assert (found.uri, found.origin) == (commons.uri, "b.test")


async def test_a_renamed_commons_followed_directly_is_renamed(pair: Pair) -> None:
    """Its own Update(actor) (instance/outgoing.announce_profile) carries our terms too."""
    a, b, _network = pair
    commons = await create(b, "yeswiki")
    await a_follows(a, commons.uri)
    await drain(a, b)
    async with b.federation.sessions() as session:
        stored = await ops.get_local_commons(session, "yeswiki")
        assert stored is not None
        data = {**YESWIKI, "name": "YesWiki 5"}
        await ops.update_commons(session, stored, data, editor_id=None, commit=False)
        assert await publish_profile_update(session, b.federation, commons.uri)
        await session.commit()
    await drain(a, b)
    copy = await copy_of(a, commons.uri)
    assert copy is not None and copy.name == "YesWiki 5"


# --- The origin rule ----------------------------------------------------------------------------


@pytest.fixture
async def trio(
    database_url: str, second_database_url: str, third_database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[Peer, Peer, Peer]]:
    network = Peers()
    specs = [
        ("a.test", database_url, tmp_path / "a"),
        ("b.test", second_database_url, tmp_path / "b"),
        ("c.test", third_database_url, tmp_path / "c"),
    ]
    async with running_peers(network, *specs) as (a, b, c):
        yield a, b, c


async def send(sender: Peer, receiver: Peer, type_: str, object_: Any) -> None:
    """``sender``'s instance actor sends an activity to ``receiver``'s shared inbox, signed."""
    config = sender.federation.config
    sent = activity(config, type_, config.instance_actor_uri, object_, [PUBLIC])
    async with sender.federation.sessions() as session:
        await publish(session, config, sent, [f"{receiver.base_url}/inbox"])
        await session.commit()
    await drain(sender, receiver)


async def test_another_host_cannot_change_b_commons(
    trio: tuple[Peer, Peer, Peer], caplog: pytest.LogCaptureFixture
) -> None:
    a, b, c = trio
    await a_follows_b(a, b)
    commons = await create(b, "yeswiki")
    await drain(a, b)
    [announced] = [json.loads(r.body) for r in await rows(b, OutboxActivity) if r.type == "Create"]
    forged = {**announced["object"], "name": "Hijacked", "commonsKind": "data"}

    with caplog.at_level(logging.WARNING, logger="terreau.federation"):
        await send(c, a, "Update", forged)
        await send(c, a, "Delete", commons.uri)
    refused = [i for i in await rows(a, InboxItem) if i.actor_uri == f"{c.base_url}/actor"]
    assert [i.state for i in refused] == [InboxState.FAILED, InboxState.FAILED]
    assert "not on the host of http://c.test/actor, which sent it" in refused[0].error
    assert "was made on b.test, not on c.test" in refused[1].error
    logged = " ".join(record.getMessage() for record in caplog.records)
    assert "not on the host of http://c.test/actor" in logged and "not on c.test" in logged
    copy = await copy_of(a, commons.uri)
    assert copy is not None
    assert (copy.name, copy.kind, copy.hidden) == ("YesWiki", "software", False)


async def test_activities_about_other_things_pass_through(pair: Pair) -> None:
    """A Create of a note, or a Delete of a post we never had: stored, applied, nothing done."""
    a, b, _network = pair
    await a_follows_b(a, b)
    note = {"id": f"{b.base_url}/notes/1", "type": "Note", "content": "<p>Bonjour</p>"}
    await send(b, a, "Create", note)
    await send(b, a, "Delete", f"{b.base_url}/notes/1")
    received = [i for i in await rows(a, InboxItem) if i.type in ("Create", "Delete")]
    assert [i.state for i in received] == [InboxState.DONE, InboxState.DONE]
    assert await rows(a, Commons) == []


async def test_nul_characters_in_a_remote_commons_are_dropped_on_every_database(
    pair: Pair,
) -> None:
    """PostgreSQL cannot store a NUL in text: a Group holding some used to fail there."""
    a, b, _network = pair
    await a_follows_b(a, b)
    uri = f"{b.base_url}/commons/nul"
    name, summary = "Yes\x00Wiki", "<p>Un wiki\x00 partagé</p>"
    await send(b, a, "Create", group(id=uri, preferredUsername="nul", name=name, summary=summary))

    [item] = [i for i in await rows(a, InboxItem) if i.type == "Create"]
    assert item.state == InboxState.DONE, item.error
    copy = await copy_of(a, uri)
    assert copy is not None
    assert (copy.name, copy.summary) == ("YesWiki", "Un wiki partagé")


# --- Documents, checked -------------------------------------------------------------------------


def group(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": "https://b.example/commons/yeswiki",
        "type": "Group",
        "preferredUsername": "yeswiki",
        "name": "YesWiki",
        "summary": "<p>Un wiki</p>",
        "commonsKind": "software",
        "maturity": "stable",
        "usesCount": 3,
        "interestedCount": 1,
        "tag": [{"type": "Hashtag", "name": "#Wiki"}, {"type": "Mention", "name": "@x@y"}],
    }
    document.update(changes)
    return {key: value for key, value in document.items() if value is not None}


def test_a_group_becomes_plain_fields() -> None:
    fields = commons_fields(
        group(
            languages=["fr", "EN", "not a code"],
            territory="department:69",
            licence="MIT",
            website="https://yeswiki.net",
            updated="2025-03-01T10:00:00Z",
        )
    )
    assert fields["uri"] == "https://b.example/commons/yeswiki"
    assert (fields["slug"], fields["name"], fields["kind"]) == ("yeswiki", "YesWiki", "software")
    assert (fields["summary"], fields["uses_count"], fields["interested_count"]) == (
        "Un wiki",
        3,
        1,
    )
    assert (fields["languages"], fields["territory"], fields["licence"]) == (
        "fr,en",
        "department:69",
        "MIT",
    )
    assert fields["tags"] == ["wiki"]
    assert fields["updated_at"].isoformat() == "2025-03-01T10:00:00+00:00"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"id": None}, "id"),
        ({"id": "javascript:alert(1)"}, "id"),
        ({"type": "Person"}, "type"),
        ({"name": None}, "name"),
        ({"name": ["YesWiki"]}, "name"),
        ({"preferredUsername": None}, "preferredUsername"),
        ({"preferredUsername": "yes/wiki"}, "preferredUsername"),
        ({"commonsKind": "spaceship"}, "commonsKind"),
        ({"commonsKind": None}, "commonsKind"),
        ({"usesCount": 2.5}, "usesCount"),
        ({"usesCount": -1}, "usesCount"),
        ({"usesCount": True}, "usesCount"),
        ({"interestedCount": "3"}, "interestedCount"),
        ({"interestedCount": 10**12}, "interestedCount"),
        ({"summary": {"fr": "Un wiki"}}, "summary"),
        ({"languages": {"fr": True}}, "languages"),
        ({"tag": "wiki"}, "tag"),
        ({"content": "<p>x</p>" * 20_000}, "content"),
    ],
)
def test_a_bad_group_is_refused_with_the_property_named(
    changes: dict[str, Any], reason: str
) -> None:
    with pytest.raises(BadCommons, match=reason):
        commons_fields(group(**changes))  # a None in ``changes`` leaves the property out


def test_hostile_html_is_cleaned_and_long_text_cut() -> None:
    fields = commons_fields(
        group(
            name="Y" * 500,
            summary='<p>Un <b>wiki</b><script>alert("x")</script></p><p>&lt;libre&gt;</p>'
            + "x" * 400,
            content='<p onclick="steal()">Texte <a href="javascript:alert(1)">lien</a></p>'
            '<script>alert(2)</script><img src="https://evil.example/t.gif"><iframe></iframe>',
            website="javascript:alert(3)",
            repository=" https://git.example/yeswiki ",
            maturity="legendary",
        )
    )
    assert fields["summary"].startswith("Un wiki <libre> xxx")
    assert "script" not in fields["summary"] and "alert" not in fields["summary"]
    assert len(fields["summary"]) == 300 and fields["summary"].endswith("…")
    assert len(fields["name"]) == 200
    html = fields["description_html"]
    for hostile in ("script", "onclick", "javascript", "<img", "iframe", "alert"):
        assert hostile not in html
    assert html.startswith("<p>Texte <a")
    assert fields["description"] == "Texte lien"  # the plain text, for search
    assert (fields["website"], fields["repository"]) == ("", "https://git.example/yeswiki")
    assert fields["maturity"] == "in-development"  # a newer peer's maturity: the default


@pytest.mark.parametrize(
    ("licence", "kept"),
    [
        ("GPL-2.0+", "GPL-2.0-or-later"),
        ("12,5", "12,5"),
        ("Licence libre (ou pas)", "Licence libre (ou pas)"),
    ],
)
def test_a_licence_is_made_canonical_or_kept_as_text(licence: str, kept: str) -> None:
    # "12,5" made the SPDX reader raise, and with it the whole Group's processing.
    assert commons_fields(group(licence=licence))["licence"] == kept


def test_markdown_source_is_rendered_here_when_there_is_no_content() -> None:
    fields = commons_fields(
        group(source={"content": "Un *wiki* <script>x</script>", "mediaType": "text/markdown"})
    )
    assert fields["description"] == "Un *wiki* <script>x</script>"
    assert fields["description_html"] == "<p>Un <em>wiki</em> &lt;script&gt;x&lt;/script&gt;</p>\n"


async def test_a_copy_keeps_only_sanitised_payment_links(
    pair: Pair, caplog: pytest.LogCaptureFixture
) -> None:
    """Bad links are dropped and logged; the Group, and its good links, are stored."""
    a, _b, _network = pair

    def link(name: str, href: str, rel: Any = "payment") -> dict[str, Any]:
        return {"type": "Link", "name": name, "href": href, "rel": rel}

    attachment = [
        link(" Don\n<b>!</b>", "https://b.example/don"),
        link("IBAN", "payto://iban/DE75512108001245126199", ["payment"]),
        link("Piège", "javascript:alert(1)"),
        {"type": "Image", "url": "https://b.example/logo.png"},
        *(link(f"Don {n}", f"https://b.example/{n}") for n in range(6)),
    ]
    with caplog.at_level(logging.WARNING, logger="terreau.federation"):
        async with a.federation.sessions() as session:
            await apply_commons_document(
                session, group(attachment=attachment), "https://b.example/actor"
            )
            await session.commit()
    [copy] = await rows(a, Commons)
    assert copy.name == "YesWiki"
    assert copy.payment_links == (
        PaymentLink("Don <b>!</b>", "https://b.example/don"),
        *(PaymentLink(f"Don {n}", f"https://b.example/{n}") for n in range(4)),
    )
    assert "payto://iban" in caplog.text and "javascript:alert(1)" in caplog.text
    assert "beyond the first 5" in caplog.text


async def test_a_bad_document_changes_nothing(pair: Pair) -> None:
    a, _b, _network = pair
    async with a.federation.sessions() as session:
        with pytest.raises(Unusable, match="commonsKind"):
            await apply_commons_document(
                session, group(commonsKind="spaceship"), "https://b.example/actor"
            )
        with pytest.raises(Unusable, match="not on the host"):
            await apply_commons_document(session, group(), "https://c.example/actor")
    assert await rows(a, Commons) == []


async def test_an_older_version_never_overwrites_a_newer_one(pair: Pair) -> None:
    a, _b, _network = pair
    sender = "https://b.example/actor"
    now = utcnow().replace(microsecond=0)
    newer = group(name="Newer", updated=(now - timedelta(minutes=1)).isoformat())
    older = group(name="Older", updated=(now - timedelta(minutes=5)).isoformat())
    future = group(name="Future", updated=(now + timedelta(days=400)).isoformat())
    async with a.federation.sessions() as session:
        await apply_commons_document(session, newer, sender)
        stored = await apply_commons_document(session, older, sender)
        assert stored.name == "Newer"
        stored = await apply_commons_document(session, future, sender)
        assert stored.name == "Future" and stored.updated_at <= utcnow()  # clamped to now
        await session.commit()
    [copy] = await rows(a, Commons)
    assert (copy.origin, copy.name, copy.uses_count) == ("b.example", "Future", 3)


async def test_a_local_commons_cannot_be_overwritten(pair: Pair) -> None:
    a, _b, _network = pair
    local = await create(a, "yeswiki")
    async with a.federation.sessions() as session:
        with pytest.raises(Unusable, match="was made on this instance"):
            await apply_commons_document(session, group(id=local.uri), f"{a.base_url}/actor")
