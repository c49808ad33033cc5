"""The catalogue's operations and queries, on SQLite and PostgreSQL, without the web layer."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from support import statements

from catalogue import operations as ops
from catalogue.commons import Commons
from catalogue.declarations import Declaration, validate_declaration
from catalogue.errors import InvalidFields
from catalogue.funding import NothingPledgedYet
from catalogue.improvements import ImprovementStatus, validate_improvement
from catalogue.organisations import Organisation
from catalogue.queries import CatalogueFilter, Sort, commons_page, list_commons

BASE = "http://testserver"
TODAY = date(2026, 11, 28)


async def organisation(session: AsyncSession, slug: str, kind: str = "tiers-lieu") -> Organisation:
    org = Organisation(
        uri=f"{BASE}/orgs/{slug}", slug=slug, name=slug.title(), sort_key=slug, kind=kind
    )
    session.add(org)
    await session.commit()
    return org


def commons_data(**changes: Any) -> dict[str, Any]:
    data = {
        "name": "YesWiki",
        "summary": "Un wiki pour coopérer en équipe",
        "description": "Un **wiki** facile.",
        "kind": "software",
        "licence": "AGPL-3.0-or-later",
        "tags": "wiki, Coopération",
        "maturity": "stable",
        "languages": "fr, en",
    }
    data.update(changes)
    return data


async def make_commons(session: AsyncSession, maintainer: Organisation, **changes: Any) -> Commons:
    assert maintainer.id is not None
    return await ops.create_commons(
        session,
        commons_data(**changes),
        base_url=BASE,
        creator_id=None,
        maintainer_ids=[maintainer.id],
    )


async def test_a_commons_is_created_with_a_stable_uri_and_clean_fields(
    session: AsyncSession,
) -> None:
    org = await organisation(session, "cae")
    commons = await make_commons(session, org, licence="GPL-2.0+")
    assert commons.uri == f"{BASE}/commons/yeswiki"
    assert commons.origin is None
    assert commons.licence == "GPL-2.0-or-later"
    assert commons.description_html == "<p>Un <strong>wiki</strong> facile.</p>\n"
    assert commons.languages == "fr,en"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"licence": "Foo-1.0"}, "licence"),
        ({"website": "yeswiki.net"}, "website"),
        ({"kind": "castle"}, "kind"),
        ({"languages": "fr, klingon"}, "languages"),
        ({"name": ""}, "name"),
    ],
)
async def test_bad_fields_are_refused_and_nothing_is_saved(
    session: AsyncSession, changes: dict[str, str], field: str
) -> None:
    org = await organisation(session, "cae")
    with pytest.raises(InvalidFields) as error:
        await make_commons(session, org, **changes)
    assert field in error.value.by_field()
    await session.rollback()
    assert (await session.exec(select(Commons))).all() == []


async def test_search_ignores_accents_and_case(session: AsyncSession) -> None:
    org = await organisation(session, "cae")
    await make_commons(session, org)
    await make_commons(
        session,
        org,
        name="Plans de serre",
        slug="serre",
        summary="Une serre bioclimatique",
        description="",
        kind="hardware",
        tags="",
    )
    for text in ("equipe", "ÉQUIPE", "coopération", "cooperer", "wiki"):
        page = await list_commons(session, CatalogueFilter(text=text))
        assert [c.slug for c in page.items] == ["yeswiki"], text
    assert (await list_commons(session, CatalogueFilter(text="serre"))).total == 1
    assert (await list_commons(session, CatalogueFilter(text="'\"*) OR NEAR("))).total == 0


async def test_search_follows_edits(session: AsyncSession) -> None:
    org = await organisation(session, "cae")
    commons = await make_commons(session, org)
    await ops.update_commons(
        session, commons, commons_data(summary="Un outil de gestion"), editor_id=None
    )
    assert (await list_commons(session, CatalogueFilter(text="equipe"))).total == 0
    assert (await list_commons(session, CatalogueFilter(text="gestion"))).total == 1


async def test_declarations_count_once_per_kind_and_keep_history(session: AsyncSession) -> None:
    org, other = await organisation(session, "lieu"), await organisation(session, "autre")
    commons = await make_commons(session, org)
    uses = validate_declaration("uses", "2024-09-01", "Très utile", "5", today=TODAY)
    first = await ops.declare(session, org, commons, uses, base_url=BASE, creator_id=None)
    again = await ops.declare(session, org, commons, uses, base_url=BASE, creator_id=None)
    assert first.id == again.id
    interested = validate_declaration("interested", "", "", "", today=TODAY)
    await ops.declare(session, other, commons, interested, base_url=BASE, creator_id=None)
    await session.refresh(commons)
    assert (commons.uses_count, commons.interested_count) == (1, 1)
    await ops.withdraw(session, first)
    await session.refresh(commons)
    assert commons.uses_count == 0
    assert len((await session.exec(select(Declaration))).all()) == 2  # history kept


def test_declarations_refuse_bad_values() -> None:
    with pytest.raises(InvalidFields) as error:
        validate_declaration("uses", "2030-01-01", "", "9", today=TODAY)
    assert set(error.value.by_field()) == {"since", "satisfaction"}


async def test_improvements_number_and_sort_by_need(session: AsyncSession) -> None:
    org = await organisation(session, "cae")
    small = await make_commons(session, org, name="Petit", slug="petit")
    big = await make_commons(session, org, name="Grand", slug="grand")
    for commons, budget in ((small, "1000"), (big, "4000"), (big, "500.50")):
        improvement = await ops.create_improvement(
            session,
            commons,
            validate_improvement({"title": "Export", "budget": budget}),
            base_url=BASE,
            currency="EUR",
            provider_id=org.id,
            creator_id=None,
        )
        await ops.change_status(session, improvement, ImprovementStatus.OPEN)
    assert improvement.number == 2
    assert improvement.uri == f"{BASE}/commons/grand/improvements/2"
    page = await list_commons(session, CatalogueFilter(sort=Sort.NEED))
    assert [c.slug for c in page.items][:2] == ["grand", "petit"]
    assert page.items[0].need_cents == 450050
    assert (await list_commons(session, CatalogueFilter(open_improvements=True))).total == 2
    with pytest.raises(InvalidFields):
        await ops.change_status(session, improvement, ImprovementStatus.DELIVERED)


@pytest.mark.parametrize(
    ("budget", "message"),
    [("-5", "positive amount"), ("abc", "positive amount"), ("0", "more than zero")],
)
def test_bad_budgets_are_refused(budget: str, message: str) -> None:
    with pytest.raises(InvalidFields) as error:
        validate_improvement({"title": "X", "budget": budget})
    assert message in error.value.by_field()["budget"].message


def test_milestones_cannot_exceed_the_budget() -> None:
    with pytest.raises(InvalidFields) as error:
        validate_improvement({"title": "X", "budget": "1000", "milestones": "A: 600\nB: 600"})
    assert "more than the budget" in error.value.by_field()["milestones"].message
    cleaned = validate_improvement({"title": "X", "budget": "1000", "milestones": "A: 600\nB: 400"})
    assert cleaned["milestones"] == [("A", 60000), ("B", 40000)]


async def test_merging_moves_declarations_and_improvements(session: AsyncSession) -> None:
    org, other = await organisation(session, "lieu"), await organisation(session, "autre")
    target = await make_commons(session, org)
    duplicate = await make_commons(session, other, name="Yes Wiki", slug="yes-wiki", tags="doublon")
    uses = validate_declaration("uses", "", "", "", today=TODAY)
    await ops.declare(session, org, target, uses, base_url=BASE, creator_id=None)
    await ops.declare(session, org, duplicate, uses, base_url=BASE, creator_id=None)
    await ops.declare(session, other, duplicate, uses, base_url=BASE, creator_id=None)
    await ops.create_improvement(
        session,
        duplicate,
        validate_improvement({"title": "Thème", "budget": "800"}),
        base_url=BASE,
        currency="EUR",
        provider_id=None,
        creator_id=None,
    )
    await ops.merge_commons(session, duplicate, target)
    await session.refresh(target)
    await session.refresh(duplicate)
    assert target.uses_count == 2 and duplicate.uses_count == 0
    assert duplicate.hidden and duplicate.merged_into_id == target.id
    page = await commons_page(session, target, NothingPledgedYet(), include_drafts=True)
    assert [v.improvement.title for v in page.improvements] == ["Thème"]
    assert "doublon" in page.tags
    assert {o.slug for o in page.maintainers} == {"lieu", "autre"}
    assert (await list_commons(session, CatalogueFilter())).total == 1


async def test_the_commons_page_takes_the_same_queries_whatever_its_users(
    session: AsyncSession, database_url: str
) -> None:
    org = await organisation(session, "cae")
    commons = await make_commons(session, org)
    uses = validate_declaration("uses", "", "", "", today=TODAY)

    async def count_queries() -> int:
        engine = session.bind
        assert isinstance(engine, AsyncEngine)
        with statements(engine) as run:
            await commons_page(session, commons, NothingPledgedYet(), include_drafts=False)
        return len([statement for statement in run if statement != "COMMIT"])

    few = await count_queries()
    for index in range(30):
        user = await organisation(session, f"lieu-{index}")
        await ops.declare(session, user, commons, uses, base_url=BASE, creator_id=None)
        await ops.create_improvement(
            session,
            commons,
            validate_improvement({"title": f"A{index}", "budget": "10"}),
            base_url=BASE,
            currency="EUR",
            provider_id=user.id,
            creator_id=None,
        )
    assert await count_queries() == few


async def test_concurrent_declarations_are_all_counted(
    session: AsyncSession, database_url: str
) -> None:
    import asyncio

    from instance.database import Database

    organisations = [await organisation(session, f"lieu-{i}") for i in range(6)]
    commons = await make_commons(session, organisations[0])
    uses = validate_declaration("uses", "", "", "", today=TODAY)
    database = Database(database_url)

    async def declare_as(org: Organisation) -> None:
        async with database.session() as own:
            target = await own.get(Commons, commons.id)
            member = await own.get(Organisation, org.id)
            assert target is not None and member is not None
            await ops.declare(own, member, target, uses, base_url=BASE, creator_id=None)

    await asyncio.gather(*(declare_as(org) for org in organisations))
    await database.dispose()
    await session.refresh(commons)
    assert commons.uses_count == 6


async def test_counting_can_stop_at_a_limit(session: AsyncSession) -> None:
    org = await organisation(session, "cae")
    for index in range(4):
        await make_commons(session, org, name=f"Wiki {index}", slug=f"wiki-{index}")
    exact = await list_commons(session, CatalogueFilter(text="wiki"), count_limit=4)
    assert (exact.total, exact.capped) == (4, False)
    capped = await list_commons(session, CatalogueFilter(text="wiki", per_page=2), count_limit=3)
    assert (capped.total, capped.capped, len(capped.items)) == (3, True, 2)


@pytest.mark.parametrize("sort", list(Sort))
async def test_a_search_is_ordered_by_every_sort(session: AsyncSession, sort: Sort) -> None:
    """On SQLite a search walks the sort's own index and tests each row against the matches."""
    org = await organisation(session, "cae")
    other = await organisation(session, "lieu")
    made = [
        await make_commons(
            session, org, name=name, slug=name.lower(), summary=word, description=word, tags=word
        )
        for name, word in (
            ("Bravo", "wiki"),
            ("Alpha", "wiki"),
            ("Charlie", "tableur"),
            ("Delta", "wiki"),
        )
    ]
    uses = validate_declaration("uses", "", "", "", today=TODAY)
    await ops.declare(session, org, made[1], uses, base_url=BASE, creator_id=None)
    await ops.declare(session, other, made[1], uses, base_url=BASE, creator_id=None)
    await ops.declare(session, org, made[3], uses, base_url=BASE, creator_id=None)
    hidden = await make_commons(session, org, name="Echo", slug="echo", summary="un wiki")
    hidden.hidden = True
    await session.commit()
    page = await list_commons(session, CatalogueFilter(text="wiki", sort=sort, per_page=2))
    expected = {
        Sort.USED: ["alpha", "delta", "bravo"],
        Sort.RECENT: ["delta", "alpha", "bravo"],
        Sort.NEED: ["alpha", "bravo", "delta"],
        Sort.NAME: ["alpha", "bravo", "delta"],
    }[sort]
    assert [c.slug for c in page.items] == expected[:2]
    assert page.total == 3
    second = await list_commons(
        session, CatalogueFilter(text="wiki", sort=sort, per_page=2, page=2)
    )
    assert [c.slug for c in second.items] == expected[2:]


async def test_the_commons_page_lists_at_most_a_page_of_users(session: AsyncSession) -> None:
    from catalogue.queries import DECLARATIONS_SHOWN

    org = await organisation(session, "cae")
    commons = await make_commons(session, org)
    uses = validate_declaration("uses", "", "", "", today=TODAY)
    for index in range(DECLARATIONS_SHOWN + 3):
        user = await organisation(session, f"lieu-{index:03d}")
        await ops.declare(session, user, commons, uses, base_url=BASE, creator_id=None)
    page = await commons_page(session, commons, NothingPledgedYet(), include_drafts=False)
    await session.refresh(commons)
    assert len(page.users) == DECLARATIONS_SHOWN
    assert commons.uses_count == DECLARATIONS_SHOWN + 3
    assert [o.slug for _d, o in page.users][:2] == ["lieu-000", "lieu-001"]
