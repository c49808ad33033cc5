"""Local actors' keys: made once, usable by other implementations, and safe under a race."""

from __future__ import annotations

import asyncio

from bovine.crypto.multibase import decode_multibase_public_key
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.hashes import SHA256
from sqlmodel import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from federation.keys import ed25519_key_id, key_for, main_key_id, signer_of
from federation.models import ActorKey
from instance.database import Database

ACTOR = "https://tiers-lieux.example/organisations/atelier"


async def _count(session: AsyncSession) -> int:
    return (await session.exec(select(func.count()).select_from(ActorKey))).one()


async def test_first_use_makes_keys_and_later_uses_return_them(session: AsyncSession) -> None:
    first = await key_for(session, ACTOR)
    await session.commit()
    again = await key_for(session, ACTOR)

    assert again.id == first.id
    assert again.rsa_private_pem == first.rsa_private_pem
    assert await _count(session) == 1


async def test_each_actor_has_its_own_keys(session: AsyncSession) -> None:
    one = await key_for(session, ACTOR)
    other = await key_for(session, ACTOR + "-2")

    assert one.rsa_private_pem != other.rsa_private_pem
    assert one.ed25519_multikey != other.ed25519_multikey
    assert await _count(session) == 2


async def test_rsa_pair_is_2048_bits_and_matches(session: AsyncSession) -> None:
    key = await key_for(session, ACTOR)
    private = serialization.load_pem_private_key(key.rsa_private_pem.encode(), password=None)
    public = serialization.load_pem_public_key(key.rsa_public_pem.encode())

    assert key.rsa_private_pem.startswith("-----BEGIN PRIVATE KEY-----")  # PKCS8
    assert key.rsa_public_pem.startswith("-----BEGIN PUBLIC KEY-----")  # SubjectPublicKeyInfo
    assert isinstance(private, rsa.RSAPrivateKey)
    assert isinstance(public, rsa.RSAPublicKey)
    assert private.key_size == 2048
    signature = private.sign(b"message", padding.PKCS1v15(), SHA256())
    public.verify(signature, b"message", padding.PKCS1v15(), SHA256())  # raises if unrelated


async def test_ed25519_multikey_is_the_private_keys_public_half(session: AsyncSession) -> None:
    key = await key_for(session, ACTOR)
    private = serialization.load_pem_private_key(key.ed25519_private_pem.encode(), password=None)
    public = decode_multibase_public_key(key.ed25519_multikey)

    assert key.ed25519_multikey.startswith("z6Mk")
    assert isinstance(private, ed25519.Ed25519PrivateKey)
    assert isinstance(public, ed25519.Ed25519PublicKey)
    public.verify(private.sign(b"message"), b"message")


async def test_key_for_does_not_commit(session: AsyncSession) -> None:
    """The keys belong to the caller's transaction: its rollback undoes them."""
    await key_for(session, ACTOR)
    await session.rollback()

    assert await _count(session) == 0


async def test_the_loser_of_a_race_gets_the_winners_keys(database_url: str) -> None:
    """Session B looks, finds nothing, and inserts while A's keys are written but uncommitted."""
    database = Database(database_url)
    try:
        async with database.session() as first, database.session() as second:
            winner = await key_for(first, ACTOR)

            async def commit_soon() -> None:
                await asyncio.sleep(0.3)
                await first.commit()

            loser, _ = await asyncio.gather(key_for(second, ACTOR), commit_soon())
            await second.commit()

            assert loser.id == winner.id
            assert loser.rsa_private_pem == winner.rsa_private_pem
            assert await _count(second) == 1
    finally:
        await database.dispose()


def test_key_ids_and_signer() -> None:
    key = ActorKey(
        actor_uri=ACTOR,
        rsa_private_pem="PRIVATE",
        rsa_public_pem="PUBLIC",
        ed25519_private_pem="ED",
        ed25519_multikey="z6Mk",
    )

    assert main_key_id(ACTOR) == f"{ACTOR}#main-key"
    assert ed25519_key_id(ACTOR) == f"{ACTOR}#ed25519-key"
    assert signer_of(key).key_id == f"{ACTOR}#main-key"
    assert signer_of(key).private_pem == "PRIVATE"
