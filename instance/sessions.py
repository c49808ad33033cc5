"""Who is logged in: the signed session cookie maps to an account, checked on every request."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.exceptions import HTTPException
from starlette.requests import Request

from catalogue.errors import N_
from instance.accounts import Account


class LoginRequired(Exception):
    """Raised by views that need an account; HTML clients are sent to the log-in page."""


async def current_account(request: Request, session: AsyncSession) -> Account | None:
    if "account" in request.scope.get("state", {}):
        return request.state.account
    account = None
    account_id = request.session.get("account_id")
    if isinstance(account_id, int):
        account = await session.get(Account, account_id)
        if account is not None and request.session.get("v") != account.session_version:
            account = None  # the password changed since this session logged in
    request.state.account = account
    return account


async def require_account(request: Request, session: AsyncSession) -> Account:
    account = await current_account(request, session)
    if account is None:
        raise LoginRequired
    return account


async def require_admin(request: Request, session: AsyncSession) -> Account:
    account = await require_account(request, session)
    if not account.is_admin:
        raise HTTPException(403, N_("Only instance admins may do this."))
    return account


def log_in(request: Request, account: Account) -> None:
    """Start a fresh session (a new CSRF token, no fixation), keeping the chosen language."""
    language = request.session.get("lang")
    request.session.clear()
    request.session.update({"account_id": account.id, "v": account.session_version})
    if language:
        request.session["lang"] = language
    request.state.account = account


def log_out(request: Request) -> None:
    language = request.session.get("lang")
    request.session.clear()
    if language:
        request.session["lang"] = language
    request.state.account = None


def flash(request: Request, message: str) -> None:
    """A one-time message for the next page (already translated)."""
    request.session.setdefault("flash", []).append(message)
