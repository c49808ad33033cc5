"""The delivery state machine: what each answer does to a row, which rows are due, who holds them,
and what a remote inbox (faked at the transport) receives over days of ups and downs."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import col, select
from support import statements

from catalogue.columns import utcnow
from federation import instances
from federation.context import FederationConfig
from federation.delivery import (
    JITTER,
    MAX_ATTEMPTS,
    Answer,
    DueDelivery,
    HostPolicy,
    Outcome,
    Refused,
    answer,
    claim_batch,
    claim_due,
    lease_for,
    outcome,
    policy_of,
    record_batch,
    release,
    send_one,
)
from federation.fetch import Fetcher
from federation.models import Delivery, DeliveryState, KnownInstance
from federation.outbox import publish
from instance.database import Database

NOW = datetime.fromisoformat("2025-03-01T12:00:00+00:00")
CONFIG = FederationConfig(
    base_url="https://terreau.test",
    allow_private_addresses=True,
    allow_http=True,
    delivery_concurrency=1,
)
ACTOR = "https://terreau.test/orgs/atelier"
LEASE = timedelta(minutes=1)


class FixedRandom(random.Random):
    """A generator whose every draw is ``value``: the jitter's bounds, exactly."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value


def wait_after(attempts: int, rng: random.Random, status: int | None = 500) -> timedelta:
    result = outcome(status, attempts, NOW, rng)
    assert result.state == DeliveryState.NEW and result.next_attempt_at is not None
    return result.next_attempt_at - NOW


# The pure outcome table


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_2xx_is_sent(status: int) -> None:
    assert outcome(status, 1, NOW, random.Random(1)) == Outcome(DeliveryState.SENT, None)


def test_410_is_gone_with_its_host() -> None:
    assert outcome(410, 3, NOW, random.Random(1)) == Outcome(DeliveryState.GONE, None, True)


@pytest.mark.parametrize("status", [None, 401, 408, 429, 500, 502, 503, 504, 599])
def test_no_answer_401_429_and_5xx_are_tried_again(status: int | None) -> None:
    """401 too: the receiver may have failed to fetch our actor, or hold an old key."""
    result = outcome(status, 1, NOW, random.Random(1))
    assert result.state == DeliveryState.NEW and not result.host_gone
    assert result.next_attempt_at is not None and result.next_attempt_at > NOW


@pytest.mark.parametrize(
    "status", [100, 301, 302, 303, 307, 308, 400, 403, 404, 405, 413, 422, 451, 501, 600]
)
def test_other_answers_fail_at_once(status: int) -> None:
    """3xx included: redirects are not followed on POST, so retrying cannot deliver; 501
    too: the server does not implement inboxes."""
    assert outcome(status, 1, NOW, random.Random(1)) == Outcome(DeliveryState.FAILED, None)


def test_the_wait_is_mastodons_attempts_to_the_fourth_plus_15_seconds() -> None:
    no_jitter = FixedRandom(0.0)
    assert [wait_after(n, no_jitter).total_seconds() for n in (1, 2, 3, 10)] == [
        16,
        31,
        96,
        10_015,
    ]


def test_the_wait_grows_with_every_attempt_whatever_the_jitter() -> None:
    lowest, highest = FixedRandom(0.0), FixedRandom(0.999_999)
    for attempts in range(1, MAX_ATTEMPTS - 1):
        assert wait_after(attempts + 1, lowest) > wait_after(attempts, highest)


def test_jitter_stays_within_30_percent() -> None:
    rng = random.Random(20250301)
    for attempts in range(1, MAX_ATTEMPTS):
        base = attempts**4 + 15
        waits = [wait_after(attempts, rng).total_seconds() for _ in range(200)]
        assert all(base <= wait < base * (1 + JITTER) for wait in waits)
        assert len(set(waits)) > 1  # it does vary


def test_retries_end_failed_after_the_last_attempt_about_two_days_later() -> None:
    rng = FixedRandom(0.0)
    total = sum((wait_after(n, rng) for n in range(1, MAX_ATTEMPTS)), timedelta())
    assert outcome(503, MAX_ATTEMPTS - 1, NOW, rng).state == DeliveryState.NEW
    assert outcome(503, MAX_ATTEMPTS, NOW, rng) == Outcome(DeliveryState.FAILED, None)
    assert outcome(None, MAX_ATTEMPTS, NOW, rng).state == DeliveryState.FAILED
    assert timedelta(days=2) <= total < timedelta(days=2, hours=2)


def test_the_lease_outlasts_a_send() -> None:
    assert lease_for(CONFIG) >= timedelta(seconds=4 * CONFIG.delivery_timeout_seconds)
    slow = replace(CONFIG, delivery_timeout_seconds=120)
    assert lease_for(slow) == timedelta(minutes=8)
    # A worker claiming rows ahead: the sends its slot makes before a row fit in its lease too.
    assert lease_for(slow, sends_before=8) == timedelta(minutes=18)


# Claiming


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


def activity(number: int) -> dict[str, Any]:
    return {"id": f"https://terreau.test/activities/{number}", "type": "Create", "actor": ACTOR}


async def queue(database: Database, *inboxes: str, number: int = 1) -> list[int]:
    """Publish activity ``number`` to ``inboxes``; the delivery ids, in inbox order."""
    async with database.session() as session:
        await publish(session, CONFIG, activity(number), inboxes)
        await session.commit()
        rows = await session.exec(select(Delivery).order_by(col(Delivery.id)))
        return [row.id for row in rows.all() if row.inbox in inboxes and row.id is not None]


async def set_due(database: Database, ids: list[int], when: datetime) -> None:
    async with database.session() as session:
        await session.exec(
            update(Delivery).where(col(Delivery.id).in_(ids)).values(next_attempt_at=when)
        )
        await session.commit()


async def claim(database: Database, now: datetime, limit: int = 10) -> list[DueDelivery]:
    async with database.session() as session:
        return await claim_due(session, now, limit, LEASE)


async def row(database: Database, delivery_id: int) -> Delivery:
    async with database.session() as session:
        found = await session.get(Delivery, delivery_id)
        assert found is not None
        return found


async def test_claim_takes_due_rows_oldest_first_with_their_bodies(database: Database) -> None:
    ids = await queue(database, *(f"https://h{n}.example/inbox" for n in range(4)))
    await set_due(database, [ids[0]], NOW - timedelta(minutes=1))
    await set_due(database, [ids[1]], NOW - timedelta(minutes=3))
    await set_due(database, [ids[2]], NOW - timedelta(minutes=2))
    await set_due(database, [ids[3]], NOW + timedelta(seconds=1))  # not due yet

    claimed = await claim(database, NOW, limit=2)

    assert [due.id for due in claimed] == [ids[1], ids[2]]
    assert claimed[0].actor_uri == ACTOR
    assert claimed[0].body == '{"id":"https://terreau.test/activities/1","type":"Create",' + (
        f'"actor":"{ACTOR}"}}'
    )
    assert (claimed[0].host, claimed[0].attempts) == ("h1.example", 0)
    assert (await row(database, ids[1])).locked_until == NOW + LEASE
    assert [due.id for due in await claim(database, NOW)] == [ids[0]]  # the rest of the due
    assert await claim(database, NOW) == []  # all leased


async def test_settled_rows_are_never_claimed(database: Database) -> None:
    ids = await queue(database, "https://a.example/inbox", "https://b.example/inbox")
    async with database.session() as session:
        await session.exec(
            update(Delivery).where(col(Delivery.id) == ids[0]).values(state=DeliveryState.SENT)
        )
        await instances.mark_gone(session, "b.example", NOW)
        await session.commit()

    assert await claim(database, NOW + timedelta(days=30)) == []


async def test_an_expired_lease_makes_the_row_due_again(database: Database) -> None:
    """A worker that died mid-send leaves its row leased; once the lease ends it is taken again."""
    [delivery_id] = await queue(database, "https://a.example/inbox")
    await set_due(database, [delivery_id], NOW)

    assert [due.id for due in await claim(database, NOW)] == [delivery_id]
    # ...the worker dies here, without recording anything.
    assert await claim(database, NOW + LEASE - timedelta(seconds=1)) == []
    again = await claim(database, NOW + LEASE + timedelta(seconds=1))
    assert [(due.id, due.attempts) for due in again] == [(delivery_id, 0)]


async def test_concurrent_claimers_never_take_the_same_row(database: Database) -> None:
    ids = await queue(database, *(f"https://h{n}.example/inbox" for n in range(30)))
    await set_due(database, ids, NOW)

    batches = await asyncio.gather(*(claim(database, NOW, limit=4) for _ in range(10)))

    taken = [due.id for batch in batches for due in batch]
    assert sorted(taken) == sorted(ids)  # all of them, each once


@pytest.fixture
async def postgres_database(postgres_database_url: str) -> AsyncIterator[Database]:
    database = Database(postgres_database_url)
    yield database
    await database.dispose()


@pytest.mark.postgres
async def test_on_postgresql_a_claimer_skips_rows_locked_by_another(
    postgres_database: Database,
) -> None:
    """SKIP LOCKED is PostgreSQL's; SQLite takes one writer at a time, so it has no case."""
    database = postgres_database
    ids = await queue(database, "https://a.example/inbox", "https://b.example/inbox")
    await set_due(database, ids, NOW)
    async with database.session() as other:
        # Another worker's claim, caught between its SELECT … FOR UPDATE and its commit.
        await other.exec(select(Delivery).where(Delivery.id == ids[0]).with_for_update())

        claimed = await asyncio.wait_for(claim(database, NOW), timeout=5)

        assert [due.id for due in claimed] == [ids[1]]  # skipped, not waited for
        await other.rollback()
    assert [due.id for due in await claim(database, NOW)] == [ids[0]]


# Sending, against inboxes faked at the transport


@dataclass
class Inboxes:
    """Remote servers: each host answers its status (default 202) or is down (None)."""

    answers: dict[str, int | None] = field(default_factory=dict)
    received: list[httpx.Request] = field(default_factory=list)
    accepted: list[httpx.Request] = field(default_factory=list)  # those answered 2xx

    def handle(self, request: httpx.Request) -> httpx.Response:
        answer = self.answers.get(request.url.host, 202)
        if answer is None:
            raise httpx.ConnectError("Connection refused", request=request)
        self.received.append(request)
        if 200 <= answer <= 299:
            self.accepted.append(request)
        return httpx.Response(answer)

    def bodies(self, host: str) -> list[bytes]:
        """What ``host`` accepted."""
        return [r.content for r in self.accepted if r.url.host == host]


@dataclass
class Clock:
    # A minute ahead, so that rows the test publishes (stamped with the real time) are due.
    now: datetime = field(default_factory=lambda: utcnow() + timedelta(minutes=1))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Sender:
    """Claims and sends every due row, as one worker pass does, at the clock's time."""

    database: Database
    fetcher: Fetcher
    clock: Clock
    config: FederationConfig = CONFIG
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    async def send_due(self) -> list[DeliveryState]:
        states = []
        async with self.database.session() as session:
            claimed = await claim_due(session, self.clock(), 100, lease_for(self.config))
        for due in claimed:
            async with self.database.session() as session:
                states.append(
                    await send_one(
                        session, self.fetcher, self.config, due, rng=self.rng, clock=self.clock
                    )
                )
        return states

    async def at_next_attempt(self) -> list[DeliveryState]:
        """Move the clock to when the earliest waiting row is due, then send."""
        async with self.database.session() as session:
            waiting = (
                await session.exec(
                    select(Delivery.next_attempt_at)
                    .where(Delivery.state == DeliveryState.NEW)
                    .order_by(col(Delivery.next_attempt_at))
                )
            ).first()
        if waiting is not None and waiting > self.clock.now:
            self.clock.now = waiting
        return await self.send_due()


@pytest.fixture
def inboxes() -> Inboxes:
    return Inboxes()


@pytest.fixture
async def sender(database: Database, inboxes: Inboxes) -> AsyncIterator[Sender]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(inboxes.handle)) as client:
        yield Sender(database, Fetcher(client, CONFIG), Clock())


async def states(database: Database) -> dict[str, list[str]]:
    async with database.session() as session:
        rows = (await session.exec(select(Delivery).order_by(col(Delivery.id)))).all()
    found: dict[str, list[str]] = {}
    for delivery in rows:
        found.setdefault(delivery.host, []).append(delivery.state)
    return found


async def test_a_2xx_is_recorded_and_never_sent_again(
    database: Database, sender: Sender, inboxes: Inboxes
) -> None:
    [delivery_id] = await queue(database, "https://a.example/users/x/inbox")

    assert await sender.send_due() == [DeliveryState.SENT]
    sender.clock.advance(days=30)  # long after any lease or back-off
    assert await sender.send_due() == []

    assert len(inboxes.received) == 1
    sent = await row(database, delivery_id)
    assert (sent.state, sent.attempts, sent.last_status, sent.last_error) == ("sent", 1, 202, "")
    assert sent.finished_at == sender.clock.now - timedelta(days=30)
    assert sent.locked_until is None
    async with database.session() as session:  # it answered: the host is known to be up
        assert await instances.get(session, "a.example") is not None


async def test_a_late_worker_cannot_undo_a_recorded_2xx(
    database: Database, sender: Sender, inboxes: Inboxes
) -> None:
    """Worker A's lease ran out mid-send; B took the row and delivered it. When A's answer (a
    500) finally comes, the row stays sent and is not queued again."""
    [delivery_id] = await queue(database, "https://a.example/inbox")
    async with database.session() as session:
        [stale] = await claim_due(session, sender.clock(), 10, LEASE)
    sender.clock.advance(minutes=5)
    assert await sender.send_due() == [DeliveryState.SENT]  # worker B

    inboxes.answers["a.example"] = 500
    async with database.session() as session:  # worker A, at last
        await send_one(session, sender.fetcher, CONFIG, stale, rng=sender.rng, clock=sender.clock)

    assert (await row(database, delivery_id)).state == DeliveryState.SENT
    sender.clock.advance(days=3)
    assert await sender.send_due() == []


@pytest.mark.parametrize("down", [500, 503, 429, None], ids=["500", "503", "429", "refused"])
async def test_a_peer_down_for_a_day_receives_everything_once_back(
    database: Database, sender: Sender, inboxes: Inboxes, down: int | None
) -> None:
    inboxes.answers["down.example"] = down
    for number in range(3):
        await queue(
            database, "https://down.example/inbox", "https://up.example/inbox", number=number
        )

    tries = 0
    started = sender.clock.now
    while sender.clock.now - started < timedelta(days=1):
        await sender.at_next_attempt()
        tries += 1
    assert await states(database) == {"down.example": ["new"] * 3, "up.example": ["sent"] * 3}
    async with database.session() as session:
        waiting = (
            await session.exec(select(Delivery).where(Delivery.host == "down.example"))
        ).all()
    assert all(1 < d.attempts < MAX_ATTEMPTS and d.last_status == down for d in waiting)
    assert all(d.last_error for d in waiting)

    inboxes.answers["down.example"] = 202  # back up
    await sender.at_next_attempt()
    for _ in range(3):  # rows due at slightly different times (jitter)
        await sender.at_next_attempt()

    assert await states(database) == {"down.example": ["sent"] * 3, "up.example": ["sent"] * 3}
    bodies = inboxes.bodies("down.example")
    assert len(bodies) == len(set(bodies)) == 3  # each activity accepted once
    assert tries > 5  # it really was tried, again and again, while down


async def test_retries_give_up_after_the_last_attempt(
    database: Database, sender: Sender, inboxes: Inboxes
) -> None:
    inboxes.answers["broken.example"] = 500
    [delivery_id] = await queue(database, "https://broken.example/inbox")

    for _ in range(MAX_ATTEMPTS + 3):
        await sender.at_next_attempt()

    failed = await row(database, delivery_id)
    assert (failed.state, failed.attempts, failed.last_status) == ("failed", MAX_ATTEMPTS, 500)
    assert len(inboxes.received) == MAX_ATTEMPTS
    assert timedelta(days=2) < sender.clock.now - failed.created_at < timedelta(days=3)


async def test_400_fails_without_retry(
    database: Database, sender: Sender, inboxes: Inboxes
) -> None:
    inboxes.answers["strict.example"] = 400
    [delivery_id] = await queue(database, "https://strict.example/inbox")

    assert await sender.send_due() == [DeliveryState.FAILED]
    sender.clock.advance(days=3)
    assert await sender.send_due() == []

    failed = await row(database, delivery_id)
    assert (failed.attempts, failed.last_status, failed.last_error) == (1, 400, "400 Bad Request")
    assert len(inboxes.received) == 1


async def test_410_marks_the_host_gone_with_its_other_pending_rows(
    database: Database, sender: Sender, inboxes: Inboxes
) -> None:
    inboxes.answers["gone.example"] = 410
    gone = ["https://gone.example/inbox", "https://gone.example/users/1/inbox"]
    await queue(database, *gone, "https://up.example/inbox", number=1)
    await queue(database, *gone, number=2)

    await sender.send_due()

    assert [r.url.host for r in inboxes.received].count("gone.example") == 1  # one 410 is enough
    assert await states(database) == {"gone.example": ["gone"] * 4, "up.example": ["sent"]}
    async with database.session() as session:
        known = await instances.get(session, "gone.example")
        assert known is not None and known.gone_at is not None

    # Later activities are queued gone, until the host speaks to us again.
    await queue(database, gone[0], number=3)
    assert (await states(database))["gone.example"] == ["gone"] * 5
    async with database.session() as session:
        await instances.seen(session, "gone.example")
        await session.commit()
    inboxes.answers["gone.example"] = 202
    await queue(database, gone[0], number=4)
    assert await sender.send_due() == [DeliveryState.SENT]


async def test_a_host_blocked_or_left_off_the_allow_list_after_queueing_is_not_sent(
    database: Database, sender: Sender, inboxes: Inboxes
) -> None:
    await queue(database, "https://a.example/inbox", "https://b.example/inbox")
    async with database.session() as session:
        # Blocked behind the queue's back (block() would close its rows at once).
        session.add(KnownInstance(host="a.example", blocked=True))
        await session.commit()
    sender.config = replace(CONFIG, allow_list_only=True)  # and b.example was never allowed

    assert await sender.send_due() == [DeliveryState.FAILED, DeliveryState.FAILED]

    assert inboxes.received == []
    async with database.session() as session:
        rows = (await session.exec(select(Delivery))).all()
    assert {(d.attempts, d.last_error) for d in rows} == {(0, "host blocked or not allowed")}


async def test_a_row_for_a_host_gone_since_it_was_claimed_is_not_sent(
    database: Database, sender: Sender, inboxes: Inboxes
) -> None:
    await queue(database, "https://a.example/inbox")
    async with database.session() as session:
        [due] = await claim_due(session, sender.clock(), 10, LEASE)
        session.add(KnownInstance(host="a.example", gone_at=sender.clock()))
        await session.commit()
        assert await send_one(session, sender.fetcher, CONFIG, due, rng=sender.rng) == "gone"
    assert inboxes.received == []


async def test_the_posted_request_is_the_stored_activity_signed_by_its_actor(
    database: Database, sender: Sender, inboxes: Inboxes
) -> None:
    await queue(database, "https://a.example/inbox")
    await sender.send_due()

    [request] = inboxes.received
    assert request.method == "POST"
    assert request.url == "https://a.example/inbox"
    assert request.content == (
        b'{"id":"https://terreau.test/activities/1","type":"Create",'
        + f'"actor":"{ACTOR}"}}'.encode()
    )
    assert "activity+json" in request.headers["content-type"]
    assert f'keyId="{ACTOR}#main-key"' in request.headers["signature"]


# Batches: what the worker claims and writes at once


async def claim_all(database: Database, now: datetime = NOW) -> dict[str, DueDelivery]:
    """Every due row, claimed, by host."""
    return {due.host: due for due in await claim(database, now, limit=100)}


async def write(
    database: Database, answers: list[Answer], refused: Sequence[Refused] = (), **options: Any
) -> list[str]:
    """``record_batch`` in a session of its own; the SQL it ran."""
    with statements(database.engine) as run:
        async with database.session() as session:
            await record_batch(session, answers, refused, NOW, **options)
    return run


def answered(due: DueDelivery, status: int | None, error: str = "") -> Answer:
    return answer(due, status, error, NOW, FixedRandom(0.0))


async def test_a_batch_of_answers_is_written_in_one_transaction(database: Database) -> None:
    hosts = ["ok.example", "also.example", "busy.example", "gone.example", "strict.example"]
    await queue(database, *(f"https://{host}/inbox" for host in hosts))
    await queue(database, "https://gone.example/users/1/inbox", number=2)  # not claimed
    rows = await claim_all(database, utcnow() + timedelta(minutes=1))
    later = [rows.pop("gone.example")]  # the row of activity 2 was not due: claim it apart
    by_host = {
        "ok.example": 202,
        "also.example": 200,
        "busy.example": 503,
        "strict.example": 404,
    }
    answers = [answered(rows[host], status) for host, status in by_host.items()]
    answers.append(answered(later[0], 410))

    run = await write(database, answers)

    assert run.count("COMMIT") == 1
    delivery_updates = [s for s in run if s.startswith("UPDATE delivery")]
    assert len(delivery_updates) == 2 + 3 + 1  # a status per 2xx group, each other answer,
    # and the gone host's pending rows
    found = await states(database)
    assert found["ok.example"] == found["also.example"] == ["sent"]
    assert found["busy.example"] == ["new"]
    assert found["strict.example"] == ["failed"]
    assert found["gone.example"] == ["gone", "gone"]  # its other pending row closed too
    async with database.session() as session:
        assert all([await instances.get(session, host) for host in ("ok.example", "also.example")])
        gone = await instances.get(session, "gone.example")
        assert gone is not None and gone.gone_at == NOW
    busy = await row(database, rows["busy.example"].id)
    assert (busy.attempts, busy.last_status, busy.locked_until) == (1, 503, None)
    assert busy.next_attempt_at == NOW + timedelta(seconds=16)  # 1**4 + 15, no jitter
    sent = await row(database, rows["ok.example"].id)
    assert (sent.attempts, sent.last_status, sent.finished_at) == (1, 202, NOW)


async def test_a_batched_2xx_leaves_a_row_settled_meanwhile_alone(database: Database) -> None:
    """Blocked (and closed) while the POST was in flight, or sent by a worker that took it
    after our lease ran out: the batch's UPDATE is conditional, like the single one."""
    await queue(database, "https://a.example/inbox", "https://b.example/inbox")
    rows = await claim_all(database, utcnow() + timedelta(minutes=1))
    async with database.session() as session:
        await instances.block(session, "a.example")
        await session.commit()

    await write(database, [answered(rows["a.example"], 202), answered(rows["b.example"], 202)])

    assert await states(database) == {"a.example": ["failed"], "b.example": ["sent"]}
    blocked = await row(database, rows["a.example"].id)
    assert (blocked.attempts, blocked.last_error) == (0, "host blocked")


async def test_a_host_seen_lately_is_not_written_again(database: Database) -> None:
    """Its row says it spoke a moment ago: no statement for it at all."""
    await queue(database, "https://fresh.example/inbox", "https://new.example/inbox")
    rows = await claim_all(database, utcnow() + timedelta(minutes=1))

    run = await write(
        database,
        [answered(rows["fresh.example"], 202), answered(rows["new.example"], 202)],
        fresh={"fresh.example"},
    )

    touching = [s for s in run if "known_instance" in s]
    assert len(touching) == 1 and "INSERT" in touching[0]  # new.example's row
    async with database.session() as session:
        assert await instances.get(session, "fresh.example") is None  # not written, as asked
        assert await instances.get(session, "new.example") is not None


async def test_a_2xx_after_a_410_in_one_batch_brings_the_host_back(database: Database) -> None:
    """As if written one after the other: the host came back, even if it was fresh."""
    await queue(database, "https://flaky.example/a/inbox", "https://flaky.example/b/inbox")
    first, second = await claim(database, utcnow() + timedelta(minutes=1))

    await write(database, [answered(first, 410), answered(second, 202)], fresh={"flaky.example"})

    async with database.session() as session:
        known = await instances.get(session, "flaky.example")
    assert known is not None and known.gone_at is None
    assert await states(database) == {"flaky.example": ["gone", "sent"]}


async def test_refusals_are_settled_unattempted(database: Database) -> None:
    await queue(database, "https://a.example/inbox")
    [due] = await claim(database, utcnow() + timedelta(minutes=1))

    await write(database, [], [Refused(due, DeliveryState.FAILED, "host blocked or not allowed")])

    refused = await row(database, due.id)
    assert (refused.state, refused.attempts, refused.last_status) == ("failed", 0, None)
    assert (refused.last_error, refused.locked_until) == ("host blocked or not allowed", None)


def test_a_hosts_policy_follows_the_admins_and_its_answers() -> None:
    now = NOW
    allow_list = replace(CONFIG, allow_list_only=True)
    recent, old = now - timedelta(seconds=5), now - timedelta(days=1)
    blocked = KnownInstance(host="b.example", blocked=True, last_seen_at=recent)
    allowed = KnownInstance(host="a.example", allowed=True, last_seen_at=recent)
    gone = KnownInstance(host="g.example", last_seen_at=recent, gone_at=old)
    stale = KnownInstance(host="s.example", last_seen_at=old)

    refused_as = DeliveryState.FAILED, "host blocked or not allowed"
    assert policy_of(CONFIG, "b.example", blocked, now) == HostPolicy(refused_as)
    assert policy_of(allow_list, "n.example", None, now) == HostPolicy(refused_as)
    assert policy_of(allow_list, "a.example", allowed, now) == HostPolicy(None, fresh=True)
    assert policy_of(CONFIG, "g.example", gone, now).refusal == (DeliveryState.GONE, "host gone")
    assert policy_of(CONFIG, "s.example", stale, now) == HostPolicy(None, fresh=False)
    assert policy_of(CONFIG, "n.example", None, now) == HostPolicy(None, fresh=False)
    assert policy_of(allow_list, "terreau.test", None, now) == HostPolicy()  # ourselves


async def test_a_claimed_batch_comes_with_its_hosts_and_signers_in_one_commit(
    database: Database,
) -> None:
    await queue(database, *(f"https://h{n}.example/inbox" for n in range(3)))
    async with database.session() as session:
        session.add(KnownInstance(host="h1.example", blocked=True))
        await session.commit()

    with statements(database.engine) as run:
        async with database.session() as session:
            batch = await claim_batch(session, CONFIG, utcnow() + timedelta(minutes=1), 10, LEASE)
    assert run.count("COMMIT") == 1  # the lease, the reads and the key made on first use
    assert len([s for s in run if "FROM known_instance" in s]) == 1

    assert [due.host for due in batch.rows] == ["h0.example", "h1.example", "h2.example"]
    assert batch.policies["h1.example"].refusal is not None
    assert batch.policies["h0.example"] == batch.policies["h2.example"] == HostPolicy()
    assert list(batch.signers) == [ACTOR]
    assert batch.signers[ACTOR].key_id == f"{ACTOR}#main-key"
    assert (await row(database, batch.rows[0].id)).locked_until == batch.lease_ends

    await queue(database, "https://h3.example/inbox", number=2)
    async with database.session() as session:
        again = await claim_batch(
            session, CONFIG, utcnow() + timedelta(minutes=1), 10, LEASE, signers=batch.signers
        )
    assert [due.host for due in again.rows] == ["h3.example"]
    assert again.signers == {}  # the caller has it already


async def test_release_gives_back_only_rows_still_leased_by_that_claim(
    database: Database,
) -> None:
    ids = await queue(database, *(f"https://h{n}.example/inbox" for n in range(3)))
    await set_due(database, ids, NOW)
    first = await claim(database, NOW)
    # The lease of the third lapses (as if it had been much shorter); another worker takes it.
    later = NOW + timedelta(seconds=1)
    async with database.session() as session:
        await session.exec(
            update(Delivery).where(col(Delivery.id) == ids[2]).values(locked_until=NOW)
        )
        await session.commit()
    [taken] = await claim(database, later)
    assert taken.id == ids[2]

    async with database.session() as session:
        await release(session, [due.id for due in first], NOW + LEASE)

    assert [(await row(database, i)).locked_until for i in ids[:2]] == [None, None]
    assert (await row(database, ids[2])).locked_until == later + LEASE  # still the other's
    assert [due.id for due in await claim(database, NOW)] == ids[:2]
