"""The worker loop: passes, concurrency, waking, stopping, surviving a bad row, running beside the
app; and a delivery that crosses a real socket to an inbox that checks its signature."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from support import make_settings, statements

from catalogue.columns import utcnow
from federation.context import FederationConfig
from federation.delivery import lease_for
from federation.fetch import Fetcher
from federation.keys import key_for, main_key_id
from federation.models import ActorKey, Delivery, DeliveryState, KnownInstance
from federation.outbox import publish
from federation.service import Federation
from federation.signatures import verify_request
from federation.worker import CLAIM_AHEAD, Worker
from instance.app import create_app
from instance.database import Database

ACTOR = "https://terreau.test/orgs/atelier"
CONFIG = FederationConfig(
    base_url="https://terreau.test",
    allow_private_addresses=True,
    allow_http=True,
    delivery_concurrency=3,
)

Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


@dataclass
class Clock:
    # A minute ahead, so that rows the test publishes (stamped with the real time) are due.
    now: datetime = field(default_factory=lambda: utcnow() + timedelta(minutes=1))

    def __call__(self) -> datetime:
        return self.now


@dataclass
class SlowInboxes:
    """Inboxes that take a moment to answer, counting how many requests are in flight."""

    delay: float = 0.05
    received: list[httpx.Request] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    broken_hosts: set[str] = field(default_factory=set)
    statuses: dict[str, int] = field(default_factory=dict)  # by host; 202 when not given

    async def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.host in self.broken_hosts:
            raise RuntimeError("a bug somewhere below the worker")
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        self.received.append(request)
        return httpx.Response(self.statuses.get(request.url.host, 202))

    def hosts(self) -> list[str]:
        """The hosts that received a POST, once per POST."""
        return [request.url.host for request in self.received]


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


@pytest.fixture
def federation_log(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> pytest.LogCaptureFixture:
    """caplog for "terreau.federation", even after an app set up its own logging (which stops
    "terreau" records from reaching the root logger, where caplog listens)."""
    monkeypatch.setattr(logging.getLogger("terreau"), "propagate", True)
    caplog.set_level(logging.ERROR, logger="terreau.federation")
    return caplog


@pytest.fixture
def inboxes() -> SlowInboxes:
    return SlowInboxes()


@pytest.fixture
async def federation(database: Database, inboxes: SlowInboxes) -> AsyncIterator[Federation]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(inboxes.handle)) as client:
        yield Federation(CONFIG, database.session, Fetcher(client, CONFIG))


async def queue(
    database: Database, inboxes: list[str], number: int = 1, actor: str = ACTOR
) -> None:
    async with database.session() as session:
        activity = {
            "id": f"https://terreau.test/activities/{number}",
            "type": "Announce",
            "actor": actor,
        }
        await publish(session, CONFIG, activity, inboxes)
        await session.commit()


async def deliveries(database: Database) -> list[Delivery]:
    async with database.session() as session:
        return list((await session.exec(select(Delivery).order_by(col(Delivery.id)))).all())


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 10) -> None:
    """Wait until ``check()`` holds, looking every 20 ms for ``within`` seconds."""
    for _ in range(int(within / 0.02)):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"still not true after {within} s")


async def test_a_pass_sends_everything_due_at_most_concurrency_at_a_time(
    database: Database, federation: Federation, inboxes: SlowInboxes
) -> None:
    await queue(database, [f"https://h{n}.example/inbox" for n in range(10)])

    handled = await Worker(federation, clock=Clock()).run_once()

    assert handled == 10
    assert len(inboxes.received) == 10
    assert inboxes.most_in_flight == CONFIG.delivery_concurrency
    assert {d.state for d in await deliveries(database)} == {DeliveryState.SENT}
    assert await Worker(federation, clock=Clock()).run_once() == 0


async def test_a_row_that_raises_is_logged_and_counted_while_the_others_go(
    database: Database,
    federation: Federation,
    inboxes: SlowInboxes,
    federation_log: pytest.LogCaptureFixture,
) -> None:
    inboxes.broken_hosts.add("bad.example")
    await queue(database, ["https://a.example/inbox", "https://bad.example/inbox"])
    clock = Clock()
    worker = Worker(federation, clock=clock)

    assert await worker.run_once() == 1

    assert "bad.example" in federation_log.text and "RuntimeError" in federation_log.text
    bad = next(d for d in await deliveries(database) if d.host == "bad.example")
    assert (bad.state, bad.attempts, bad.locked_until) == (DeliveryState.NEW, 1, None)
    assert "RuntimeError: a bug somewhere below the worker" in bad.last_error
    assert bad.next_attempt_at > clock.now  # backs off like a peer that did not answer
    assert await worker.run_once() == 0
    inboxes.broken_hosts.clear()
    clock.now = bad.next_attempt_at
    assert await worker.run_once() == 1
    assert {d.state for d in await deliveries(database)} == {DeliveryState.SENT}


async def test_a_worker_that_cannot_record_leaves_the_row_to_its_lease(
    database: Database, inboxes: SlowInboxes, federation_log: pytest.LogCaptureFixture
) -> None:
    """The database goes away mid-send: nothing can be written, the row stays leased, and once
    the lease ends it is taken again (as after a worker that died)."""
    up = True

    def sessions() -> AbstractAsyncContextManager[AsyncSession]:
        if not up:
            raise ConnectionRefusedError("the database is down")
        return database.session()

    async def database_dies(request: httpx.Request) -> httpx.Response:
        nonlocal up
        up = False
        raise RuntimeError("lost the connection")

    await queue(database, ["https://a.example/inbox"])
    clock = Clock()
    async with httpx.AsyncClient(transport=httpx.MockTransport(database_dies)) as client:
        worker = Worker(Federation(CONFIG, sessions, Fetcher(client, CONFIG)), clock=clock)
        assert await worker.run_once() == 0
    assert "could not record" in federation_log.text
    [leased] = await deliveries(database)
    assert (leased.state, leased.attempts) == (DeliveryState.NEW, 0)
    assert leased.locked_until == clock.now + lease_for(CONFIG, sends_before=CLAIM_AHEAD)

    up = True
    async with httpx.AsyncClient(transport=httpx.MockTransport(inboxes.handle)) as client:
        worker = Worker(Federation(CONFIG, sessions, Fetcher(client, CONFIG)), clock=clock)
        assert await worker.run_once() == 0  # still leased
        clock.now += lease_for(CONFIG, sends_before=CLAIM_AHEAD) + timedelta(seconds=1)
        assert await worker.run_once() == 1
    assert [d.state for d in await deliveries(database)] == [DeliveryState.SENT]


async def test_run_sleeps_until_woken_and_stops_when_told(
    database: Database, federation: Federation, inboxes: SlowInboxes
) -> None:
    worker = Worker(federation, poll_seconds=3600)  # only wake() can start a pass soon
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await asyncio.sleep(0.2)  # first pass done, nothing to do: idle

    await queue(database, ["https://a.example/inbox"])
    worker.wake()
    await eventually(lambda: _count(inboxes, 1))

    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert task.done() and task.exception() is None


async def test_run_polls_without_being_woken(
    database: Database, federation: Federation, inboxes: SlowInboxes
) -> None:
    worker = Worker(federation, poll_seconds=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        await asyncio.sleep(0.1)
        await queue(database, ["https://a.example/inbox"])  # queued by another process
        await eventually(lambda: _count(inboxes, 1))
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=5)


async def test_a_failing_pass_does_not_end_the_loop(
    database: Database, inboxes: SlowInboxes, federation_log: pytest.LogCaptureFixture
) -> None:
    """The database goes away for a while; the loop logs each failed pass and keeps trying,
    and picks up once it is back."""
    reachable = False

    def sessions() -> AbstractAsyncContextManager[AsyncSession]:
        if not reachable:
            raise ConnectionRefusedError("the database is down")
        return database.session()

    async with httpx.AsyncClient(transport=httpx.MockTransport(inboxes.handle)) as client:
        federation = Federation(CONFIG, sessions, Fetcher(client, CONFIG))
        worker = Worker(federation, poll_seconds=0.02)
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        await eventually(lambda: _logged(federation_log, "worker pass failed", 2))
        reachable = True
        await queue(database, ["https://a.example/inbox"])
        await eventually(lambda: _count(inboxes, 1))
        stop.set()
        await asyncio.wait_for(task, timeout=5)


async def _count(inboxes: SlowInboxes, expected: int) -> bool:
    return len(inboxes.received) >= expected


async def _logged(caplog: pytest.LogCaptureFixture, message: str, times: int) -> bool:
    return sum(message in record.getMessage() for record in caplog.records) >= times


# Batches: claimed a few slots' worth at a time, answers written together


def federation_with(database: Database, client: httpx.AsyncClient, **config: Any) -> Federation:
    changed = replace(CONFIG, **config)
    return Federation(changed, database.session, Fetcher(client, changed))


async def test_a_pass_claims_and_writes_in_batches(
    database: Database, federation: Federation, inboxes: SlowInboxes
) -> None:
    """Not three commits and a dozen statements a row, as when each row was claimed, checked,
    signed and written on its own; and hosts seen a moment ago are not written again."""
    inboxes.delay = 0.01
    hosts = [f"https://h{n}.example/inbox" for n in range(40)]
    await queue(database, hosts)
    clock = Clock()

    with statements(database.engine) as first:
        assert await Worker(federation, clock=clock).deliver_due() == 40
    await queue(database, hosts, number=2)
    with statements(database.engine) as second:
        assert await Worker(federation, clock=clock).deliver_due() == 40

    assert {d.state for d in await deliveries(database)} == {DeliveryState.SENT}
    assert len(inboxes.received) == 80
    for run in (first, second):
        assert run.count("COMMIT") <= 20
        assert len([s for s in run if "actor_key" in s]) <= 3  # once a pass (made, the first)
    assert len([s for s in second if "INTO known_instance" in s]) == 0  # all seen just now
    assert len(second) <= 2 * 40  # statements and commits; it was about ten a row


async def test_a_401_is_tried_again_until_the_inbox_can_check_the_signature(
    database: Database, federation: Federation, inboxes: SlowInboxes
) -> None:
    """The receiver could not fetch our actor (or held an old key): later it can."""
    await queue(database, ["https://picky.example/inbox"])
    clock = Clock()
    inboxes.statuses["picky.example"] = 401

    assert await Worker(federation, clock=clock).deliver_due() == 1
    [row] = await deliveries(database)
    assert (row.state, row.attempts, row.last_status) == (DeliveryState.NEW, 1, 401)
    assert row.next_attempt_at is not None and row.next_attempt_at > clock.now

    inboxes.statuses["picky.example"] = 202
    clock.now = row.next_attempt_at + timedelta(seconds=1)
    assert await Worker(federation, clock=clock).deliver_due() == 1
    [row] = await deliveries(database)
    assert (row.state, row.attempts) == (DeliveryState.SENT, 2)
    assert len(inboxes.received) == 2


async def test_a_410_stops_the_passes_other_sends_to_its_host(
    database: Database, inboxes: SlowInboxes
) -> None:
    inboxes.statuses["gone.example"] = 410
    inboxes.delay = 0
    gone = [f"https://gone.example/{name}/inbox" for name in ("a", "b", "c")]
    await queue(database, [*gone, "https://up.example/inbox"])
    await queue(database, gone, number=2)

    async with httpx.AsyncClient(transport=httpx.MockTransport(inboxes.handle)) as client:
        federation = federation_with(database, client, delivery_concurrency=1)
        assert await Worker(federation, clock=Clock()).run_once() >= 2

    assert inboxes.hosts().count("gone.example") == 1  # one 410 is enough
    assert {d.host: d.state for d in await deliveries(database) if d.host == "up.example"} == {
        "up.example": DeliveryState.SENT
    }
    assert {d.state for d in await deliveries(database) if d.host == "gone.example"} == {
        DeliveryState.GONE
    }


async def test_hosts_the_admins_refuse_are_settled_without_a_send(
    database: Database, inboxes: SlowInboxes
) -> None:
    await queue(database, [f"https://{h}.example/inbox" for h in ("blocked", "unknown", "ok")])
    async with database.session() as session:
        # Decided behind the queue's back (block() would close the rows at once).
        session.add(KnownInstance(host="blocked.example", blocked=True, allowed=True))
        session.add(KnownInstance(host="ok.example", allowed=True))
        await session.commit()

    async with httpx.AsyncClient(transport=httpx.MockTransport(inboxes.handle)) as client:
        federation = federation_with(database, client, allow_list_only=True)
        assert await Worker(federation, clock=Clock()).run_once() == 3

    assert inboxes.hosts() == ["ok.example"]
    refused = [d for d in await deliveries(database) if d.host != "ok.example"]
    assert {(d.state, d.attempts, d.last_error) for d in refused} == {
        (DeliveryState.FAILED, 0, "host blocked or not allowed")
    }


async def test_each_actors_key_is_read_once_a_pass(
    database: Database, federation: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    read: list[str] = []

    async def counting_key_for(session: AsyncSession, actor_uri: str) -> ActorKey:
        read.append(actor_uri)
        return await key_for(session, actor_uri)

    monkeypatch.setattr("federation.delivery.key_for", counting_key_for)
    other = "https://terreau.test/orgs/fablab"
    await queue(database, [f"https://h{n}.example/inbox" for n in range(8)])
    await queue(database, [f"https://h{n}.example/inbox" for n in range(8)], 2, actor=other)

    assert await Worker(federation, clock=Clock()).run_once() == 16

    assert sorted(read) == sorted([ACTOR, other])


async def test_a_stopped_worker_gives_back_the_rows_it_claimed_but_did_not_start(
    database: Database, federation: Federation, inboxes: SlowInboxes
) -> None:
    """Rows claimed ahead of the free slots are released, not left leased for a minute."""
    inboxes.delay = 0.3
    await queue(database, [f"https://h{n}.example/inbox" for n in range(10)])
    worker = Worker(federation)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await eventually(lambda: _in_flight(inboxes, CONFIG.delivery_concurrency))

    stop.set()
    await asyncio.wait_for(task, timeout=5)

    rows = await deliveries(database)
    assert [d.state for d in rows].count(DeliveryState.SENT) == CONFIG.delivery_concurrency
    waiting = [d for d in rows if d.state == DeliveryState.NEW]
    assert len(waiting) == 10 - CONFIG.delivery_concurrency
    assert {(d.locked_until, d.attempts) for d in waiting} == {(None, 0)}


async def test_a_row_whose_lease_would_end_mid_send_is_not_sent(
    database: Database, federation: Federation, inboxes: SlowInboxes
) -> None:
    """Claimed, then the clock jumps (rows before it all timed out, say): a send started now
    could still be running when another worker takes the row, so it waits for its lease."""
    await queue(database, ["https://a.example/inbox", "https://b.example/inbox"])
    start = utcnow() + timedelta(minutes=1)
    lease = lease_for(CONFIG, sends_before=CLAIM_AHEAD)
    times = iter([start])  # the claim's time; every later look at the clock: a lease later

    assert await Worker(federation, clock=lambda: next(times, start + lease)).deliver_due() == 0

    assert inboxes.received == []
    rows = await deliveries(database)
    assert {(d.state, d.attempts, d.locked_until) for d in rows} == {
        (DeliveryState.NEW, 0, start + lease)
    }
    later = Clock(start + lease + timedelta(seconds=1))
    assert await Worker(federation, clock=later).deliver_due() == 2


async def test_two_workers_at_once_send_each_row_once(
    database: Database, federation: Federation, inboxes: SlowInboxes
) -> None:
    """On PostgreSQL each claim skips the other's locked rows; SQLite takes one writer at a
    time. Either way no row is sent twice, and every row is sent."""
    inboxes.delay = 0.01
    await queue(database, [f"https://h{n}.example/inbox" for n in range(30)])

    handled = await asyncio.gather(
        Worker(federation, clock=Clock()).deliver_due(),
        Worker(federation, clock=Clock()).deliver_due(),
    )

    assert sum(handled) == 30
    assert sorted(inboxes.hosts()) == sorted({f"h{n}.example" for n in range(30)})
    assert {d.state for d in await deliveries(database)} == {DeliveryState.SENT}


async def _in_flight(inboxes: SlowInboxes, expected: int) -> bool:
    return inboxes.in_flight >= expected


# Beside the app


def _app_settings(database_url: str, tmp_path: Path, **federation: Any) -> Any:
    options = {"allow_private_addresses": True, "allow_http": True, **federation}
    return make_settings(database_url, tmp_path, federation=options)


async def test_the_app_runs_a_worker_that_routes_can_wake(
    database_url: str, tmp_path: Path, inboxes: SlowInboxes
) -> None:
    settings = _app_settings(database_url, tmp_path)
    app = create_app(settings, http_transport=httpx.MockTransport(inboxes.handle))
    async with app.router.lifespan_context(app):
        worker = app.state.worker
        assert isinstance(worker, Worker)
        async with app.state.db.session() as session:
            activity = {
                "id": "http://testserver/a/1",
                "type": "Announce",
                "actor": "http://testserver/actor",
            }
            await publish(
                session, app.state.federation.config, activity, ["https://a.example/inbox"]
            )
            await session.commit()
        worker.wake()
        await eventually(lambda: _count(inboxes, 1))
    # The lifespan ended: the worker task is gone with it, and the database closed after it.
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "terreau-worker"]


@pytest.mark.parametrize("options", [{"run_worker": False}, {"enabled": False}])
async def test_no_worker_beside_the_app_when_turned_off(
    database_url: str, tmp_path: Path, options: dict[str, bool]
) -> None:
    app = create_app(_app_settings(database_url, tmp_path, **options))
    async with app.router.lifespan_context(app):
        assert app.state.worker is None
        assert not [t for t in asyncio.all_tasks() if t.get_name() == "terreau-worker"]


# Across a socket, to an inbox that checks who signed


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Sink:
    """A real inbox on 127.0.0.1: stores each POST as received, answers 202."""

    received: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)

    def app(self) -> Starlette:
        async def inbox(request: Request) -> Response:
            body = await request.body()
            self.received.append((request.method, str(request.url), dict(request.headers), body))
            return Response(status_code=202)

        return Starlette(routes=[Route("/inbox", inbox, methods=["POST"])])


@pytest.fixture
async def sink() -> AsyncIterator[tuple[Sink, str]]:
    found = Sink()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            found.app(), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
    )
    task = asyncio.create_task(server.serve())
    await eventually(lambda: _started(server), within=10)
    yield found, f"http://127.0.0.1:{port}/inbox"
    server.should_exit = True
    await asyncio.wait_for(task, timeout=10)


async def _started(server: uvicorn.Server) -> bool:
    return server.started


async def test_the_delivery_a_real_inbox_receives_verifies_as_our_actors(
    database: Database, sink: tuple[Sink, str]
) -> None:
    received, inbox = sink
    await queue(database, [inbox])
    async with httpx.AsyncClient(trust_env=False) as client:
        federation = Federation(CONFIG, database.session, Fetcher(client, CONFIG))
        assert await Worker(federation, rng=random.Random(1)).run_once() == 1

    [(method, url, headers, body)] = received.received
    async with database.session() as session:
        key: ActorKey = await key_for(session, ACTOR)

    async def lookup(key_id: str, refresh: bool) -> tuple[str, str] | None:
        return (key.rsa_public_pem, ACTOR) if key_id == main_key_id(ACTOR) else None

    signed = await verify_request(
        method, url, headers, body, lookup, now=utcnow(), window_seconds=300
    )
    assert (signed.key_id, signed.controller) == (main_key_id(ACTOR), ACTOR)
    assert body.startswith(b'{"id":"https://terreau.test/activities/1"')
    [delivered] = await deliveries(database)
    assert (delivered.state, delivered.last_status) == (DeliveryState.SENT, 202)
