"""ActivityPub's write side: the shared inbox and each local actor's inbox, and our activities.

The checks themselves live in ``federation.inbox``; this only turns a request into its call
and a refusal into a status with its reason, logged, as the issue asks.
"""

from __future__ import annotations

import logging

from sqlmodel import select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from catalogue.columns import utcnow
from federation.actors import local_actor
from federation.inbox import Refused, receive
from federation.media import ACTIVITY_JSON
from federation.models import OutboxActivity
from federation.service import Federation
from instance.http import client_address
from instance.outgoing import wake_worker

log = logging.getLogger("terreau.federation.inbox")


def _federation(request: Request) -> Federation | None:
    if not request.app.state.settings.federation.enabled:
        return None
    federation: Federation = request.app.state.federation
    return federation


def _signed_url(federation: Federation, request: Request) -> str:
    """The URL the sender signed: our public base URL, whatever proxy stands in front."""
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{federation.config.base_url}{request.url.path}{query}"


async def _recipient(federation: Federation, request: Request) -> str | None:
    """The local actor whose inbox this is (None for the shared inbox); 404 when unknown."""
    path = request.url.path.removesuffix("/inbox")
    if not path:
        return None
    uri = f"{federation.config.base_url}{path}"
    async with federation.sessions() as session:
        actor = await local_actor(session, federation.config, uri)
    if actor is None:
        raise Refused(404, "no such actor here")
    return actor.uri


async def inbox(request: Request) -> Response:
    federation = _federation(request)
    if federation is None:
        return JSONResponse({"error": "federation is off on this instance"}, 404)
    body = await request.body()
    try:
        recipient = await _recipient(federation, request)
        received = await receive(
            federation,
            method=request.method,
            url=_signed_url(federation, request),
            headers=request.headers,
            body=body,
            recipient_uri=recipient,
            now=utcnow(),
        )
    except Refused as refusal:
        log.warning(
            "refused %s from %s: %s %s",
            request.url.path,
            client_address(request),
            refusal.status,
            refusal.reason,
        )
        return JSONResponse({"error": refusal.reason}, refusal.status)
    if received.item_id is not None:
        wake_worker(request)
    return JSONResponse({"status": received.reason}, received.status)


async def activity_page(request: Request) -> Response:
    """An activity we published, by its id (public ones only)."""
    federation = _federation(request)
    if federation is None:
        return JSONResponse({"error": "federation is off on this instance"}, 404)
    uri = f"{federation.config.base_url}/activities/{request.path_params['key']}"
    async with federation.sessions() as session:
        row = (await session.exec(select(OutboxActivity).where(OutboxActivity.uri == uri))).first()
    if row is None or not row.public:
        return JSONResponse({"error": "no such public activity"}, 404)
    return Response(row.body, media_type=ACTIVITY_JSON)


routes: list[BaseRoute] = [
    Route("/inbox", inbox, methods=["POST"], name="shared_inbox"),
    Route("/actor/inbox", inbox, methods=["POST"], name="instance_inbox"),
    Route("/orgs/{slug}/inbox", inbox, methods=["POST"], name="organisation_inbox"),
    Route("/commons/{slug}/inbox", inbox, methods=["POST"], name="commons_inbox"),
    Route("/activities/{key}", activity_page, name="activity"),
]
