"""Matching program pages: the list, the rules in plain words, funders' forms and dashboard.

A program belongs to its funder organisation: only that organisation's admins (or instance
admins) create, edit, activate or close it, decide approvals and download its exports. Drafts
are shown to them alone. Every money change goes through pledges.operations, which takes the
ledger lock and recomputes the matches in the same transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from babel.dates import format_date, format_time
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from catalogue.columns import utcnow
from catalogue.commons import COMMONS_KIND_LABELS, CommonsKind
from catalogue.errors import N_, InvalidFields
from catalogue.money import Money
from catalogue.organisations import KIND_LABELS, Organisation, OrganisationKind
from instance import i18n
from instance import memberships as ms
from instance.accounts import Account
from instance.formatting import money
from instance.forms import field_errors, read_form
from instance.i18n import gettext as _
from instance.outgoing import announce_improvements
from instance.sessions import current_account, flash, require_account
from instance.templating import render
from pledges import reports
from pledges.exports import export_csv, export_json
from pledges.ledger import local_host, parse_ratio
from pledges.models import MatchingProgram, ProgramStatus
from pledges.operations import create_program, decide_approval, set_program_status, update_program
from pledges.programs import validate_program

LIST_FIELDS = ("eligible_kinds", "eligible_categories")
STATUS_LABELS = {
    ProgramStatus.DRAFT: N_("Draft"),
    ProgramStatus.ACTIVE: N_("Active"),
    ProgramStatus.CLOSED: N_("Closed"),
}
# The status each one may move to from the program page, with its button's text.
NEXT_STATUS: dict[str, tuple[str, str]] = {
    ProgramStatus.DRAFT: (ProgramStatus.ACTIVE, N_("Activate")),
    ProgramStatus.ACTIVE: (ProgramStatus.CLOSED, N_("Close")),
}


# --- Pure helpers: times, amounts and sentences -------------------------------------------


def from_local(raw: str, tz: tzinfo) -> datetime | str:
    """A ``datetime-local`` value read in the instance's time zone, as UTC (or ``raw`` if bad:
    validate_program then names the field)."""
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        return raw
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(UTC)


def to_local(moment: datetime, tz: tzinfo) -> str:
    """The value a ``datetime-local`` input shows for a stored UTC time."""
    return moment.astimezone(tz).strftime("%Y-%m-%dT%H:%M")


def _decimal(cents: int | None, currency: str) -> str:
    return "" if cents is None else Money(cents, currency).decimal_string()


def form_values(program: MatchingProgram, tz: tzinfo) -> dict[str, Any]:
    """What the edit form shows for a stored program."""
    return {
        "name": program.name,
        "description": program.description,
        "ratio": program.ratio,
        "budget": _decimal(program.budget_cents, program.currency),
        "per_contributor_cap": _decimal(program.per_contributor_cap_cents, program.currency),
        "per_improvement_cap": _decimal(program.per_improvement_cap_cents, program.currency),
        "min_pledge": _decimal(program.min_pledge_cents, program.currency),
        "starts": to_local(program.starts_at, tz),
        "ends": to_local(program.ends_at, tz),
        "eligible_kinds": [v for v in program.eligible_kinds.split(",") if v],
        "eligible_instances": program.eligible_instances.replace(",", ", "),
        "eligible_categories": [v for v in program.eligible_categories.split(",") if v],
        "eligible_improvements": program.eligible_improvements.replace(",", ", "),
        "priority": str(program.priority),
        "manual_approval": "1" if program.manual_approval else "",
    }


def when(moment: datetime, tz: tzinfo) -> str:
    """A window bound in words: the day alone at local midnight, else the day and the time."""
    local = moment.astimezone(tz)
    language = i18n.current_language()
    day = format_date(local.date(), format="long", locale=language)
    if (local.hour, local.minute) == (0, 0):
        return day
    return _(
        "%(day)s at %(time)s",
        day=day,
        time=format_time(local.timetz(), format="short", locale=language),
    )


def _labels(values: str, labels: dict[Any, str]) -> str:
    named = {str(k): v for k, v in labels.items()}
    return ", ".join(_(named[v]) if v in named else v for v in values.split(",") if v)


def program_sentences(program: MatchingProgram, funder: str, tz: tzinfo) -> list[str]:
    """This program's parameters as sentences a contributor understands."""
    currency = program.currency
    ratio = parse_ratio(program.ratio)
    unit = 100 if (ratio * 100).denominator == 1 else 10_000
    added = int(ratio * unit)  # exact: a decimal ratio times 100 or 10,000 cents
    sentences = [
        _(
            "For every %(unit)s a contributor gives, %(funder)s adds %(added)s.",
            unit=money(unit, currency),
            funder=funder,
            added=money(added, currency),
        )
    ]
    if program.per_contributor_cap_cents is not None:
        sentences.append(
            _(
                "At most %(cap)s per contributing organisation.",
                cap=money(program.per_contributor_cap_cents, currency),
            )
        )
    if program.per_improvement_cap_cents is not None:
        sentences.append(
            _(
                "At most %(cap)s per improvement.",
                cap=money(program.per_improvement_cap_cents, currency),
            )
        )
    if program.min_pledge_cents is not None:
        sentences.append(
            _("Pledges of at least %(min)s.", min=money(program.min_pledge_cents, currency))
        )
    sentences.append(
        _(
            "Pledges made from %(start)s until %(end)s (excluded).",
            start=when(program.starts_at, tz),
            end=when(program.ends_at, tz),
        )
    )
    sentences.append(
        _("An envelope of %(budget)s in all.", budget=money(program.budget_cents, currency))
    )
    if program.eligible_kinds:
        sentences.append(
            _(
                "Only for contributors of these kinds: %(kinds)s.",
                kinds=_labels(program.eligible_kinds, KIND_LABELS),
            )
        )
    if program.eligible_instances:
        sentences.append(
            _(
                "Only for contributors from these instances: %(hosts)s.",
                hosts=program.eligible_instances.replace(",", ", "),
            )
        )
    if program.eligible_categories:
        sentences.append(
            _(
                "Only for improvements to commons of these kinds: %(kinds)s.",
                kinds=_labels(program.eligible_categories, COMMONS_KIND_LABELS),
            )
        )
    if program.eligible_improvements:
        sentences.append(
            _(
                "Only for these improvements (numbers on this instance): %(ids)s.",
                ids=program.eligible_improvements.replace(",", ", "),
            )
        )
    if program.manual_approval:
        sentences.append(
            _("%(funder)s approves each new contributing organisation.", funder=funder)
        )
    sentences.append(
        _(
            "Priority %(priority)d: programs with a lower number match first.",
            priority=program.priority,
        )
    )
    return sentences


@dataclass(frozen=True)
class Envelope:
    """A program's budget, how much is matched and how much is left, for the bar."""

    budget: int
    used: int
    currency: str

    @property
    def left(self) -> int:
        return max(0, self.budget - self.used)

    @property
    def shown(self) -> int:
        return min(self.used, self.budget)


def projection_text(program: MatchingProgram, used: int, now: datetime, tz: tzinfo) -> str:
    """The dashboard's forecast of when the envelope runs out, at the rate matched so far."""
    if now < program.starts_at:
        return _("The window has not opened yet.")
    if used >= program.budget_cents:
        return _("The envelope is used up.")
    moment = reports.projected_exhaustion(
        used, program.budget_cents, program.starts_at, program.ends_at, now
    )
    if moment is None:
        return _("At this rate, the envelope lasts until the end of the window.")
    return _("At this rate, the envelope runs out around %(date)s.", date=when(moment, tz))


# --- Loading and permissions -----------------------------------------------------------------


async def _program(session: AsyncSession, raw: str) -> MatchingProgram:
    program = None
    if raw.isascii() and raw.isdigit() and len(raw) < 10:
        program = await session.get(MatchingProgram, int(raw))
    if program is None:
        raise HTTPException(404, N_("No matching program has this number."))
    return program


async def _funder(session: AsyncSession, program: MatchingProgram) -> Organisation:
    funder = await session.get(Organisation, program.funder_id)
    assert funder is not None  # a foreign key
    return funder


async def _visible(
    session: AsyncSession, account: Account | None, raw: str
) -> tuple[MatchingProgram, Organisation, bool]:
    """The program, its funder, and whether ``account`` manages it; drafts 404 for others."""
    program = await _program(session, raw)
    funder = await _funder(session, program)
    manager = await ms.can_manage(session, account, funder)
    if program.status == ProgramStatus.DRAFT and not manager:
        raise HTTPException(404, N_("No matching program has this number."))
    return program, funder, manager


async def _managed(
    request: Request, session: AsyncSession
) -> tuple[MatchingProgram, Organisation, Account]:
    account = await require_account(request, session)
    program, funder, manager = await _visible(session, account, request.path_params["program"])
    if not manager:
        raise HTTPException(403, N_("Only the funder's admins may manage this program."))
    return program, funder, account


async def _funder_to_create(
    request: Request, session: AsyncSession, account: Account
) -> Organisation:
    slug = request.query_params.get("funder", "")
    funder = await ms.get_local_organisation(session, slug) if slug else None
    if funder is None:
        raise HTTPException(404, N_("No organisation has this address."))
    if not await ms.can_manage(session, account, funder):
        raise HTTPException(403, N_("Only this organisation's admins may run its programs."))
    return funder


async def _managed_organisations(session: AsyncSession, account: Account) -> list[Organisation]:
    return [
        organisation
        for membership, organisation in await ms.organisations_of(session, account)
        if membership.role == ms.MemberRole.ADMIN and organisation.is_local
    ]


# --- Forms --------------------------------------------------------------------------------


async def _ticked(request: Request, name: str) -> list[str]:
    """Every value of a checkbox group (read_form keeps one value per name)."""
    if request.headers.get("content-type", "").startswith("application/json"):
        value = json.loads(await request.body()).get(name, [])
        return [str(v) for v in value] if isinstance(value, list) else str(value).split(",")
    return [str(v) for v in (await request.form()).getlist(name)]


async def read_program_form(request: Request) -> tuple[dict[str, Any], dict[str, Any]]:
    """(data for validate_program, values to show back); CSRF is checked first."""
    form = await read_form(request)
    tz = request.app.state.settings.instance.tz
    values: dict[str, Any] = dict(form)
    kinds = {k.value for k in OrganisationKind}
    categories = {k.value for k in CommonsKind}
    values["eligible_kinds"] = [v for v in await _ticked(request, "eligible_kinds") if v in kinds]
    values["eligible_categories"] = [
        v for v in await _ticked(request, "eligible_categories") if v in categories
    ]
    data: dict[str, Any] = dict(values)
    for name in ("starts", "ends"):
        data[name] = from_local(form.get(name, ""), tz)
    return data, values


def program_errors(data: dict[str, Any]) -> dict[str, str]:
    """Every error of the form at once: validate_program's, and listed improvements that are not
    numbers (the ledger reads them as integers when the program becomes active)."""
    errors: dict[str, str] = {}
    try:
        validate_program(data)
    except InvalidFields as error:
        errors.update(field_errors(error))
    listed = [v.strip() for v in str(data.get("eligible_improvements") or "").split(",")]
    if any(v and not (v.isascii() and v.isdigit() and len(v) < 10) for v in listed):
        errors["eligible_improvements"] = _(
            "Give improvement numbers separated by commas, such as 12, 15."
        )
    return errors


def _form_page(
    request: Request,
    funder: Organisation,
    *,
    program: MatchingProgram | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "programs/form.html",
        {
            "funder": funder,
            "program": program,
            "errors": errors or {},
            "values": values or {"ratio": "1", "priority": "0"},
            "timezone": request.app.state.settings.instance.timezone,
            "currency": request.app.state.settings.instance.currency,
        },
        status_code=status_code,
    )


# --- Views --------------------------------------------------------------------------------


async def program_list(request: Request) -> Response:
    async with request.app.state.db.session() as session:
        account = await current_account(request, session)
        mine = await _managed_organisations(session, account) if account else []
        managed = {o.id for o in mine}
        query = (
            select(MatchingProgram, Organisation)
            .join(Organisation, col(Organisation.id) == col(MatchingProgram.funder_id))
            .order_by(col(MatchingProgram.starts_at).desc(), col(MatchingProgram.id))
        )
        rows = [
            (program, funder)
            for program, funder in (await session.exec(query)).all()
            if program.status != ProgramStatus.DRAFT
            or program.funder_id in managed
            or (account is not None and account.is_admin and funder.is_local)
        ]
        used = await reports.used_by_program(session, [p.id for p, _f in rows if p.id])
    return render(
        request,
        "programs/list.html",
        {
            "programs": [
                (p, f, Envelope(p.budget_cents, used.get(p.id or 0, 0), p.currency))
                for p, f in rows
            ],
            "program_status": _status_label,
            "managed": mine,
        },
    )


def _status_label(status: str) -> str:
    for key, label in STATUS_LABELS.items():
        if key == status:
            return _(label)
    return status


async def program_new(request: Request) -> Response:
    posted = await read_program_form(request) if request.method == "POST" else None
    async with request.app.state.db.session() as session:
        account = await require_account(request, session)
        funder = await _funder_to_create(request, session, account)
        if posted is None:
            return _form_page(request, funder)
        data, values = posted
        errors = program_errors(data)
        if errors:
            return _form_page(request, funder, errors=errors, values=values, status_code=422)
        program = await create_program(
            session, funder, data, base_url=request.app.state.settings.instance.base_url
        )
    flash(request, _("The program is saved as a draft; activate it when it is ready."))
    return RedirectResponse(f"/programs/{program.id}", status_code=303)


async def program_edit(request: Request) -> Response:
    posted = await read_program_form(request) if request.method == "POST" else None
    async with request.app.state.db.session() as session:
        program, funder, _account = await _managed(request, session)
        if program.status != ProgramStatus.DRAFT:
            raise HTTPException(409, N_("Only a draft program can be changed."))
        tz = request.app.state.settings.instance.tz
        if posted is None:
            return _form_page(request, funder, program=program, values=form_values(program, tz))
        data, values = posted
        errors = program_errors(data)
        if errors:
            return _form_page(
                request, funder, program=program, errors=errors, values=values, status_code=422
            )
        await update_program(
            session, program, data, base_url=request.app.state.settings.instance.base_url
        )
        await announce_improvements(request, session, funding=True)
    flash(request, _("The program is saved."))
    return RedirectResponse(f"/programs/{program.id}", status_code=303)


async def program_status(request: Request) -> Response:
    form = await read_form(request)
    async with request.app.state.db.session() as session:
        program, _funder_org, _account = await _managed(request, session)
        allowed = NEXT_STATUS.get(program.status)
        if allowed is None or form.get("status") != allowed[0]:
            raise HTTPException(409, N_("This program cannot move to this status."))
        await set_program_status(
            session, program, allowed[0], base_url=request.app.state.settings.instance.base_url
        )
        await announce_improvements(request, session, funding=True)
    flash(
        request,
        _("The program is active: its matches are computed.")
        if program.status == ProgramStatus.ACTIVE
        else _("The program is closed."),
    )
    return RedirectResponse(f"/programs/{program.id}", status_code=303)


async def program_approval(request: Request) -> Response:
    form = await read_form(request)
    async with request.app.state.db.session() as session:
        program, _funder_org, _account = await _managed(request, session)
        if not program.manual_approval:
            raise HTTPException(409, N_("This program does not approve contributors by hand."))
        query = (
            select(Organisation)
            .where(Organisation.slug == request.path_params["organisation"])
            .order_by(col(Organisation.origin).is_not(None), col(Organisation.id))
        )
        organisation = (await session.exec(query)).first()
        if organisation is None:
            raise HTTPException(404, N_("No organisation has this address."))
        decision = form.get("decision", "")
        if decision not in {"approve", "refuse"}:
            raise HTTPException(400, N_("Choose approve or refuse."))
        await decide_approval(
            session,
            program,
            organisation,
            decision == "approve",
            base_url=request.app.state.settings.instance.base_url,
        )
        await announce_improvements(request, session, funding=True)
    flash(
        request,
        _("%(name)s is approved.", name=organisation.name)
        if decision == "approve"
        else _("%(name)s is refused.", name=organisation.name),
    )
    return RedirectResponse(f"/programs/{program.id}#approvals", status_code=303)


async def program_page(request: Request) -> Response:
    settings = request.app.state.settings.instance
    async with request.app.state.db.session() as session:
        account = await current_account(request, session)
        program, funder, manager = await _visible(session, account, request.path_params["program"])
        assert program.id is not None
        used = (await reports.used_by_program(session, [program.id])).get(program.id, 0)
        by_improvement = await reports.matches_by_improvement(session, program.id)
        by_contributor = await reports.matches_by_contributor(session, program.id)
        pending = (
            await reports.pending_contributors(session, program, local_host(settings.base_url))
            if manager
            else []
        )
        decided = await reports.decided_approvals(session, program.id) if manager else []
    return render(
        request,
        "programs/page.html",
        {
            "program": program,
            "funder": funder,
            "can_manage": manager,
            "status": _status_label(program.status),
            "next_status": NEXT_STATUS.get(program.status),
            "sentences": program_sentences(program, funder.name, settings.tz),
            "envelope": Envelope(program.budget_cents, used, program.currency),
            "by_improvement": by_improvement,
            "by_contributor": by_contributor,
            "pending": pending,
            "decided": decided,
        },
    )


async def funder_dashboard(request: Request) -> Response:
    settings = request.app.state.settings.instance
    async with request.app.state.db.session() as session:
        account = await require_account(request, session)
        funder = await ms.get_local_organisation(session, request.path_params["slug"])
        if funder is None:
            raise HTTPException(404, N_("No organisation has this address."))
        if not await ms.can_manage(session, account, funder):
            raise HTTPException(403, N_("Only this organisation's admins may run its programs."))
        programs = list(
            (
                await session.exec(
                    select(MatchingProgram)
                    .where(MatchingProgram.funder_id == funder.id)
                    .order_by(col(MatchingProgram.starts_at).desc(), col(MatchingProgram.id))
                )
            ).all()
        )
        used = await reports.used_by_program(session, [p.id for p in programs if p.id])
        now = utcnow()
        rows = []
        for program in programs:
            spent = used.get(program.id or 0, 0)
            pending = await reports.pending_contributors(
                session, program, local_host(settings.base_url)
            )
            rows.append(
                {
                    "program": program,
                    "status": _status_label(program.status),
                    "envelope": Envelope(program.budget_cents, spent, program.currency),
                    "pending": len(pending),
                    "projection": projection_text(program, spent, now, settings.tz)
                    if program.status == ProgramStatus.ACTIVE
                    else "",
                }
            )
    return render(request, "programs/dashboard.html", {"funder": funder, "rows": rows})


async def _export(request: Request, kind: str) -> Response:
    async with request.app.state.db.session() as session:
        program, _funder_org, _account = await _managed(request, session)
        lines, matches, ledger = await reports.export_lines(session, program)
    name = f"program-{program.id}-pledges.{kind}"
    disposition = {"content-disposition": f'attachment; filename="{name}"'}
    if kind == "csv":
        return Response(
            export_csv(lines, matches), media_type="text/csv; charset=utf-8", headers=disposition
        )
    return Response(
        export_json(lines, matches, ledger, currency=program.currency),
        media_type="application/json",
        headers=disposition,
    )


async def export_pledges_csv(request: Request) -> Response:
    return await _export(request, "csv")


async def export_pledges_json(request: Request) -> Response:
    return await _export(request, "json")


routes = [
    Route("/programs", program_list, name="program_list"),
    Route("/programs/new", program_new, methods=["GET", "POST"], name="program_new"),
    Route("/programs/{program}", program_page, name="program"),
    Route("/programs/{program}/edit", program_edit, methods=["GET", "POST"], name="program_edit"),
    Route("/programs/{program}/status", program_status, methods=["POST"], name="program_status"),
    Route(
        "/programs/{program}/approvals/{organisation}",
        program_approval,
        methods=["POST"],
        name="program_approval",
    ),
    Route("/programs/{program}/pledges.csv", export_pledges_csv, name="program_pledges_csv"),
    Route("/programs/{program}/pledges.json", export_pledges_json, name="program_pledges_json"),
    Route("/orgs/{slug}/programs", funder_dashboard, name="funder_dashboard"),
]
