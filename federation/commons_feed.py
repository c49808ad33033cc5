"""The instance announces its commons: Create, Update and Delete from the instance actor.

Another network follows this instance (its ``Application`` actor), not each commons one by one:
every public local commons is announced to the instance's followers when it appears, changes
or goes (hidden or merged). The announcements are public and stay in the instance actor's
outbox, newest first, so a server that follows later reads the catalogue back from there.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from catalogue.columns import utcnow
from catalogue.commons import Commons
from federation.activities import activity
from federation.actors import actor_document, as_time, instance_actor, tagged_commons_actor
from federation.keys import key_for
from federation.media import AS_CONTEXT, PUBLIC
from federation.models import OutboxActivity
from federation.outbox import follower_inboxes, publish
from federation.service import Federation


class CommonsChange(StrEnum):
    CREATED = "create"
    UPDATED = "update"
    REMOVED = "delete"  # hidden or merged into another commons


ACTIVITY_TYPES = {
    CommonsChange.CREATED: "Create",
    CommonsChange.UPDATED: "Update",
    CommonsChange.REMOVED: "Delete",
}


def is_public(commons: Commons) -> bool:
    """What the catalogue shows everyone: local, neither hidden nor merged."""
    return commons.origin is None and not commons.hidden and commons.merged_into_id is None


def tombstone(commons: Commons) -> dict[str, Any]:
    return {
        "id": commons.uri,
        "type": "Tombstone",
        "formerType": "Group",
        "deleted": as_time(utcnow()),
    }


async def _group(
    session: AsyncSession, federation: Federation, commons: Commons
) -> tuple[Any, dict[str, Any]]:
    """(the activity's ``@context``, the commons' Group without it): the context goes on the
    activity, where JSON-LD readers look for it, once."""
    config = federation.config
    actor = await tagged_commons_actor(session, commons, config)
    document = actor_document(actor, await key_for(session, commons.uri), config)
    return document.pop("@context"), document


async def publish_commons_change(
    session: AsyncSession, federation: Federation, commons: Commons, change: CommonsChange
) -> OutboxActivity | None:
    """Queue the announcement of ``change`` to the instance actor's followers, and keep it in
    the instance actor's outbox. None for a remote commons, or a Create/Update of one that is
    not public. Flushes only: the caller commits it with the change it announces.
    """
    if commons.origin is not None:
        return None
    if change != CommonsChange.REMOVED and not is_public(commons):
        return None
    config = federation.config
    instance = instance_actor(config)
    if change == CommonsChange.REMOVED:
        context: Any = AS_CONTEXT
        object_: dict[str, Any] = tombstone(commons)
    else:
        context, object_ = await _group(session, federation, commons)
    announcement = activity(config, ACTIVITY_TYPES[change], instance.uri, object_, [PUBLIC])
    announcement["@context"] = context
    announcement["cc"] = [instance.followers]
    inboxes = await follower_inboxes(session, instance.uri)
    return await publish(session, config, announcement, inboxes)
