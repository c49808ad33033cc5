"""Local actors' key pairs: made once, kept in ``actor_key``, handed to the signer."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from bovine.crypto import generate_rsa_public_private_key
from bovine.crypto.multibase import encode_public_key_to_multibase
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from catalogue.columns import utcnow
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


def new_key_material(actor_uri: str) -> dict[str, str]:
    """Fresh RSA-2048 and Ed25519 pairs, as the columns of ``actor_key`` store them.

    RSA is what Mastodon verifies HTTP signatures with; Ed25519 serves FEP-521a/FEP-8b32.
    """
    rsa_public_pem, rsa_private_pem = generate_rsa_public_private_key()
    ed_private = ed25519.Ed25519PrivateKey.generate()
    ed_private_pem = ed_private.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    ).decode("ascii")
    return {
        "actor_uri": actor_uri,
        "rsa_private_pem": rsa_private_pem,
        "rsa_public_pem": rsa_public_pem,
        "ed25519_private_pem": ed_private_pem,
        "ed25519_multikey": encode_public_key_to_multibase(ed_private.public_key()),
    }


async def _stored_key(session: AsyncSession, actor_uri: str) -> ActorKey | None:
    result = await session.exec(select(ActorKey).where(ActorKey.actor_uri == actor_uri))
    return result.first()


def _insert_unless_present(dialect: str, values: dict[str, Any]) -> Any:
    """``INSERT … ON CONFLICT (actor_uri) DO NOTHING``: the loser of a race keeps the winner's keys.

    Not a SAVEPOINT: with the pysqlite/aiosqlite driver a SAVEPOINT opened before any other
    write of the transaction becomes the transaction itself, and releasing it commits (checked
    on this project's SQLite set-up), so a caller's rollback would no longer undo the keys.
    """
    module = postgresql if dialect == "postgresql" else sqlite
    statement = module.insert(ActorKey).values(**values)
    return statement.on_conflict_do_nothing(index_elements=["actor_uri"])


async def key_for(session: AsyncSession, actor_uri: str) -> ActorKey:
    """The actor's keys, made and stored on first use (safe when two requests race).

    Writes within the caller's transaction and commits nothing.
    """
    key = await _stored_key(session, actor_uri)
    if key is not None:
        return key
    # RSA generation takes tens of milliseconds: off the event loop.
    material = await asyncio.to_thread(new_key_material, actor_uri)
    values: dict[str, Any] = {**material, "created_at": utcnow()}  # Core runs no model default
    dialect = session.get_bind().dialect.name
    await session.exec(_insert_unless_present(dialect, values))
    key = await _stored_key(session, actor_uri)
    if key is None:  # pragma: no cover - the row was just written or already there
        raise RuntimeError(f"no key stored for {actor_uri}")
    return key
