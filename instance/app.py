"""``create_app(settings)``: the Starlette application with its middleware and routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from catalogue.funding import FundingSource
from instance import i18n
from instance.config import Settings
from instance.database import Database, check_migrated
from instance.errors import EXCEPTION_HANDLERS, RefuseNulInAddress
from instance.federating import federation_for, worker_beside
from instance.observability import Metrics, RequestObserver, configure_logging
from instance.outgoing import announce_unsent_improvements
from instance.security import BodySizeLimit, SecurityHeaders
from instance.templating import make_environment
from instance.views import (
    accounts,
    activitypub,
    admin,
    api,
    commons,
    federation_admin,
    feeds,
    home,
    improvements,
    inbox,
    organisations,
    pledges,
    programs,
    vocabulary,
)
from pledges.funding import LedgerFunding

STATIC = Path(__file__).parent / "static"
SESSION_COOKIE = "terreau_session"


class RequestLanguage:
    """Picks the language of each request (after the session is decoded) and activates it."""

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.settings = settings.instance

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            session = scope.get("session") or {}
            headers = dict(scope.get("headers", []))
            i18n.activate(
                i18n.choose_language(
                    session.get("lang"),
                    headers.get(b"accept-language", b"").decode("latin-1"),
                    self.settings.languages,
                    self.settings.default_language,
                )
            )
        await self.app(scope, receive, send)


def create_app(
    settings: Settings, *, http_transport: httpx.AsyncBaseTransport | None = None
) -> Starlette:
    """The application; ``http_transport`` replaces the network for outgoing requests (tests
    route them to other in-process instances)."""
    configure_logging(settings.logging)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        database = Database(settings.database.url, settings.database.pool_size)
        try:
            await check_migrated(database.engine)
        except BaseException:
            await database.dispose()
            raise
        app.state.db = database
        async with federation_for(settings, database, http_transport) as federation:
            # Before the worker starts: on SQLite its passes would wait for this transaction.
            await announce_unsent_improvements(federation, settings)
            async with worker_beside(federation, settings) as worker:
                app.state.federation = federation
                app.state.worker = worker
                yield
        await database.dispose()

    routes = [
        # First: other servers POST to the inboxes more often than people load pages, and
        # Starlette tries routes in order (78 others before it cost 0.14 ms a request). No
        # other route takes an inbox's path and method, so the order changes no answer.
        *inbox.routes,
        *home.routes,
        *accounts.routes,
        *organisations.routes,
        *admin.routes,
        *federation_admin.routes,
        *commons.routes,
        *improvements.routes,
        *pledges.routes,
        *programs.routes,
        *feeds.routes,
        *api.routes,
        *activitypub.routes,
        *vocabulary.routes,
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
        middleware=[
            Middleware(RequestObserver, metrics=metrics),
            Middleware(SecurityHeaders, https=settings.instance.https),
            Middleware(BodySizeLimit, limit=settings.limits.max_body_bytes),
            Middleware(
                SessionMiddleware,
                secret_key=settings.instance.secret_key,
                session_cookie=SESSION_COOKIE,
                https_only=settings.instance.https,
                same_site="lax",
                max_age=14 * 24 * 3600,
            ),
            Middleware(RequestLanguage, settings=settings),
            activitypub.negotiation(settings),
            Middleware(RefuseNulInAddress),
        ],
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.templates = make_environment(settings)
    # Where the catalogue's funding totals come from: live pledges and current matches.
    funding: FundingSource = LedgerFunding()
    app.state.funding = funding
    return app
