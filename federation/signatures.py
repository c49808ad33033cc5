"""HTTP signatures: sign what we send, verify what we receive (draft-cavage and RFC 9421).

(Helper A implements this module; the signatures below are the contract others code against.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from federation.keys import Signer


class SignatureError(Exception):
    """A request whose signature does not hold; ``status`` is what the inbox answers."""

    def __init__(self, reason: str, status: int = 401) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class SignedBy:
    key_id: str
    # The actor that owns the key, as the key's document says (the caller binds it to `actor`).
    controller: str


# (key_id, refresh) -> (public key as PEM or multibase, owning actor), or None when unknown.
KeyLookup = Callable[[str, bool], Awaitable[tuple[str, str] | None]]


def sign_request(
    method: str, url: str, body: bytes | None, signer: Signer, *, now: datetime | None = None
) -> dict[str, str]:
    """The headers that sign a request: Host, Date, Digest (with a body) and Signature."""
    raise NotImplementedError


async def verify_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    lookup: KeyLookup,
    *,
    now: datetime,
    window_seconds: int,
) -> SignedBy:
    """Who signed this request; raises SignatureError. Asks ``lookup`` again with
    ``refresh=True`` once when the cached key does not verify (the key may have rotated)."""
    raise NotImplementedError
