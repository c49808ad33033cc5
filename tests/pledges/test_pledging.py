"""Pledges and matches in the database: refusals, the ledger, and concurrency, on both databases."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from support import statements

from catalogue import operations as ops
from catalogue.errors import InvalidFields
from catalogue.improvements import Improvement, ImprovementStatus, validate_improvement
from catalogue.organisations import Organisation
from instance.database import Database
from pledges import matching
from pledges.funding import LedgerFunding
from pledges.ledger import current_inputs
from pledges.models import LedgerEntry, Match, MatchingProgram, Pledge
from pledges.operations import (
    cancel_pledge,
    create_program,
    estimate,
    make_pledge,
    record_payment,
    set_program_status,
)
from pledges.programs import validate_program

BASE = "http://testserver"
NOW = datetime.now(UTC)


async def organisation(session: AsyncSession, slug: str, kind: str = "tiers-lieu") -> Organisation:
    org = Organisation(uri=f"{BASE}/orgs/{slug}", slug=slug, name=slug, sort_key=slug, kind=kind)
    session.add(org)
    await session.commit()
    return org


async def open_improvement(
    session: AsyncSession, maintainer: Organisation, budget: str = "6000", **extra: Any
) -> Improvement:
    assert maintainer.id is not None
    commons = await ops.create_commons(
        session,
        {
            "name": "YesWiki",
            "summary": "Un wiki",
            "kind": "software",
            "slug": f"c-{maintainer.slug}",
        },
        base_url=BASE,
        creator_id=None,
        maintainer_ids=[maintainer.id],
    )
    improvement = await ops.create_improvement(
        session,
        commons,
        validate_improvement({"title": "Export", "budget": budget, **extra}),
        base_url=BASE,
        currency="EUR",
        provider_id=None,
        creator_id=None,
    )
    await ops.change_status(session, improvement, ImprovementStatus.OPEN)
    return improvement


async def ftl_program(
    session: AsyncSession, funder: Organisation, **changes: str
) -> MatchingProgram:
    data = {
        "name": "France Tiers-Lieux 2026",
        "ratio": "1",
        "budget": "20000",
        "per_contributor_cap": "500",
        "eligible_kinds": "tiers-lieu",
        "starts": (NOW - timedelta(days=1)).isoformat(),
        "ends": (NOW + timedelta(days=30)).isoformat(),
    }
    data.update(changes)
    program = await create_program(session, funder, data, base_url=BASE)
    await set_program_status(session, program, "active", base_url=BASE)
    return program


async def stored_matches(session: AsyncSession) -> dict[tuple[int, int], int]:
    return {
        (m.program_id, m.pledge_id): m.amount_cents
        for m in (await session.exec(select(Match))).all()
    }


async def test_a_pledge_brings_its_match_and_the_ledger_says_why(session: AsyncSession) -> None:
    funder, place = (
        await organisation(session, "ftl", "funder"),
        await organisation(session, "lieu"),
    )
    improvement = await open_improvement(session, place)
    program = await ftl_program(session, funder)
    assert await estimate(session, place, improvement, 30000, base_url=BASE) == [
        (program.id, 30000)
    ]
    pledge = await make_pledge(
        session, place, improvement, 30000, base_url=BASE, created_by_id=None
    )
    assert await stored_matches(session) == {(program.id, pledge.id): 30000}
    entries = (await session.exec(select(LedgerEntry))).all()
    assert [(e.kind, e.delta_cents, e.cause) for e in entries] == [
        ("created", 30000, f"pledge {pledge.id} made")
    ]
    second = await make_pledge(
        session, place, improvement, 30000, base_url=BASE, created_by_id=None
    )
    assert (await stored_matches(session))[(program.id, second.id)] == 20000  # the 500 € cap
    assert improvement.id is not None
    assert (await LedgerFunding().totals(session, [improvement.id]))[improvement.id] == (
        60000,
        50000,
    )


async def test_cancelling_releases_the_match_for_others(session: AsyncSession) -> None:
    funder, place = (
        await organisation(session, "ftl", "funder"),
        await organisation(session, "lieu"),
    )
    other = await organisation(session, "autre")
    improvement = await open_improvement(session, place)
    program = await ftl_program(session, funder, budget="300", per_contributor_cap="")
    first = await make_pledge(session, place, improvement, 30000, base_url=BASE, created_by_id=None)
    late = await make_pledge(session, other, improvement, 10000, base_url=BASE, created_by_id=None)
    assert (program.id, late.id) not in await stored_matches(session)  # the envelope is empty
    await cancel_pledge(session, first, base_url=BASE)
    assert await stored_matches(session) == {(program.id, late.id): 10000}
    kinds = [
        e.kind for e in (await session.exec(select(LedgerEntry).order_by(LedgerEntry.id))).all()
    ]
    assert kinds == ["created", "released", "created"]
    with pytest.raises(InvalidFields, match="not yet paid"):
        await cancel_pledge(session, first, base_url=BASE)


async def test_a_funders_own_pledge_is_never_matched_by_its_program(session: AsyncSession) -> None:
    funder = await organisation(session, "ftl", "tiers-lieu")  # even of an eligible kind
    improvement = await open_improvement(session, funder)
    await ftl_program(session, funder)
    await make_pledge(session, funder, improvement, 10000, base_url=BASE, created_by_id=None)
    assert await stored_matches(session) == {}


@pytest.mark.parametrize(("amount", "message"), [(0, "more than zero"), (-100, "more than zero")])
async def test_bad_amounts_are_refused(session: AsyncSession, amount: int, message: str) -> None:
    place = await organisation(session, "lieu")
    improvement = await open_improvement(session, place)
    with pytest.raises(InvalidFields, match=message):
        await make_pledge(session, place, improvement, amount, base_url=BASE, created_by_id=None)
    assert (await session.exec(select(func.count()).select_from(Pledge))).one() == 0


async def test_a_pledge_beyond_the_need_is_refused_unless_over_funding_is_allowed(
    session: AsyncSession,
) -> None:
    place = await organisation(session, "lieu")
    improvement = await open_improvement(session, place, budget="100")
    with pytest.raises(InvalidFields) as error:
        await make_pledge(session, place, improvement, 10001, base_url=BASE, created_by_id=None)
    assert error.value.by_field()["amount"].params["amount"] == "100.00"
    generous = await open_improvement(
        session, await organisation(session, "autre"), budget="100", allow_overfunding="on"
    )
    await make_pledge(session, place, generous, 20000, base_url=BASE, created_by_id=None)


async def test_only_open_improvements_take_pledges(session: AsyncSession) -> None:
    place = await organisation(session, "lieu")
    improvement = await open_improvement(session, place)
    await ops.change_status(session, improvement, ImprovementStatus.CANCELLED)
    with pytest.raises(InvalidFields, match="not open for funding"):
        await make_pledge(session, place, improvement, 100, base_url=BASE, created_by_id=None)


async def test_payment_is_recorded_and_keeps_the_match(session: AsyncSession) -> None:
    funder, place = (
        await organisation(session, "ftl", "funder"),
        await organisation(session, "lieu"),
    )
    improvement = await open_improvement(session, place)
    await ftl_program(session, funder)
    pledge = await make_pledge(
        session, place, improvement, 10000, base_url=BASE, created_by_id=None
    )
    before = await stored_matches(session)
    await record_payment(
        session,
        pledge,
        paid_on=NOW.date(),
        method="virement",
        reference="VIR-1",
        recorded_by_id=None,
        base_url=BASE,
    )
    assert pledge.status == "paid" and pledge.payment_reference == "VIR-1"
    assert await stored_matches(session) == before
    with pytest.raises(InvalidFields, match="not yet paid"):
        await cancel_pledge(session, pledge, base_url=BASE)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"ratio": "0"}, "ratio"),
        ({"ratio": "-1"}, "ratio"),
        ({"ratio": "un"}, "ratio"),
        ({"budget": "-5"}, "budget"),
        ({"ends": "2020-01-01T00:00Z"}, "ends"),
        ({"name": ""}, "name"),
        ({"eligible_improvements": "12, abc"}, "eligible_improvements"),
    ],
)
def test_programs_refuse_bad_rules(changes: dict[str, str], field: str) -> None:
    data = {
        "name": "P",
        "ratio": "1",
        "budget": "100",
        "starts": "2026-11-15T00:00Z",
        "ends": "2026-12-15T00:00Z",
        **changes,
    }
    with pytest.raises(InvalidFields) as error:
        validate_program(data)
    assert field in error.value.by_field()


async def test_the_ledger_replays_to_the_stored_matches_and_to_the_rules(
    session: AsyncSession,
) -> None:
    funder, region = (
        await organisation(session, "ftl", "funder"),
        await organisation(session, "aura", "funder"),
    )
    places = [await organisation(session, f"lieu-{n}") for n in range(4)]
    improvement = await open_improvement(session, places[0], budget="3000")
    await ftl_program(session, funder, budget="900")
    await ftl_program(
        session, region, budget="600", eligible_kinds="", per_contributor_cap="", priority="1"
    )
    pledges = []
    for n, place in enumerate(places * 2):
        pledges.append(
            await make_pledge(
                session, place, improvement, 10000 + n * 1000, base_url=BASE, created_by_id=None
            )
        )
    await cancel_pledge(session, pledges[1], base_url=BASE)
    await cancel_pledge(session, pledges[5], base_url=BASE)
    replayed: dict[tuple[int, int], int] = {}
    for entry in (await session.exec(select(LedgerEntry))).all():
        key = (entry.program_id, entry.pledge_id)
        replayed[key] = replayed.get(key, 0) + entry.delta_cents
        assert replayed[key] == entry.amount_after_cents
    stored = await stored_matches(session)
    assert {k: v for k, v in replayed.items() if v} == stored
    rules = matching.compute_matches(*await current_inputs(session, "testserver"))
    assert {(m.program, m.pledge): m.amount for m in rules.matches} == stored


async def test_concurrent_pledges_never_overdraw_a_nearly_empty_envelope(
    session: AsyncSession, database_url: str
) -> None:
    funder = await organisation(session, "ftl", "funder")
    places = [await organisation(session, f"lieu-{n:02d}") for n in range(50)]
    improvement = await open_improvement(session, places[0], budget="100000")
    program = await ftl_program(session, funder, budget="1234.56", per_contributor_cap="")
    assert program.id is not None and improvement.id is not None
    database = Database(database_url)

    async def pledge_as(place: Organisation) -> None:
        async with database.session() as own:
            target = await own.get(Improvement, improvement.id)
            member = await own.get(Organisation, place.id)
            assert target is not None and member is not None
            await make_pledge(own, member, target, 5000, base_url=BASE, created_by_id=None)

    await asyncio.gather(*(pledge_as(place) for place in places))
    await database.dispose()
    assert (await session.exec(select(func.count()).select_from(Pledge))).one() == 50
    matched = (await session.exec(select(func.sum(Match.amount_cents)))).one()
    assert matched == 123456  # the envelope, exactly: 24 full matches and 3,456 cents
    replayed = (await session.exec(select(func.sum(LedgerEntry.delta_cents)))).one()
    assert replayed == matched


async def test_a_program_goes_from_draft_to_active_to_closed_only(session: AsyncSession) -> None:
    funder = await organisation(session, "ftl", "funder")
    program = await ftl_program(session, funder)
    with pytest.raises(InvalidFields, match="from draft to active"):
        await set_program_status(session, program, "draft", base_url=BASE)
    await set_program_status(session, program, "closed", base_url=BASE)
    with pytest.raises(InvalidFields, match="from draft to active"):
        await set_program_status(session, program, "active", base_url=BASE)


async def test_matches_follow_a_lower_budget(session: AsyncSession) -> None:
    from pledges.operations import improvement_changed

    funder, place = (
        await organisation(session, "ftl", "funder"),
        await organisation(session, "lieu"),
    )
    improvement = await open_improvement(session, place, budget="1000")
    program = await ftl_program(session, funder)
    pledge = await make_pledge(
        session, place, improvement, 30000, base_url=BASE, created_by_id=None
    )
    assert await stored_matches(session) == {(program.id, pledge.id): 30000}
    await ops.update_improvement(
        session,
        improvement,
        validate_improvement({"title": "Export", "budget": "400"}),
        provider_id=None,
    )
    await improvement_changed(session, improvement, base_url=BASE)
    assert await stored_matches(session) == {(program.id, pledge.id): 10000}
    kinds = [
        e.kind for e in (await session.exec(select(LedgerEntry).order_by(LedgerEntry.id))).all()
    ]
    assert kinds == ["created", "adjusted"]


async def test_the_catalogue_need_counts_pledges_and_matches(session: AsyncSession) -> None:
    from catalogue.commons import Commons

    funder, place = (
        await organisation(session, "ftl", "funder"),
        await organisation(session, "lieu"),
    )
    improvement = await open_improvement(session, place, budget="1000")
    await ftl_program(session, funder)
    commons = await session.get(Commons, improvement.commons_id)
    assert commons is not None and commons.need_cents == 100000
    await make_pledge(session, place, improvement, 30000, base_url=BASE, created_by_id=None)
    await session.refresh(commons)
    assert commons.need_cents == 100000 - 30000 - 30000


async def test_a_pledge_writes_the_need_of_its_own_commons_only(session: AsyncSession) -> None:
    from catalogue.commons import Commons

    place, other = await organisation(session, "lieu"), await organisation(session, "autre")
    first = await open_improvement(session, place, budget="1000")
    second = await open_improvement(session, other, budget="500")
    await make_pledge(session, other, second, 10000, base_url=BASE, created_by_id=None)

    assert isinstance(session.bind, AsyncEngine)
    with statements(session.bind) as run:
        await make_pledge(session, place, first, 20000, base_url=BASE, created_by_id=None)

    # Both commons have pledges, so both needs are worked out; only the one that moved is
    # written (an UPDATE for every commons with a pledge made a pledge cost grow with them).
    assert len([s for s in run if s.startswith("UPDATE commons SET need_cents")]) == 1
    needs = {
        c.id: c.need_cents
        for c in (await session.exec(select(Commons).execution_options(populate_existing=True)))
    }
    assert needs == {first.commons_id: 100000 - 20000, second.commons_id: 50000 - 10000}


async def test_a_merge_carries_the_need_left_after_pledges(session: AsyncSession) -> None:
    from catalogue.commons import Commons
    from pledges.operations import commons_changed

    place, other = await organisation(session, "lieu"), await organisation(session, "autre")
    duplicate = await open_improvement(session, place, budget="1000")
    kept = await open_improvement(session, other, budget="500")
    await make_pledge(session, place, duplicate, 40000, base_url=BASE, created_by_id=None)
    source = await session.get(Commons, duplicate.commons_id)
    target = await session.get(Commons, kept.commons_id)
    assert source is not None and target is not None and target.id is not None
    await ops.merge_commons(session, source, target)
    await commons_changed(session, target.id, base_url=BASE)
    await session.refresh(target)
    assert target.need_cents == 50000 + 60000
