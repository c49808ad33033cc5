"""Instance administration: who holds the admin and moderator roles."""

from __future__ import annotations

from sqlmodel import select
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from catalogue.errors import N_
from instance.accounts import Account, InstanceRole
from instance.forms import read_form
from instance.i18n import gettext as _
from instance.sessions import flash, require_admin
from instance.templating import render


async def people(request: Request) -> Response:
    async with request.app.state.db.session() as session:
        await require_admin(request, session)
        accounts = (await session.exec(select(Account).order_by(Account.email))).all()
    return render(request, "admin/people.html", {"people": accounts})


async def set_role(request: Request) -> Response:
    form = await read_form(request)
    role = form.get("role", "")
    if role not in {"", *(r.value for r in InstanceRole)}:
        raise HTTPException(400, N_("Choose admin, moderator or no role."))
    async with request.app.state.db.session() as session:
        admin = await require_admin(request, session)
        raw_id = request.path_params["account"]
        target = await session.get(Account, int(raw_id)) if raw_id.isdigit() else None
        if target is None:
            raise HTTPException(404, N_("No such account."))
        if target.id == admin.id and role != InstanceRole.ADMIN:
            raise HTTPException(
                409, N_("You cannot remove your own admin role; ask another admin.")
            )
        target.instance_role = role or None
        session.add(target)
        await session.commit()
    flash(request, _("The role is changed."))
    return RedirectResponse("/admin/people", status_code=303)


routes = [
    Route("/admin/people", people, name="admin_people"),
    Route("/admin/people/{account}/role", set_role, methods=["POST"], name="admin_set_role"),
]
