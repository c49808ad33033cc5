"""The home page, the language switch, and the probes operators point at the instance."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from catalogue.commons import Commons
from catalogue.declarations import Declaration, DeclarationKind
from catalogue.improvements import Improvement, ImprovementStatus
from catalogue.organisations import Organisation
from catalogue.queries import open_improvements, tags_of, visible
from instance.forms import read_form
from instance.http import safe_next
from instance.observability import metrics_endpoint
from instance.sessions import current_account
from instance.templating import render

NEWEST = 6
OPEN_SHOWN = 6


async def home(request: Request) -> Response:
    """The figures, the improvements open for funding and the newest commons."""
    async with request.app.state.db.session() as session:
        await current_account(request, session)
        figures = {
            "commons_count": await _count(session, select(func.count()).where(visible())),
            "organisation_count": await _count(
                session,
                select(func.count())
                .select_from(Organisation)
                .where(col(Organisation.origin).is_(None)),
            ),
            "uses_count": await _count(
                session,
                select(func.count()).where(
                    Declaration.kind == DeclarationKind.USES,
                    col(Declaration.withdrawn_at).is_(None),
                ),
            ),
            "open_count": await _count(
                session,
                select(func.count())
                .select_from(Improvement)
                .join(Commons, col(Commons.id) == col(Improvement.commons_id))
                .where(Improvement.status == ImprovementStatus.OPEN, visible()),
            ),
        }
        newest = (
            await session.exec(
                select(Commons)
                .where(visible())
                .order_by(col(Commons.created_at).desc(), col(Commons.id).desc())
                .limit(NEWEST)
            )
        ).all()
        tags = await tags_of(session, [c.id for c in newest if c.id is not None])
        needs = await open_improvements(session, request.app.state.funding, limit=OPEN_SHOWN)
    return render(
        request,
        "home.html",
        {
            **figures,
            "newest": newest,
            "tags": tags,
            "open_improvements": needs,
        },
    )


async def _count(session: AsyncSession, query: Any) -> int:
    return int((await session.exec(query)).one())


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
