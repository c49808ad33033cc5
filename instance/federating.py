"""Wires federation into the instance: its config from the settings, one HTTP client per
process, and (unless turned off) a delivery worker running beside the web server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

import httpx

from federation.context import FederationConfig
from federation.fetch import Fetcher
from federation.service import Federation
from federation.signing_process import SigningProcess
from federation.transport import checked_transport
from federation.worker import Worker
from instance.config import Settings
from instance.database import Database
from instance.summary_line import summary_writer

log = logging.getLogger("terreau.federation")
#: How long the worker gets to finish the sends in flight when the server stops.
WORKER_STOP_SECONDS = 5.0


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
    limits = httpx.Limits(max_connections=max(config.delivery_concurrency, 10))
    client = httpx.AsyncClient(
        transport=transport or checked_transport(config, limits),
        follow_redirects=False,  # the fetcher follows them itself, checking each address
        headers={"User-Agent": config.user_agent},
        timeout=config.fetch_timeout_seconds,
    )
    signing = SigningProcess() if settings.federation.signing_process else None
    try:
        describe = summary_writer(settings.instance.default_language)
        yield Federation(config, database.session, Fetcher(client, config), describe, signing)
    finally:
        await client.aclose()
        if signing is not None:
            await signing.close()


def runs_worker(settings: Settings) -> bool:
    """Whether the web process sends deliveries itself (off when ``terreau worker`` does)."""
    return settings.federation.enabled and settings.federation.run_worker


@asynccontextmanager
async def worker_beside(federation: Federation, settings: Settings) -> AsyncIterator[Worker | None]:
    """A Worker running as a task beside the app while the block runs (None when turned off).

    On exit it stops claiming rows and gets ``WORKER_STOP_SECONDS`` to finish the sends in
    flight; what is still running then is cancelled, and those rows are sent again once
    their lease ends.
    """
    if not runs_worker(settings):
        yield None
        return
    worker = Worker(federation)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop), name="terreau-worker")
    try:
        yield worker
    finally:
        stop.set()
        await _stop(task)


async def _stop(task: asyncio.Task[None]) -> None:
    try:
        await asyncio.wait_for(task, WORKER_STOP_SECONDS)
    except TimeoutError:
        log.warning("the worker did not stop within %.0f s; cancelled", WORKER_STOP_SECONDS)
    except Exception:
        log.exception("the worker ended with an error")
