"""Local actors' key pairs: made once, kept in ``actor_key``, handed to the signer.

(Helper A implements this module; the signatures below are the contract others code against.)
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from federation.models import ActorKey


@dataclass(frozen=True)
class Signer:
    """What signing an HTTP request needs: the key's id and the RSA private key (PEM)."""

    key_id: str
    private_pem: str


def main_key_id(actor_uri: str) -> str:
    """The RSA key's id, as Mastodon expects it: ``<actor>#main-key``."""
    return f"{actor_uri}#main-key"


def ed25519_key_id(actor_uri: str) -> str:
    """The Ed25519 key's id in ``assertionMethod`` (FEP-521a)."""
    return f"{actor_uri}#ed25519-key"


def signer_of(key: ActorKey) -> Signer:
    return Signer(main_key_id(key.actor_uri), key.rsa_private_pem)


async def key_for(session: AsyncSession, actor_uri: str) -> ActorKey:
    """The actor's keys, made and stored on first use (safe when two requests race)."""
    raise NotImplementedError
