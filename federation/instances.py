"""Other servers: whom we have heard from, whom the admins block or allow, who is gone.

(Helper B implements this module; the signatures below are the contract others code against.)
"""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from federation.context import FederationConfig


def host_of(uri: str) -> str:
    """host[:port] of a URI, lower-cased ("" when it has none)."""
    raise NotImplementedError


async def may_talk_to(session: AsyncSession, config: FederationConfig, host: str) -> bool:
    """False for a blocked host, and in allow-list mode for any host not allowed."""
    raise NotImplementedError


async def seen(session: AsyncSession, host: str) -> None:
    """Record that a host spoke to us (creates its row; clears ``gone_at``). No commit."""
    raise NotImplementedError
