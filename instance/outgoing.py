"""What a page tells other servers after a change: queue the activity, then wake the worker.

The activity is queued in the request's session and committed there, so a page that saved its
change always leaves its announcement queued too; the worker sends it (now, if it runs in this
process, or on its next pass).
"""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request

from catalogue.commons import Commons
from federation.commons_feed import CommonsChange, publish_commons_change
from federation.profiles import publish_profile_update


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
