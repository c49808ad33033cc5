"""The transport connects only where it checked: one resolution per connection, every answer
public, and the connection made to the very addresses checked (no DNS rebinding).

Names are resolved by a stand-in resolver and public addresses are reached through a stand-in
network that records where it was asked to connect (and, for the requests that must go
through, leads to a server on loopback): no test asks DNS or leaves the machine.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import httpcore
import httpx
import pytest
from support import make_settings

from federation.addresses import RefusedAddress
from federation.context import FederationConfig
from federation.fetch import Fetcher, FetchError
from federation.transport import CheckedBackend, SocketOption, checked_transport
from instance.database import Database
from instance.federating import federation_for

PUBLIC = "93.184.216.34"
PUBLIC_V6 = "2606:2800:220:1:248:1893:25c8:1946"
REFUSING = FederationConfig(base_url="https://terreau.test", allow_private_addresses=False)


@dataclass
class LoopbackServer:
    """Answers 200 to every request; counts connections and requests."""

    port: int = 0
    connections: int = 0
    requests: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")  # a GET: headers only
                self.requests += 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def server() -> AsyncIterator[LoopbackServer]:
    state = LoopbackServer()
    listening = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    state.port = listening.sockets[0].getsockname()[1]
    async with listening:
        yield state


@dataclass
class Resolver:
    """Answers each name from a table, one list of answers per question asked."""

    answers: dict[str, list[list[str]]]
    asked: list[str] = field(default_factory=list)

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        replies = self.answers[host]
        return replies[min(len(self.asked), len(replies)) - 1]


@dataclass
class Network(httpcore.AsyncNetworkBackend):
    """Records each address it is asked to connect to; ``reaches`` leads one to the loopback
    server (the remote host, played by it), every other one fails to connect."""

    reaches: dict[str, int] = field(default_factory=dict)
    dialled: list[tuple[str, int]] = field(default_factory=list)
    loopback: httpcore.AsyncNetworkBackend = field(default_factory=httpcore.AnyIOBackend)

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.dialled.append((host, port))
        if host not in self.reaches:
            raise httpcore.ConnectError(f"{host} does not answer")
        return await self.loopback.connect_tcp("127.0.0.1", self.reaches[host], timeout)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def client_over(backend: CheckedBackend) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=checked_transport(REFUSING, httpx.Limits(), backend=backend))


async def test_a_name_is_resolved_once_and_its_connection_made_to_the_address_checked(
    server: LoopbackServer,
) -> None:
    # A rebinding name: public to the first question, private to any later one.
    resolver = Resolver({"rebind.example": [[PUBLIC], ["10.0.0.1"]]})
    network = Network(reaches={PUBLIC: server.port})
    backend = CheckedBackend(allow_private=False, resolve=resolver, inner=network)

    async with client_over(backend) as client:
        first = await client.get("http://rebind.example/a")
        second = await client.get("http://rebind.example/b")  # the same kept-alive connection

    assert first.status_code == second.status_code == 200
    assert resolver.asked == ["rebind.example"]
    assert network.dialled == [(PUBLIC, 80)]
    assert (server.connections, server.requests) == (1, 2)


@pytest.mark.parametrize(
    "answers",
    [["10.0.0.1"], ["127.0.0.1"], ["169.254.169.254"], [PUBLIC, "192.168.1.10"], ["fd00::1"]],
)
async def test_a_name_with_any_private_answer_is_refused_before_connecting(
    answers: list[str],
) -> None:
    resolver = Resolver({"inside.example": [answers]})
    network = Network()
    backend = CheckedBackend(allow_private=False, resolve=resolver, inner=network)

    async with client_over(backend) as client:
        with pytest.raises(RefusedAddress) as caught:
            await client.get("https://inside.example/actor")

    assert caught.value.reason.startswith("inside.example is not a public address")
    assert network.dialled == []


async def test_an_ip_literal_is_checked_without_dns(server: LoopbackServer) -> None:
    resolver = Resolver({})
    backend = CheckedBackend(allow_private=False, resolve=resolver, inner=Network())

    async with client_over(backend) as client:
        with pytest.raises(RefusedAddress):
            await client.get(f"http://127.0.0.1:{server.port}/")

    assert resolver.asked == []
    assert server.connections == 0


async def test_each_checked_address_is_tried_in_turn(server: LoopbackServer) -> None:
    resolver = Resolver({"two.example": [[PUBLIC, PUBLIC_V6]]})
    network = Network(reaches={PUBLIC_V6: server.port})
    backend = CheckedBackend(allow_private=False, resolve=resolver, inner=network)

    async with client_over(backend) as client:
        answered = await client.get("http://two.example/")

    assert answered.status_code == 200
    assert network.dialled == [(PUBLIC, 80), (PUBLIC_V6, 80)]


async def test_a_name_that_does_not_resolve_is_refused() -> None:
    async def no_answer(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    backend = CheckedBackend(allow_private=False, resolve=no_answer, inner=Network())

    async with client_over(backend) as client:
        with pytest.raises(RefusedAddress) as caught:
            await client.get("https://nowhere.example/")

    assert caught.value.reason == "cannot resolve nowhere.example"


async def test_the_fetcher_turns_a_refused_connection_into_a_fetch_error() -> None:
    resolver = Resolver({"rebind.example": [["10.0.0.1"]]})
    backend = CheckedBackend(allow_private=False, resolve=resolver, inner=Network())

    async with client_over(backend) as client:
        with pytest.raises(FetchError) as caught:
            await Fetcher(client, REFUSING).get_json("https://rebind.example/actor", signer=None)

    assert caught.value.reason == (
        "refused address rebind.example: rebind.example is not a public address (10.0.0.1)"
    )


async def test_the_instance_client_checks_where_it_connects(
    server: LoopbackServer, database_url: str, tmp_path: Path
) -> None:
    """Wired in: with private addresses refused (the default), the instance's own client does
    not connect to loopback even when asked directly, past the fetcher's URL check."""
    settings = make_settings(database_url, tmp_path)
    assert not settings.federation.allow_private_addresses
    database = Database(database_url)
    try:
        async with federation_for(settings, database) as federation:
            with pytest.raises(RefusedAddress):
                await federation.fetcher.client.get(f"http://127.0.0.1:{server.port}/")
    finally:
        await database.dispose()

    assert server.connections == 0
