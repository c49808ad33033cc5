"""Remote actors and their keys: fetched with a signed GET, cached, re-fetched on rotation.

(Helper A implements this module; the signatures below are the contract others code against.)
"""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from federation.context import FederationConfig
from federation.fetch import Fetcher
from federation.keys import Signer
from federation.models import RemoteActor


async def get_remote_actor(
    session: AsyncSession,
    fetcher: Fetcher,
    config: FederationConfig,
    uri: str,
    *,
    signer: Signer,
    refresh: bool = False,
) -> RemoteActor:
    """The actor from the cache while fresh, else fetched and stored; raises FetchError (also
    straight away, without a request, while a recent failure for this URI is remembered)."""
    raise NotImplementedError


async def lookup_key(
    session: AsyncSession,
    fetcher: Fetcher,
    config: FederationConfig,
    key_id: str,
    *,
    signer: Signer,
    refresh: bool = False,
) -> tuple[str, str] | None:
    """(public key PEM, owner actor URI) for a key id such as ``<actor>#main-key``, or None."""
    raise NotImplementedError


async def forget_actor(session: AsyncSession, uri: str) -> None:
    """Drop a remote actor and what we hold from it (its follows of our actors)."""
    raise NotImplementedError
