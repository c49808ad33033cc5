"""Organisation pages: the list, one organisation, creation, settings and members."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from catalogue.declarations import DeclarationKind
from catalogue.errors import N_, InvalidFields
from catalogue.organisations import Organisation, OrganisationKind
from catalogue.queries import uses_of
from catalogue.territories import territory_choices
from instance import memberships as ms
from instance import permissions as can
from instance.forms import field_errors, read_form
from instance.i18n import gettext as _
from instance.outgoing import announce_profile
from instance.sessions import current_account, flash, require_account
from instance.templating import render
from instance.views.pledge_lists import pledge_status_label
from instance.views.pledges import pledges_of_organisation

FIELDS = ("name", "slug", "kind", "description", "website", "territory", "siret")


async def _organisation(session: AsyncSession, slug: str) -> Organisation:
    organisation = await ms.get_local_organisation(session, slug)
    if organisation is None:
        raise HTTPException(404, N_("No organisation has this address."))
    return organisation


async def _managed(request: Request, session: AsyncSession) -> Organisation:
    account = await require_account(request, session)
    organisation = await _organisation(session, request.path_params["slug"])
    if not await ms.can_manage(session, account, organisation):
        raise HTTPException(403, N_("Only this organisation's admins may change it."))
    return organisation


def _page_number(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    if not raw.isdigit() or int(raw) < 1:
        raise HTTPException(400, N_("The page number must be a whole number from 1."))
    return int(raw)


async def organisation_list(request: Request) -> Response:
    page = _page_number(request)
    kind = request.query_params.get("kind", "")
    if kind and kind not in {k.value for k in OrganisationKind}:
        raise HTTPException(400, N_("Unknown organisation kind."))
    size = request.app.state.settings.limits.page_size
    async with request.app.state.db.session() as session:
        await current_account(request, session)
        # This instance's organisations: copies of remote ones (which declared something
        # here) have their page on their own instance.
        local = col(Organisation.origin).is_(None)
        query = select(Organisation).where(local)
        count = select(func.count()).select_from(Organisation).where(local)
        if kind:
            query = query.where(Organisation.kind == kind)
            count = count.where(Organisation.kind == kind)
        total = (await session.exec(count)).one()
        rows = (
            await session.exec(
                query.order_by(col(Organisation.sort_key), col(Organisation.id))
                .offset((page - 1) * size)
                .limit(size)
            )
        ).all()
    return render(
        request,
        "organisations/list.html",
        {
            "organisations": rows,
            "total": total,
            "page": page,
            "pages": max(1, -(-total // size)),
            "kind": kind,
        },
    )


async def organisation_page(request: Request) -> Response:
    async with request.app.state.db.session() as session:
        account = await current_account(request, session)
        organisation = await _organisation(session, request.path_params["slug"])
        people = await ms.members(session, organisation)
        manager = await ms.can_manage(session, account, organisation)
        declarations = [
            (declaration, commons)
            for declaration, commons in await uses_of(session, organisation)
            if not commons.hidden and commons.merged_into_id is None
        ]
        pledges = await pledges_of_organisation(session, organisation)
        member = await can.can_declare_for(session, account, organisation)
    return render(
        request,
        "organisations/page.html",
        {
            "organisation": organisation,
            "members": people,
            "can_manage": manager,
            "uses": [(d, c) for d, c in declarations if d.kind == DeclarationKind.USES],
            "interests": [(d, c) for d, c in declarations if d.kind == DeclarationKind.INTERESTED],
            "pledges": pledges,
            "pledge_status_label": pledge_status_label,
            # Its members cancel its pledges here: a pledge to another instance's improvement
            # has no page of its own on this instance.
            "can_cancel_pledges": member,
        },
    )


async def organisation_new(request: Request) -> Response:
    async with request.app.state.db.session() as session:
        account = await require_account(request, session)
        context = {"territories": territory_choices(), "creating": True}
        if request.method == "GET":
            return render(request, "organisations/form.html", context)
        form = await read_form(request)
        try:
            organisation = await ms.create_organisation(
                session, account, form, request.app.state.settings.instance.base_url
            )
        except InvalidFields as error:
            return render(
                request,
                "organisations/form.html",
                {**context, "errors": field_errors(error), "values": form},
                status_code=422,
            )
    flash(request, _("%(name)s is created; you are its admin.", name=organisation.name))
    return RedirectResponse(f"/orgs/{organisation.slug}", status_code=303)


async def organisation_settings(request: Request) -> Response:
    async with request.app.state.db.session() as session:
        organisation = await _managed(request, session)
        context = {
            "territories": territory_choices(),
            "creating": False,
            "organisation": organisation,
        }
        if request.method == "GET":
            values = {field: getattr(organisation, field) or "" for field in FIELDS}
            return render(request, "organisations/form.html", {**context, "values": values})
        form = await read_form(request)
        try:
            await ms.update_organisation(session, organisation, form)
        except InvalidFields as error:  # validation runs before any change: nothing to undo
            return render(
                request,
                "organisations/form.html",
                {
                    **context,
                    "errors": field_errors(error),
                    "values": {**form, "slug": organisation.slug},
                },
                status_code=422,
            )
        await announce_profile(request, session, organisation.uri)
    flash(request, _("The organisation's settings are saved."))
    return RedirectResponse(f"/orgs/{organisation.slug}", status_code=303)


async def _members_page(
    request: Request,
    session: AsyncSession,
    organisation: Organisation,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    people = await ms.members(session, organisation)
    return render(
        request,
        "organisations/members.html",
        {
            "organisation": organisation,
            "members": people,
            "errors": errors or {},
            "values": values or {},
        },
        status_code=status,
    )


async def members(request: Request) -> Response:
    async with request.app.state.db.session() as session:
        organisation = await _managed(request, session)
        if request.method == "GET":
            return await _members_page(request, session, organisation)
        form = await read_form(request)
        try:
            await ms.add_member(
                session, organisation, form.get("email", ""), form.get("role", "member")
            )
        except InvalidFields as error:
            return await _members_page(
                request, session, organisation, field_errors(error), form, 422
            )
    flash(request, _("The member is added."))
    return RedirectResponse(f"/orgs/{organisation.slug}/members", status_code=303)


async def _membership(
    session: AsyncSession, organisation: Organisation, raw_id: str
) -> ms.Membership:
    membership = await session.get(ms.Membership, int(raw_id)) if raw_id.isdigit() else None
    if membership is None or membership.organisation_id != organisation.id:
        raise HTTPException(404, N_("This person is not a member of this organisation."))
    return membership


LAST_ADMIN = N_("An organisation keeps at least one admin: name another admin first.")
MembershipChange = Callable[
    [AsyncSession, Organisation, ms.Membership, dict[str, str]], Awaitable[None]
]


async def _change_membership(request: Request, change: MembershipChange, done: str) -> Response:
    """Apply ``change`` to one membership, re-showing the members page when it is refused."""
    form = await read_form(request)
    async with request.app.state.db.session() as session:
        organisation = await _managed(request, session)
        membership = await _membership(session, organisation, request.path_params["membership"])
        try:
            await change(session, organisation, membership, form)
        except ms.LastAdmin:
            errors = {"members": _(LAST_ADMIN)}
            return await _members_page(request, session, organisation, errors, form, 409)
        except InvalidFields as error:
            errors = field_errors(error)
            return await _members_page(request, session, organisation, errors, form, 422)
    flash(request, _(done))
    return RedirectResponse(f"/orgs/{organisation.slug}/members", status_code=303)


async def member_remove(request: Request) -> Response:
    async def remove(
        session: AsyncSession, org: Organisation, membership: ms.Membership, _form: dict[str, str]
    ) -> None:
        await ms.remove_member(session, org, membership)

    return await _change_membership(request, remove, N_("The member is removed."))


async def member_role(request: Request) -> Response:
    async def set_role(
        session: AsyncSession, org: Organisation, membership: ms.Membership, form: dict[str, str]
    ) -> None:
        await ms.set_member_role(session, org, membership, form.get("role", ""))

    return await _change_membership(request, set_role, N_("The role is changed."))


routes = [
    Route("/orgs", organisation_list, name="organisation_list"),
    Route("/orgs/new", organisation_new, methods=["GET", "POST"], name="organisation_new"),
    Route("/orgs/{slug}", organisation_page, name="organisation"),
    Route(
        "/orgs/{slug}/settings",
        organisation_settings,
        methods=["GET", "POST"],
        name="organisation_settings",
    ),
    Route("/orgs/{slug}/members", members, methods=["GET", "POST"], name="organisation_members"),
    Route(
        "/orgs/{slug}/members/{membership}/remove",
        member_remove,
        methods=["POST"],
        name="member_remove",
    ),
    Route(
        "/orgs/{slug}/members/{membership}/role", member_role, methods=["POST"], name="member_role"
    ),
]
