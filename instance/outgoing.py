"""What a page tells other servers after a change: queue the activity, then wake the worker.

The activity is queued in the request's session and committed there, so a page that saved its
change always leaves its announcement queued too; the worker sends it (now, if it runs in this
process, or on its next pass).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request

from catalogue.commons import Commons
from catalogue.declarations import Declaration
from catalogue.organisations import Organisation
from federation import declarations_feed, pledges_feed
from federation.commons_feed import CommonsChange, publish_commons_change
from federation.declarations_feed import Counts
from federation.improvements_feed import publish_improvement_changes, unsent_improvement_ids
from federation.profiles import publish_profile_update
from federation.service import Federation
from instance.config import Settings
from instance.summary_line import summary_writer
from pledges.models import Pledge


def wake_worker(request: Request) -> None:
    worker = getattr(request.app.state, "worker", None)
    if worker is not None:
        worker.wake()


async def announce_profile(request: Request, session: AsyncSession, actor_uri: str) -> None:
    """A commons' or organisation's profile changed: its followers get ``Update(actor)``."""
    if not request.app.state.settings.federation.enabled:
        return
    if await publish_profile_update(session, request.app.state.federation, actor_uri):
        await session.commit()
        wake_worker(request)


async def announce_commons(
    request: Request, session: AsyncSession, commons: Commons, change: CommonsChange
) -> None:
    """A local commons appeared, changed or went: the instance actor's followers (other
    networks' instances) hear it, and the instance's outbox keeps it for later followers."""
    if not request.app.state.settings.federation.enabled:
        return
    if await publish_commons_change(session, request.app.state.federation, commons, change):
        await session.commit()
        wake_worker(request)


async def queue_commons_changes(
    session: AsyncSession,
    federation: Federation,
    created: Iterable[Commons] = (),
    updated: Iterable[Commons] = (),
) -> int:
    """Commons written without a page (``terreau demo``, ``terreau import``): queue what the
    pages would, in the caller's transaction (the caller commits): ``Create`` of each new
    public commons, ``Update`` of each changed one (and ``Update`` of its actor for its own
    followers). The instance actor's outbox keeps them, so a network that follows later reads
    them back, and the worker delivers them to the followers already there. How many
    ``Create`` and ``Update`` of a commons were queued (not public ones: none)."""
    queued = 0
    for commons in created:
        if await publish_commons_change(session, federation, commons, CommonsChange.CREATED):
            queued += 1
    for commons in updated:
        if await publish_commons_change(session, federation, commons, CommonsChange.UPDATED):
            queued += 1
        await publish_profile_update(session, federation, commons.uri)
    return queued


async def declaration_inboxes(
    request: Request, session: AsyncSession, organisation: Organisation, commons: Commons
) -> list[str]:
    """Where a declaration on ``commons`` goes; looked up before the change takes its locks,
    since reaching a remote commons' inbox may mean fetching its actor."""
    if not request.app.state.settings.federation.enabled:
        return []
    federation = request.app.state.federation
    return await declarations_feed.declaration_inboxes(session, federation, organisation, commons)


async def announce_declaration(
    request: Request,
    session: AsyncSession,
    declaration: Declaration,
    organisation: Organisation,
    commons: Commons,
    *,
    inboxes: list[str],
    before: Counts,
) -> None:
    """Queue the declaration (or, withdrawn, its Undo) and, for our own commons, its new
    figures, in the transaction of the change: the caller commits, then wakes the worker."""
    if not request.app.state.settings.federation.enabled:
        return
    federation = request.app.state.federation
    if declaration.active:
        await declarations_feed.publish_declaration(
            session, federation, declaration, organisation, commons, inboxes
        )
    else:
        await declarations_feed.publish_withdrawal(
            session, federation, declaration, organisation, commons, inboxes
        )
    await declarations_feed.announce_counts(session, federation, commons, before)


async def announce_improvements(
    request: Request,
    session: AsyncSession,
    improvement_ids: Iterable[int | None] = (),
    *,
    funding: bool = False,
    commons_ids: Iterable[int | None] = (),
) -> None:
    """Improvements may read differently now (their text, status or funding): each commons'
    followers hear what changed, Mastodon accounts and other instances alike. ``funding``: money
    moved, so every improvement with a pledge is looked at (matches move across improvements).
    Nothing is sent for what reads as before (federation.improvements_feed)."""
    settings = request.app.state.settings
    if not settings.federation.enabled:
        return
    describe = summary_writer(settings.instance.default_language)
    ids = [i for i in improvement_ids if i is not None]
    federation = request.app.state.federation
    of_commons = [i for i in commons_ids if i is not None]
    if await publish_improvement_changes(
        session, federation, describe, ids, funding=funding, commons_ids=of_commons
    ):
        await session.commit()
        wake_worker(request)


async def announce_unsent_improvements(federation: Federation, settings: Settings) -> int:
    """At start-up: send the improvements nothing announced yet (see
    ``federation.improvements_feed.unsent_improvement_ids``), once; how many were sent. Several
    processes starting at once send each only once: publishing locks each commons first."""
    if not settings.federation.enabled:
        return 0
    describe = summary_writer(settings.instance.default_language)
    async with federation.sessions() as session:
        ids = await unsent_improvement_ids(session)
        if not ids:
            return 0
        sent = await publish_improvement_changes(session, federation, describe, ids)
        await session.commit()
    return len(sent)


async def pledge_inboxes(
    request: Request,
    session: AsyncSession,
    organisation: Organisation,
    commons: Commons,
) -> list[str]:
    """Where news of ``organisation``'s pledge to ``commons`` goes; looked up before the
    change takes the ledger lock, since reaching a remote commons' inbox may mean a fetch."""
    if not request.app.state.settings.federation.enabled:
        return []
    federation = request.app.state.federation
    return await pledges_feed.pledge_inboxes(session, federation, organisation, commons)


async def commit_pledge(
    request: Request, session: AsyncSession, pledge: Pledge, *, inboxes: list[str], made: bool
) -> None:
    """Commit a pledge made (``made``) or whose status changed, with the activity that tells
    the commons' instance and the followers (an ``Offer``, or an ``Update``), then wake the
    worker. One transaction: the pledge is never saved without its news, nor the reverse."""
    queued = None
    if request.app.state.settings.federation.enabled:
        federation = request.app.state.federation
        publish = pledges_feed.publish_pledge if made else pledges_feed.publish_pledge_status
        queued = await publish(session, federation, pledge, inboxes)
    await session.commit()
    if queued is not None:
        wake_worker(request)
