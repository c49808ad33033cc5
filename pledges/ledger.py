"""Recomputing every match in one transaction, and writing each change to the ledger.

Every money transaction starts with ``take_ledger_lock``; ``recompute`` then applies the pure
rules (pledges.matching) to everything this instance knows and records the difference from
the stored matches as ledger entries: created, adjusted or released.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from urllib.parse import urlsplit

from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from catalogue.columns import utcnow
from catalogue.commons import Commons
from catalogue.improvements import Improvement as ImprovementRow
from catalogue.improvements import ImprovementStatus
from catalogue.organisations import Organisation
from pledges import matching
from pledges.funding import LedgerFunding
from pledges.models import (
    LIVE_STATUSES,
    ApprovalStatus,
    LedgerEntry,
    LedgerHead,
    LedgerKind,
    Match,
    MatchingProgram,
    Pledge,
    ProgramApproval,
    ProgramStatus,
)


def local_host(base_url: str) -> str:
    """The instance name local contributors carry for ``eligible_instances`` rules."""
    return urlsplit(base_url).netloc


def match_uri(base_url: str, program_id: int, pledge_id: int) -> str:
    """A match's stable id: one match per (program, pledge), whatever its amount over time."""
    return f"{base_url}/programs/{program_id}/matches/{pledge_id}"


async def take_ledger_lock(session: AsyncSession) -> None:
    """Serialise money transactions: call first, before reading anything they depend on."""
    result = await session.exec(
        update(LedgerHead).where(col(LedgerHead.id) == 1).values(revision=LedgerHead.revision + 1)
    )
    if result.rowcount == 0:  # the first transaction ever: make the row (migrations add it too)
        session.add(LedgerHead(id=1, revision=1))
        await session.flush()


def parse_ratio(text: str) -> Fraction:
    return Fraction(Decimal(text))


def _set(text: str) -> frozenset[str] | None:
    values = frozenset(v.strip() for v in text.split(",") if v.strip())
    return values or None


def program_rules(program: MatchingProgram, approved: frozenset[int] | None) -> matching.Program:
    listed = _set(program.eligible_improvements)
    return matching.Program(
        id=program.id,
        funder=program.funder_id,
        ratio=parse_ratio(program.ratio),
        budget=program.budget_cents,
        starts=program.starts_at,
        ends=program.ends_at,
        per_contributor_cap=program.per_contributor_cap_cents,
        per_improvement_cap=program.per_improvement_cap_cents,
        min_pledge=program.min_pledge_cents,
        priority=program.priority,
        eligible=matching.Eligibility(
            kinds=_set(program.eligible_kinds),
            instances=_set(program.eligible_instances),
            categories=_set(program.eligible_categories),
            improvements=frozenset(int(i) for i in listed) if listed else None,
            contributors=approved if program.manual_approval else None,
        ),
    )


async def current_inputs(
    session: AsyncSession, local_domain: str, extra: list[matching.Pledge] | None = None
) -> tuple[
    list[matching.Improvement],
    list[matching.Contributor],
    list[matching.Program],
    list[matching.Pledge],
]:
    """Everything the rules need, as this instance knows it now."""
    pledges = (
        await session.exec(select(Pledge).where(col(Pledge.status).in_(LIVE_STATUSES)))
    ).all()
    rules_pledges = [
        matching.Pledge(
            p.id, p.organisation_id, p.improvement_id, p.amount_cents, p.pledged_at, p.status
        )
        for p in pledges
    ] + (extra or [])
    improvement_ids = {p.improvement for p in rules_pledges}
    organisation_ids = {p.contributor for p in rules_pledges}
    improvements = [
        matching.Improvement(i.id, i.budget_cents, kind)
        for i, kind in (
            await session.exec(
                select(ImprovementRow, Commons.kind)
                .join(Commons, col(Commons.id) == col(ImprovementRow.commons_id))
                .where(col(ImprovementRow.id).in_(improvement_ids))
            )
        ).all()
    ]
    contributors = [
        matching.Contributor(o.id, o.kind, o.origin or local_domain)
        for o in (
            await session.exec(
                select(Organisation).where(col(Organisation.id).in_(organisation_ids))
            )
        ).all()
    ]
    programs_rows = (
        await session.exec(
            select(MatchingProgram).where(MatchingProgram.status != ProgramStatus.DRAFT)
        )
    ).all()
    approvals: dict[int, set[int]] = {}
    for approval in (
        await session.exec(
            select(ProgramApproval).where(ProgramApproval.status == ApprovalStatus.APPROVED)
        )
    ).all():
        approvals.setdefault(approval.program_id, set()).add(approval.organisation_id)
    programs = [program_rules(p, frozenset(approvals.get(p.id or 0, set()))) for p in programs_rows]
    return improvements, contributors, programs, rules_pledges


@dataclass(frozen=True)
class Change:
    """One line of the ledger to write: a match moving from ``before`` to ``after`` cents."""

    program: int
    pledge: int
    kind: LedgerKind
    before: int
    after: int

    @property
    def delta(self) -> int:
        return self.after - self.before


def changes(
    stored: Mapping[tuple[int, int], int], wanted: Mapping[tuple[int, int], int]
) -> list[Change]:
    """The ledger lines that take the stored matches to the wanted ones, in a stable order.

    Pure, so that its one promise is tested directly: replaying the lines from nothing gives
    the matches, whatever sequence of recomputations produced them.
    """
    lines = []
    for key in sorted(set(stored) | set(wanted)):
        before, after = stored.get(key, 0), wanted.get(key, 0)
        if before == after:
            continue
        kind = (
            LedgerKind.CREATED
            if before == 0
            else LedgerKind.RELEASED
            if after == 0
            else LedgerKind.ADJUSTED
        )
        lines.append(Change(key[0], key[1], kind, before, after))
    return lines


async def recompute(session: AsyncSession, base_url: str, cause: str) -> list[LedgerEntry]:
    """Bring the stored matches to what the rules say now; the ledger records each change.

    The caller holds the ledger lock and commits.
    """
    inputs = await current_inputs(session, local_host(base_url))
    result = matching.compute_matches(*inputs)
    wanted = {(int(m.program), int(m.pledge)): m.amount for m in result.matches}  # type: ignore[call-overload]
    rows = {(m.program_id, m.pledge_id): m for m in (await session.exec(select(Match))).all()}
    now = utcnow()
    entries: list[LedgerEntry] = []
    for line in changes({k: m.amount_cents for k, m in rows.items()}, wanted):
        entry = LedgerEntry(
            program_id=line.program,
            pledge_id=line.pledge,
            kind=line.kind,
            delta_cents=line.delta,
            amount_after_cents=line.after,
            cause=cause[:200],
            at=now,
        )
        entries.append(entry)
        session.add(entry)
        row = rows.get((line.program, line.pledge))
        if row is None:
            session.add(
                Match(
                    uri=match_uri(base_url, line.program, line.pledge),
                    program_id=line.program,
                    pledge_id=line.pledge,
                    amount_cents=line.after,
                )
            )
        elif line.after == 0:
            await session.delete(row)
        else:
            row.amount_cents = line.after
            session.add(row)
    await session.flush()
    await refresh_needs(session, {int(i.id) for i in inputs[0]})  # type: ignore[call-overload]
    return entries


async def refresh_needs(session: AsyncSession, improvement_ids: set[int]) -> None:
    """Set each affected commons' need to what its open improvements still lack.

    The catalogue counts a need from budgets alone (it knows no money); once pledges exist the
    catalogue's "most in need of funds" sort must subtract them, so every recompute refreshes
    the commons whose improvements have pledges.
    """
    if not improvement_ids:
        return
    commons_ids = set(
        (
            await session.exec(
                select(ImprovementRow.commons_id).where(col(ImprovementRow.id).in_(improvement_ids))
            )
        ).all()
    )
    open_rows = (
        await session.exec(
            select(ImprovementRow).where(
                col(ImprovementRow.commons_id).in_(commons_ids),
                ImprovementRow.status == ImprovementStatus.OPEN,
            )
        )
    ).all()
    totals = await LedgerFunding().totals(session, [i.id for i in open_rows if i.id is not None])
    need = dict.fromkeys(commons_ids, 0)
    for improvement in open_rows:
        pledged, matched = totals.get(improvement.id or 0, (0, 0))
        if improvement.origin is not None and improvement.origin_funded_cents is not None:
            pledged, matched = improvement.origin_funded_cents, 0  # counted at its origin
        need[improvement.commons_id] += max(0, improvement.budget_cents - pledged - matched)
    # Written only where it moved: a pledge moves one or a few, and an UPDATE for each of the
    # thousand commons with a pledge was most of what a pledge cost at a national scale.
    stored = await session.exec(
        select(Commons.id, Commons.need_cents).where(col(Commons.id).in_(commons_ids))
    )
    for commons_id, before in stored.all():
        if commons_id is not None and need[commons_id] != before:
            await session.exec(
                update(Commons)
                .where(col(Commons.id) == commons_id)
                .values(need_cents=need[commons_id])
            )
