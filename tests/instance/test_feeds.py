"""Atom feeds of new commons and improvements, read back the way a feed reader parses them."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.testclient import TestClient

from catalogue import operations as ops
from catalogue.commons import Commons
from catalogue.improvements import Improvement, validate_improvement
from catalogue.organisations import Organisation

BASE = "http://testserver"
ATOM = "{http://www.w3.org/2005/Atom}"
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
TRICKY_NAME = "Tom & Jerry <b>\"bold\"</b> 'quoted'"


async def organisation(session: AsyncSession) -> Organisation:
    org = Organisation(uri=f"{BASE}/orgs/cae", slug="cae", name="CAE", sort_key="cae", kind="cae")
    session.add(org)
    await session.commit()
    return org


async def commons(session: AsyncSession, org: Organisation, name: str, slug: str) -> Commons:
    assert org.id is not None
    data = {"name": name, "slug": slug, "summary": f"About {name}", "kind": "software"}
    return await ops.create_commons(
        session, data, base_url=BASE, creator_id=None, maintainer_ids=[org.id]
    )


async def improvement(
    session: AsyncSession, target: Commons, title: str, budget: str, *, draft: bool = False
) -> Improvement:
    made = await ops.create_improvement(
        session,
        target,
        validate_improvement({"title": title, "budget": budget}),
        base_url=BASE,
        currency="EUR",
        provider_id=None,
        creator_id=None,
    )
    if not draft:
        await ops.change_status(session, made, "open")
    return made


def feed(client: TestClient, path: str) -> ET.Element:
    response = client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/atom+xml; charset=utf-8"
    root = ET.fromstring(response.content)  # noqa: S314  (our own output, parsed in a test)
    assert root.tag == f"{ATOM}feed"
    for required in ("id", "title", "updated", "author"):
        assert root.find(f"{ATOM}{required}") is not None, required
    assert RFC3339_UTC.match(text(root, "updated"))
    assert link(root, "self") == BASE + path
    return root


def text(element: ET.Element, tag: str) -> str:
    found = element.find(f"{ATOM}{tag}")
    assert found is not None, tag
    return found.text or ""


def link(element: ET.Element, rel: str) -> str:
    for candidate in element.findall(f"{ATOM}link"):
        if candidate.get("rel") == rel:
            return candidate.get("href", "")
    raise AssertionError(f"no {rel} link")


def entries(root: ET.Element) -> list[dict[str, Any]]:
    return [
        {
            "id": text(entry, "id"),
            "title": text(entry, "title"),
            "link": link(entry, "alternate"),
            "summary": text(entry, "summary"),
            "updated": text(entry, "updated"),
        }
        for entry in root.findall(f"{ATOM}entry")
    ]


async def test_the_commons_feed_lists_visible_commons_newest_first(
    client: TestClient, session: AsyncSession
) -> None:
    org = await organisation(session)
    first = await commons(session, org, "YesWiki", "yeswiki")
    await commons(session, org, "Plans de serre", "serre")
    hidden = await commons(session, org, "Caché", "cache")
    await ops.set_hidden(session, hidden, True)
    duplicate = await commons(session, org, "Yes Wiki", "yes-wiki")
    await ops.merge_commons(session, duplicate, first)

    root = feed(client, "/feeds/commons.atom")
    assert link(root, "alternate") == f"{BASE}/commons"
    items = entries(root)
    assert [e["title"] for e in items] == ["Plans de serre", "YesWiki"]
    assert items[1]["id"] == f"{BASE}/commons/yeswiki"  # the commons' uri
    assert items[1]["link"] == f"{BASE}/commons/yeswiki"
    assert items[1]["summary"] == "About YesWiki"
    assert all(RFC3339_UTC.match(e["updated"]) for e in items)


async def test_names_with_markup_characters_are_escaped(
    client: TestClient, session: AsyncSession
) -> None:
    org = await organisation(session)
    tricky = await commons(session, org, TRICKY_NAME, "tricky")
    await improvement(session, tricky, "<script>alert(1)</script> & co", "10")

    response = client.get("/feeds/commons.atom")
    assert "<b>" not in response.text
    assert "&lt;b&gt;" in response.text
    assert [e["title"] for e in entries(feed(client, "/feeds/commons.atom"))] == [TRICKY_NAME]
    titles = [e["title"] for e in entries(feed(client, "/commons/tricky/feed.atom"))]
    assert titles == [f"{TRICKY_NAME}: <script>alert(1)</script> & co"]
    assert "<script>" not in client.get("/feeds/improvements.atom").text


async def test_characters_xml_cannot_carry_are_dropped(
    client: TestClient, session: AsyncSession
) -> None:
    org = await organisation(session)
    await commons(session, org, "Bell\x07 and\x0b tab\tok", "bell")
    assert [e["title"] for e in entries(feed(client, "/feeds/commons.atom"))] == [
        "Bell and tab\tok"
    ]


async def test_the_improvements_feed_shows_status_and_budget_and_skips_drafts(
    client: TestClient, session: AsyncSession
) -> None:
    org = await organisation(session)
    wiki = await commons(session, org, "YesWiki", "yeswiki")
    serre = await commons(session, org, "Plans de serre", "serre")
    await improvement(session, wiki, "Export PDF", "4000")
    await improvement(session, wiki, "Brouillon", "100", draft=True)
    later = await improvement(session, serre, "Notice", "1500.50")
    await ops.change_status(session, later, "funded")
    hidden = await commons(session, org, "Caché", "cache")
    await improvement(session, hidden, "Secret", "100")
    await ops.set_hidden(session, hidden, True)

    items = entries(feed(client, "/feeds/improvements.atom"))
    assert [e["title"] for e in items] == ["Plans de serre: Notice", "YesWiki: Export PDF"]
    assert items[1]["id"] == f"{BASE}/commons/yeswiki/improvements/1"
    assert items[1]["link"] == f"{BASE}/commons/yeswiki/improvements/1"
    assert items[1]["summary"] == "Open for funding · budget €4,000.00 · 0% funded"
    assert items[0]["summary"].startswith("Funded · budget €1,500.50")


async def test_a_commons_feed_has_its_own_improvements_newest_first(
    client: TestClient, session: AsyncSession
) -> None:
    org = await organisation(session)
    wiki = await commons(session, org, "YesWiki", "yeswiki")
    other = await commons(session, org, "Autre", "autre")
    await improvement(session, wiki, "Premier", "10")
    await improvement(session, other, "Ailleurs", "10")
    await improvement(session, wiki, "Second", "20")
    await improvement(session, wiki, "Brouillon", "20", draft=True)

    root = feed(client, "/commons/yeswiki/feed.atom")
    assert text(root, "title") == "Improvements of YesWiki"
    assert link(root, "alternate") == f"{BASE}/commons/yeswiki"
    assert [e["title"] for e in entries(root)] == ["YesWiki: Second", "YesWiki: Premier"]
    elsewhere = entries(feed(client, "/commons/autre/feed.atom"))
    assert [e["title"] for e in elsewhere] == ["Autre: Ailleurs"]


@pytest.mark.parametrize("slug", ["nothing-here", "cache"])
async def test_the_feed_of_an_unknown_or_hidden_commons_is_404(
    client: TestClient, session: AsyncSession, slug: str
) -> None:
    org = await organisation(session)
    hidden = await commons(session, org, "Caché", "cache")
    await ops.set_hidden(session, hidden, True)
    assert client.get(f"/commons/{slug}/feed.atom").status_code == 404


async def test_a_merged_commons_feed_moves_to_the_one_it_was_merged_into(
    client: TestClient, session: AsyncSession
) -> None:
    org = await organisation(session)
    wiki = await commons(session, org, "YesWiki", "yeswiki")
    duplicate = await commons(session, org, "Yes Wiki", "yes-wiki")
    await ops.merge_commons(session, duplicate, wiki)
    response = client.get("/commons/yes-wiki/feed.atom", follow_redirects=False)
    assert response.status_code == 301
    assert response.headers["location"] == "/commons/yeswiki/feed.atom"


async def test_feeds_hold_the_newest_fifty(client: TestClient, session: AsyncSession) -> None:
    org = await organisation(session)
    for number in range(52):
        await commons(session, org, f"Outil {number:02d}", f"outil-{number}")
    titles = [e["title"] for e in entries(feed(client, "/feeds/commons.atom"))]
    assert titles == [f"Outil {number:02d}" for number in range(51, 1, -1)]


async def test_empty_feeds_are_still_valid(client: TestClient) -> None:
    for path in ("/feeds/commons.atom", "/feeds/improvements.atom"):
        assert entries(feed(client, path)) == []
