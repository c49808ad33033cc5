"""A local organisation's declarations go out: Use, Interest, their Update and Undo.

Sent to the commons (its origin's inbox, when the commons is a copy of a remote one: that is
where it is counted), to the organisation's followers, and to the instance actor's followers
(other networks following this one). When the commons is ours, its figures changed too: the
instance announces the commons' ``Update`` so that every copy shows the same counts
(``announce_counts``).

The commons' inbox is looked up *before* the change's transaction takes its locks (a fetch may
take seconds): callers call ``declaration_inboxes`` first, then change, ``publish_*`` and
commit once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from catalogue.commons import Commons
from catalogue.declarations import Declaration
from catalogue.organisations import Organisation
from federation.commons_feed import CommonsChange, publish_commons_change
from federation.declarations import declaration_activity, undo_activity, update_activity
from federation.fetch import FetchError
from federation.instances import host_of
from federation.models import OutboxActivity, RemoteActor
from federation.outbox import follower_inboxes, publish
from federation.profiles import publish_profile_update
from federation.remote_actors import get_remote_actor
from federation.service import Federation

log = logging.getLogger("terreau.federation.declarations")


@dataclass(frozen=True)
class Counts:
    """A commons' public figures, to tell whether a change moved them."""

    uses: int
    interested: int

    @classmethod
    def of(cls, commons: Commons) -> Counts:
        return cls(commons.uses_count, commons.interested_count)


async def commons_inbox(session: AsyncSession, federation: Federation, commons: Commons) -> str:
    """Where the origin of a remote commons receives: the commons actor's shared inbox (or its
    own), fetched or cached; failing that, the shared inbox of another actor we know on that
    host (the instance actor we follow). Empty when there is none: the followers still hear.
    """
    if commons.origin is None:
        return ""
    signer = await federation.instance_signer(session)
    try:
        actor = await get_remote_actor(
            session, federation.fetcher, federation.config, commons.uri, signer=signer
        )
        return actor.shared_inbox or actor.inbox
    except FetchError as error:
        log.warning("the inbox of %s is unknown (%s): trying its host's", commons.uri, error)
    query = (
        select(RemoteActor.shared_inbox)
        .where(RemoteActor.host == host_of(commons.uri), col(RemoteActor.shared_inbox).is_not(None))
        .order_by(col(RemoteActor.id))
    )
    shared = (await session.exec(query)).first()
    return shared or ""


async def declaration_inboxes(
    session: AsyncSession, federation: Federation, organisation: Organisation, commons: Commons
) -> list[str]:
    """The commons' origin, the organisation's followers and the instance's followers."""
    inboxes = [await commons_inbox(session, federation, commons)]
    inboxes += await follower_inboxes(session, organisation.uri)
    inboxes += await follower_inboxes(session, federation.config.instance_actor_uri)
    return [inbox for inbox in inboxes if inbox]


async def _published_before(session: AsyncSession, uri: str) -> bool:
    query = select(OutboxActivity.id).where(OutboxActivity.uri == uri)
    return (await session.exec(query)).first() is not None


async def publish_declaration(
    session: AsyncSession,
    federation: Federation,
    declaration: Declaration,
    organisation: Organisation,
    commons: Commons,
    inboxes: list[str],
) -> OutboxActivity:
    """Queue the ``Use`` or ``Interest`` the first time, an ``Update`` of it afterwards (its id
    was taken by the first: inboxes take each activity id once). Flushes only."""
    config = federation.config
    if await _published_before(session, declaration.uri):
        sent = update_activity(config, declaration, organisation.uri, commons.uri)
    else:
        sent = declaration_activity(config, declaration, organisation.uri, commons.uri)
    return await publish(session, config, sent, inboxes)


async def publish_withdrawal(
    session: AsyncSession,
    federation: Federation,
    declaration: Declaration,
    organisation: Organisation,
    commons: Commons,
    inboxes: list[str],
) -> OutboxActivity:
    """Queue the ``Undo`` of a withdrawn declaration. Flushes only."""
    sent = undo_activity(federation.config, declaration, organisation.uri, commons.uri)
    return await publish(session, federation.config, sent, inboxes)


async def announce_counts(
    session: AsyncSession, federation: Federation, commons: Commons, before: Counts
) -> bool:
    """When a local commons' figures moved, announce its ``Update``: to the instance actor's
    followers (with the whole Group, ``usesCount`` and ``interestedCount`` included) and to
    the commons' own followers. Whether anything was queued. Flushes only.

    A remote commons' figures are its origin's to announce.
    """
    if commons.origin is not None:
        return False
    await session.refresh(commons)  # the counts were written by an UPDATE statement
    if Counts.of(commons) == before:
        return False
    announced = await publish_commons_change(session, federation, commons, CommonsChange.UPDATED)
    profile = await publish_profile_update(session, federation, commons.uri)
    return announced is not None or profile is not None
