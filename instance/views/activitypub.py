"""ActivityPub's read side: actors, WebFinger, host-meta, NodeInfo, outboxes, followers.

``routes`` are plain routes; ``negotiated`` holds routes for paths that also have an HTML page
(``/orgs/{slug}``, ``/commons/{slug}``): the ``ActivityNegotiation`` middleware sends a request
there when its Accept header asks for ActivityStreams. Those are called outside the router's
exception handling, so every view here answers its errors itself, as JSON with a reason.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from http import HTTPStatus
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from catalogue.columns import utcnow
from catalogue.commons import Commons
from catalogue.improvements import Improvement, ImprovementStatus
from federation import collections, discovery
from federation.actors import actor_document, local_actor, local_actor_by_username
from federation.context import FederationConfig
from federation.improvements_feed import current_article
from federation.keys import key_for
from federation.matches_feed import current_match, ever_matched
from federation.media import ACTIVITY_JSON, AS_CONTEXT
from federation.service import Federation
from federation.vocabulary import context_url
from instance.accounts import Account
from instance.config import Settings
from instance.negotiation import ActivityNegotiation
from instance.summary_line import summary_writer

CORS = {"Access-Control-Allow-Origin": "*"}
FEDERATION_OFF = "this instance does not federate"
# The instance publishes Atom feeds (instance/views/feeds.py).
OUTBOUND_SERVICES = ("atom1.0",)
Endpoint = Callable[[Request], Awaitable[Response]]
ActorUri = Callable[[FederationConfig, Request], str]


def _federation(request: Request) -> Federation | None:
    """The federation, or None when the instance does not federate (every route is then 404)."""
    if not request.app.state.settings.federation.enabled:
        return None
    federation: Federation = request.app.state.federation
    return federation


def refusal(status: int, reason: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON error shape of instance/errors.py, which cannot reach the negotiated views."""
    return JSONResponse(
        {"error": HTTPStatus(status).phrase, "detail": reason}, status, headers=headers
    )


def activity_json(document: dict[str, Any]) -> JSONResponse:
    return JSONResponse(document, media_type=ACTIVITY_JSON)


# Which actor a path names: the same URIs the rows keep (see federation.actors).


def _instance_uri(config: FederationConfig, request: Request) -> str:
    return config.instance_actor_uri


def _organisation_uri(config: FederationConfig, request: Request) -> str:
    return f"{config.base_url}/orgs/{request.path_params['slug']}"


def _commons_uri(config: FederationConfig, request: Request) -> str:
    return f"{config.base_url}/commons/{request.path_params['slug']}"


def actor_view(uri_of: ActorUri) -> Endpoint:
    async def view(request: Request) -> Response:
        federation = _federation(request)
        if federation is None:
            return refusal(404, FEDERATION_OFF)
        config = federation.config
        async with federation.sessions() as session:
            actor = await local_actor(session, config, uri_of(config, request))
            if actor is None:
                return refusal(404, "no such actor here")
            key = await key_for(session, actor.uri)
            await session.commit()  # keys made on this first request are kept
        return activity_json(actor_document(actor, key, config))

    return view


async def article_view(request: Request) -> Response:
    """An improvement's Article at its own address (its id), as it reads now: what a server
    fetching the id gets, a Mastodon search for the address included."""
    federation = _federation(request)
    if federation is None:
        return refusal(404, FEDERATION_OFF)
    uri = f"{federation.config.base_url}{request.url.path}"
    describe = summary_writer(request.app.state.settings.instance.default_language)
    async with federation.sessions() as session:
        found = (
            await session.exec(
                select(Improvement, Commons)
                .join(Commons, col(Commons.id) == col(Improvement.commons_id))
                .where(Improvement.uri == uri)
            )
        ).first()
        article = await current_article(session, describe, *found) if found else None
    if article is None:
        return refusal(404, "no such improvement here")
    context: list[Any] = [AS_CONTEXT, context_url(federation.config)]
    return activity_json({"@context": context, **article})


async def match_view(request: Request) -> Response:
    """A funder's match at its id, as it stands: what a server fetching it gets (410 once
    released, 404 when never made)."""
    federation = _federation(request)
    if federation is None:
        return refusal(404, FEDERATION_OFF)
    try:
        program, pledge = int(request.path_params["program"]), int(request.path_params["pledge"])
    except ValueError:
        return refusal(404, "no such match here")
    async with federation.sessions() as session:
        document = await current_match(session, federation, program, pledge)
        ever = await ever_matched(session, program, pledge)
    if document is None and ever:
        return refusal(410, "this match was released")
    if document is None:
        return refusal(404, "no such match here")
    context: list[Any] = [AS_CONTEXT, context_url(federation.config)]
    return activity_json({"@context": context, **document})


CollectionOf = Callable[[AsyncSession, str, str, int | None], Awaitable[dict[str, Any]]]


def collection_view(uri_of: ActorUri, suffix: str, build: CollectionOf) -> Endpoint:
    """An actor's outbox or followers, or one page of it (``?page=N``)."""

    async def view(request: Request) -> Response:
        federation = _federation(request)
        if federation is None:
            return refusal(404, FEDERATION_OFF)
        try:
            page = collections.parse_page(request.query_params.get("page"))
        except collections.BadPage as error:
            return refusal(400, str(error))
        config = federation.config
        async with federation.sessions() as session:
            actor = await local_actor(session, config, uri_of(config, request))
            if actor is None:
                return refusal(404, "no such actor here")
            document = await build(session, actor.uri, f"{actor.uri}/{suffix}", page)
        return activity_json(document)

    return view


# Discovery.


async def webfinger(request: Request) -> Response:
    federation = _federation(request)
    if federation is None:
        return refusal(404, FEDERATION_OFF, CORS)
    config = federation.config
    try:
        wanted = discovery.parse_resource(request.query_params.get("resource"), config)
    except discovery.BadResource as error:
        return refusal(400, str(error), CORS)
    except discovery.ForeignResource:
        return refusal(404, f"this server only answers for {config.domain}", CORS)
    async with federation.sessions() as session:
        if wanted.username is not None:
            actor = await local_actor_by_username(session, config, wanted.username)
        else:
            actor = await local_actor(session, config, wanted.uri or "")
    if actor is None:
        return refusal(404, "no such actor here", CORS)
    return JSONResponse(
        discovery.webfinger(actor, config), media_type=discovery.JRD_JSON, headers=CORS
    )


async def host_meta(request: Request) -> Response:
    federation = _federation(request)
    if federation is None:
        return refusal(404, FEDERATION_OFF, CORS)
    return Response(
        discovery.host_meta(federation.config),
        media_type=f"{discovery.XRD_XML}; charset=utf-8",
        headers=CORS,
    )


async def nodeinfo_links(request: Request) -> Response:
    federation = _federation(request)
    if federation is None:
        return refusal(404, FEDERATION_OFF, CORS)
    return JSONResponse(discovery.nodeinfo_links(federation.config), headers=CORS)


async def _count(session: AsyncSession, query: Any) -> int:
    return int((await session.exec(query)).one())


async def usage(session: AsyncSession) -> discovery.Usage:
    """NodeInfo's figures; a "post" is a visible local commons or a published improvement."""
    now = utcnow()
    accounts = select(func.count()).select_from(Account)
    logged_in = col(Account.last_login_at)
    visible = (
        col(Commons.origin).is_(None),
        col(Commons.hidden).is_(False),
        col(Commons.merged_into_id).is_(None),
    )
    improvements = (
        select(func.count())
        .select_from(Improvement)
        .join(Commons, col(Commons.id) == col(Improvement.commons_id))
        .where(*visible, Improvement.status != ImprovementStatus.DRAFT)
    )
    return discovery.Usage(
        users=await _count(session, accounts),
        active_month=await _count(session, accounts.where(logged_in >= now - timedelta(30))),
        active_halfyear=await _count(session, accounts.where(logged_in >= now - timedelta(180))),
        local_posts=await _count(session, select(func.count()).select_from(Commons).where(*visible))
        + await _count(session, improvements),
    )


async def nodeinfo(request: Request) -> Response:
    federation = _federation(request)
    if federation is None:
        return refusal(404, FEDERATION_OFF, CORS)
    async with federation.sessions() as session:
        figures = await usage(session)
    document = discovery.nodeinfo(federation.config, figures, outbound=OUTBOUND_SERVICES)
    return JSONResponse(document, media_type=discovery.NODEINFO_JSON, headers=CORS)


def _actor_collections(prefix: str, uri_of: ActorUri, name: str) -> list[BaseRoute]:
    return [
        Route(
            f"{prefix}/outbox",
            collection_view(uri_of, "outbox", collections.outbox),
            name=f"{name}_outbox",
        ),
        Route(
            f"{prefix}/followers",
            collection_view(uri_of, "followers", collections.followers),
            name=f"{name}_followers",
        ),
    ]


routes: list[BaseRoute] = [
    Route("/.well-known/webfinger", webfinger, name="webfinger"),
    Route("/.well-known/host-meta", host_meta, name="host_meta"),
    Route("/.well-known/nodeinfo", nodeinfo_links, name="nodeinfo_links"),
    Route("/nodeinfo/2.1", nodeinfo, name="nodeinfo"),
    Route("/actor", actor_view(_instance_uri), name="instance_actor"),
    *_actor_collections("/actor", _instance_uri, "instance"),
    *_actor_collections("/orgs/{slug}", _organisation_uri, "organisation"),
    *_actor_collections("/commons/{slug}", _commons_uri, "commons"),
]
negotiated: list[BaseRoute] = [
    Route("/orgs/{slug}", actor_view(_organisation_uri), name="organisation_actor"),
    Route("/commons/{slug}", actor_view(_commons_uri), name="commons_actor"),
    Route("/commons/{slug}/improvements/{number}", article_view, name="improvement_article"),
    Route("/programs/{program}/matches/{pledge}", match_view, name="match_document"),
]


def negotiation(settings: Settings) -> Middleware:
    """The middleware that hands ``negotiated`` the requests asking for ActivityStreams."""
    return Middleware(ActivityNegotiation, routes=negotiated, enabled=settings.federation.enabled)
