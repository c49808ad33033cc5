"""The read-only JSON API: real data made through catalogue.operations, read back over HTTP.

Every test but the schemathesis one runs on SQLite and PostgreSQL; that one (at the end) runs on
SQLite only, because it drives the app through schemathesis' own ASGI client and event loop.
"""

from __future__ import annotations

import asyncio
import shutil
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema_rs
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.testclient import TestClient
from support import make_settings

from catalogue import operations as ops
from catalogue.commons import Commons
from catalogue.declarations import validate_declaration
from catalogue.improvements import Improvement, ImprovementStatus, validate_improvement
from catalogue.organisations import Organisation
from instance.accounts import Account
from instance.app import create_app
from instance.database import Database
from instance.openapi import OPERATIONS, PUBLIC_STATUSES, PublicStatus, build_document
from instance.views.api import VIEWS

BASE = "http://testserver"
TODAY = date(2026, 11, 28)
SECRET_EMAIL = "creator-secret@example.org"


# ---------------------------------------------------------------------------------------------
# Data, made the way the web views make it


async def organisation(session: AsyncSession, slug: str, name: str, kind: str) -> Organisation:
    org = Organisation(
        uri=f"{BASE}/orgs/{slug}", slug=slug, name=name, sort_key=name.lower(), kind=kind
    )
    session.add(org)
    await session.commit()
    return org


async def commons(
    session: AsyncSession, maintainer: Organisation, creator: Account, **fields: str
) -> Commons:
    assert maintainer.id is not None
    data = {
        "summary": "Un outil partagé",
        "description": "Un **outil** facile.",
        "kind": "software",
        "maturity": "stable",
        **fields,
    }
    return await ops.create_commons(
        session, data, base_url=BASE, creator_id=creator.id, maintainer_ids=[maintainer.id]
    )


async def improvement(
    session: AsyncSession,
    target: Commons,
    title: str,
    budget: str,
    status: str = "open",
    provider: Organisation | None = None,
    milestones: str = "",
    payment_links: str = "",
) -> Improvement:
    cleaned = validate_improvement(
        {
            "title": title,
            "budget": budget,
            "milestones": milestones,
            "deadline": "2027-03-31",
            "payment_links": payment_links,
        }
    )
    made = await ops.create_improvement(
        session,
        target,
        cleaned,
        base_url=BASE,
        currency="EUR",
        provider_id=provider.id if provider else None,
        creator_id=None,
    )
    for step in ("open", "funded", "in-progress"):
        if made.status == status:
            break
        await ops.change_status(session, made, step)
    return made


async def declare(
    session: AsyncSession, org: Organisation, target: Commons, kind: str, **fields: str
) -> None:
    cleaned = validate_declaration(
        kind,
        fields.get("since", ""),
        fields.get("comment", ""),
        fields.get("satisfaction", ""),
        today=TODAY,
    )
    await ops.declare(session, org, target, cleaned, base_url=BASE, creator_id=None)


@dataclass
class Catalogue:
    cae: Organisation
    lieu: Organisation
    yeswiki: Commons
    serre: Commons
    hidden: Commons
    duplicate: Commons


async def make_catalogue(session: AsyncSession) -> Catalogue:
    """Two visible commons, one hidden, one merged; improvements of each status; declarations."""
    creator = Account(email=SECRET_EMAIL, display_name="Creator", password_hash="x")
    session.add(creator)
    await session.commit()
    cae = await organisation(session, "coop-outils", "Coop des Outils", "cae")
    lieu = await organisation(session, "la-fabrique", "La Fabrique", "tiers-lieu")
    yeswiki = await commons(
        session,
        cae,
        creator,
        name="YesWiki",
        slug="yeswiki",
        tags="wiki, coopération",
        licence="AGPL-3.0-or-later",
        website="https://yeswiki.net",
        languages="fr, en",
        territory="region:53",
        payment_links=(
            "Donate | https://opencollective.com/yeswiki\nAdhérer <vite> | http://yeswiki.net/a"
        ),
    )
    serre = await commons(
        session,
        lieu,
        creator,
        name="Plans de serre",
        slug="serre",
        kind="hardware",
        maturity="idea",
        summary="Une serre bioclimatique",
        tags="serre",
    )
    hidden = await commons(session, cae, creator, name="Caché", slug="cache")
    await ops.set_hidden(session, hidden, True)
    duplicate = await commons(session, cae, creator, name="Yes Wiki", slug="yes-wiki")
    await improvement(
        session,
        yeswiki,
        "Export PDF",
        "4000",
        provider=cae,
        milestones="Maquette: 1000",
        payment_links="Payer la facture | https://pay.example.org/export",
    )
    await improvement(session, yeswiki, "Brouillon secret", "100", status="draft")
    await improvement(session, serre, "Notice de montage", "1500.50", status="funded")
    await improvement(session, hidden, "Caché aussi", "100")
    await declare(session, lieu, yeswiki, "uses", since="2024-09-01", satisfaction="4")
    await declare(session, cae, serre, "interested", comment="Pour notre atelier")
    await declare(session, lieu, hidden, "uses")
    await declare(session, cae, duplicate, "interested")
    await ops.merge_commons(session, duplicate, yeswiki)
    return Catalogue(cae, lieu, yeswiki, serre, hidden, duplicate)


@pytest.fixture
async def catalogue(session: AsyncSession) -> Catalogue:
    return await make_catalogue(session)


def get(client: TestClient, path: str, **headers: str) -> Any:
    response = client.get(path, headers=headers)
    assert response.headers["content-type"] == "application/json", response.text
    return response


def slugs(items: Iterable[dict[str, Any]]) -> list[str]:
    return [item["slug"] for item in items]


# ---------------------------------------------------------------------------------------------
# Commons


async def test_the_commons_list_shows_visible_commons_with_their_counts(
    client: TestClient, catalogue: Catalogue
) -> None:
    body = get(client, "/api/v1/commons").json()
    assert slugs(body["items"]) == ["yeswiki", "serre"]  # most used first, then by name
    assert body["total"] == 2
    assert (body["page"], body["per_page"], body["pages"]) == (1, 20, 1)
    first = body["items"][0]
    assert first["uri"] == f"{BASE}/commons/yeswiki"
    assert first["origin"] is None
    assert first["tags"] == ["coopération", "wiki"]
    # The merged duplicate's "interested" moved to YesWiki.
    assert (first["uses_count"], first["interested_count"]) == (1, 1)
    assert first["open_improvements"] == 1
    assert first["languages"] == ["fr", "en"]
    assert first["territory"] == "region:53"
    assert first["created_at"].endswith("Z")
    assert "description" not in first  # the list is a summary; the page has it


async def test_the_commons_list_filters_and_sorts_like_the_catalogue(
    client: TestClient, catalogue: Catalogue
) -> None:
    def found(query: str) -> list[str]:
        return slugs(get(client, f"/api/v1/commons?{query}").json()["items"])

    assert found("q=cooperation") == ["yeswiki"]
    assert found("kind=hardware") == ["serre"]
    assert found("tag=serre") == ["serre"]
    assert found("maturity=idea") == ["serre"]
    assert found("territory=department:29") == []
    assert found("territory=region:53") == ["yeswiki"]
    assert found("open_improvements=true") == ["yeswiki"]
    assert found("open_improvements=false") == ["yeswiki", "serre"]
    assert found("sort=name") == ["serre", "yeswiki"]
    assert found("sort=recent") == ["serre", "yeswiki"]
    assert found("sort=need") == ["yeswiki", "serre"]
    assert found("q=cache") == []  # hidden commons are never found


async def test_a_commons_is_given_in_full_without_its_creators_email(
    client: TestClient, catalogue: Catalogue
) -> None:
    response = get(client, "/api/v1/commons/yeswiki")
    body = response.json()
    assert body["name"] == "YesWiki"
    assert body["kind"] == "software"
    assert body["description"] == "Un **outil** facile."
    assert body["description_html"] == "<p>Un <strong>outil</strong> facile.</p>\n"
    assert body["licence"] == "AGPL-3.0-or-later"
    assert body["website"] == "https://yeswiki.net"
    assert body["repository"] is None
    assert body["logo"] is None
    assert body["maintainers"] == [
        {"uri": f"{BASE}/orgs/coop-outils", "slug": "coop-outils", "name": "Coop des Outils"}
    ]
    assert SECRET_EMAIL not in response.text
    assert response.headers["access-control-allow-origin"] == "*"


async def test_commons_carry_their_payment_links_in_the_list_and_in_full(
    client: TestClient, catalogue: Catalogue
) -> None:
    links = [
        {"label": "Donate", "url": "https://opencollective.com/yeswiki"},
        {"label": "Adhérer <vite>", "url": "http://yeswiki.net/a"},  # text, as typed
    ]
    assert get(client, "/api/v1/commons/yeswiki").json()["payment_links"] == links
    items = {c["slug"]: c for c in get(client, "/api/v1/commons").json()["items"]}
    assert items["yeswiki"]["payment_links"] == links
    assert items["serre"]["payment_links"] == []


async def test_a_logo_is_an_absolute_url(
    client: TestClient, catalogue: Catalogue, session: AsyncSession
) -> None:
    await ops.set_logo(session, catalogue.serre, "0123456789abcdef0123456789abcdef.png")
    body = get(client, "/api/v1/commons/serre").json()
    assert body["logo"] == f"{BASE}/media/logos/0123456789abcdef0123456789abcdef.png"


@pytest.mark.parametrize("slug", ["cache", "yes-wiki", "nothing-here", "Not_A_Slug", "%00"])
async def test_hidden_merged_and_unknown_commons_are_404_in_json(
    client: TestClient, catalogue: Catalogue, slug: str
) -> None:
    response = get(client, f"/api/v1/commons/{slug}", accept="text/html")
    assert response.status_code == 404
    assert response.json() == {
        "error": "Not Found",
        "detail": "Nothing public has this address.",
        "parameter": None,
    }


# ---------------------------------------------------------------------------------------------
# Improvements


async def test_improvements_are_listed_newest_first_without_drafts_or_hidden_commons(
    client: TestClient, catalogue: Catalogue
) -> None:
    response = get(client, "/api/v1/improvements")
    items = response.json()["items"]
    assert [(i["commons"]["slug"], i["title"]) for i in items] == [
        ("serre", "Notice de montage"),
        ("yeswiki", "Export PDF"),
    ]
    assert "Brouillon secret" not in response.text
    assert "Caché" not in response.text


async def test_improvements_are_filtered_by_status_and_commons(
    client: TestClient, catalogue: Catalogue
) -> None:
    def titles(query: str) -> list[str]:
        return [i["title"] for i in get(client, f"/api/v1/improvements?{query}").json()["items"]]

    assert titles("status=open") == ["Export PDF"]
    assert titles("status=funded") == ["Notice de montage"]
    assert titles("status=delivered") == []
    assert titles("commons=yeswiki") == ["Export PDF"]
    assert titles("commons=cache") == []
    assert titles("commons=nothing-here") == []


async def test_an_improvement_has_its_budget_funding_milestones_and_provider(
    client: TestClient, catalogue: Catalogue
) -> None:
    body = get(client, "/api/v1/commons/yeswiki/improvements/1").json()
    assert body["uri"] == f"{BASE}/commons/yeswiki/improvements/1"
    assert body["status"] == "open"
    assert body["budget"] == {"cents": 400000, "currency": "EUR", "amount": "4000.00"}
    assert body["funding"]["remaining"]["amount"] == "4000.00"
    assert body["funding"]["percent"] == 0
    maquette = {"cents": 100000, "currency": "EUR", "amount": "1000.00"}
    assert body["milestones"] == [{"position": 1, "title": "Maquette", "amount": maquette}]
    assert body["provider"]["slug"] == "coop-outils"
    assert body["deadline"] == "2027-03-31"
    assert body["allow_overfunding"] is False
    assert body["commons"] == {
        "uri": f"{BASE}/commons/yeswiki",
        "slug": "yeswiki",
        "name": "YesWiki",
    }
    serre = get(client, "/api/v1/commons/serre/improvements/1").json()
    assert serre["budget"]["amount"] == "1500.50"


class HalfPledged:
    """A funding source where half of every budget is pledged and a quarter matched."""

    async def totals(
        self, session: AsyncSession, improvement_ids: Iterable[int]
    ) -> dict[int, tuple[int, int]]:
        query = select(Improvement).where(col(Improvement.id).in_(list(improvement_ids)))
        rows = (await session.exec(query)).all()
        return {i.id: (i.budget_cents // 2, i.budget_cents // 4) for i in rows if i.id is not None}


async def test_an_improvement_carries_its_payment_links(
    client: TestClient, catalogue: Catalogue
) -> None:
    body = get(client, "/api/v1/commons/yeswiki/improvements/1").json()
    assert body["payment_links"] == [
        {"label": "Payer la facture", "url": "https://pay.example.org/export"}
    ]
    listed = get(client, "/api/v1/improvements?commons=serre").json()["items"]
    assert [i["payment_links"] for i in listed] == [[]]


def test_the_document_describes_payment_links() -> None:
    schemas = build_document(BASE, "Terreau")["components"]["schemas"]
    link = schemas["PaymentLinkOut"]
    assert link["required"] == ["label", "url"] and link["additionalProperties"] is False
    assert link["properties"]["url"]["pattern"] == "^https?://"
    for owner in ("CommonsSummary", "CommonsDetail", "ImprovementOut"):
        links = schemas[owner]["properties"]["payment_links"]
        assert links["maxItems"] == 5, owner
        assert links["items"] == {"$ref": "#/components/schemas/PaymentLinkOut"}, owner


async def test_funding_comes_from_the_apps_funding_source(
    client: TestClient, catalogue: Catalogue
) -> None:
    client.app.state.funding = HalfPledged()  # type: ignore[attr-defined]
    funding = get(client, "/api/v1/commons/yeswiki/improvements/1").json()["funding"]
    assert {key: value["cents"] for key, value in funding.items() if key != "percent"} == {
        "budget": 400000,
        "pledged": 200000,
        "matched": 100000,
        "funded": 300000,
        "remaining": 100000,
    }
    assert funding["percent"] == 75
    listed = get(client, "/api/v1/improvements?commons=yeswiki").json()["items"][0]
    assert listed["funding"] == funding


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/commons/yeswiki/improvements/2",  # a draft
        "/api/v1/commons/yeswiki/improvements/9",
        "/api/v1/commons/yeswiki/improvements/0",
        "/api/v1/commons/yeswiki/improvements/abc",
        "/api/v1/commons/yeswiki/improvements/99999999999999999999",
        "/api/v1/commons/cache/improvements/1",  # of a hidden commons
    ],
)
async def test_drafts_and_unknown_improvements_are_404_in_json(
    client: TestClient, catalogue: Catalogue, path: str
) -> None:
    response = get(client, path, accept="text/html")
    assert response.status_code == 404
    assert response.json()["error"] == "Not Found"


def test_the_public_statuses_are_every_status_but_draft() -> None:
    from typing import get_args

    assert set(get_args(PublicStatus)) == set(PUBLIC_STATUSES)
    assert set(PUBLIC_STATUSES) == {s.value for s in ImprovementStatus} - {"draft"}


# ---------------------------------------------------------------------------------------------
# Organisations and declarations


async def test_organisations_are_listed_by_name_and_filtered_by_kind(
    client: TestClient, catalogue: Catalogue
) -> None:
    response = get(client, "/api/v1/organisations")
    assert slugs(response.json()["items"]) == ["coop-outils", "la-fabrique"]
    assert slugs(get(client, "/api/v1/organisations?kind=cae").json()["items"]) == ["coop-outils"]
    assert "siret" not in response.json()["items"][0]


async def test_an_organisation_shows_what_it_uses_and_maintains_but_not_hidden_commons(
    client: TestClient, catalogue: Catalogue
) -> None:
    body = get(client, "/api/v1/organisations/la-fabrique").json()
    assert body["name"] == "La Fabrique"
    assert body["kind"] == "tiers-lieu"
    assert slugs(body["uses"]) == ["yeswiki"]  # not the hidden one
    assert body["interested_in"] == []
    assert slugs(body["maintains"]) == ["serre"]
    cae = get(client, "/api/v1/organisations/coop-outils").json()
    assert slugs(cae["interested_in"]) == ["serre", "yeswiki"]
    assert slugs(cae["maintains"]) == ["yeswiki"]
    assert get(client, "/api/v1/organisations/nobody").status_code == 404


async def test_declarations_are_active_and_public_only_and_filtered(
    client: TestClient, catalogue: Catalogue
) -> None:
    def pairs(query: str = "") -> list[tuple[str, str, str]]:
        items = get(client, f"/api/v1/declarations?{query}").json()["items"]
        return [(d["organisation"]["slug"], d["kind"], d["commons"]["slug"]) for d in items]

    everything = pairs()
    assert sorted(everything) == [
        ("coop-outils", "interested", "serre"),
        ("coop-outils", "interested", "yeswiki"),  # moved from the merged duplicate
        ("la-fabrique", "uses", "yeswiki"),
    ]
    assert pairs("commons=serre") == [("coop-outils", "interested", "serre")]
    assert pairs("organisation=la-fabrique") == [("la-fabrique", "uses", "yeswiki")]
    assert pairs("kind=uses") == [("la-fabrique", "uses", "yeswiki")]
    assert pairs("commons=cache") == []
    uses = get(client, "/api/v1/declarations?kind=uses").json()["items"][0]
    assert uses["since"] == "2024-09-01"
    assert uses["satisfaction"] == 4
    assert uses["uri"].startswith(f"{BASE}/orgs/la-fabrique/declarations/")


async def test_withdrawn_declarations_are_not_listed(
    client: TestClient, catalogue: Catalogue, session: AsyncSession
) -> None:
    declaration = await ops.active_declaration(
        session, catalogue.cae, catalogue.serre, "interested"
    )
    assert declaration is not None
    await ops.withdraw(session, declaration)
    assert get(client, "/api/v1/declarations?commons=serre").json()["items"] == []


# ---------------------------------------------------------------------------------------------
# Pagination and bad parameters


async def test_pages_link_to_their_neighbours_with_absolute_urls(
    client: TestClient, session: AsyncSession
) -> None:
    creator = Account(email="a@example.org", display_name="A", password_hash="x")
    session.add(creator)
    await session.commit()
    org = await organisation(session, "cae", "CAE", "cae")
    for number in range(5):
        await commons(session, org, creator, name=f"Outil {number}", slug=f"outil-{number}")

    def page(number: int) -> dict[str, Any]:
        return get(client, f"/api/v1/commons?kind=software&per_page=2&page={number}").json()

    first, second, last = page(1), page(2), page(3)
    assert (first["total"], first["pages"]) == (5, 3)
    assert slugs(first["items"] + second["items"] + last["items"]) == [
        f"outil-{n}" for n in range(5)
    ]
    assert first["links"]["prev"] is None
    assert last["links"]["next"] is None
    parts = urlsplit(first["links"]["next"])
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{BASE}/api/v1/commons"
    assert parse_qs(parts.query) == {"kind": ["software"], "per_page": ["2"], "page": ["2"]}
    assert second["links"]["prev"] == first["links"]["self"]
    assert get(client, second["links"]["next"]).json() == last
    beyond = page(7)
    assert beyond["items"] == []
    assert beyond["links"]["next"] is None
    assert parse_qs(urlsplit(beyond["links"]["prev"]).query)["page"] == ["3"]


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/api/v1/commons?page=0", "page"),
        ("/api/v1/commons?page=-1", "page"),
        ("/api/v1/commons?page=two", "page"),
        ("/api/v1/commons?page=1.5", "page"),
        ("/api/v1/commons?page=" + "9" * 5000, "page"),
        ("/api/v1/commons?per_page=1000", "per_page"),
        ("/api/v1/commons?per_page=0", "per_page"),
        ("/api/v1/commons?kind=castle", "kind"),
        ("/api/v1/commons?kind=", "kind"),
        ("/api/v1/commons?sort=cheapest", "sort"),
        ("/api/v1/commons?maturity=ancient", "maturity"),
        ("/api/v1/commons?territory=department:99", "territory"),
        ("/api/v1/commons?open_improvements=maybe", "open_improvements"),
        ("/api/v1/commons?q=" + "a" * 201, "q"),
        ("/api/v1/commons?tag=a%00b", "tag"),
        ("/api/v1/improvements?status=draft", "status"),
        ("/api/v1/improvements?commons=Not%20a%20slug", "commons"),
        ("/api/v1/organisations?kind=castle", "kind"),
        ("/api/v1/declarations?kind=likes", "kind"),
        ("/api/v1/declarations?organisation=-bad-", "organisation"),
    ],
)
async def test_bad_parameters_are_400_in_json_naming_the_parameter(
    client: TestClient, path: str, parameter: str
) -> None:
    response = get(client, path, accept="text/html,application/xhtml+xml")
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "Bad Request"
    assert body["parameter"] == parameter
    assert body["detail"]


async def test_other_addresses_under_the_api_are_404_in_json_and_writing_is_405(
    client: TestClient,
) -> None:
    missing = get(client, "/api/v1/nothing", accept="text/html")
    assert missing.status_code == 404
    assert missing.json()["error"] == "Not Found"
    posted = client.post("/api/v1/commons", headers={"accept": "application/json"})
    assert posted.status_code == 405
    assert posted.json()["error"] == "Method Not Allowed"


# ---------------------------------------------------------------------------------------------
# The OpenAPI document


def test_the_document_describes_every_route_and_nothing_else(client: TestClient) -> None:
    document = get(client, "/api/v1/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    assert document["servers"] == [{"url": BASE}]
    assert set(document["paths"]) == {operation.path for operation in OPERATIONS}
    for path, methods in document["paths"].items():
        assert list(methods) == ["get"], path
    documented = {op.operation_id for op in OPERATIONS} - {"getOpenAPI"}
    assert documented == set(VIEWS)
    commons = document["paths"]["/api/v1/commons"]["get"]
    params = {p["name"]: p["schema"] for p in commons["parameters"]}
    assert params["per_page"] == {"type": "integer", "default": 20, "minimum": 1, "maximum": 100}
    assert params["sort"]["enum"] == ["used", "recent", "need", "name"]
    assert set(commons["responses"]) == {"200", "400"}
    detail = document["paths"]["/api/v1/commons/{slug}"]["get"]
    assert set(detail["responses"]) == {"200", "404"}
    schemas = document["components"]["schemas"]
    assert schemas["CommonsDetail"]["additionalProperties"] is False
    assert "draft" not in str(schemas["ImprovementOut"]["properties"]["status"])


def test_the_document_is_valid_openapi_3_1() -> None:
    # The OpenAPI 3.1 meta-schema as schemathesis ships it, and JSON Schema 2020-12 for each model.
    document = build_document(BASE, "Terreau")
    assert list(OPENAPI_31_VALIDATOR.iter_errors(document)) == []
    for name, schema in document["components"]["schemas"].items():
        assert jsonschema_rs.meta.is_valid(schema), name


# ---------------------------------------------------------------------------------------------
# Schemathesis, on SQLite only: it runs the app (and its lifespan) on its own event loop.


@pytest.fixture
def api_schema(sqlite_template: Path, tmp_path: Path) -> Iterator[Any]:
    path = tmp_path / "terreau.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite+aiosqlite:///{path}"

    async def fill() -> None:
        database = Database(url)
        async with database.session() as session:
            await make_catalogue(session)
        await database.dispose()

    asyncio.run(fill())
    app = create_app(make_settings(url, tmp_path))
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)

    # Half the generated path parameters name real things, so 200 answers get checked too.
    @schema.hook
    def map_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> Any:
        if path_parameters and zlib.crc32(repr(sorted(path_parameters.items())).encode()) % 2:
            known: dict[str, Any] = {"slug": "yeswiki", "number": 1}
            if "organisations" in context.operation.path:
                known = {"slug": "coop-outils"}
            return {name: known.get(name, value) for name, value in path_parameters.items()}
        return path_parameters

    yield schema
    # Schemathesis keeps the lifespans it starts until the process ends; end this one now so
    # the database is closed inside the test that opened it.
    shutdown_lifespans()


# Schemathesis' own pytest integration (schemathesis.pytest.from_fixture) reads a private pytest
# attribute that pytest 9 removed, so each operation's Hypothesis test is built here instead,
# from the same schema object and with the same checks.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
RUNS = [
    *(pytest.param(op.path, GenerationMode.POSITIVE, id=f"{op.path}-valid") for op in OPERATIONS),
    # Invalid values, for the operations that take any: every one must get its documented 4xx.
    *(
        pytest.param(op.path, GenerationMode.NEGATIVE, id=f"{op.path}-invalid")
        for op in OPERATIONS
        if op.query or op.path_params
    ),
]


@pytest.mark.parametrize(("operation", "mode"), RUNS)
def test_the_api_keeps_to_its_openapi_document(
    api_schema: Any, operation: str, mode: GenerationMode
) -> None:
    strategy = api_schema[operation]["GET"].as_strategy(generation_mode=mode)
    checks = CHECKS if mode == GenerationMode.POSITIVE else [*CHECKS, negative_data_rejection]

    @given(case=strategy)
    @settings(
        max_examples=30,
        deadline=None,
        database=None,  # no .hypothesis directory in the working tree
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def calls_conform(case: Any) -> None:
        case.call_and_validate(checks=checks)

    calls_conform()
