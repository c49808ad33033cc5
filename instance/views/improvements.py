"""Improvement pages: what a commons needs, its budget and funding, and its life cycle."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from catalogue import operations as ops
from catalogue import queries
from catalogue.commons import Commons
from catalogue.errors import N_, InvalidField, InvalidFields
from catalogue.improvements import (
    STATUS_LABELS,
    TRANSITIONS,
    Improvement,
    ImprovementStatus,
    validate_improvement,
)
from catalogue.money import Money
from catalogue.organisations import Organisation
from catalogue.payment_links import format_payment_links
from instance import permissions as can
from instance.accounts import Account
from instance.forms import field_errors, read_form
from instance.i18n import error_message
from instance.i18n import gettext as _
from instance.outgoing import announce_improvements
from instance.sessions import current_account, flash
from instance.templating import render
from instance.views.commons import editable_commons, load_commons
from instance.views.pledges import pledge_section
from pledges.operations import improvement_changed

FIELDS = (
    "title", "description", "budget", "milestones", "provider", "deadline", "payment_links",
)  # fmt: skip
# What the button leading to each status says.
ACTIONS: dict[ImprovementStatus, str] = {
    ImprovementStatus.DRAFT: N_("Back to draft"),
    ImprovementStatus.OPEN: N_("Open for funding"),
    ImprovementStatus.FUNDED: N_("Mark as funded"),
    ImprovementStatus.IN_PROGRESS: N_("Mark as in progress"),
    ImprovementStatus.DELIVERED: N_("Mark as delivered"),
    ImprovementStatus.CANCELLED: N_("Cancel this improvement"),
}


def transitions(status: str) -> list[tuple[str, str]]:
    """The statuses an improvement may move to next, with their button's text, in life order."""
    allowed = TRANSITIONS.get(ImprovementStatus(status), frozenset())
    return [(target.value, action) for target, action in ACTIONS.items() if target in allowed]


async def _improvement(
    session: AsyncSession, commons: Commons, raw_number: str, *, editor: bool
) -> Improvement:
    """The improvement numbered ``raw_number`` of ``commons``; drafts exist for editors only."""
    improvement = None
    if raw_number.isascii() and raw_number.isdigit() and len(raw_number) < 10:
        query = select(Improvement).where(
            Improvement.commons_id == commons.id, Improvement.number == int(raw_number)
        )
        improvement = (await session.exec(query)).first()
    if improvement is None or (improvement.status == ImprovementStatus.DRAFT and not editor):
        raise HTTPException(404, N_("This commons has no improvement with this number."))
    return improvement


async def _providers(session: AsyncSession) -> list[Organisation]:
    query = (
        select(Organisation)
        .where(col(Organisation.origin).is_(None))
        .order_by(col(Organisation.sort_key), col(Organisation.id))
    )
    return list((await session.exec(query)).all())


def provider_id(slug: str, providers: list[Organisation]) -> int | None:
    """The chosen provider's id (None when left empty), or InvalidField("provider")."""
    if not slug:
        return None
    for organisation in providers:
        if organisation.slug == slug:
            return organisation.id
    raise InvalidField("provider", N_("Choose the provider from the list."))


def check_improvement_form(
    form: dict[str, str], providers: list[Organisation]
) -> tuple[dict[str, Any], int | None, dict[str, str]]:
    """Cleaned values, the provider's id and every error of the form at once."""
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    chosen = None
    try:
        cleaned = validate_improvement(form)
    except InvalidFields as error:
        errors.update(field_errors(error))
    try:
        chosen = provider_id(form.get("provider", ""), providers)
    except InvalidField as error:
        errors[error.field] = error_message(error)
    return cleaned, chosen, errors


def _form_page(
    request: Request,
    commons: Commons,
    providers: list[Organisation],
    *,
    improvement: Improvement | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "improvements/form.html",
        {
            "commons": commons,
            "improvement": improvement,
            "providers": providers,
            "currency": request.app.state.settings.instance.currency,
            "errors": errors or {},
            "values": values or {},
        },
        status_code=status_code,
    )


async def improvement_new(request: Request) -> Response:
    settings = request.app.state.settings
    form = await read_form(request) if request.method == "POST" else None  # CSRF first
    async with request.app.state.db.session() as session:
        account, commons = await editable_commons(request, session)
        providers = await _providers(session)
        if form is None:
            return _form_page(request, commons, providers)
        cleaned, chosen, errors = check_improvement_form(form, providers)
        if errors:
            return _form_page(
                request, commons, providers, errors=errors, values=form, status_code=422
            )
        improvement = await ops.create_improvement(
            session,
            commons,
            cleaned,
            base_url=settings.instance.base_url,
            currency=settings.instance.currency,
            provider_id=chosen,
            creator_id=account.id,
        )
    flash(request, _("The improvement is saved as a draft: open it for funding when it is ready."))
    return RedirectResponse(
        f"/commons/{commons.slug}/improvements/{improvement.number}", status_code=303
    )


async def _render_page(
    request: Request,
    session: AsyncSession,
    commons: Commons,
    improvement: Improvement,
    *,
    editor: bool,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    (view,) = await queries.improvement_views(session, [improvement], request.app.state.funding)
    return render(
        request,
        "improvements/page.html",
        {
            "commons": commons,
            "view": view,
            "improvement": improvement,
            "can_edit": editor,
            "transitions": transitions(improvement.status) if editor else [],
            "errors": errors or {},
            **await pledge_section(request, session, commons, improvement, editor=editor),
        },
        status_code=status_code,
    )


async def _shown(
    request: Request, session: AsyncSession
) -> tuple[Account | None, Commons, Improvement, bool]:
    account = await current_account(request, session)
    commons = await load_commons(session, request.path_params["slug"], account)
    editor = await can.can_edit(session, account, commons)
    improvement = await _improvement(session, commons, request.path_params["number"], editor=editor)
    return account, commons, improvement, editor


async def improvement_page(request: Request) -> Response:
    async with request.app.state.db.session() as session:
        _account, commons, improvement, editor = await _shown(request, session)
        return await _render_page(request, session, commons, improvement, editor=editor)


def _current_values(improvement: Improvement, view: queries.ImprovementView) -> dict[str, str]:
    def amount(cents: int) -> str:
        return Money(cents, improvement.currency).decimal_string().removesuffix(".00")

    return {
        "title": improvement.title,
        "description": improvement.description,
        "budget": amount(improvement.budget_cents),
        "milestones": "\n".join(f"{m.title}: {amount(m.amount_cents)}" for m in view.milestones),
        "provider": view.provider.slug if view.provider else "",
        "deadline": improvement.deadline.isoformat() if improvement.deadline else "",
        "allow_overfunding": "1" if improvement.allow_overfunding else "",
        "payment_links": format_payment_links(improvement.payment_links),
    }


async def improvement_edit(request: Request) -> Response:
    form = await read_form(request) if request.method == "POST" else None  # CSRF first
    async with request.app.state.db.session() as session:
        _account, commons = await editable_commons(request, session)
        improvement = await _improvement(
            session, commons, request.path_params["number"], editor=True
        )
        providers = await _providers(session)
        page: dict[str, Any] = {"improvement": improvement}
        if form is None:
            (view,) = await queries.improvement_views(
                session, [improvement], request.app.state.funding
            )
            values = _current_values(improvement, view)
            return _form_page(request, commons, providers, values=values, **page)
        cleaned, chosen, errors = check_improvement_form(form, providers)
        if errors:
            return _form_page(
                request, commons, providers, errors=errors, values=form, status_code=422, **page
            )
        await ops.update_improvement(session, improvement, cleaned, provider_id=chosen)
        await improvement_changed(
            session, improvement, base_url=request.app.state.settings.instance.base_url
        )
        await announce_improvements(request, session, [improvement.id], funding=True)
    flash(request, _("The improvement is saved."))
    return RedirectResponse(
        f"/commons/{commons.slug}/improvements/{improvement.number}", status_code=303
    )


def _status_label(value: str) -> str:
    for status, label in STATUS_LABELS.items():
        if status == value:
            return _(label)
    return value


async def improvement_status(request: Request) -> Response:
    form = await read_form(request)
    async with request.app.state.db.session() as session:
        _account, commons = await editable_commons(request, session)
        improvement = await _improvement(
            session, commons, request.path_params["number"], editor=True
        )
        current, target = improvement.status, form.get("status", "")
        try:
            await ops.change_status(session, improvement, target)
            await improvement_changed(
                session, improvement, base_url=request.app.state.settings.instance.base_url
            )
            await announce_improvements(request, session, [improvement.id], funding=True)
        except InvalidFields as error:
            refused = error.errors[0]
            message = _(
                refused.message, current=_status_label(current), target=_status_label(target)
            )
            return await _render_page(
                request,
                session,
                commons,
                improvement,
                editor=True,
                errors={"status": message},
                status_code=409,
            )
    flash(request, _("The improvement is now: %(status)s.", status=_status_label(target)))
    return RedirectResponse(
        f"/commons/{commons.slug}/improvements/{improvement.number}", status_code=303
    )


routes = [
    Route(
        "/commons/{slug}/improvements/new",
        improvement_new,
        methods=["GET", "POST"],
        name="improvement_new",
    ),
    Route("/commons/{slug}/improvements/{number}", improvement_page, name="improvement"),
    Route(
        "/commons/{slug}/improvements/{number}/edit",
        improvement_edit,
        methods=["GET", "POST"],
        name="improvement_edit",
    ),
    Route(
        "/commons/{slug}/improvements/{number}/status",
        improvement_status,
        methods=["POST"],
        name="improvement_status",
    ),
]
