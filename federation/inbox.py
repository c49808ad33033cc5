"""Receiving: the checks an incoming activity passes, in order, before it is stored.

The inbox does as little as it safely can: it proves who sent the activity, keeps it, and
answers 202. Its effects run later from the stored row (``federation.handlers``), so a crash
after the 202 loses nothing, and a slow effect never makes a peer's delivery time out.

Order matters and is the issue's: size (the middleware, 413), JSON (400), domain block (403),
signature (401), signer bound to the activity's actor (401), duplicate (202, once), store (202).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, literal
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from catalogue.columns import utcnow
from federation import remote_json
from federation.activities import reference
from federation.context import FederationConfig
from federation.fetch import FetchError
from federation.instances import host_of, permits, seen_recently
from federation.models import InboxState, KnownInstance, RemoteActor
from federation.remote_actors import lookup_key
from federation.service import Federation
from federation.signatures import SignatureError, verify_request

log = logging.getLogger("terreau.federation.inbox")

_INBOX_ITEM = "inbox_item"


class Refused(Exception):
    """An activity the inbox will not take; ``status`` and ``reason`` go back to the sender."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Received:
    status: int  # 202
    reason: str  # "stored", "duplicate", "nothing to delete"
    item_id: int | None = None


def parse_activity(body: bytes) -> dict[str, Any]:
    """The activity as a JSON object with string ``id``, ``type`` and ``actor``; else 400.

    UTF-8 only, as JSON between systems must be: the body is stored as UTF-8 text (from bytes,
    ``json.loads`` would also take UTF-16 or 32, which the store could not decode).
    """
    try:
        activity = remote_json.loads(body.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise Refused(400, f"malformed JSON: {error}") from None
    if not isinstance(activity, dict):
        raise Refused(400, "an activity must be a JSON object")
    for name in ("id", "type"):
        if not isinstance(activity.get(name), str) or not activity[name]:
            raise Refused(400, f"the activity has no {name}")
    actor = reference(activity.get("actor"))
    if not actor:
        raise Refused(400, "the activity has no actor")
    if not actor.startswith(("https://", "http://")):
        raise Refused(400, "the actor is not an http(s) URI")
    if host_of(activity["id"]) != host_of(actor):
        raise Refused(400, "the activity's id is not on its actor's server")
    return activity


@dataclass(frozen=True)
class _Request:
    """One POST to an inbox, as ``receive`` was handed it."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes
    recipient_uri: str | None
    now: datetime


def _cached_key(
    actor: RemoteActor | None, key_id: str, config: FederationConfig
) -> tuple[str, str] | None:
    """(PEM, actor) when the sender's cached row answers for ``key_id`` exactly as
    ``lookup_key``'s cache would: it names that key, lives on the key's host, has a PEM and is
    fresh. None sends the lookup to ``lookup_key``, which reads again or fetches."""
    if actor is None or actor.key_id != key_id or actor.host != host_of(key_id):
        return None
    fresh = utcnow() - actor.fetched_at < timedelta(seconds=config.actor_cache_seconds)
    return (actor.public_key_pem, actor.uri) if actor.public_key_pem and fresh else None


@dataclass(frozen=True)
class _Sender:
    """What we hold about the sender: its host's row and its actor's, each None when absent."""

    known: KnownInstance | None
    actor: RemoteActor | None


# One statement built once: building and caching a new one per request costs more than running
# it. Each table has at most one row here (``host`` and ``uri`` are unique).
_SENDER = (
    select(KnownInstance, RemoteActor)
    .select_from(select(literal(1).label("one")).subquery())
    .outerjoin(KnownInstance, col(KnownInstance.host) == bindparam("host"))
    .outerjoin(RemoteActor, col(RemoteActor.uri) == bindparam("actor"))
)


async def _read_sender(session: AsyncSession, host: str, actor: str) -> _Sender:
    """Both rows in one statement: each statement costs more than verifying the signature."""
    result = await session.exec(_SENDER, params={"host": host, "actor": actor})
    known, cached = result.one()
    return _Sender(known, cached)


async def _sender(federation: Federation, host: str, actor: str) -> _Sender:
    """The sender's rows, from the cache when they were read a moment ago."""
    cached = federation.senders.get(host, actor)
    if cached is not None:
        return _Sender(*cached)
    async with federation.sessions() as session:
        sender = await _read_sender(session, host, actor)
    federation.senders.put(host, sender.known, actor, sender.actor)
    return sender


async def _verify(
    federation: Federation, sender: _Sender, request: _Request, host: str, actor: str
) -> str:
    """The actor whose key signed the request; 401 with the reason otherwise.

    The sender's cached key needs no database; anything else (a first contact, a rotated
    key) is looked up in a session of its own, committed whatever the outcome: a flood of
    requests signed by an unreachable host must not cost one fetch each.
    """
    config = federation.config

    async def lookup(key_id: str, refresh: bool) -> tuple[str, str] | None:
        cached = None if refresh else _cached_key(sender.actor, key_id, config)
        if cached is not None:
            return cached
        async with federation.sessions() as session:
            try:
                return await lookup_key(
                    session,
                    federation.fetcher,
                    config,
                    key_id,
                    # Only asked for here: the instance key is needed for a fetch, not a hit.
                    signer=await federation.instance_signer(session),
                    refresh=refresh,
                )
            except FetchError as error:
                log.info("could not fetch key %s: %s", key_id, error.reason)
                return None
            finally:
                await session.commit()
                federation.senders.actors.forget(actor)  # its row may have just changed

    try:
        signed = await verify_request(
            request.method,
            request.url,
            request.headers,
            request.body,
            lookup,
            now=request.now,
            window_seconds=config.signature_window_seconds,
        )
    except SignatureError as error:
        raise Refused(error.status, f"signature: {error.reason}") from None
    return signed.controller


def _item_values(activity: dict[str, Any], request: _Request, actor: str) -> dict[str, Any]:
    """The ``inbox_item`` row, as Core inserts it (no model defaults run there)."""
    return {
        "activity_id": activity["id"],
        "type": activity["type"][:50],
        "actor_uri": actor,
        "recipient_uri": request.recipient_uri,
        "body": request.body.decode("utf-8"),
        "state": InboxState.NEW,
        "attempts": 0,
        "error": "",
        "received_at": request.now,
        "processed_at": None,
    }


async def receive(
    federation: Federation,
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    recipient_uri: str | None,
    now: datetime,
) -> Received:
    """Check and store one POSTed activity; raises Refused with the status to answer.

    In the usual case (a peer that spoke a moment ago, with a fresh key) that is no read and a
    share of one transaction: the sender's rows come from ``federation.senders``, and the row
    goes in with those of the activities that arrive at the same time
    (``federation.inbox_store``).
    """
    activity = parse_activity(body)
    actor = reference(activity["actor"])
    assert actor is not None
    host = host_of(actor).lower()
    request = _Request(method, url, headers, body, recipient_uri, now)
    sender = await _sender(federation, host, actor)
    if not permits(federation.config, host, sender.known):
        raise Refused(403, f"{host} is blocked here")
    # An actor deleting itself: its key is usually gone with it, so there is nothing to
    # verify against. If we hold nothing from it, there is nothing to do either, and
    # fetching it would only turn a flood of Deletes into a storm of requests.
    deletes_itself = activity["type"] == "Delete" and reference(activity.get("object")) == actor
    if deletes_itself and sender.actor is None:
        return Received(202, "nothing to delete")
    signer = await _verify(federation, sender, request, host, actor)
    if signer != actor:
        raise Refused(401, f"signed by {signer}, which is not the actor {actor}")
    due = not seen_recently(sender.known, now)
    item_id = await federation.inbox_writer.store(
        _item_values(activity, request, actor), host if due else None
    )
    if due:  # its row has just changed: read it again next time
        federation.senders.hosts.forget(host)
    if item_id is None:
        return Received(202, "duplicate")
    return Received(202, "stored", item_id)
