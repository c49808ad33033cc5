"""The federation admin page: the other servers, what the admins decided about each, and the
delivery queue, with the few actions that mend what went wrong.

Every action reads the form first (so a forged post is refused for its missing token before
anything else is said), then checks the admin role, then changes rows and commits once.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Awaitable, Callable
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from catalogue.errors import N_, InvalidField
from federation import instances, queue
from federation.models import DeliveryState
from instance.federating import federation_config
from instance.forms import read_form
from instance.i18n import error_message, ngettext
from instance.i18n import gettext as _
from instance.sessions import flash, require_admin
from instance.templating import render

PAGE = "/admin/federation"
TEMPLATE = "admin/federation.html"
NOTE_MAX = 500

BAD_HOST = N_(
    "Enter a host name such as social.example, or social.example:8443 with its port; "
    "no https:// and no path."
)
OWN_HOST = N_("This is this instance's own host.")

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_PORT = re.compile(r"[0-9]{1,5}")
#: Federation speaks HTTPS, so ``:443`` names the same server as no port (as ``host_of`` has it).
_DEFAULT_PORT = "443"


# Reading a host name


def _split_port(text: str) -> tuple[str, str | None]:
    """(name, port or None); a bracketed IPv6 address keeps its brackets."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise InvalidField("host", BAD_HOST)
        name, rest = text[: end + 1], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise InvalidField("host", BAD_HOST)
        return name, rest[1:] if rest else None
    name, colon, port = text.partition(":")
    return name, port if colon else None


def _checked_name(name: str) -> str:
    """The name in the form deliveries store it: IDN labels as punycode, IPv6 in brackets."""
    if name.startswith("["):
        try:
            return f"[{ipaddress.IPv6Address(name[1:-1]).compressed}]"
        except ValueError:
            raise InvalidField("host", BAD_HOST) from None
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            raise InvalidField("host", BAD_HOST) from None
    if len(name) > 253 or not _HOST_NAME.fullmatch(name):
        raise InvalidField("host", BAD_HOST)
    return name


def _checked_port(port: str | None) -> str | None:
    if port is None or port == _DEFAULT_PORT:
        return None
    if not _PORT.fullmatch(port) or not 0 < int(port) <= 65535:
        raise InvalidField("host", BAD_HOST)
    return str(int(port))


def parse_host(raw: str, own_host: str) -> str:
    """A host name or host:port as typed by an admin, lower-cased, in the form a delivery's
    ``host`` column holds it, so a block matches the rows it is meant for.

    Anything else (a URL, an address with a user, a path, spaces) is refused rather than
    guessed at: a block that silently matches nothing is worse than an error.
    """
    name, port = _split_port(raw.strip().lower())
    host = _checked_name(name)
    port = _checked_port(port)
    host = f"{host}:{port}" if port else host
    if host == own_host:
        raise InvalidField("host", OWN_HOST)
    return host


# The page


async def _context(request: Request, session: AsyncSession) -> dict[str, Any]:
    settings = request.app.state.settings.federation
    return {
        "instances": await instances.list_instances(session),
        "counts": await queue.state_counts(session),
        "pending": await queue.latest(session, DeliveryState.NEW),
        "failed": await queue.latest(session, DeliveryState.FAILED),
        "gone": await queue.latest(session, DeliveryState.GONE),
        "shown": queue.LATEST,
        "allow_list_only": settings.allow_list_only,
        "federation_enabled": settings.enabled,
        "note_max": NOTE_MAX,
    }


async def page(request: Request) -> Response:
    async with request.app.state.db.session() as session:
        await require_admin(request, session)
        return render(request, TEMPLATE, await _context(request, session))


async def _refused(
    request: Request, session: AsyncSession, form: dict[str, str], error: InvalidField
) -> Response:
    """The page again with the error beside the add-a-host form, which keeps what was typed.

    Nothing was written yet (the host is read before any change), so nothing to roll back.
    """
    context = await _context(request, session)
    errors = {error.field: error_message(error)}
    return render(request, TEMPLATE, {**context, "errors": errors, "values": form}, 422)


def _done(request: Request, message: str) -> Response:
    flash(request, message)
    return RedirectResponse(PAGE, status_code=303)


def _note(form: dict[str, str]) -> str | None:
    """The note, or None to keep the one already written (an empty field clears nothing)."""
    note = form.get("note", "").strip()
    return note[:NOTE_MAX] if note else None


# Decisions about a host

HostAction = Callable[[AsyncSession, str, dict[str, str]], Awaitable[str]]


async def _block(session: AsyncSession, host: str, form: dict[str, str]) -> str:
    closed = await instances.block(session, host, note=_note(form))
    return ngettext(
        "%(host)s is blocked; %(num)d pending delivery to it is closed.",
        "%(host)s is blocked; %(num)d pending deliveries to it are closed.",
        closed,
        host=host,
    )


async def _unblock(session: AsyncSession, host: str, form: dict[str, str]) -> str:
    await instances.unblock(session, host)
    return _("%(host)s is unblocked.", host=host)


async def _allow(session: AsyncSession, host: str, form: dict[str, str]) -> str:
    await instances.allow(session, host, note=_note(form))
    return _("%(host)s is on the allow list.", host=host)


async def _disallow(session: AsyncSession, host: str, form: dict[str, str]) -> str:
    await instances.disallow(session, host)
    return _("%(host)s is off the allow list.", host=host)


def _wake_worker(request: Request) -> None:
    """Let this process's worker send at once; without one, ``terreau worker`` polls soon."""
    worker = getattr(request.app.state, "worker", None)
    if worker is not None:
        worker.wake()


async def _ensure_permitted(request: Request, session: AsyncSession, host: str) -> None:
    """A retry to a host the admins refuse would only fail again: say so instead."""
    config = federation_config(request.app.state.settings)
    if not await instances.may_talk_to(session, config, host):
        raise HTTPException(
            409,
            N_(
                "This host is blocked, or not on the allow list: unblock or allow it "
                "before retrying its deliveries."
            ),
        )


async def _on_host(
    request: Request, form: dict[str, str], action: HostAction, *, retrying: bool = False
) -> Response:
    """Check the role and the host, apply ``action``, commit, and say what was done.

    ``retrying`` actions are refused for a host the admins refuse, and wake the worker.
    """
    own_host = instances.own_host(federation_config(request.app.state.settings))
    async with request.app.state.db.session() as session:
        await require_admin(request, session)
        try:
            host = parse_host(form.get("host", ""), own_host)
        except InvalidField as error:
            return await _refused(request, session, form, error)
        if retrying:
            await _ensure_permitted(request, session, host)
        message = await action(session, host, form)
        await session.commit()
    # The inbox keeps hosts' rows a few seconds: this process's copy of them goes now.
    request.app.state.federation.senders.clear()
    if retrying:
        _wake_worker(request)
    return _done(request, message)


async def block(request: Request) -> Response:
    return await _on_host(request, await read_form(request), _block)


async def unblock(request: Request) -> Response:
    return await _on_host(request, await read_form(request), _unblock)


async def allow(request: Request) -> Response:
    return await _on_host(request, await read_form(request), _allow)


async def disallow(request: Request) -> Response:
    return await _on_host(request, await read_form(request), _disallow)


DECISIONS: dict[str, HostAction] = {"block": _block, "allow": _allow}


async def _decide(session: AsyncSession, host: str, form: dict[str, str]) -> str:
    """The add-a-host form's two buttons: block it, or put it on the allow list."""
    decision = DECISIONS.get(form.get("decision", ""))
    if decision is None:
        raise HTTPException(400, N_("Choose to block or to allow the host."))
    return await decision(session, host, form)


async def add_host(request: Request) -> Response:
    """A host typed by hand, blocked or allowed before it ever speaks to us."""
    return await _on_host(request, await read_form(request), _decide)


# The queue


RETRY_REFUSALS = {
    queue.Retry.MISSING: (404, N_("No such delivery.")),
    queue.Retry.SENT: (409, N_("This delivery was already sent; it is never sent twice.")),
    queue.Retry.IN_FLIGHT: (
        409,
        N_("This delivery is being sent right now; its answer will show here."),
    ),
}


async def retry_delivery(request: Request) -> Response:
    await read_form(request)  # nothing to read but the token, checked there
    async with request.app.state.db.session() as session:
        await require_admin(request, session)
        raw_id = request.path_params["delivery"]
        delivery = await queue.get(session, int(raw_id)) if raw_id.isdigit() else None
        if delivery is None:
            raise HTTPException(404, N_("No such delivery."))
        if delivery.state != DeliveryState.SENT:
            await _ensure_permitted(request, session, delivery.host)
        result = await queue.retry_now(session, delivery.id)
        if result in RETRY_REFUSALS:
            status, detail = RETRY_REFUSALS[result]
            raise HTTPException(status, detail)
        await session.commit()
    _wake_worker(request)
    return _done(request, _("The delivery to %(inbox)s is queued again.", inbox=delivery.inbox))


async def _retry_failed(session: AsyncSession, host: str, form: dict[str, str]) -> str:
    count = await queue.retry_host(session, host)
    return ngettext(
        "%(num)d failed delivery to %(host)s is queued again.",
        "%(num)d failed deliveries to %(host)s are queued again.",
        count,
        host=host,
    )


async def retry_host(request: Request) -> Response:
    return await _on_host(request, await read_form(request), _retry_failed, retrying=True)


routes = [
    Route(PAGE, page, name="admin_federation"),
    Route(f"{PAGE}/hosts", add_host, methods=["POST"], name="admin_federation_add"),
    Route(f"{PAGE}/block", block, methods=["POST"], name="admin_federation_block"),
    Route(f"{PAGE}/unblock", unblock, methods=["POST"], name="admin_federation_unblock"),
    Route(f"{PAGE}/allow", allow, methods=["POST"], name="admin_federation_allow"),
    Route(f"{PAGE}/disallow", disallow, methods=["POST"], name="admin_federation_disallow"),
    Route(f"{PAGE}/retry", retry_host, methods=["POST"], name="admin_federation_retry_host"),
    Route(
        f"{PAGE}/deliveries/{{delivery}}/retry",
        retry_delivery,
        methods=["POST"],
        name="admin_federation_retry",
    ),
]
