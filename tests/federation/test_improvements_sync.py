"""Improvements between instances: b's commons sends its improvements as Articles, a keeps copies.

Between in-process instances: a follows b; b's improvements arrive when they open, and again
(Update) when their funding, text or status changes, never twice for the same words; a draft
is never sent, and going back to draft withdraws it. Those b had before the follow are read
back from its commons' outboxes. A third instance cannot speak for b's improvements, and bad
Articles are refused with their reason kept, changing nothing.
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
from catalogue.columns import utcnow
from catalogue.commons import Commons
from catalogue.improvements import Improvement, validate_improvement
from catalogue.organisations import Organisation
from catalogue.payment_links import PaymentLink
from federation.activities import activity
from federation.commons_feed import CommonsChange, publish_commons_change
from federation.follows import follow, resolve_actor
from federation.improvements_feed import publish_improvement_changes
from federation.media import PUBLIC
from federation.models import Following, FollowState, InboxItem, InboxState, OutboxActivity
from federation.outbox import publish
from instance.outgoing import announce_unsent_improvements
from instance.summary_line import summary_writer
from pledges import operations as pledge_ops

Pair = tuple[Peer, Peer, Peers]
Trio = tuple[Peer, Peer, Peer, Peers]
EN = summary_writer("en")


# --- Helpers ------------------------------------------------------------------------------------


async def a_follows(a: Peer, b: Peer, target: str) -> None:
    async with a.federation.sessions() as session:
        actor = await resolve_actor(a.federation, target)
        await follow(session, a.federation, a.federation.config.instance_actor_uri, actor)
    await drain(a, b)
    assert [f.state for f in await rows(a, Following)][-1] == FollowState.ACCEPTED


async def organisation(peer: Peer, slug: str = "lieu", name: str = "") -> Organisation:
    async with peer.federation.sessions() as session:
        found = await ops.get_local_organisation(session, slug)
    return found or await local_organisation(peer, slug, name)


async def commons_on(peer: Peer, slug: str = "yeswiki") -> Commons:
    maintainer = await organisation(peer)
    assert maintainer.id is not None
    async with peer.federation.sessions() as session:
        commons = await ops.create_commons(
            session,
            {"slug": slug, "name": slug.title(), "summary": "Un wiki", "kind": "software"},
            base_url=peer.base_url,
            creator_id=None,
            maintainer_ids=[maintainer.id],
            commit=False,
        )
        await publish_commons_change(session, peer.federation, commons, CommonsChange.CREATED)
        await session.commit()
        return commons


async def announce(peer: Peer, *ids: int | None, funding: bool = True) -> int:
    """What the pages do after a change (instance/outgoing.announce_improvements)."""
    async with peer.federation.sessions() as session:
        sent = await publish_improvement_changes(
            session, peer.federation, EN, [i for i in ids if i is not None], funding=funding
        )
        await session.commit()
    return len(sent)


async def plan(peer: Peer, commons: Commons, status: str = "open", **changes: str) -> Improvement:
    data = {"title": "Export PDF", "description": "Un **export** propre.", "budget": "4000"}
    async with peer.federation.sessions() as session:
        improvement = await ops.create_improvement(
            session,
            commons,
            validate_improvement({**data, **changes}),
            base_url=peer.base_url,
            currency="EUR",
            provider_id=None,
            creator_id=None,
        )
        if status != "draft":
            await ops.change_status(session, improvement, "open")
    await announce(peer, improvement.id)
    return improvement


async def set_status(peer: Peer, improvement: Improvement, status: str) -> None:
    async with peer.federation.sessions() as session:
        stored = await session.get(Improvement, improvement.id)
        assert stored is not None
        await ops.change_status(session, stored, status)
    await announce(peer, improvement.id)


async def pledge(peer: Peer, improvement: Improvement, cents: int, slug: str = "lieu") -> int:
    giver = await organisation(peer, slug)
    async with peer.federation.sessions() as session:
        stored = await session.get(Improvement, improvement.id)
        assert stored is not None
        made = await pledge_ops.make_pledge(
            session, giver, stored, cents, base_url=peer.base_url, created_by_id=None
        )
    await announce(peer, improvement.id)
    assert made.id is not None
    return made.id


async def copies(peer: Peer) -> list[Improvement]:
    return [i for i in await rows(peer, Improvement) if i.origin is not None]


def articles(outbox: list[OutboxActivity]) -> list[dict[str, Any]]:
    sent = [json.loads(row.body) for row in outbox]
    return [
        s
        for s in sent
        if isinstance(s["object"], dict)
        and s["object"].get("formerType") in (None, "Article")
        and s["object"].get("type") in ("Article", "Tombstone")
    ]


# --- Sending ------------------------------------------------------------------------------------


async def test_an_opened_improvement_reaches_a_and_follows_its_funding(pair: Pair) -> None:
    a, b, _network = pair
    await a_follows(a, b, b.base_url)
    commons = await commons_on(b)
    await drain(a, b)

    draft = await plan(b, commons, status="draft")
    assert articles(await rows(b, OutboxActivity)) == []  # a draft is never sent
    await set_status(b, draft, "open")
    [create] = articles(await rows(b, OutboxActivity))
    assert (create["type"], create["actor"], create["to"]) == ("Create", commons.uri, [PUBLIC])
    assert create["cc"] == [f"{commons.uri}/followers"]
    assert f"{b.base_url}/ns/terreau" in create["@context"]
    article = create["object"]
    assert (article["id"], article["type"], article["attributedTo"]) == (
        draft.uri,
        "Article",
        commons.uri,
    )
    assert article["summary"] == "Budget €4,000 · 0% funded"
    await drain(a, b)

    [copy] = await copies(a)
    assert (copy.uri, copy.origin, copy.title, copy.status) == (
        draft.uri,
        "b.test",
        "Export PDF",
        "open",
    )
    assert (copy.budget_cents, copy.currency, copy.origin_funded_cents) == (400_000, "EUR", 0)
    assert "<strong>export</strong>" in copy.description_html
    [remote_commons] = [c for c in await rows(a, Commons) if c.uri == commons.uri]
    assert copy.commons_id == remote_commons.id
    assert (remote_commons.open_improvements, remote_commons.need_cents) == (1, 400_000)

    await pledge(b, draft, 100_000)
    await drain(a, b)
    [copy] = await copies(a)
    assert copy.origin_funded_cents == 100_000
    [remote_commons] = [c for c in await rows(a, Commons) if c.uri == commons.uri]
    assert remote_commons.need_cents == 300_000  # "most in need" sorts by what is lacking
    update = articles(await rows(b, OutboxActivity))[-1]
    assert update["type"] == "Update" and update["object"]["summary"] == (
        "Budget €4,000 · 25% funded"
    )
    assert update["object"]["updated"] >= update["object"]["published"]

    # Nothing changed: nothing sent (an Update only when what it says changed).
    before = len(await rows(b, OutboxActivity))
    assert await announce(b, draft.id) == 0
    assert len(await rows(b, OutboxActivity)) == before

    # The remote commons page shows it, read-only, with its origin's figures.
    page = await a.client.get("/commons/yeswiki@b.test")
    assert page.status_code == 200
    assert "Export PDF" in page.text and f'href="{draft.uri}"' in page.text
    assert "€1,000 of €4,000 funded (25%)" in page.text
    assert '<progress max="400000" value="100000"' in page.text
    home = await a.client.get("/")  # open for funding there: listed, leading to its origin
    assert f'<a href="{draft.uri}">Export PDF</a>' in home.text

    await set_status(b, draft, "cancelled")  # a status: an Update, not a Delete
    await drain(a, b)
    [copy] = await copies(a)
    assert copy.status == "cancelled"
    assert articles(await rows(b, OutboxActivity))[-1]["object"]["summary"].endswith("Cancelled")


async def test_payment_links_reach_the_copy_and_a_change_of_them_is_sent(pair: Pair) -> None:
    a, b, _network = pair
    await a_follows(a, b, b.base_url)
    commons = await commons_on(b)
    invoice = PaymentLink("Payer la facture", "https://pay.example.org/export")
    improvement = await plan(b, commons, payment_links=f"{invoice.label} | {invoice.url}")
    [create] = articles(await rows(b, OutboxActivity))
    assert create["object"]["attachment"] == [
        {"type": "Link", "name": invoice.label, "href": invoice.url, "rel": "payment"}
    ]
    await drain(a, b)
    [copy] = await copies(a)
    assert copy.payment_links == (invoice,)
    page = (await a.client.get("/commons/yeswiki@b.test")).text
    assert f'<a href="{invoice.url}" rel="payment nofollow noopener">Payer la facture</a>' in page

    # New links are a change of what the Article says: an Update, and the copy follows.
    async with b.federation.sessions() as session:
        stored = await session.get(Improvement, improvement.id)
        assert stored is not None
        data = {"title": "Export PDF", "budget": "4000", "payment_links": ""}
        await ops.update_improvement(session, stored, validate_improvement(data), provider_id=None)
    assert await announce(b, improvement.id) == 1
    update = articles(await rows(b, OutboxActivity))[-1]
    assert update["type"] == "Update" and "attachment" not in update["object"]
    await drain(a, b)
    [copy] = await copies(a)
    assert copy.payment_links == ()
    assert "Payer la facture" not in (await a.client.get("/commons/yeswiki@b.test")).text


async def test_matches_are_named_in_the_summary(pair: Pair) -> None:
    a, b, _network = pair
    await a_follows(a, b, b.base_url)
    commons = await commons_on(b)
    improvement = await plan(b, commons)
    funder = await organisation(b, "ftl", "France Tiers-Lieux")
    now = utcnow()
    async with b.federation.sessions() as session:
        program = await pledge_ops.create_program(
            session,
            funder,
            {
                "name": "Doublement",
                "ratio": "1",
                "budget": "20000",
                "starts": (now - timedelta(days=1)).isoformat(),
                "ends": (now + timedelta(days=30)).isoformat(),
            },
            base_url=b.base_url,
        )
        await pledge_ops.set_program_status(session, program, "active", base_url=b.base_url)
    await announce(b)  # a program changed: nothing has a pledge yet, nothing to send
    await pledge(b, improvement, 100_000)
    await drain(a, b)
    summary = articles(await rows(b, OutboxActivity))[-1]["object"]["summary"]
    assert summary == "Budget €4,000 · 50% funded · matched ×2 by France Tiers-Lieux"
    [copy] = await copies(a)
    assert copy.origin_funded_cents == 200_000  # the pledge and its match


async def test_back_to_draft_withdraws_it_until_it_opens_again(pair: Pair) -> None:
    a, b, _network = pair
    await a_follows(a, b, b.base_url)
    commons = await commons_on(b)
    improvement = await plan(b, commons)
    await drain(a, b)
    assert len(await copies(a)) == 1

    await set_status(b, improvement, "draft")
    deletion = articles(await rows(b, OutboxActivity))[-1]
    assert (deletion["type"], deletion["object"]["type"]) == ("Delete", "Tombstone")
    await drain(a, b)
    assert await copies(a) == []
    async with a.federation.sessions() as session:
        remote = (await session.exec(select(Commons).where(Commons.uri == commons.uri))).one()
        assert (remote.open_improvements, remote.need_cents) == (0, 0)

    await set_status(b, improvement, "open")
    assert articles(await rows(b, OutboxActivity))[-1]["type"] == "Create"
    await drain(a, b)
    assert [c.uri for c in await copies(a)] == [improvement.uri]


async def test_a_merge_on_b_moves_the_copies_to_the_commons_kept(pair: Pair) -> None:
    a, b, _network = pair
    await a_follows(a, b, b.base_url)
    duplicate = await commons_on(b, "yes-wiki")
    kept = await commons_on(b, "yeswiki")
    moved = await plan(b, duplicate, title="Export PDF")
    await plan(b, kept, title="Thème sombre")
    await drain(a, b)
    async with b.federation.sessions() as session:
        await ops.merge_commons(session, duplicate, kept)
        await publish_commons_change(session, b.federation, duplicate, CommonsChange.REMOVED)
        await publish_improvement_changes(
            session, b.federation, EN, funding=True, commons_ids=[kept.id or 0]
        )
        await session.commit()
    update = articles(await rows(b, OutboxActivity))[-1]
    assert (update["type"], update["object"]["attributedTo"]) == ("Update", kept.uri)
    await drain(a, b)

    by_uri = {c.uri: c for c in await rows(a, Commons)}
    [copy] = [c for c in await copies(a) if c.uri == moved.uri]
    assert copy.commons_id == by_uri[kept.uri].id
    assert by_uri[duplicate.uri].hidden
    assert (by_uri[kept.uri].open_improvements, by_uri[kept.uri].need_cents) == (2, 800_000)
    assert by_uri[duplicate.uri].open_improvements == 0
    assert sorted(c.number for c in await copies(a)) == [1, 2]


# --- Back-fill ----------------------------------------------------------------------------------


async def test_improvements_b_had_before_the_follow_are_read_back(pair: Pair) -> None:
    a, b, _network = pair
    yeswiki = await commons_on(b)
    opened = await plan(b, yeswiki, title="Export PDF")
    await pledge(b, opened, 50_000)
    await plan(b, yeswiki, status="draft", title="Jamais publié")
    withdrawn = await plan(b, yeswiki, title="Retiré")
    await set_status(b, withdrawn, "draft")
    gogocarto = await commons_on(b, "gogocarto")
    other = await plan(b, gogocarto, title="Carte")

    await a_follows(a, b, b.base_url)
    found = {c.uri: (c.title, c.origin_funded_cents) for c in await copies(a)}
    assert found == {opened.uri: ("Export PDF", 50_000), other.uri: ("Carte", 0)}


async def test_following_one_commons_brings_its_improvements(pair: Pair) -> None:
    a, b, _network = pair
    commons = await commons_on(b)
    improvement = await plan(b, commons)
    await a_follows(a, b, commons.uri)
    assert [c.uri for c in await copies(a)] == [improvement.uri]


async def test_improvements_nothing_announced_are_sent_at_start_up(pair: Pair) -> None:
    """The demo loader and imports open improvements without a page announcing them: start-up
    sends them once, so later followers find them in the commons' outbox."""
    a, b, _network = pair
    commons = await commons_on(b)
    async with b.federation.sessions() as session:
        improvement = await ops.create_improvement(
            session,
            commons,
            validate_improvement({"title": "Carte", "budget": "900"}),
            base_url=b.base_url,
            currency="EUR",
            provider_id=None,
            creator_id=None,
        )
        await ops.change_status(session, improvement, "open")
    assert articles(await rows(b, OutboxActivity)) == []

    assert await announce_unsent_improvements(b.federation, b.settings) == 1
    assert await announce_unsent_improvements(b.federation, b.settings) == 0  # once
    await a_follows(a, b, b.base_url)
    assert [(c.uri, c.title) for c in await copies(a)] == [(improvement.uri, "Carte")]


# --- The origin rule and bad input --------------------------------------------------------------


@pytest.fixture
async def trio(
    database_url: str, second_database_url: str, third_database_url: str, tmp_path: Path
) -> AsyncIterator[Trio]:
    network = Peers()
    specs = [
        ("a.test", database_url, tmp_path / "a"),
        ("b.test", second_database_url, tmp_path / "b"),
        ("c.test", third_database_url, tmp_path / "c"),
    ]
    async with running_peers(network, *specs) as (a, b, c):
        yield a, b, c, network


async def send(sender: Peer, actor: str, receiver: Peer, type_: str, object_: Any) -> InboxItem:
    """``actor`` (one of ``sender``'s) sends an activity to ``receiver``'s shared inbox, signed
    with its own key; what ``receiver`` made of it."""
    config = sender.federation.config
    sent = activity(config, type_, actor, object_, [PUBLIC])
    async with sender.federation.sessions() as session:
        await publish(session, config, sent, [f"{receiver.base_url}/inbox"])
        await session.commit()
    await drain(sender, receiver)
    [item] = [i for i in await rows(receiver, InboxItem) if i.activity_id == sent["id"]]
    return item


def article_of(sender: Peer, commons: Commons, number: int = 1, **changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": f"{commons.uri}/improvements/{number}",
        "type": "Article",
        "attributedTo": commons.uri,
        "context": commons.uri,
        "name": "Export PDF",
        "summary": "Budget 4 000 €",
        "content": "<p>Un export.</p>",
        "budget": 400_000,
        "currency": "EUR",
        "fundedAmount": 0,
        "status": "open",
        "published": "2026-01-01T00:00:00Z",
    }
    document.update(changes)
    return {key: value for key, value in document.items() if value is not None}


async def test_bad_articles_are_refused_and_change_nothing(
    trio: Trio, caplog: pytest.LogCaptureFixture
) -> None:
    a, b, _c, _network = trio
    commons = await commons_on(b)  # a does not hold it yet: it is fetched on first use
    cases: list[tuple[dict[str, Any], str]] = [
        ({"budget": 4000.5}, "budget: expected a whole number of cents"),
        ({"budget": -400}, "budget: expected a whole number of cents from 0"),
        ({"budget": 0}, "budget: expected a whole number of cents from 1"),
        ({"fundedAmount": 12.0}, "fundedAmount: expected a whole number of cents"),
        ({"currency": "EURO"}, "currency: expected an ISO 4217 code"),
        ({"status": "paused"}, "status: unknown status"),
        ({"name": None}, "name: required"),
        ({"budget": None}, "budget: expected a whole number of cents"),
    ]
    with caplog.at_level(logging.WARNING, logger="terreau.federation"):
        for changes, reason in cases:
            item = await send(b, commons.uri, a, "Create", article_of(b, commons, **changes))
            assert item.state == InboxState.FAILED, changes
            assert reason in item.error, (reason, item.error)
    logged = " ".join(record.getMessage() for record in caplog.records)
    assert "budget: expected a whole number of cents" in logged
    assert await copies(a) == []

    # Hostile HTML is cleaned; a valid Article after all those refusals still works.
    hostile = article_of(
        b,
        commons,
        content='<p onclick="steal()">Un <strong>export</strong><script>alert("x")</script></p>'
        '<a href="javascript:alert(1)">lien</a><iframe src="https://evil.example"></iframe>',
    )
    item = await send(b, commons.uri, a, "Create", hostile)
    assert item.state == InboxState.DONE, item.error
    [copy] = await copies(a)
    for bad in ("script", "alert", "onclick", "javascript", "iframe"):
        assert bad not in copy.description_html
    assert copy.description_html.startswith("<p>Un <strong>export</strong></p>")
    [stored_commons] = [x for x in await rows(a, Commons) if x.uri == commons.uri]
    assert stored_commons.origin == "b.test" and copy.commons_id == stored_commons.id

    # Bad payment links are dropped, never a reason to refuse the Article.
    attachment = [
        {"type": "Link", "name": "Payer", "href": "https://pay.example.org/1", "rel": "payment"},
        {"type": "Link", "name": "Piège", "href": "javascript:alert(1)", "rel": "payment"},
        {"type": "Note", "name": "Pas un lien", "href": "https://x.example", "rel": "payment"},
    ]
    with caplog.at_level(logging.WARNING, logger="terreau.federation"):
        item = await send(
            b,
            commons.uri,
            a,
            "Update",
            article_of(b, commons, attachment=attachment, updated="2026-01-02T00:00:00Z"),
        )
    assert item.state == InboxState.DONE, item.error
    [copy] = await copies(a)
    assert copy.payment_links == (PaymentLink("Payer", "https://pay.example.org/1"),)
    assert "javascript:alert(1)" in caplog.text and "'Note' is not Link" in caplog.text


async def test_another_host_cannot_speak_for_b_improvements(trio: Trio) -> None:
    a, b, c, _network = trio
    yeswiki = await commons_on(b)
    improvement = await plan(b, yeswiki)
    await a_follows(a, b, b.base_url)
    [copy] = await copies(a)
    rogue = await commons_on(c, "rogue")

    forged = article_of(b, yeswiki, budget=1, name="Hijacked")  # ids on b, sent by c
    item = await send(c, rogue.uri, a, "Update", forged)
    assert item.state == InboxState.FAILED
    assert f"is not on the host of {rogue.uri}" in item.error
    # Its own id, but attributed to b's commons.
    stolen = article_of(c, rogue, attributedTo=yeswiki.uri, context=yeswiki.uri)
    item = await send(c, rogue.uri, a, "Create", stolen)
    assert item.state == InboxState.FAILED and "attributedTo" in item.error
    item = await send(c, rogue.uri, a, "Delete", improvement.uri)
    assert item.state == InboxState.FAILED and "was made on b.test, not on c.test" in item.error
    [after] = await copies(a)
    assert (after.title, after.budget_cents, after.status) == (copy.title, 400_000, "open")


async def test_an_article_of_an_unfetchable_commons_is_refused_then_accepted(
    trio: Trio,
) -> None:
    a, _b, c, _network = trio
    commons = await commons_on(c, "carto")
    ghost = f"{c.base_url}/commons/ghost"  # c answers 404 for it
    orphan = article_of(c, commons, id=f"{ghost}/improvements/1", attributedTo=ghost, context=ghost)
    item = await send(c, commons.uri, a, "Create", orphan)
    assert item.state == InboxState.FAILED
    assert f"commons {ghost} is unknown here and could not be fetched" in item.error
    assert await copies(a) == [] and await rows(a, Commons) == []

    # A real commons' Article: a fetches the commons first, then stores both.
    item = await send(c, commons.uri, a, "Create", article_of(c, commons))
    assert item.state == InboxState.DONE, item.error
    [copy] = await copies(a)
    assert copy.origin == "c.test"
    [stored] = await rows(a, Commons)
    assert (stored.uri, stored.origin, stored.name) == (commons.uri, "c.test", "Carto")
