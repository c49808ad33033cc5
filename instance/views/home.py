"""The home page, the language switch, and the probes operators point at the instance."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from catalogue.organisations import Organisation
from instance.accounts import Account
from instance.forms import read_form
from instance.http import safe_next
from instance.observability import metrics_endpoint
from instance.sessions import current_account
from instance.templating import render


async def home(request: Request) -> Response:
    async with request.app.state.db.session() as session:
        await current_account(request, session)
        organisations = (await session.exec(select(func.count()).select_from(Organisation))).one()
        people = (await session.exec(select(func.count()).select_from(Account))).one()
        newest = (
            await session.exec(
                select(Organisation).order_by(col(Organisation.created_at).desc()).limit(6)
            )
        ).all()
    return render(
        request,
        "home.html",
        {"organisation_count": organisations, "people_count": people, "newest": newest},
    )


async def switch_language(request: Request) -> Response:
    """Remember the reader's language: in the session, and on their account if logged in."""
    form = await read_form(request)
    language = form.get("lang", "")
    settings = request.app.state.settings
    if language in settings.instance.languages:
        request.session["lang"] = language
        async with request.app.state.db.session() as session:
            account = await current_account(request, session)
            if account is not None:
                account.locale = language
                session.add(account)
                await session.commit()
    return RedirectResponse(safe_next(form.get("next")), status_code=303)


async def healthz(request: Request) -> Response:
    """Liveness and database reachability, for load balancers and uptime checks."""
    try:
        async with request.app.state.db.session() as session:
            await session.exec(select(1))
    except Exception as error:
        return JSONResponse({"status": "error", "database": type(error).__name__}, 503)
    return JSONResponse({"status": "ok", "database": "ok"})


routes = [
    Route("/", home, name="home"),
    Route("/lang", switch_language, methods=["POST"], name="switch_language"),
    Route("/healthz", healthz, name="healthz"),
    Route("/metrics", metrics_endpoint, name="metrics"),
]
