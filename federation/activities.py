"""Small facts about activities every part of federation needs: ids, references, the signer."""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from federation.context import FederationConfig
from federation.keys import Signer, key_for, signer_of
from federation.media import AS_CONTEXT
from federation.models import ActorKey


def new_activity_id(config: FederationConfig) -> str:
    """A fresh id for an activity we publish; ``/activities/<hex>`` answers with it."""
    return f"{config.base_url}/activities/{uuid.uuid4().hex}"


def reference(value: Any) -> str | None:
    """The id a property points to: a string, or an embedded object's ``id``."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


def checked_uri(value: Any, name: str, error: type[Exception], limit: int = 2048) -> str:
    """``value`` when it is an http(s) address that fits its column; else ``error`` naming the
    property ``name``, the way each document reader reports a bad field."""
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise error(f"{name}: expected an http(s) address")
    if len(value) > limit:
        raise error(f"{name}: longer than {limit} characters")
    return value


def activity(
    config: FederationConfig, type_: str, actor: str, object_: Any, to: list[str]
) -> dict[str, Any]:
    return {
        "@context": AS_CONTEXT,
        "id": new_activity_id(config),
        "type": type_,
        "actor": actor,
        "object": object_,
        "to": to,
    }


async def instance_signer(session: AsyncSession, config: FederationConfig) -> Signer:
    """The instance actor signs our fetches (servers in authorized-fetch mode want them signed).

    Commits only when it makes the key, so that the key made on first use is the one every
    later request signs with. Otherwise it leaves the caller's transaction alone: a handler
    holding its inbox row (``FOR UPDATE``) must not have it released half-way.
    """
    uri = config.instance_actor_uri
    stored = await session.exec(select(ActorKey).where(ActorKey.actor_uri == uri))
    key = stored.first()
    if key is None:
        key = await key_for(session, uri)
        await session.commit()
    return signer_of(key)
