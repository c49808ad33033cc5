"""Sign-up, log-in, log-out and the profile page."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from catalogue.errors import N_, InvalidFields
from instance import accounts
from instance.forms import field_errors, read_form
from instance.http import client_address, safe_next
from instance.i18n import gettext as _
from instance.i18n import ngettext
from instance.memberships import organisations_of
from instance.sessions import current_account, flash, log_in, log_out, require_account
from instance.templating import render


def _signup_open(request: Request) -> bool:
    return bool(request.app.state.settings.accounts.signup_open)


async def signup(request: Request) -> Response:
    if not _signup_open(request):
        raise HTTPException(
            403, N_("Sign-up is closed on this instance; ask an admin for an account.")
        )
    if request.method == "GET":
        async with request.app.state.db.session() as session:
            await current_account(request, session)
        return render(request, "accounts/signup.html")
    form = await read_form(request)
    async with request.app.state.db.session() as session:
        try:
            account = await accounts.sign_up(
                session,
                form.get("email", ""),
                form.get("password", ""),
                form.get("display_name", ""),
            )
        except InvalidFields as error:
            form.pop("password", None)
            return render(
                request,
                "accounts/signup.html",
                {"errors": field_errors(error), "values": form},
                status_code=422,
            )
        language = request.session.get("lang")
        if language:
            account.locale = language
        await session.commit()
    log_in(request, account)
    flash(request, _("Welcome, %(name)s! Your account is ready.", name=account.display_name))
    return RedirectResponse("/account", status_code=303)


async def login(request: Request) -> Response:
    settings = request.app.state.settings
    if request.method == "GET":
        async with request.app.state.db.session() as session:
            await current_account(request, session)
        return render(
            request,
            "accounts/login.html",
            {"next": safe_next(request.query_params.get("next"), "/account")},
        )
    form = await read_form(request)
    target = safe_next(form.get("next"), "/account")
    async with request.app.state.db.session() as session:
        try:
            account = await accounts.authenticate(
                session,
                form.get("email", ""),
                form.get("password", ""),
                client_address(request),
                max_failures=settings.limits.login_attempts,
                window_seconds=settings.limits.login_window_seconds,
            )
        except accounts.TooManyAttempts as error:
            minutes = max(1, (error.retry_after + 59) // 60)
            message = ngettext(
                "Too many failed attempts. Try again in %(num)d minute.",
                "Too many failed attempts. Try again in %(num)d minutes.",
                minutes,
            )
            response = render(
                request,
                "accounts/login.html",
                {
                    "errors": {"form": message},
                    "values": {"email": form.get("email", "")},
                    "next": target,
                },
                status_code=429,
            )
            response.headers["retry-after"] = str(error.retry_after)
            return response
    if account is None:
        return render(
            request,
            "accounts/login.html",
            {
                "errors": {"form": _("Wrong email address or password.")},
                "values": {"email": form.get("email", "")},
                "next": target,
            },
            status_code=401,
        )
    log_in(request, account)
    if account.locale:
        request.session["lang"] = account.locale
    return RedirectResponse(target, status_code=303)


async def logout(request: Request) -> Response:
    await read_form(request)
    log_out(request)
    flash(request, _("You are logged out."))
    return RedirectResponse("/", status_code=303)


async def profile(request: Request) -> Response:
    async with request.app.state.db.session() as session:
        account = await require_account(request, session)
        errors: dict[str, str] = {}
        values: dict[str, str] = {}
        status = 200
        if request.method == "POST":
            form = await read_form(request)
            values = form
            name = form.get("display_name", "").strip()
            if not name or len(name) > 100:
                errors["display_name"] = _(
                    "Give the name others will see (at most 100 characters)."
                )
                status = 422
            else:
                account.display_name = name
                session.add(account)
                await session.commit()
                flash(request, _("Your profile is saved."))
                return RedirectResponse("/account", status_code=303)
        memberships = await organisations_of(session, account)
    return render(
        request,
        "accounts/profile.html",
        {"memberships": memberships, "errors": errors, "values": values},
        status_code=status,
    )


async def change_password(request: Request) -> Response:
    form = await read_form(request)
    async with request.app.state.db.session() as session:
        account = await require_account(request, session)
        try:
            await accounts.change_password(
                session, account, form.get("current_password", ""), form.get("new_password", "")
            )
        except InvalidFields as error:
            memberships = await organisations_of(session, account)
            return render(
                request,
                "accounts/profile.html",
                {"memberships": memberships, "password_errors": field_errors(error)},
                status_code=422,
            )
    log_in(request, account)  # this session stays valid; every other one is logged out
    flash(request, _("Your password is changed. Other sessions are logged out."))
    return RedirectResponse("/account", status_code=303)


routes = [
    Route("/signup", signup, methods=["GET", "POST"], name="signup"),
    Route("/login", login, methods=["GET", "POST"], name="login"),
    Route("/logout", logout, methods=["POST"], name="logout"),
    Route("/account", profile, methods=["GET", "POST"], name="profile"),
    Route("/account/password", change_password, methods=["POST"], name="change_password"),
]
