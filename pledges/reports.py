"""What funders read about their programs: totals, grouped matches, pending approvals, exports.

Read-only queries (one grouped query per table, whatever the number of rows); the pages, the
exports and the command line share them so they always agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_
from sqlmodel import and_, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from catalogue.commons import Commons
from catalogue.improvements import Improvement
from catalogue.organisations import Organisation
from pledges.exports import PledgeLine
from pledges.ledger import current_inputs, program_rules
from pledges.models import (
    ApprovalStatus,
    LedgerEntry,
    Match,
    MatchingProgram,
    Pledge,
    ProgramApproval,
)


async def used_by_program(session: AsyncSession, program_ids: Iterable[int]) -> dict[int, int]:
    """Cents matched so far per program (absent: nothing matched)."""
    ids = list(program_ids)
    if not ids:
        return {}
    rows = await session.exec(
        select(Match.program_id, func.sum(Match.amount_cents))
        .where(col(Match.program_id).in_(ids))
        .group_by(col(Match.program_id))
    )
    return {int(program): int(total or 0) for program, total in rows.all()}


@dataclass(frozen=True)
class ImprovementTotal:
    commons_slug: str
    commons_name: str
    number: int
    title: str
    matched_cents: int
    pledges: int


@dataclass(frozen=True)
class ContributorTotal:
    slug: str
    name: str
    is_local: bool
    matched_cents: int
    pledges: int


async def matches_by_improvement(session: AsyncSession, program_id: int) -> list[ImprovementTotal]:
    query = (
        select(  # type: ignore[call-overload]
            Commons.slug,
            Commons.name,
            Improvement.number,
            Improvement.title,
            func.sum(Match.amount_cents),
            func.count(col(Match.id)),
        )
        .select_from(Match)
        .join(Pledge, col(Pledge.id) == col(Match.pledge_id))
        .join(Improvement, col(Improvement.id) == col(Pledge.improvement_id))
        .join(Commons, col(Commons.id) == col(Improvement.commons_id))
        .where(Match.program_id == program_id)
        .group_by(
            col(Commons.slug), col(Commons.name), col(Improvement.number), col(Improvement.title)
        )
        .order_by(func.sum(Match.amount_cents).desc(), col(Commons.slug), col(Improvement.number))
    )
    return [
        ImprovementTotal(slug, name, int(number), title, int(total or 0), int(count))
        for slug, name, number, title, total, count in (await session.exec(query)).all()
    ]


async def matches_by_contributor(session: AsyncSession, program_id: int) -> list[ContributorTotal]:
    query = (
        select(  # type: ignore[call-overload]
            Organisation.slug,
            Organisation.name,
            Organisation.origin,
            func.sum(Match.amount_cents),
            func.count(col(Match.id)),
        )
        .select_from(Match)
        .join(Pledge, col(Pledge.id) == col(Match.pledge_id))
        .join(Organisation, col(Organisation.id) == col(Pledge.organisation_id))
        .where(Match.program_id == program_id)
        .group_by(col(Organisation.slug), col(Organisation.name), col(Organisation.origin))
        .order_by(func.sum(Match.amount_cents).desc(), col(Organisation.slug))
    )
    return [
        ContributorTotal(slug, name, origin is None, int(total or 0), int(count))
        for slug, name, origin, total, count in (await session.exec(query)).all()
    ]


async def pending_contributors(
    session: AsyncSession, program: MatchingProgram, local_domain: str
) -> list[Organisation]:
    """Contributors a manual-approval program would match but the funder has not decided on.

    Those whose pledge (in the window, to an improvement the program admits) has no approval
    row yet, or a row still pending. Refused and approved ones are decided: not listed.
    """
    if not program.manual_approval:
        return []
    improvements, contributors, _programs, pledges = await current_inputs(session, local_domain)
    rules = program_rules(program, None)  # None: no approval condition
    by_improvement = {i.id: i for i in improvements}
    by_contributor = {c.id: c for c in contributors}
    candidates = {
        p.contributor
        for p in pledges
        if rules.starts <= p.at < rules.ends
        and (rules.min_pledge is None or p.amount >= rules.min_pledge)
        and rules.admits(by_contributor[p.contributor], by_improvement[p.improvement])
    }
    decided = set(
        (
            await session.exec(
                select(ProgramApproval.organisation_id).where(
                    ProgramApproval.program_id == program.id,
                    ProgramApproval.status != ApprovalStatus.PENDING,
                )
            )
        ).all()
    )
    waiting = [i for i in candidates if i not in decided]
    if not waiting:
        return []
    query = (
        select(Organisation)
        .where(col(Organisation.id).in_(waiting))
        .order_by(col(Organisation.sort_key), col(Organisation.id))
    )
    return list((await session.exec(query)).all())


async def decided_approvals(
    session: AsyncSession, program_id: int
) -> list[tuple[ProgramApproval, Organisation]]:
    query = (
        select(ProgramApproval, Organisation)
        .join(Organisation, col(Organisation.id) == col(ProgramApproval.organisation_id))
        .where(
            ProgramApproval.program_id == program_id,
            ProgramApproval.status != ApprovalStatus.PENDING,
        )
        .order_by(col(Organisation.sort_key), col(Organisation.id))
    )
    return list((await session.exec(query)).all())


async def export_lines(
    session: AsyncSession, program: MatchingProgram | None = None
) -> tuple[list[PledgeLine], list[Match], list[LedgerEntry]]:
    """Pledges, matches and ledger entries: all of them, or those that concern ``program``.

    A program's export has the pledges it matched and every pledge made in its window (a
    cancelled one shows as not included), its own matches and its own ledger entries.
    """
    query = (
        select(Pledge, Organisation.slug, Improvement.uri)
        .join(Organisation, col(Organisation.id) == col(Pledge.organisation_id))
        .join(Improvement, col(Improvement.id) == col(Pledge.improvement_id))
        .order_by(col(Pledge.pledged_at), col(Pledge.id))
    )
    matches_query = select(Match).order_by(col(Match.program_id), col(Match.pledge_id))
    ledger_query = select(LedgerEntry).order_by(col(LedgerEntry.id))
    if program is not None:
        matched = select(Match.pledge_id).where(Match.program_id == program.id)
        in_window = and_(
            col(Pledge.pledged_at) >= program.starts_at, col(Pledge.pledged_at) < program.ends_at
        )
        query = query.where(or_(col(Pledge.id).in_(matched), in_window))
        matches_query = matches_query.where(Match.program_id == program.id)
        ledger_query = ledger_query.where(LedgerEntry.program_id == program.id)
    lines = [
        PledgeLine(pledge, slug, uri) for pledge, slug, uri in (await session.exec(query)).all()
    ]
    matches = list((await session.exec(matches_query)).all())
    ledger = list((await session.exec(ledger_query)).all())
    return lines, matches, ledger


def projected_exhaustion(
    used: int, budget: int, starts: datetime, ends: datetime, now: datetime
) -> datetime | None:
    """When the envelope runs out at the rate matched since the window opened.

    None when it would last past the end of the window (or nothing is matched yet); ``now``
    when it is already used up.
    """
    if used >= budget:
        return now
    if used <= 0 or now <= starts:
        return None
    elapsed = now - starts
    moment = now + elapsed * ((budget - used) / used)
    return moment if moment < ends else None
