"""Our actors: the instance (Application), organisations (Organization), commons (Group).

(Helper C implements this module; the signatures below are the contract others code against.)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from federation.context import FederationConfig
from federation.models import ActorKey


class ActorKind(StrEnum):
    INSTANCE = "instance"
    ORGANISATION = "organisation"
    COMMONS = "commons"


@dataclass(frozen=True)
class LocalActor:
    uri: str
    kind: ActorKind
    username: str  # preferredUsername: the slug ("instance" for the instance actor)
    name: str
    summary: str
    url: str  # the HTML page
    icon_url: str | None = None

    @property
    def inbox(self) -> str:
        return f"{self.uri}/inbox"

    @property
    def outbox(self) -> str:
        return f"{self.uri}/outbox"

    @property
    def followers(self) -> str:
        return f"{self.uri}/followers"


async def local_actor(
    session: AsyncSession, config: FederationConfig, uri: str
) -> LocalActor | None:
    """The local, visible actor with this id, or None (remote, unknown, hidden or merged)."""
    raise NotImplementedError


async def local_actor_by_username(
    session: AsyncSession, config: FederationConfig, username: str
) -> LocalActor | None:
    """For WebFinger: a commons first, then an organisation, then the instance actor."""
    raise NotImplementedError


def actor_document(actor: LocalActor, key: ActorKey, config: FederationConfig) -> dict[str, Any]:
    """The actor as ActivityStreams JSON (publicKey RSA, assertionMethod Multikey, endpoints)."""
    raise NotImplementedError
