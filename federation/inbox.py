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
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from federation.activities import instance_signer, reference
from federation.fetch import FetchError
from federation.instances import host_of, may_talk_to, seen
from federation.models import InboxItem, RemoteActor
from federation.remote_actors import lookup_key
from federation.service import Federation
from federation.signatures import SignatureError, verify_request

log = logging.getLogger("terreau.federation.inbox")


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
    """The activity as a JSON object with string ``id``, ``type`` and ``actor``; else 400."""
    try:
        activity = json.loads(body)
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


async def _is_known(session: AsyncSession, actor: str) -> bool:
    found = await session.exec(select(RemoteActor.id).where(RemoteActor.uri == actor))
    return found.first() is not None


async def _already_stored(session: AsyncSession, activity_id: str) -> bool:
    found = await session.exec(select(InboxItem.id).where(InboxItem.activity_id == activity_id))
    return found.first() is not None


async def _verify(
    session: AsyncSession,
    federation: Federation,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
) -> str:
    """The actor whose key signed the request; 401 with the reason otherwise."""
    signer = await instance_signer(session, federation.config)

    async def lookup(key_id: str, refresh: bool) -> tuple[str, str] | None:
        try:
            return await lookup_key(
                session,
                federation.fetcher,
                federation.config,
                key_id,
                signer=signer,
                refresh=refresh,
            )
        except FetchError as error:
            log.info("could not fetch key %s: %s", key_id, error.reason)
            return None

    try:
        signed = await verify_request(
            method,
            url,
            headers,
            body,
            lookup,
            now=now,
            window_seconds=federation.config.signature_window_seconds,
        )
    except SignatureError as error:
        # Keep what the lookups learnt (a cached actor, a remembered failure): a flood of
        # requests signed by an unreachable host must not cost one fetch each.
        await session.commit()
        raise Refused(error.status, f"signature: {error.reason}") from None
    return signed.controller


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
    """Check and store one POSTed activity; raises Refused with the status to answer."""
    activity = parse_activity(body)
    actor = reference(activity["actor"])
    assert actor is not None
    host = host_of(actor)
    async with federation.sessions() as session:
        if not await may_talk_to(session, federation.config, host):
            raise Refused(403, f"{host} is blocked here")
        # An actor deleting itself: its key is usually gone with it, so there is nothing to
        # verify against. If we hold nothing from it, there is nothing to do either, and
        # fetching it would only turn a flood of Deletes into a storm of requests.
        deletes_itself = activity["type"] == "Delete" and reference(activity.get("object")) == actor
        if deletes_itself and not await _is_known(session, actor):
            return Received(202, "nothing to delete")
        signer = await _verify(session, federation, method, url, headers, body, now)
        if signer != actor:
            raise Refused(401, f"signed by {signer}, which is not the actor {actor}")
        if await _already_stored(session, activity["id"]):
            return Received(202, "duplicate")
        item = InboxItem(
            activity_id=activity["id"],
            type=activity["type"][:50],
            actor_uri=actor,
            recipient_uri=recipient_uri,
            body=body.decode("utf-8"),
            received_at=now,
        )
        session.add(item)
        await seen(session, host)
        try:
            await session.commit()
        except IntegrityError:  # the same activity, delivered twice at once
            await session.rollback()
            return Received(202, "duplicate")
        return Received(202, "stored", item.id)
