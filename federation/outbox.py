"""Publishing: an activity, its outbox row and one delivery row per inbox, in one transaction.

(Helper B implements this module; the signatures below are the contract others code against.)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from federation.context import FederationConfig
from federation.models import OutboxActivity


async def publish(
    session: AsyncSession,
    config: FederationConfig,
    activity: dict[str, Any],
    inboxes: Iterable[str],
    *,
    public: bool = True,
) -> OutboxActivity:
    """Store ``activity`` (its ``id`` and ``actor`` must be ours) and queue it for every inbox,
    once per inbox, skipping blocked hosts and marking gone hosts' rows gone. Flushes; the
    caller commits with the change that caused it."""
    raise NotImplementedError


async def follower_inboxes(session: AsyncSession, actor_uri: str) -> list[str]:
    """Where to deliver to an actor's followers: shared inboxes where they have one, once."""
    raise NotImplementedError
