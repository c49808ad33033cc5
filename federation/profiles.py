"""When a local actor's profile changes (a commons renamed, a new logo), its followers hear it.

Mastodon and other servers cache actors; an ``Update`` carrying the whole actor document is how
they learn the new name, summary or icon without waiting for their cache to expire.
"""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from federation.activities import activity
from federation.actors import actor_document, local_actor
from federation.keys import key_for
from federation.media import PUBLIC
from federation.models import OutboxActivity
from federation.outbox import follower_inboxes, publish
from federation.service import Federation


async def publish_profile_update(
    session: AsyncSession, federation: Federation, actor_uri: str
) -> OutboxActivity | None:
    """Queue ``Update(actor)`` to the actor's followers; None when nobody follows it.

    Flushes only: the caller commits it with the change it announces.
    """
    config = federation.config
    actor = await local_actor(session, config, actor_uri)
    if actor is None:
        return None
    inboxes = await follower_inboxes(session, actor.uri)
    if not inboxes:
        return None
    document = actor_document(actor, await key_for(session, actor.uri), config)
    update = activity(config, "Update", actor.uri, document, [PUBLIC])
    update["cc"] = [actor.followers]
    return await publish(session, config, update, inboxes)
