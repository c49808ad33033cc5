"""Several instances in one test process, talking to each other through httpx transports.

Each peer is the real application (``create_app``) with its own settings and database; its
outgoing requests go through ``Peers``, which hands each one to the app serving that host
instead of the network. Fast enough for many tests; ``tests/live.py`` runs real servers on
loopback ports for the few that must cross a socket.

Workers do not run by themselves here: a test calls ``peer.work()`` to run one pass, which
makes every step of a federation exchange visible and deterministic.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import select
from starlette.applications import Starlette
from support import make_settings

from catalogue import operations as ops
from catalogue.commons import Commons
from catalogue.organisations import Organisation
from federation.service import Federation
from federation.worker import Worker
from instance.app import create_app
from instance.config import Settings


class Peers(httpx.AsyncBaseTransport):
    """Routes each request to the in-process app serving its host; unknown hosts are down."""

    def __init__(self) -> None:
        self.apps: dict[str, httpx.ASGITransport] = {}
        self.down: set[str] = set()
        self.requests: list[httpx.Request] = []

    def add(self, host: str, app: Starlette) -> None:
        self.apps[host] = httpx.ASGITransport(app=app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        host = request.url.netloc.decode("ascii")
        transport = self.apps.get(host)
        if transport is None or host in self.down:
            raise httpx.ConnectError(f"{host} is down", request=request)
        return await transport.handle_async_request(request)


@dataclass
class Peer:
    host: str
    app: Starlette
    client: httpx.AsyncClient  # a person's (or a test's) view of this instance
    settings: Settings
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return self.settings.instance.base_url

    @property
    def federation(self) -> Federation:
        federation: Federation = self.app.state.federation
        return federation

    async def work(self) -> int:
        """One worker pass: apply received activities, then send due deliveries."""
        return await Worker(self.federation).run_once()


def peer_settings(host: str, database_url: str, directory: Path, **sections: Any) -> Settings:
    federation = {"allow_private_addresses": True, "allow_http": True, "run_worker": False}
    federation.update(sections.pop("federation", {}))
    settings: Settings = make_settings(database_url, directory, federation=federation, **sections)
    instance = settings.instance.model_copy(update={"base_url": f"http://{host}", "domain": host})
    return settings.model_copy(update={"instance": instance})


@asynccontextmanager
async def running_peers(peers: Peers, *specs: tuple[str, str, Path]) -> AsyncIterator[list[Peer]]:
    """Start one app per (host, database URL, directory), all wired to ``peers``."""
    async with AsyncExitStack() as stack:
        started = []
        for host, database_url, directory in specs:
            settings = peer_settings(host, database_url, directory)
            app = create_app(settings, http_transport=peers)
            await stack.enter_async_context(app.router.lifespan_context(app))
            peers.add(host, app)
            client = await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{host}")
            )
            started.append(Peer(host, app, client, settings))
        yield started


async def local_organisation(peer: Peer, slug: str, name: str = "") -> Organisation:
    async with peer.app.state.db.session() as session:
        organisation = Organisation(
            uri=f"{peer.base_url}/orgs/{slug}",
            slug=slug,
            name=name or slug.title(),
            sort_key=slug,
            kind="tiers-lieu",
        )
        session.add(organisation)
        await session.commit()
        return organisation


async def local_commons(peer: Peer, slug: str, maintainer: Organisation) -> Commons:
    assert maintainer.id is not None
    async with peer.app.state.db.session() as session:
        return await ops.create_commons(
            session,
            {
                "slug": slug,
                "name": slug.title(),
                "summary": "Un wiki pour coopérer",
                "kind": "software",
                "licence": "AGPL-3.0-or-later",
                "maturity": "stable",
            },
            base_url=peer.base_url,
            creator_id=None,
            maintainer_ids=[maintainer.id],
        )


async def rows(peer: Peer, model: Any) -> list[Any]:
    """Every row of ``model`` on ``peer``, in the order they were made."""
    async with peer.federation.sessions() as session:
        return list((await session.exec(select(model).order_by(model.id))).all())


async def drain(*peers: Peer, rounds: int = 10) -> None:
    """Run workers until no peer has anything left to do (at most ``rounds`` turns each)."""
    for _ in range(rounds):
        if sum([await peer.work() for peer in peers]) == 0:
            return
    raise AssertionError("the peers kept working")
