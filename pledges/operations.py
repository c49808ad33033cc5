"""Pledging, paying, cancelling, refunding, and running programs: each one transaction that
takes the ledger lock first and recomputes the matches before it commits.

Callers check who may act (a member for their organisation; maintainers or a treasurer for
payments; a funder's admins for programs); these check what is valid.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from catalogue.columns import utcnow
from catalogue.errors import N_, InvalidField, InvalidFields
from catalogue.improvements import Improvement, ImprovementStatus
from catalogue.money import Money
from catalogue.organisations import Organisation
from pledges import matching
from pledges.funding import LedgerFunding
from pledges.ledger import (
    current_inputs,
    local_host,
    recompute,
    refresh_needs,
    take_ledger_lock,
)
from pledges.models import (
    ApprovalStatus,
    MatchingProgram,
    Pledge,
    PledgeStatus,
    ProgramApproval,
    ProgramStatus,
)
from pledges.programs import validate_program

MAX_PLEDGE_CENTS = 10_000_000_00
# A closed program keeps the matches of the pledges in its window; it never reopens.
PROGRAM_TRANSITIONS = {
    ProgramStatus.DRAFT: {ProgramStatus.ACTIVE},
    ProgramStatus.ACTIVE: {ProgramStatus.CLOSED},
    ProgramStatus.CLOSED: set(),
}


def _refuse(field: str, message: str, **params: Any) -> InvalidFields:
    return InvalidFields([InvalidField(field, message, **params)])


async def still_needed(session: AsyncSession, improvement: Improvement) -> int:
    """Budget minus live pledges and matches (never below 0), as the ledger stands now.

    For the copy of a remote improvement, its origin's funded amount counts when it is more
    than what this instance knows of: the origin decides, and refuses what no longer fits."""
    assert improvement.id is not None
    pledged, matched = (await LedgerFunding().totals(session, [improvement.id])).get(
        improvement.id, (0, 0)
    )
    funded = pledged + matched
    if improvement.origin is not None:
        funded = max(funded, improvement.origin_funded_cents or 0)
    return max(0, improvement.budget_cents - funded)


async def make_pledge(
    session: AsyncSession,
    organisation: Organisation,
    improvement: Improvement,
    amount_cents: int,
    *,
    base_url: str,
    created_by_id: int | None,
    at: datetime | None = None,
    commit: bool = True,
) -> Pledge:
    """Record a pledge and the matches it brings, or refuse it with the field at fault.

    ``commit=False`` leaves the transaction open, so a caller can queue what tells other
    instances about the pledge in the same transaction (it commits then)."""
    assert organisation.id is not None and improvement.id is not None
    if amount_cents <= 0:
        raise _refuse("amount", N_("The amount must be more than zero."))
    if amount_cents > MAX_PLEDGE_CENTS:
        raise _refuse("amount", N_("This amount is larger than allowed."))
    await take_ledger_lock(session)
    await session.refresh(improvement)  # its status and budget as they are under the lock
    if improvement.status != ImprovementStatus.OPEN:
        raise _refuse("improvement", N_("This improvement is not open for funding."))
    need = await still_needed(session, improvement)
    if amount_cents > need and not improvement.allow_overfunding:
        raise _refuse(
            "amount",
            N_("Only %(amount)s %(currency)s is still needed."),
            amount=Money(need, improvement.currency).decimal_string(),
            currency=improvement.currency,
        )
    pledge = Pledge(
        uri=f"{base_url}/pledges/{uuid.uuid4().hex}",
        organisation_id=organisation.id,
        improvement_id=improvement.id,
        amount_cents=amount_cents,
        currency=improvement.currency,
        created_by_id=created_by_id,
        pledged_at=at or utcnow(),
    )
    session.add(pledge)
    await session.flush()
    await recompute(session, base_url, f"pledge {pledge.id} made")
    if commit:
        await session.commit()
    return pledge


async def estimate(
    session: AsyncSession,
    organisation: Organisation,
    improvement: Improvement,
    amount_cents: int,
    *,
    base_url: str,
    at: datetime | None = None,
) -> list[tuple[int, int]]:
    """(program id, cents) a pledge of this amount would bring now, changing nothing."""
    hypothetical = matching.Pledge(
        -1, organisation.id, improvement.id, amount_cents, at or utcnow(), "pledged"
    )
    inputs = await current_inputs(session, local_host(base_url), extra=[hypothetical])
    result = matching.compute_matches(*inputs)
    return [(int(m.program), m.amount) for m in result.matches if m.pledge == -1]  # type: ignore[call-overload]


async def _change_status(
    session: AsyncSession,
    pledge: Pledge,
    allowed_from: Callable[[Pledge], bool],
    target: PledgeStatus,
    base_url: str,
    message: str,
    commit: bool = True,
) -> None:
    """Move ``pledge`` to ``target`` if ``allowed_from`` says so of it as stored now (read
    under the ledger lock: two hands on one pledge cannot both change it), and recompute."""
    await take_ledger_lock(session)
    await session.refresh(pledge)
    if not allowed_from(pledge):
        raise _refuse("status", message)
    pledge.status = target
    pledge.changed_at = utcnow()
    session.add(pledge)
    await session.flush()
    await recompute(session, base_url, f"pledge {pledge.id} {target}")
    if commit:
        await session.commit()


def _status_is(*statuses: PledgeStatus) -> Callable[[Pledge], bool]:
    return lambda pledge: pledge.status in statuses


async def cancel_pledge(
    session: AsyncSession, pledge: Pledge, *, base_url: str, commit: bool = True
) -> None:
    await _change_status(
        session,
        pledge,
        _status_is(PledgeStatus.PLEDGED),
        PledgeStatus.CANCELLED,
        base_url,
        N_("Only a pledge not yet paid can be cancelled."),
        commit,
    )


async def refund_pledge(
    session: AsyncSession, pledge: Pledge, *, base_url: str, commit: bool = True
) -> None:
    """Record that a paid pledge's money went back: one the organisation took back, or one
    the commons refused after it was paid (``Pledge.refundable``)."""
    await _change_status(
        session,
        pledge,
        lambda held: held.refundable,
        PledgeStatus.REFUNDED,
        base_url,
        N_("Only a paid pledge can be refunded."),
        commit,
    )


async def refuse_pledge(
    session: AsyncSession, pledge: Pledge, *, base_url: str, commit: bool = True
) -> bool:
    """The commons' instance refused a pledge made here to its improvement: it no longer
    counts or is matched here either, so that every instance shows the same totals. A paid
    one keeps its payment and becomes a refund due. Whether it changed: a pledge cancelled
    or refunded meanwhile stays so."""
    try:
        await _change_status(
            session,
            pledge,
            _status_is(PledgeStatus.PLEDGED, PledgeStatus.PAID),
            PledgeStatus.REFUSED,
            base_url,
            N_("Only a pledge not yet cancelled or refunded can be refused."),
            commit,
        )
    except InvalidFields:
        return False
    return True


async def record_payment(
    session: AsyncSession,
    pledge: Pledge,
    *,
    paid_on: date,
    method: str,
    reference: str,
    recorded_by_id: int | None,
    base_url: str,
    commit: bool = True,
) -> None:
    if not method.strip():
        raise _refuse("method", N_("Say how it was paid (transfer, cheque…)."))
    if paid_on > utcnow().date():
        raise _refuse("paid_on", N_("This date is in the future."))
    pledge.paid_on = paid_on
    pledge.payment_method = method.strip()[:50]
    pledge.payment_reference = reference.strip()[:200]
    pledge.payment_recorded_by_id = recorded_by_id
    await _change_status(
        session,
        pledge,
        _status_is(PledgeStatus.PLEDGED),
        PledgeStatus.PAID,
        base_url,
        N_("Only a pledge not yet paid can be marked as paid."),
        commit,
    )


async def create_program(
    session: AsyncSession, funder: Organisation, data: dict[str, Any], *, base_url: str
) -> MatchingProgram:
    cleaned = validate_program(data)
    assert funder.id is not None
    program = MatchingProgram(
        uri=f"{base_url}/programs/{uuid.uuid4().hex}", funder_id=funder.id, **cleaned
    )
    session.add(program)
    await session.commit()
    return program


async def set_program_status(
    session: AsyncSession, program: MatchingProgram, status: str, *, base_url: str
) -> None:
    if status not in {s.value for s in ProgramStatus}:
        raise _refuse("status", N_("Choose draft, active or closed."))
    await take_ledger_lock(session)
    await session.refresh(program)
    if status not in PROGRAM_TRANSITIONS[ProgramStatus(program.status)]:
        raise _refuse("status", N_("A program goes from draft to active, then to closed."))
    program.status = status
    session.add(program)
    await session.flush()
    await recompute(session, base_url, f"program {program.id} {status}")
    await session.commit()


async def pledges_of_improvement(session: AsyncSession, improvement_id: int) -> list[Pledge]:
    query = (
        select(Pledge)
        .where(Pledge.improvement_id == improvement_id)
        .order_by(col(Pledge.pledged_at), col(Pledge.id))
    )
    return list((await session.exec(query)).all())


async def update_program(
    session: AsyncSession, program: MatchingProgram, data: dict[str, Any], *, base_url: str
) -> MatchingProgram:
    """Change a program's rules, then recompute (a no-op for drafts, which match nothing)."""
    cleaned = validate_program(data)
    await take_ledger_lock(session)
    for key, value in cleaned.items():
        setattr(program, key, value)
    session.add(program)
    await session.flush()
    await recompute(session, base_url, f"program {program.id} changed")
    await session.commit()
    return program


async def decide_approval(
    session: AsyncSession,
    program: MatchingProgram,
    organisation: Organisation,
    approved: bool,
    *,
    base_url: str,
) -> ProgramApproval:
    """Approve or refuse a contributor of a manual-approval program, and recompute."""
    assert program.id is not None and organisation.id is not None
    await take_ledger_lock(session)
    query = select(ProgramApproval).where(
        ProgramApproval.program_id == program.id,
        ProgramApproval.organisation_id == organisation.id,
    )
    approval = (await session.exec(query)).first() or ProgramApproval(
        program_id=program.id, organisation_id=organisation.id
    )
    approval.status = ApprovalStatus.APPROVED if approved else ApprovalStatus.REFUSED
    approval.decided_at = utcnow()
    session.add(approval)
    await session.flush()
    decision = "approved" if approved else "refused"
    await recompute(
        session, base_url, f"program {program.id}: organisation {organisation.id} {decision}"
    )
    await session.commit()
    return approval


async def improvement_changed(
    session: AsyncSession, improvement: Improvement, *, base_url: str
) -> None:
    """Recompute after an improvement's budget or status changed: matches follow the budget
    (rule 4), and a cancelled improvement's matches stay as the rules say until its pledges
    are cancelled or refunded."""
    await take_ledger_lock(session)
    await recompute(session, base_url, f"improvement {improvement.id} changed")
    assert improvement.id is not None
    await refresh_needs(session, {improvement.id})
    await session.commit()


async def commons_changed(session: AsyncSession, commons_id: int, *, base_url: str) -> None:
    """Recompute after improvements moved to this commons (a merge): its need includes them."""
    await take_ledger_lock(session)
    await recompute(session, base_url, f"commons {commons_id} changed")
    ids = (
        await session.exec(select(Improvement.id).where(Improvement.commons_id == commons_id))
    ).all()
    await refresh_needs(session, {i for i in ids if i is not None})
    await session.commit()


# Pledges made on other instances. The caller (federation) has checked where they come from;
# these keep the money rules: the lock first, then the same checks as a pledge made here.

REMOTE_TRANSITIONS = {
    (PledgeStatus.PLEDGED, PledgeStatus.CANCELLED),
    (PledgeStatus.PLEDGED, PledgeStatus.PAID),
    (PledgeStatus.PAID, PledgeStatus.REFUNDED),
}


class NotTheSamePledge(ValueError):
    """A pledge id already held for another origin, organisation or improvement."""


async def pledge_by_uri(session: AsyncSession, uri: str) -> Pledge | None:
    query = select(Pledge).where(Pledge.uri == uri)
    return (await session.exec(query.execution_options(populate_existing=True))).first()


async def check_remote_pledge(
    session: AsyncSession, improvement: Improvement, amount_cents: int, currency: str
) -> None:
    """Whether a pledge made on another instance to our ``improvement`` fits, as one made here
    would: open, in its currency, within what is still needed. Takes the ledger lock first, so
    that a pledge arriving from afar and one made here cannot both take the last euros.
    Raises InvalidFields; writes nothing but the lock."""
    if amount_cents <= 0:
        raise _refuse("amount", N_("The amount must be more than zero."))
    if amount_cents > MAX_PLEDGE_CENTS:
        raise _refuse("amount", N_("This amount is larger than allowed."))
    await take_ledger_lock(session)
    await session.refresh(improvement)
    if currency != improvement.currency:
        raise _refuse("currency", N_("A pledge is in the improvement's currency."))
    if improvement.status != ImprovementStatus.OPEN:
        raise _refuse("improvement", N_("This improvement is not open for funding."))
    need = await still_needed(session, improvement)
    if amount_cents > need and not improvement.allow_overfunding:
        raise _refuse(
            "amount",
            N_("Only %(amount)s %(currency)s is still needed."),
            amount=Money(need, improvement.currency).decimal_string(),
            currency=improvement.currency,
        )


async def record_remote_pledge(
    session: AsyncSession,
    organisation: Organisation,
    improvement: Improvement,
    *,
    uri: str,
    origin: str,
    amount_cents: int,
    currency: str,
    status: PledgeStatus,
    pledged_at: datetime,
    base_url: str,
    admit: bool,
) -> tuple[Pledge, bool]:
    """Store the copy of a pledge made on ``origin`` (a host) and recompute the matches; the
    pledge, and whether it is new. A pledge already held is returned as it is (a replay).

    ``admit``: this instance holds the improvement and decides whether the pledge fits
    (``check_remote_pledge``); otherwise the improvement's own instance has admitted it, and
    a copy is recorded as told, so this instance's programs match what was really pledged.
    Flushes only: the caller commits. Raises InvalidFields, or NotTheSamePledge when ``uri``
    is held for another origin, organisation or improvement.
    """
    assert organisation.id is not None and improvement.id is not None
    await take_ledger_lock(session)
    held = await pledge_by_uri(session, uri)
    if held is not None:
        if (held.origin, held.organisation_id, held.improvement_id) != (
            origin,
            organisation.id,
            improvement.id,
        ):
            raise NotTheSamePledge(f"{uri} is held for another origin, organisation or improvement")
        return held, False
    if admit:
        await check_remote_pledge(session, improvement, amount_cents, currency)
    elif currency != improvement.currency:
        raise _refuse("currency", N_("A pledge is in the improvement's currency."))
    pledge = Pledge(
        uri=uri,
        origin=origin,
        organisation_id=organisation.id,
        improvement_id=improvement.id,
        amount_cents=amount_cents,
        currency=currency,
        status=status,
        created_by_id=None,
        pledged_at=min(pledged_at, utcnow()),  # a clock ahead of ours cannot pledge later
    )
    session.add(pledge)
    await session.flush()
    await recompute(session, base_url, f"pledge {pledge.id} received from {origin}")
    return pledge, True


async def apply_remote_status(
    session: AsyncSession, pledge: Pledge, status: PledgeStatus, *, origin: str, base_url: str
) -> bool:
    """Set the status its origin gives a pledge copy (cancelled, paid, refunded) and recompute;
    whether it changed (the same status again is a replay). Flushes only. Raises
    NotTheSamePledge for a pledge of another origin, InvalidFields for a change the rules
    do not allow (a cancelled pledge paid, a pledge refunded before it was paid)."""
    await take_ledger_lock(session)
    await session.refresh(pledge)
    if pledge.origin != origin:
        where = pledge.origin or "this instance"
        raise NotTheSamePledge(f"{pledge.uri} was made on {where}, not on {origin}")
    if pledge.status == status:
        return False
    if (PledgeStatus(pledge.status), status) not in REMOTE_TRANSITIONS:
        raise _refuse(
            "status",
            N_("A pledge cannot go from %(before)s to %(after)s."),
            before=pledge.status,
            after=status.value,
        )
    pledge.status = status
    pledge.changed_at = utcnow()
    session.add(pledge)
    await session.flush()
    await recompute(session, base_url, f"pledge {pledge.id} {status} on {origin}")
    return True
