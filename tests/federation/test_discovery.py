"""Discovery documents, WebFinger queries, page numbers and Accept headers, without a database."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from federation.actors import ActorKind, LocalActor
from federation.collections import BadPage, collection_document, page_document, parse_page
from federation.context import FederationConfig
from federation.discovery import (
    BadResource,
    ForeignResource,
    Resource,
    Usage,
    host_meta,
    nodeinfo,
    nodeinfo_links,
    parse_resource,
    webfinger,
)
from federation.media import wants_activity_json

CONFIG = FederationConfig(
    base_url="https://tiers-lieux.example",
    name="Tiers-lieux",
    description="Communs partagés",
    version="1.2.3",
    open_registrations=False,
)
PORTED = FederationConfig(base_url="http://localhost:8000")
ACTOR = LocalActor(
    uri="https://tiers-lieux.example/commons/yeswiki",
    kind=ActorKind.COMMONS,
    username="yeswiki",
    name="YesWiki",
    summary="",
    url="https://tiers-lieux.example/commons/yeswiki",
)
MASTODON_ACCEPT = (
    'application/activity+json, application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
    ", text/html;q=0.1"
)
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


# WebFinger's resource parameter.


@pytest.mark.parametrize(
    ("resource", "wanted"),
    [
        ("acct:yeswiki@tiers-lieux.example", Resource(username="yeswiki")),
        ("ACCT:yeswiki@Tiers-Lieux.Example", Resource(username="yeswiki")),
        ("yeswiki@tiers-lieux.example", Resource(username="yeswiki")),
        ("@yeswiki@tiers-lieux.example", Resource(username="yeswiki")),
        (" acct:yeswiki@tiers-lieux.example ", Resource(username="yeswiki")),
        (
            "https://tiers-lieux.example/commons/yeswiki",
            Resource(uri="https://tiers-lieux.example/commons/yeswiki"),
        ),
    ],
)
def test_a_resource_names_an_account_or_an_actor_id(resource: str, wanted: Resource) -> None:
    assert parse_resource(resource, CONFIG) == wanted


def test_a_port_is_part_of_the_domain() -> None:
    assert parse_resource("acct:atelier@localhost:8000", PORTED) == Resource(username="atelier")
    with pytest.raises(ForeignResource):
        parse_resource("acct:atelier@localhost", PORTED)


@pytest.mark.parametrize(
    "resource",
    [
        "acct:yeswiki@mastodon.example",
        "yeswiki@tiers-lieux.example.evil",
        "https://mastodon.example/users/yeswiki",
        "https://tiers-lieux.example.evil/commons/yeswiki",
    ],
)
def test_another_servers_resource_is_foreign(resource: str) -> None:
    with pytest.raises(ForeignResource):
        parse_resource(resource, CONFIG)


@pytest.mark.parametrize(
    "resource",
    [
        None,
        "",
        "   ",
        "yeswiki",
        "acct:yeswiki",
        "acct:@tiers-lieux.example",
        "acct:yeswiki@",
        "acct:a@b@tiers-lieux.example",
        "mailto:yeswiki@tiers-lieux.example",
    ],
)
def test_an_unreadable_resource_is_bad(resource: str | None) -> None:
    with pytest.raises(BadResource):
        parse_resource(resource, CONFIG)


def test_the_jrd_names_the_actor_and_its_page() -> None:
    page = LocalActor(
        uri="https://tiers-lieux.example/actor",
        kind=ActorKind.INSTANCE,
        username="instance",
        name="Tiers-lieux",
        summary="",
        url="https://tiers-lieux.example/",
    )
    assert webfinger(page, CONFIG) == {
        "subject": "acct:instance@tiers-lieux.example",
        "aliases": ["https://tiers-lieux.example/actor", "https://tiers-lieux.example/"],
        "links": [
            {
                "rel": "self",
                "type": "application/activity+json",
                "href": "https://tiers-lieux.example/actor",
            },
            {
                "rel": "http://webfinger.net/rel/profile-page",
                "type": "text/html",
                "href": "https://tiers-lieux.example/",
            },
        ],
    }
    # When the page and the id are one address, it is listed once.
    assert webfinger(ACTOR, CONFIG)["aliases"] == [ACTOR.uri]


# host-meta and NodeInfo.


def test_host_meta_points_to_webfinger() -> None:
    root = ET.fromstring(host_meta(CONFIG))  # noqa: S314 - our own document
    assert root.tag == "{http://docs.oasis-open.org/ns/xri/xrd-1.0}XRD"
    (link,) = list(root)
    assert link.get("rel") == "lrdd"
    assert (
        link.get("template") == "https://tiers-lieux.example/.well-known/webfinger?resource={uri}"
    )


def test_host_meta_escapes_the_base_url() -> None:
    odd = FederationConfig(base_url='https://a.example/x?a=1&b="2"')
    root = ET.fromstring(host_meta(odd))  # noqa: S314 - our own document
    (link,) = list(root)
    assert link.get("template", "").startswith('https://a.example/x?a=1&b="2"/')


def test_nodeinfo_discovery_links_the_2_1_document() -> None:
    assert nodeinfo_links(CONFIG) == {
        "links": [
            {
                "rel": "http://nodeinfo.diaspora.software/ns/schema/2.1",
                "href": "https://tiers-lieux.example/nodeinfo/2.1",
            }
        ]
    }


def test_nodeinfo_describes_the_software_and_its_figures() -> None:
    document = nodeinfo(CONFIG, Usage(7, 3, 5, 42), outbound=("atom1.0",))
    assert document == {
        "version": "2.1",
        "software": {"name": "terreau", "version": "1.2.3"},
        "protocols": ["activitypub"],
        "services": {"inbound": [], "outbound": ["atom1.0"]},
        "openRegistrations": False,
        "usage": {
            "users": {"total": 7, "activeMonth": 3, "activeHalfyear": 5},
            "localPosts": 42,
        },
        "metadata": {"nodeName": "Tiers-lieux", "nodeDescription": "Communs partagés"},
    }
    # The schema's own rule for software names.
    assert re.fullmatch(r"[a-z0-9-]+", document["software"]["name"])


# Pages of collections.


@pytest.mark.parametrize(
    ("raw", "page"), [(None, None), ("1", 1), ("07", 7), ("999999999", 999_999_999)]
)
def test_page_numbers_are_whole_numbers_from_one(raw: str | None, page: int | None) -> None:
    assert parse_page(raw) == page


@pytest.mark.parametrize("raw", ["", "0", "-1", "1.5", "abc", " 1", "²", "1e3", "1234567890"])
def test_other_page_values_are_refused(raw: str) -> None:
    with pytest.raises(BadPage):
        parse_page(raw)


def test_a_collection_links_its_first_and_last_pages() -> None:
    box = "https://tiers-lieux.example/actor/outbox"
    assert collection_document(box, 0)["last"] == f"{box}?page=1"
    assert collection_document(box, 20)["last"] == f"{box}?page=1"
    assert collection_document(box, 21)["last"] == f"{box}?page=2"
    middle = page_document(box, 2, 50, [])
    assert (middle["prev"], middle["next"]) == (f"{box}?page=1", f"{box}?page=3")
    assert "next" not in page_document(box, 3, 50, [])
    beyond = page_document(box, 9, 50, [])
    assert beyond["prev"] == f"{box}?page=3" and "next" not in beyond
    assert "prev" not in page_document(box, 1, 50, [])


# Accept headers.


@pytest.mark.parametrize(
    ("accept", "wanted"),
    [
        ("application/activity+json", True),
        ('application/ld+json; profile="https://www.w3.org/ns/activitystreams"', True),
        ("application/ld+json", True),  # bare, as some servers send it
        (MASTODON_ACCEPT, True),
        ("text/html, application/activity+json;q=0.9", False),
        ("application/activity+json;q=0.9, text/html;q=0.8", True),
        ("application/activity+json;q=0.5, text/html;q=0.5", True),  # a tie goes to AS
        ("application/activity+json;q=0", False),
        ("application/activity+json;q=nonsense", False),
        ('application/ld+json; profile="https://example.org/other"', False),
        ("APPLICATION/ACTIVITY+JSON", True),
        ("text/html", False),
        (BROWSER_ACCEPT, False),
        ("application/json", False),
        ("*/*", False),
        ("", False),
    ],
)
def test_which_accept_headers_ask_for_activitystreams(accept: str, wanted: bool) -> None:
    assert wants_activity_json(accept) is wanted
