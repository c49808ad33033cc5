"""Error responses: an HTML page for people, JSON for programs, never a traceback."""

from __future__ import annotations

import logging
from http import HTTPStatus
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from catalogue.errors import N_
from instance.http import wants_json
from instance.i18n import gettext
from instance.sessions import LoginRequired
from instance.templating import render

logger = logging.getLogger("terreau.errors")

TITLES = {
    400: N_("Bad request"),
    401: N_("Please log in"),
    403: N_("Not allowed"),
    404: N_("Page not found"),
    405: N_("Method not allowed"),
    409: N_("Conflict"),
    413: N_("Request too large"),
    415: N_("Unsupported content"),
    429: N_("Too many attempts"),
    500: N_("Something went wrong"),
    503: N_("Unavailable"),
}


def error_response(request: Request, status: int, detail: str | None) -> Response:
    title = TITLES.get(status, HTTPStatus(status).phrase)
    if wants_json(request):
        return JSONResponse({"error": HTTPStatus(status).phrase, "detail": detail or title}, status)
    context = {
        "status": status,
        "title": gettext(title),
        "detail": gettext(detail) if detail else "",
    }
    try:
        return render(request, "error.html", context, status_code=status)
    except Exception:  # the error page itself must never fail: fall back to plain text
        logger.exception("could not render the error page")
        return Response(f"{status} {title}\n{detail or ''}", status, media_type="text/plain")


async def http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if exc.detail != HTTPStatus(exc.status_code).phrase else None
    response = error_response(request, exc.status_code, detail)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def login_required(request: Request, exc: Exception) -> Response:
    if wants_json(request) or request.method != "GET":
        return error_response(request, 401, N_("Log in to do this."))
    return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)


async def server_error(request: Request, exc: Exception) -> Response:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(request, 500, N_("The error was logged; please try again later."))


class RefuseNulInAddress:
    """Answers 400 to an address holding a NUL character (``%00``). No page has one, and
    PostgreSQL refuses NUL in text: a slug or a search term with one failed as a 500.

    Placed after the session and language middleware, so the error page reads as any other.
    The API is left to itself: it checks its parameters and answers in the JSON its OpenAPI
    document describes (a 404 for such a slug, a 400 naming such a parameter).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and not scope["path"].startswith("/api/")
            and ("\x00" in scope["path"] or b"%00" in scope.get("query_string", b""))
        ):
            request = Request(scope, receive)
            detail = N_("The address holds a NUL character.")
            await error_response(request, 400, detail)(scope, receive, send)
            return
        await self.app(scope, receive, send)


EXCEPTION_HANDLERS = {
    HTTPException: http_exception,
    LoginRequired: login_required,
    500: server_error,
}
