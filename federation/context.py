"""The values federation works with, handed in by ``instance`` (which owns the settings).

A plain dataclass, so that ``federation`` never imports ``instance``: dependencies point one
way, instance → federation → catalogue/pledges.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlmodel.ext.asyncio.session import AsyncSession

SOFTWARE = "terreau"

#: Where federation gets its database sessions (``instance.database.Database.session``).
SessionFactory = Callable[[], AbstractAsyncContextManager[AsyncSession]]


@dataclass(frozen=True)
class FederationConfig:
    base_url: str  # "https://tiers-lieux.example", no trailing slash
    name: str = "Terreau"
    description: str = ""
    version: str = "0"
    open_registrations: bool = True
    allow_private_addresses: bool = False
    allow_http: bool = False
    allow_list_only: bool = False
    fetch_timeout_seconds: float = 10.0
    max_fetch_bytes: int = 1_048_576
    delivery_timeout_seconds: float = 15.0
    delivery_concurrency: int = 16
    actor_cache_seconds: int = 86_400
    failed_fetch_seconds: int = 3_600
    signature_window_seconds: int = 300

    @property
    def domain(self) -> str:
        """host[:port] as it appears in our URIs and in ``acct:`` addresses."""
        return urlsplit(self.base_url).netloc

    @property
    def instance_actor_uri(self) -> str:
        return f"{self.base_url}/actor"

    @property
    def shared_inbox(self) -> str:
        return f"{self.base_url}/inbox"

    @property
    def user_agent(self) -> str:
        return f"{SOFTWARE}/{self.version} (+{self.base_url})"
