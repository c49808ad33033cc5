"""Wires federation into the instance: its config from the settings, one HTTP client per
process, and (unless turned off) a delivery worker running beside the web server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

import httpx

from federation.context import FederationConfig
from federation.fetch import Fetcher
from federation.service import Federation
from instance.config import Settings
from instance.database import Database


def software_version() -> str:
    try:
        return version("terreau")
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "0"


def federation_config(settings: Settings) -> FederationConfig:
    federation = settings.federation
    return FederationConfig(
        base_url=settings.instance.base_url,
        name=settings.instance.name,
        description=settings.instance.description,
        version=software_version(),
        open_registrations=settings.accounts.signup_open,
        allow_private_addresses=federation.allow_private_addresses,
        allow_http=federation.allow_http,
        allow_list_only=federation.allow_list_only,
        fetch_timeout_seconds=federation.fetch_timeout_seconds,
        max_fetch_bytes=federation.max_fetch_bytes,
        delivery_timeout_seconds=federation.delivery_timeout_seconds,
        delivery_concurrency=federation.delivery_concurrency,
        actor_cache_seconds=federation.actor_cache_seconds,
        failed_fetch_seconds=federation.failed_fetch_seconds,
        signature_window_seconds=federation.signature_window_seconds,
    )


@asynccontextmanager
async def federation_for(
    settings: Settings,
    database: Database,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[Federation]:
    """A Federation with its own HTTP client, closed on exit.

    ``transport`` lets tests route requests to other in-process instances
    (``httpx.ASGITransport``) instead of the network.
    """
    config = federation_config(settings)
    client = httpx.AsyncClient(
        transport=transport,
        follow_redirects=False,  # the fetcher follows them itself, checking each address
        headers={"User-Agent": config.user_agent},
        timeout=config.fetch_timeout_seconds,
        limits=httpx.Limits(max_connections=max(config.delivery_concurrency, 10)),
    )
    try:
        yield Federation(config, database.session, Fetcher(client, config))
    finally:
        await client.aclose()
