"""Pledge pages: pledging in two steps (estimate, then confirm), paying, cancelling, refunding,
receipts, and the pledge lists the improvement and organisation pages show.

Who may act is checked here (instance.permissions); what is valid is checked by
pledges.operations, whose refusals are shown beside the field they concern.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from babel.lists import format_list
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from catalogue.columns import utcnow
from catalogue.commons import Commons
from catalogue.errors import N_, InvalidField, InvalidFields
from catalogue.improvements import Improvement, ImprovementStatus
from catalogue.money import Money, parse_amount
from catalogue.organisations import Organisation
from instance import i18n
from instance import permissions as can
from instance.accounts import Account
from instance.formatting import money
from instance.forms import field_errors, read_form
from instance.i18n import gettext as _
from instance.outgoing import announce_improvements, commit_pledge, pledge_inboxes
from instance.sessions import current_account, flash, require_account
from instance.templating import render
from instance.views.commons import address_of, load_commons, load_remote_commons
from instance.views.pledge_lists import PledgeActions, pledge_actions, pledge_status_label
from pledges import operations as pledge_ops
from pledges.models import (
    Match,
    MatchingProgram,
    Pledge,
    PledgeStatus,
)

NOT_OPEN = N_("This improvement is not open for funding.")
NOT_A_MEMBER = N_("You may pledge only for an organisation you are a member of.")
# A copy of a pledge made on another instance changes there only (its Update reaches us).
MADE_ELSEWHERE = N_("This pledge was made on another instance: it changes only there.")


# Pure helpers, tested directly.


def clean_amount(raw: str) -> int:
    """Cents from the amount field, or InvalidFields("amount") with a message a person reads."""
    try:
        cents = parse_amount(raw)
    except ValueError:
        raise InvalidFields(
            [InvalidField("amount", N_("Give an amount such as 300 or 300.50."))]
        ) from None
    if cents <= 0:
        raise InvalidFields([InvalidField("amount", N_("The amount must be more than zero."))])
    if cents > pledge_ops.MAX_PLEDGE_CENTS:
        raise InvalidFields([InvalidField("amount", N_("This amount is larger than allowed."))])
    return cents


@dataclass(frozen=True)
class EstimatedMatch:
    program: str
    funder: str
    cents: int


def estimate_sentence(amount_cents: int, matches: list[EstimatedMatch], currency: str) -> str:
    """The estimate in plain words, so a pledger sees what their money brings before confirming.

    For example: Your 300 € brings 300 € from France Tiers-Lieux (Fonds) and 100 € from the
    Region (Logiciels): 700 € in all.
    """
    amount = money(amount_cents, currency)
    if not matches:
        return _("Your %(amount)s brings no matching funds at the moment.", amount=amount)
    parts = [
        _(
            "%(amount)s from %(funder)s (%(program)s)",
            amount=money(m.cents, currency),
            funder=m.funder,
            program=m.program,
        )
        for m in matches
    ]
    total = amount_cents + sum(m.cents for m in matches)
    return _(
        "Your %(amount)s brings %(matches)s: %(total)s in all.",
        amount=amount,
        matches=format_list(parts, locale=i18n.current_language()),
        total=money(total, currency),
    )


# Finding things.


async def _target(
    request: Request, session: AsyncSession, account: Account | None
) -> tuple[Commons, Improvement, bool]:
    """The commons and improvement of the URL (drafts only for editors), and whether editor.

    ``slug@host`` names the copy of a remote commons: a local organisation pledges to its
    improvements here, and the pledge is offered to their origin (nobody edits a copy)."""
    address = request.path_params["slug"]
    if "@" in address:
        commons, editor = await load_remote_commons(session, address), False
    else:
        commons = await load_commons(session, address, account)
        editor = await can.can_edit(session, account, commons)
    raw = request.path_params["number"]
    improvement = None
    if raw.isascii() and raw.isdigit() and len(raw) < 10:
        query = select(Improvement).where(
            Improvement.commons_id == commons.id, Improvement.number == int(raw)
        )
        improvement = (await session.exec(query)).first()
    if improvement is None or (improvement.status == ImprovementStatus.DRAFT and not editor):
        raise HTTPException(404, N_("This commons has no improvement with this number."))
    return commons, improvement, editor


async def _pledge(session: AsyncSession, raw: str) -> Pledge:
    pledge = None
    if raw.isascii() and raw.isdigit() and len(raw) < 12:
        pledge = await session.get(Pledge, int(raw))
    if pledge is None:
        raise HTTPException(404, N_("No pledge has this number."))
    return pledge


@dataclass
class PledgeContext:
    """A pledge with what its pages show and who may do what with it."""

    pledge: Pledge
    organisation: Organisation
    improvement: Improvement
    commons: Commons
    member: bool
    treasurer: bool


async def _context(session: AsyncSession, account: Account | None, pledge: Pledge) -> PledgeContext:
    organisation = await session.get(Organisation, pledge.organisation_id)
    improvement = await session.get(Improvement, pledge.improvement_id)
    assert organisation is not None and improvement is not None
    commons = await session.get(Commons, improvement.commons_id)
    assert commons is not None
    member = await can.can_declare_for(session, account, organisation)
    treasurer = await can.can_record_payments(session, account, commons)
    return PledgeContext(pledge, organisation, improvement, commons, member, treasurer)


def _pledges_url(commons: Commons, improvement: Improvement) -> str:
    """Where the improvement's pledges are shown: its page's pledge section; for a remote
    commons' copy, the improvement's card on the copy's page, which lists them."""
    if commons.origin is not None:
        return f"/commons/{address_of(commons)}#improvement-{improvement.number}"
    return f"/commons/{commons.slug}/improvements/{improvement.number}#pledges"


async def _matches_by_pledge(
    session: AsyncSession, pledge_ids: list[int]
) -> dict[int, list[tuple[Match, MatchingProgram, Organisation]]]:
    """Each pledge's current matches with their program and funder, in program order."""
    found: dict[int, list[tuple[Match, MatchingProgram, Organisation]]] = {}
    if not pledge_ids:
        return found
    query = (
        select(Match, MatchingProgram, Organisation)
        .join(MatchingProgram, col(MatchingProgram.id) == col(Match.program_id))
        .join(Organisation, col(Organisation.id) == col(MatchingProgram.funder_id))
        .where(col(Match.pledge_id).in_(pledge_ids))
        .order_by(col(MatchingProgram.priority), col(MatchingProgram.id))
    )
    for row in (await session.exec(query)).all():
        found.setdefault(row[0].pledge_id, []).append(row)
    return found


# The sections of other pages.


@dataclass
class PledgeRow:
    pledge: Pledge
    organisation: Organisation
    matches: list[tuple[Match, MatchingProgram, Organisation]] = field(default_factory=list)
    actions: PledgeActions = field(default_factory=PledgeActions)


async def pledge_section(
    request: Request,
    session: AsyncSession,
    commons: Commons,
    improvement: Improvement,
    *,
    editor: bool,
) -> dict[str, Any]:
    """What the improvement page shows of pledges: the list, the actions, the pledge form."""
    assert improvement.id is not None
    account = await current_account(request, session)
    mine = {o.id for o in await can.organisations_of(session, account)}
    treasurer = await can.can_record_payments(session, account, commons, editor=editor)
    pledges = await pledge_ops.pledges_of_improvement(session, improvement.id)
    org_ids = {p.organisation_id for p in pledges}
    organisations = {
        o.id: o
        for o in (
            await session.exec(select(Organisation).where(col(Organisation.id).in_(org_ids)))
        ).all()
    }
    matches = await _matches_by_pledge(session, [p.id for p in pledges if p.id is not None])
    rows = []
    for pledge in pledges:
        member = pledge.organisation_id in mine
        rows.append(
            PledgeRow(
                pledge,
                organisations[pledge.organisation_id],
                matches.get(pledge.id or 0, []),
                pledge_actions(pledge, member=member, treasurer=treasurer),
            )
        )
    open_ = improvement.status == ImprovementStatus.OPEN
    return {
        "pledge_rows": rows,
        "pledge_organisations": await can.organisations_of(session, account) if open_ else [],
        "pledge_open": open_,
        "pledge_status_label": pledge_status_label,
    }


@dataclass
class OrganisationPledge:
    pledge: Pledge
    improvement: Improvement
    commons: Commons


async def pledges_of_organisation(
    session: AsyncSession, organisation: Organisation
) -> list[OrganisationPledge]:
    """The organisation's pledges, newest first, on commons everyone may see."""
    query = (
        select(Pledge, Improvement, Commons)
        .join(Improvement, col(Improvement.id) == col(Pledge.improvement_id))
        .join(Commons, col(Commons.id) == col(Improvement.commons_id))
        .where(
            Pledge.organisation_id == organisation.id,
            col(Commons.hidden).is_(False),
            col(Commons.merged_into_id).is_(None),
        )
        .order_by(col(Pledge.pledged_at).desc(), col(Pledge.id).desc())
    )
    return [OrganisationPledge(*row) for row in (await session.exec(query)).all()]


# Pledging, in two steps.


def _form_page(
    request: Request,
    commons: Commons,
    improvement: Improvement,
    organisations: list[Organisation],
    form: dict[str, str],
    errors: dict[str, str],
) -> Response:
    return render(
        request,
        "pledges/form.html",
        {
            "commons": commons,
            "improvement": improvement,
            "pledge_organisations": organisations,
            "errors": errors,
            "values": form,
        },
        status_code=422,
    )


async def _checked_pledge(
    request: Request, session: AsyncSession, form: dict[str, str]
) -> tuple[Account, Commons, Improvement, list[Organisation], Organisation | None, dict[str, str]]:
    """Everything both steps check: the account, the target, the organisation, the amount.

    Returns the errors (by field) rather than raising, so the form can show them all at once;
    acting for an organisation one is not a member of is a 403, not a form error.
    """
    account = await require_account(request, session)
    commons, improvement, _editor = await _target(request, session, account)
    organisations = await can.organisations_of(session, account)
    errors: dict[str, str] = {}
    slug = form.get("organisation", "")
    found = await session.exec(
        select(Organisation).where(Organisation.slug == slug, col(Organisation.origin).is_(None))
    )
    chosen = found.first()
    if chosen is None:
        errors["organisation"] = _("Choose one of your organisations.")
    elif not await can.can_declare_for(session, account, chosen):
        raise HTTPException(403, NOT_A_MEMBER)
    if improvement.status != ImprovementStatus.OPEN:
        errors["form"] = _(NOT_OPEN)
    try:
        cents = clean_amount(form.get("amount", ""))
        if "form" not in errors and not improvement.allow_overfunding:
            need = await pledge_ops.still_needed(session, improvement)
            if cents > need:
                errors["amount"] = _(
                    "Only %(amount)s %(currency)s is still needed.",
                    amount=Money(need, improvement.currency).decimal_string(),
                    currency=improvement.currency,
                )
    except InvalidFields as error:
        errors.update(field_errors(error))
    return account, commons, improvement, organisations, chosen, errors


async def pledge_estimate(request: Request) -> Response:
    """Step 1: check the pledge and show what it would bring, with a Confirm button."""
    form = await read_form(request)  # CSRF first
    settings = request.app.state.settings
    async with request.app.state.db.session() as session:
        _account, commons, improvement, organisations, chosen, errors = await _checked_pledge(
            request, session, form
        )
        if errors or chosen is None:
            return _form_page(request, commons, improvement, organisations, form, errors)
        cents = clean_amount(form["amount"])
        found = await pledge_ops.estimate(
            session, chosen, improvement, cents, base_url=settings.instance.base_url
        )
        matches = []
        for program_id, match_cents in found:
            program = await session.get(MatchingProgram, program_id)
            assert program is not None
            funder = await session.get(Organisation, program.funder_id)
            matches.append(EstimatedMatch(program.name, funder.name if funder else "", match_cents))
        return render(
            request,
            "pledges/confirm.html",
            {
                "commons": commons,
                "improvement": improvement,
                "organisation": chosen,
                "amount": Money(cents, improvement.currency).decimal_string(),
                "sentence": estimate_sentence(cents, matches, improvement.currency),
            },
        )


async def pledge_make(request: Request) -> Response:
    """Step 2: record the pledge (the estimate is recomputed under the ledger lock)."""
    form = await read_form(request)  # CSRF first
    settings = request.app.state.settings
    async with request.app.state.db.session() as session:
        account, commons, improvement, organisations, chosen, errors = await _checked_pledge(
            request, session, form
        )
        if errors or chosen is None:
            return _form_page(request, commons, improvement, organisations, form, errors)
        cents = clean_amount(form["amount"])
        inboxes = await pledge_inboxes(request, session, chosen, commons)
        try:
            pledge = await pledge_ops.make_pledge(
                session,
                chosen,
                improvement,
                cents,
                base_url=settings.instance.base_url,
                created_by_id=account.id,
                commit=False,
            )
            await commit_pledge(request, session, pledge, inboxes=inboxes, made=True)
            await announce_improvements(request, session, [improvement.id], funding=True)
        except InvalidFields as error:
            found = field_errors(error)
            if "improvement" in found:
                found["form"] = found.pop("improvement")
            return _form_page(request, commons, improvement, organisations, form, found)
    flash(
        request,
        _(
            "%(organisation)s pledges %(amount)s. Thank you!",
            organisation=chosen.name,
            amount=money(cents, improvement.currency),
        ),
    )
    return RedirectResponse(_pledges_url(commons, improvement), status_code=303)


# Acting on a pledge.


async def pledge_cancel(request: Request) -> Response:
    await read_form(request)  # CSRF first, before any lookup
    settings = request.app.state.settings
    async with request.app.state.db.session() as session:
        account = await require_account(request, session)
        pledge = await _pledge(session, request.path_params["pledge"])
        ctx = await _context(session, account, pledge)
        if not ctx.member:
            raise HTTPException(403, N_("Only members of the pledging organisation may cancel it."))
        inboxes = await pledge_inboxes(request, session, ctx.organisation, ctx.commons)
        try:
            await pledge_ops.cancel_pledge(
                session, pledge, base_url=settings.instance.base_url, commit=False
            )
            await commit_pledge(request, session, pledge, inboxes=inboxes, made=False)
            await announce_improvements(request, session, [pledge.improvement_id], funding=True)
        except InvalidFields as error:
            raise HTTPException(409, error.errors[0].message) from None
    flash(request, _("The pledge is cancelled."))
    return RedirectResponse(_pledges_url(ctx.commons, ctx.improvement), status_code=303)


async def pledge_refund(request: Request) -> Response:
    await read_form(request)  # CSRF first, before any lookup
    settings = request.app.state.settings
    async with request.app.state.db.session() as session:
        account = await require_account(request, session)
        pledge = await _pledge(session, request.path_params["pledge"])
        ctx = await _context(session, account, pledge)
        if not ctx.treasurer:
            raise HTTPException(
                403, N_("Only the commons' maintainers or instance admins may refund a pledge.")
            )
        if pledge.origin is not None:
            raise HTTPException(409, MADE_ELSEWHERE)
        # A refused pledge counted nowhere, and the commons' instance never held it: its
        # refund is news to no one but this instance's books.
        refused = pledge.status == PledgeStatus.REFUSED
        inboxes = (
            [] if refused else await pledge_inboxes(request, session, ctx.organisation, ctx.commons)
        )
        try:
            await pledge_ops.refund_pledge(
                session, pledge, base_url=settings.instance.base_url, commit=False
            )
            if refused:
                await session.commit()
            else:
                await commit_pledge(request, session, pledge, inboxes=inboxes, made=False)
                await announce_improvements(request, session, [pledge.improvement_id], funding=True)
        except InvalidFields as error:
            raise HTTPException(409, error.errors[0].message) from None
    flash(request, _("The pledge is marked as refunded."))
    return RedirectResponse(_pledges_url(ctx.commons, ctx.improvement), status_code=303)


def _payment_page(
    request: Request,
    ctx: PledgeContext,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "pledges/payment.html",
        {
            "pledge": ctx.pledge,
            "organisation": ctx.organisation,
            "improvement": ctx.improvement,
            "commons": ctx.commons,
            "values": values,
            "errors": errors or {},
        },
        status_code=status_code,
    )


def clean_paid_on(raw: str) -> date:
    """The payment date from the form, or InvalidFields("paid_on")."""
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise InvalidFields(
            [InvalidField("paid_on", N_("Give the date as YYYY-MM-DD, such as 2026-11-20."))]
        ) from None


async def pledge_payment(request: Request) -> Response:
    """The form to record a payment (GET) and recording it (POST): maintainers and admins."""
    form = await read_form(request) if request.method == "POST" else None  # CSRF first
    settings = request.app.state.settings
    async with request.app.state.db.session() as session:
        account = await require_account(request, session)
        pledge = await _pledge(session, request.path_params["pledge"])
        ctx = await _context(session, account, pledge)
        if not ctx.treasurer:
            raise HTTPException(
                403, N_("Only the commons' maintainers or instance admins may record a payment.")
            )
        if pledge.origin is not None:
            raise HTTPException(409, MADE_ELSEWHERE)
        if form is None:
            if pledge.status != PledgeStatus.PLEDGED:
                raise HTTPException(409, N_("Only a pledge not yet paid can be marked as paid."))
            today = {"paid_on": utcnow().date().isoformat()}
            return _payment_page(request, ctx, today)
        inboxes = await pledge_inboxes(request, session, ctx.organisation, ctx.commons)
        try:
            await pledge_ops.record_payment(
                session,
                pledge,
                paid_on=clean_paid_on(form.get("paid_on", "")),
                method=form.get("method", ""),
                reference=form.get("reference", ""),
                recorded_by_id=account.id,
                base_url=settings.instance.base_url,
                commit=False,
            )
            await commit_pledge(request, session, pledge, inboxes=inboxes, made=False)
            await announce_improvements(request, session, [pledge.improvement_id], funding=True)
        except InvalidFields as error:
            errors = field_errors(error)
            if "status" in errors:
                errors["form"] = errors.pop("status")
                return _payment_page(request, ctx, form, errors, 409)
            return _payment_page(request, ctx, form, errors, 422)
    flash(request, _("The payment is recorded."))
    return RedirectResponse(_pledges_url(ctx.commons, ctx.improvement), status_code=303)


async def pledge_receipt(request: Request) -> Response:
    """A printable receipt for a paid pledge, for those who pledged, maintainers and admins."""
    async with request.app.state.db.session() as session:
        account = await current_account(request, session)
        pledge = await _pledge(session, request.path_params["pledge"])
        if pledge.status != PledgeStatus.PAID:
            raise HTTPException(404, N_("Only a paid pledge has a receipt."))
        ctx = await _context(session, account, pledge)
        if not (ctx.member or ctx.treasurer):
            raise HTTPException(
                403,
                N_(
                    "Only the pledging organisation, the commons' maintainers and instance "
                    "admins may see this receipt."
                ),
            )
        assert pledge.id is not None
        matches = (await _matches_by_pledge(session, [pledge.id])).get(pledge.id, [])
        return render(
            request,
            "pledges/receipt.html",
            {
                "pledge": pledge,
                "organisation": ctx.organisation,
                "improvement": ctx.improvement,
                "commons": ctx.commons,
                "matches": matches,
                "matched_cents": sum(m.amount_cents for m, _p, _f in matches),
            },
        )


PLEDGING = "/commons/{slug}/improvements/{number}/pledges"

routes: list[BaseRoute] = [
    Route(f"{PLEDGING}/estimate", pledge_estimate, methods=["POST"], name="pledge_estimate"),
    Route(PLEDGING, pledge_make, methods=["POST"], name="pledge_make"),
    Route("/pledges/{pledge}/cancel", pledge_cancel, methods=["POST"], name="pledge_cancel"),
    Route(
        "/pledges/{pledge}/payment",
        pledge_payment,
        methods=["GET", "POST"],
        name="pledge_payment",
    ),
    Route("/pledges/{pledge}/refund", pledge_refund, methods=["POST"], name="pledge_refund"),
    Route("/pledges/{pledge}/receipt", pledge_receipt, name="pledge_receipt"),
]
