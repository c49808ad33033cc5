"""Remote actors and their keys: fetched with a signed GET, cached, re-fetched on rotation.

A failed fetch is remembered for ``failed_fetch_seconds``: until then the same URI fails at once,
without a request, so a flood of activities from a gone actor is not a flood of fetches.

Rows are written with upserts: two activities from a new actor may arrive at the same moment,
and the second must not fail on the unique ``uri`` (the inbox would take it for a duplicate).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urldefrag

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from catalogue.columns import utcnow
from federation.context import FederationConfig
from federation.fetch import Fetched, Fetcher, FetchError
from federation.instances import host_of
from federation.keys import Signer
from federation.models import FetchFailure, Follower, Following, RemoteActor
from federation.organisation_documents import BadOrganisation, organisation_fields

# --- Reading an actor document (pure) ---------------------------------------------------------


@dataclass(frozen=True)
class ActorFields:
    """What we keep of an actor document, checked, in the columns of ``remote_actor``."""

    uri: str
    host: str
    type: str
    preferred_username: str
    name: str
    url: str
    inbox: str
    shared_inbox: str | None
    key_id: str
    public_key_pem: str
    document: str


def _http_uri(value: Any) -> str | None:
    if isinstance(value, str) and value.startswith(("https://", "http://")) and host_of(value):
        return value if len(value) <= 2048 else None
    return None


def _text(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _first_href(value: Any) -> str:
    """``url`` is a string, a Link, or a list of either: the first usable address."""
    for item in value if isinstance(value, list) else [value]:
        href = item.get("href") if isinstance(item, dict) else item
        if _http_uri(href):
            return str(href)
    return ""


def _public_key(document: dict[str, Any], actor_uri: str) -> tuple[str, str]:
    """(key id, PEM) of the actor's ``publicKey``, whose ``owner`` must be the actor itself:
    otherwise an actor could present someone else's key as its own."""
    key = document.get("publicKey")
    if isinstance(key, list):  # a few servers list several keys: the first one is the main
        key = next((item for item in key if isinstance(item, dict)), None)
    if key is None:
        return "", ""
    if not isinstance(key, dict):
        raise ValueError("publicKey is not an object")
    key_id, owner, pem = key.get("id"), key.get("owner"), key.get("publicKeyPem")
    if owner != actor_uri:
        raise ValueError("the key's owner is not the actor")
    if not (_http_uri(key_id) and isinstance(pem, str) and pem.strip()):
        raise ValueError("publicKey needs an id and a publicKeyPem")
    return str(key_id), pem


def parse_actor(document: dict[str, Any], asked: str, served_from: str) -> ActorFields:
    """The actor in ``document`` fetched for ``asked`` and served from ``served_from`` (after
    redirects); raises ValueError. The document may only speak for its own origin: its ``id``
    is the address it came from, or on the same host as the one we asked for."""
    actor_uri = _http_uri(document.get("id"))
    if actor_uri is None:
        raise ValueError("the actor has no id")
    if actor_uri != served_from and host_of(actor_uri) != host_of(asked):
        raise ValueError(f"the actor's id {actor_uri} is not on the host asked ({asked})")
    inbox = _http_uri(document.get("inbox"))
    if inbox is None:
        raise ValueError("the actor has no inbox")
    endpoints = document.get("endpoints")
    shared_inbox = _http_uri(endpoints.get("sharedInbox")) if isinstance(endpoints, dict) else None
    key_id, pem = _public_key(document, actor_uri)
    return ActorFields(
        uri=actor_uri,
        host=host_of(actor_uri),
        type=_text(document.get("type"), 50) or "Person",
        preferred_username=_text(document.get("preferredUsername"), 255),
        name=_text(document.get("name"), 500),
        url=_first_href(document.get("url")),
        inbox=inbox,
        shared_inbox=shared_inbox,
        key_id=key_id,
        public_key_pem=pem,
        document=json.dumps(document, ensure_ascii=False),
    )


# --- Storage --------------------------------------------------------------------------------------


def _upsert(session: AsyncSession, model: type[SQLModel], values: dict[str, Any]) -> Any:
    """``INSERT … ON CONFLICT (uri) DO UPDATE``: a concurrent writer's row is overwritten,
    never a unique-constraint failure (and no SAVEPOINT, which the sqlite3 driver mishandles)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(model).values(**values)
    changes = {name: statement.excluded[name] for name in values if name != "uri"}
    return statement.on_conflict_do_update(index_elements=["uri"], set_=changes)


async def _cached(session: AsyncSession, uri: str) -> RemoteActor | None:
    query = select(RemoteActor).where(RemoteActor.uri == uri)
    # A row another statement changed must not be answered from the session's identity map.
    result = await session.exec(query.execution_options(populate_existing=True))
    return result.first()


async def _store(session: AsyncSession, fields: ActorFields, now: datetime) -> RemoteActor:
    await session.exec(_upsert(session, RemoteActor, {**asdict(fields), "fetched_at": now}))
    stored = await _cached(session, fields.uri)
    if stored is None:  # pragma: no cover - the row was just written
        raise RuntimeError(f"remote actor {fields.uri} was not stored")
    return stored


async def _recent_failure(session: AsyncSession, uri: str, now: datetime) -> FetchFailure | None:
    query = select(FetchFailure).where(FetchFailure.uri == uri, col(FetchFailure.retry_after) > now)
    return (await session.exec(query)).first()


async def _remember_failure(
    session: AsyncSession, config: FederationConfig, uri: str, reason: str, now: datetime
) -> None:
    retry_after = now + timedelta(seconds=config.failed_fetch_seconds)
    values = {"uri": uri, "reason": reason[:500], "failed_at": now, "retry_after": retry_after}
    await session.exec(_upsert(session, FetchFailure, values))


async def _forget_failure(session: AsyncSession, uri: str) -> None:
    await session.exec(delete(FetchFailure).where(col(FetchFailure.uri) == uri))


def _fresh(actor: RemoteActor, config: FederationConfig, now: datetime) -> bool:
    return now - actor.fetched_at < timedelta(seconds=config.actor_cache_seconds)


# --- Fetching -------------------------------------------------------------------------------------


async def _fetch_remembering_failure(
    session: AsyncSession,
    fetcher: Fetcher,
    config: FederationConfig,
    uri: str,
    signer: Signer,
    now: datetime,
) -> Fetched:
    """A signed fetch of ``uri``; none while an earlier failure is remembered, and a new
    failure is remembered (in the caller's transaction: the caller commits it)."""
    failure = await _recent_failure(session, uri, now)
    if failure is not None:
        raise FetchError(
            uri, f"failed recently ({failure.reason}); retry after {failure.retry_after}"
        )
    try:
        return await fetcher.fetch(uri, signer=signer)
    except FetchError as error:
        await _remember_failure(session, config, uri, error.reason, now)
        raise


async def _actor(
    session: AsyncSession,
    fetcher: Fetcher,
    config: FederationConfig,
    uri: str,
    signer: Signer,
    refresh: bool,
) -> tuple[RemoteActor, bool]:
    """The actor, and whether it was fetched just now (rather than read from the cache)."""
    now = utcnow()
    cached = await _cached(session, uri)
    if cached is not None and not refresh and _fresh(cached, config, now):
        return cached, False
    fetched = await _fetch_remembering_failure(session, fetcher, config, uri, signer, now)
    try:
        fields = parse_actor(fetched.document, uri, fetched.url)
    except ValueError as error:
        await _remember_failure(session, config, uri, str(error), now)
        raise FetchError(uri, str(error)) from None
    await _forget_failure(session, uri)
    return await _store(session, fields, now), True


async def get_remote_actor(
    session: AsyncSession,
    fetcher: Fetcher,
    config: FederationConfig,
    uri: str,
    *,
    signer: Signer,
    refresh: bool = False,
) -> RemoteActor:
    """The actor from the cache while fresh, else fetched and stored; raises FetchError (also
    straight away, without a request, while a recent failure for this URI is remembered)."""
    actor, _ = await _actor(session, fetcher, config, uri, signer, refresh)
    return actor


async def _cached_key(
    session: AsyncSession, config: FederationConfig, key_id: str
) -> tuple[str, str] | None:
    # Any actor may name any key id in its document; only one on the key's host is believed.
    query = select(RemoteActor).where(
        RemoteActor.key_id == key_id, RemoteActor.host == host_of(key_id)
    )
    actor = (await session.exec(query)).first()
    if actor is None or not actor.public_key_pem or not _fresh(actor, config, utcnow()):
        return None
    return actor.public_key_pem, actor.uri


async def _key_owner(
    session: AsyncSession, fetcher: Fetcher, config: FederationConfig, key_id: str, signer: Signer
) -> str | None:
    """The actor a fragment-less key id belongs to, as its own document says (``owner``, or
    the ``publicKey`` of the actor-shaped document some servers serve there)."""
    fetched = await _fetch_remembering_failure(session, fetcher, config, key_id, signer, utcnow())
    document = fetched.document
    key = document.get("publicKey")
    owner = key.get("owner") if isinstance(key, dict) else document.get("owner")
    return _http_uri(owner)


async def lookup_key(
    session: AsyncSession,
    fetcher: Fetcher,
    config: FederationConfig,
    key_id: str,
    *,
    signer: Signer,
    refresh: bool = False,
) -> tuple[str, str] | None:
    """(public key PEM, owner actor URI) for a key id such as ``<actor>#main-key``, or None.

    The key counts only when the owner's actor document names it as its ``publicKey``: the key
    document alone cannot make an actor own a key. Raises FetchError when a fetch fails.
    """
    if not refresh:
        cached = await _cached_key(session, config, key_id)
        if cached is not None:
            return cached
    actor_uri, fragment = urldefrag(key_id)
    if not fragment:
        owner = await _key_owner(session, fetcher, config, key_id, signer)
        if owner is None:
            return None
        actor_uri = owner
    actor, fetched_now = await _actor(session, fetcher, config, actor_uri, signer, refresh)
    if actor.key_id != key_id and not fetched_now:
        # Cached, but naming another key: the actor may have rotated to this one.
        actor, _ = await _actor(session, fetcher, config, actor_uri, signer, True)
    if actor.key_id != key_id or not actor.public_key_pem:
        return None
    return actor.public_key_pem, actor.uri


async def forget_actor(session: AsyncSession, uri: str) -> None:
    """Drop a remote actor and what we hold from it (its follows of our actors)."""
    await session.exec(delete(Follower).where(col(Follower.follower_uri) == uri))
    await session.exec(delete(Following).where(col(Following.followed_uri) == uri))
    await session.exec(delete(RemoteActor).where(col(RemoteActor.uri) == uri))


class OrganisationUnreachable(BadOrganisation):
    """The organisation's actor could not be fetched (its server down, a timeout): unlike a
    document that is no organisation, worth trying again later."""


async def remote_organisation(
    session: AsyncSession,
    fetcher: Fetcher,
    config: FederationConfig,
    uri: str,
    *,
    signer: Signer,
    role: str,
) -> tuple[RemoteActor, dict[str, Any]]:
    """The organisation actor at ``uri`` (cached, or fetched) and the columns of its local
    copy (``organisation_fields`` without ``uri``). Raises BadOrganisation naming its
    ``role`` ("declaring", "pledging") when it is no organisation or is served under another
    id, and OrganisationUnreachable (a BadOrganisation) when it cannot be fetched."""
    try:
        actor = await get_remote_actor(session, fetcher, config, uri, signer=signer)
    except FetchError as error:
        raise OrganisationUnreachable(f"the {role} organisation {uri!r}: {error}") from None
    try:
        fields = organisation_fields(json.loads(actor.document))
    except BadOrganisation as error:
        raise BadOrganisation(f"the {role} organisation {uri!r}: {error}") from None
    if fields.pop("uri") != uri:
        raise BadOrganisation(f"the {role} organisation {uri!r} is served under another id")
    return actor, fields
