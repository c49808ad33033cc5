"""Every request to another server goes through here: one ``httpx.AsyncClient``, signed, bounded.

(Helper A implements this module; the signatures below are the contract others code against.)

Fetches are signed GETs (servers in authorized-fetch mode require them), follow at most three
redirects (each one checked again), stop reading past ``max_fetch_bytes``, time out, and refuse
private, loopback and link-local addresses unless the config allows them (tests do).
"""

from __future__ import annotations

from typing import Any

import httpx

from federation.context import FederationConfig
from federation.keys import Signer


class FetchError(Exception):
    """A remote document we could not get; ``status`` is the HTTP status when there was one."""

    def __init__(self, url: str, reason: str, status: int | None = None) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason
        self.status = status


class Fetcher:
    def __init__(self, client: httpx.AsyncClient, config: FederationConfig) -> None:
        self.client = client
        self.config = config

    async def get_json(self, url: str, *, signer: Signer | None) -> dict[str, Any]:
        """An ActivityStreams document; raises FetchError (unsafe address, status, size, JSON)."""
        raise NotImplementedError

    async def post_activity(self, url: str, body: bytes, *, signer: Signer) -> httpx.Response:
        """POST a signed activity to an inbox (no redirects). Raises FetchError only when the
        address is refused or the network fails; any HTTP status is returned to the caller."""
        raise NotImplementedError
