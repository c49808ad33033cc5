"""The delivery queue as a state machine: which row is due, what a response code does to it.

A row is ``new`` until an answer settles it: ``sent`` (2xx), ``gone`` (410, or its host was
already gone) or ``failed`` (a 4xx that retrying cannot fix, a block, or about two days of
errors). While it waits, ``next_attempt_at`` says when it is due and ``locked_until`` leases
it to the one worker sending it. What a status does is the pure ``outcome``; the I/O around
it is ``claim_batch`` (or ``claim_due``), ``post`` and ``record_batch``.

Answers are written in batches, because the database, not the network, was the worker's
cost (a dozen statements and three commits per row): ``record_batch`` writes the 2xx of a
batch in one UPDATE, the others one by one, marks each host seen or gone once, and commits
once. The price: a worker killed (or cut off from its database) after some answers came in
but before their batch was committed has sent those rows without recording it. They are
still leased, so they are taken again once the lease ends and sent a second time: at most
the answers of the last write interval (a batch, and those that came while it was being
written). Receivers drop the repeat, as they keep activities by id (our inbox does). Nothing
is lost, and a 2xx once committed is never sent again: every write is conditional on
``state = 'new'``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from catalogue.columns import utcnow
from federation import instances
from federation.context import FederationConfig
from federation.fetch import Fetcher, FetchError
from federation.keys import Signer, key_for, signer_of
from federation.models import Delivery, DeliveryState, KnownInstance, OutboxActivity

log = logging.getLogger("terreau.federation")

#: Attempts before giving up: with the back-off below, about two days (as Mastodon).
MAX_ATTEMPTS = 16
#: Up to this fraction is added to each wait, so that retries to one host spread out.
JITTER = 0.3
#: 4xx worth trying again: the server timed out reading us, is busy, or could not check our
#: signature yet (it failed to fetch our actor, or holds an old key): as Mastodon does.
RETRYABLE = frozenset({401, 408, 429})
#: A 5xx that trying again cannot fix: the server does not implement what we ask.
UNSALVAGEABLE = frozenset({501})


@dataclass(frozen=True)
class Outcome:
    state: DeliveryState
    next_attempt_at: datetime | None
    host_gone: bool = False


def backoff(attempts: int, rng: random.Random) -> timedelta:
    """Mastodon's wait after attempt number ``attempts``: ``attempts**4 + 15`` seconds, plus
    up to 30 % jitter."""
    return timedelta(seconds=(attempts**4 + 15) * (1 + JITTER * rng.random()))


def is_retryable(status: int | None) -> bool:
    """No answer, 401, 408, 429 and 5xx but 501 may succeed later; anything else will not."""
    if status is None or status in RETRYABLE:
        return True
    return 500 <= status <= 599 and status not in UNSALVAGEABLE


def outcome(status: int | None, attempts: int, now: datetime, rng: random.Random) -> Outcome:
    """What happens after attempt number ``attempts`` ended with ``status`` (None: no answer).

    2xx: sent. 410: gone, and the host too. 401, 408, 429, 5xx (but 501) and no answer: try
    again after an exponential back-off with jitter, for about two days, then failed. Other
    4xx, 501 (and 3xx: redirects are not followed on POST, so they never deliver): failed.
    """
    if status is not None and 200 <= status <= 299:
        return Outcome(DeliveryState.SENT, None)
    if status == 410:
        return Outcome(DeliveryState.GONE, None, host_gone=True)
    if is_retryable(status) and attempts < MAX_ATTEMPTS:
        return Outcome(DeliveryState.NEW, now + backoff(attempts, rng))
    return Outcome(DeliveryState.FAILED, None)


def lease_for(config: FederationConfig, sends_before: int = 3) -> timedelta:
    """How long a claimed row stays a worker's: beyond its own send's timeout and that of the
    ``sends_before`` sends its slot may make before it (rows are claimed ahead), so that only a
    worker that died leaves it to be claimed again."""
    return timedelta(seconds=max(60.0, (sends_before + 1) * config.delivery_timeout_seconds))


@dataclass(frozen=True)
class DueDelivery:
    """A claimed row with what sending it needs, detached from any session."""

    id: int
    inbox: str
    host: str
    attempts: int  # made before this one
    actor_uri: str
    body: str  # the activity's JSON, sent as stored


@dataclass(frozen=True)
class HostPolicy:
    """What sending to a host depends on, read once for a whole claimed batch."""

    refusal: tuple[DeliveryState, str] | None = None  # why its rows must not be sent, if so
    # Seen lately (``instances.seen_recently``): a 2xx from it need not mark it seen again,
    # which saves a statement per delivery of a fan-out.
    fresh: bool = False


@dataclass(frozen=True)
class Batch:
    """Claimed rows with everything their sends need, read in the claim's transaction."""

    rows: list[DueDelivery]
    lease_ends: datetime  # the rows are this worker's until then
    policies: dict[str, HostPolicy]  # by host
    signers: dict[str, Signer]  # by actor, for those the caller did not already have


@dataclass(frozen=True)
class Answer:
    """How one attempt ended and what it makes of its row, until written with others."""

    due: DueDelivery
    status: int | None  # None: no answer (refused address, network error, timeout, crash)
    error: str
    at: datetime
    result: Outcome


@dataclass(frozen=True)
class Refused:
    """A row not sent because of its host (blocked, not allowed, gone): settled unattempted."""

    due: DueDelivery
    state: DeliveryState
    why: str


def answer(
    due: DueDelivery, status: int | None, error: str, at: datetime, rng: random.Random
) -> Answer:
    """The attempt's ``outcome``, decided when the answer comes (a 410 must stop the other
    sends to its host at once, not when the batch is written)."""
    return Answer(due, status, error, at, outcome(status, due.attempts + 1, at, rng))


# Claiming


def _due(now: datetime) -> Any:
    return (
        (col(Delivery.state) == DeliveryState.NEW)
        & (col(Delivery.next_attempt_at) <= now)
        & or_(col(Delivery.locked_until).is_(None), col(Delivery.locked_until) < now)
    )


async def _any_due(session: AsyncSession, now: datetime) -> bool:
    """A plain read first, so that an idle worker polling SQLite never takes the write lock."""
    found = (await session.exec(select(Delivery.id).where(_due(now)).limit(1))).first()
    await session.rollback()
    return found is not None


async def _lease(
    session: AsyncSession, now: datetime, limit: int, lease: timedelta, *, probe: bool
) -> list[DueDelivery]:
    """Lease up to ``limit`` due rows, oldest due first; no commit.

    One ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING``: on PostgreSQL
    concurrent workers skip each other's rows instead of waiting or taking them twice; on
    SQLite (where the lock clause is dropped) a single writing statement cannot interleave
    with another writer between its read and its write. ``probe=False`` skips the plain read
    first, for a caller whose last claim was full (rows are surely due).
    """
    if limit <= 0 or (probe and not await _any_due(session, now)):
        return []
    chosen = (
        select(Delivery.id)
        .where(_due(now))
        .order_by(col(Delivery.next_attempt_at), col(Delivery.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    # Columns, not entities, and each activity read once: a fan-out claims hundreds of rows
    # of one activity, and building and tracking an entity per row was most of a claim's CPU.
    leased = await session.exec(
        update(Delivery)
        .where(col(Delivery.id).in_(chosen.scalar_subquery()))
        .values(locked_until=now + lease)
        .returning(
            col(Delivery.next_attempt_at),
            col(Delivery.id),
            col(Delivery.inbox),
            col(Delivery.host),
            col(Delivery.attempts),
            col(Delivery.activity_id),
        )
        .execution_options(synchronize_session=False)
    )
    claimed = sorted(leased.all())  # oldest due first, as chosen
    if not claimed:
        return []
    activities = await session.exec(
        select(OutboxActivity.id, OutboxActivity.actor_uri, OutboxActivity.body).where(
            col(OutboxActivity.id).in_({row[5] for row in claimed})
        )
    )
    sent_as = {id_: (actor_uri, body) for id_, actor_uri, body in activities.all()}
    return [
        DueDelivery(id_, inbox, host, attempts, *sent_as[activity_id])
        for _due_at, id_, inbox, host, attempts, activity_id in claimed
    ]


async def claim_due(
    session: AsyncSession, now: datetime, limit: int, lease: timedelta, *, probe: bool = True
) -> list[DueDelivery]:
    """Lease up to ``limit`` due rows, oldest due first, and commit the lease (see ``_lease``)."""
    claimed = await _lease(session, now, limit, lease, probe=probe)
    await session.commit()
    return claimed


async def claim_batch(
    session: AsyncSession,
    config: FederationConfig,
    now: datetime,
    limit: int,
    lease: timedelta,
    *,
    probe: bool = True,
    signers: Mapping[str, Signer] | None = None,
) -> Batch:
    """Lease up to ``limit`` due rows with their hosts' policies and the signers of the actors
    not in ``signers``, in one transaction, and commit it.

    Reading ``known_instance`` once for all the batch's hosts, and each actor's key once,
    replaces three reads and a commit per row.
    """
    rows = await _lease(session, now, limit, lease, probe=probe)
    policies: dict[str, HostPolicy] = {}
    new_signers: dict[str, Signer] = {}
    if rows:
        policies = await host_policies(session, config, {d.host for d in rows}, now)
        new_signers = await load_signers(session, {d.actor_uri for d in rows} - set(signers or {}))
    await session.commit()
    return Batch(rows, now + lease, policies, new_signers)


def policy_of(
    config: FederationConfig, host: str, known: KnownInstance | None, now: datetime
) -> HostPolicy:
    """Whether to send to ``host`` given its row (None: never heard of): not when the admins
    block it or left it off the allow list, nor when it is gone."""
    if not instances.permits(config, host, known):
        return HostPolicy((DeliveryState.FAILED, "host blocked or not allowed"))
    if known is not None and known.gone_at is not None:
        return HostPolicy((DeliveryState.GONE, "host gone"))
    return HostPolicy(None, fresh=instances.seen_recently(known, now))


async def host_policies(
    session: AsyncSession, config: FederationConfig, hosts: Collection[str], now: datetime
) -> dict[str, HostPolicy]:
    """The policy of each host, from one read of their ``known_instance`` rows (the admins may
    have decided after the rows were queued)."""
    names = {host.lower() for host in hosts}
    rows = await session.exec(select(KnownInstance).where(col(KnownInstance.host).in_(names)))
    known = {row.host: row for row in rows.all()}
    return {host: policy_of(config, host, known.get(host.lower()), now) for host in hosts}


async def load_signers(session: AsyncSession, actor_uris: Iterable[str]) -> dict[str, Signer]:
    """Each actor's signer (its key made on first use, no commit)."""
    return {uri: signer_of(await key_for(session, uri)) for uri in actor_uris}


async def release(session: AsyncSession, ids: Collection[int], lease_ends: datetime) -> None:
    """Give back claimed rows that were never sent (the worker is stopping), so that no one
    waits for their lease; only rows still leased by this claim. Commits."""
    if not ids:
        return
    await session.exec(
        update(Delivery)
        .where(
            col(Delivery.id).in_(ids),
            col(Delivery.state) == DeliveryState.NEW,
            col(Delivery.locked_until) == lease_ends,
        )
        .values(locked_until=None)
        .execution_options(synchronize_session=False)
    )
    await session.commit()


# Sending


async def post(
    fetcher: Fetcher, due: DueDelivery, signer: Signer, signed: dict[str, str] | None = None
) -> tuple[int | None, str]:
    """(status, error) of one POST; a refused address or a network failure is (None, why).
    ``signed``: its signing headers, made ahead (else made now with ``signer``)."""
    try:
        body = due.body.encode()
        response = await fetcher.post_activity(due.inbox, body, signer=signer, signed=signed)
    except FetchError as error:
        return None, error.reason
    if 200 <= response.status_code <= 299:
        return response.status_code, ""
    return response.status_code, f"{response.status_code} {response.reason_phrase}".strip()


async def send_one(
    session: AsyncSession,
    fetcher: Fetcher,
    config: FederationConfig,
    due: DueDelivery,
    *,
    rng: random.Random,
    clock: Callable[[], datetime] = utcnow,
) -> DeliveryState:
    """Send one claimed row and commit what became of it as soon as the answer is in: the
    worker's path (``federation.worker`` sends batches), for one row.

    A 410 also marks the host gone and closes its other pending rows. Returns the row's new
    state (for a row another worker settled meanwhile, what this attempt would have made it).
    """
    now = clock()
    refusal = (await host_policies(session, config, [due.host], now))[due.host].refusal
    if refusal is not None:
        state, why = refusal
        await record_batch(session, [], [Refused(due, state, why)], now)
        return state
    signer = (await load_signers(session, [due.actor_uri]))[due.actor_uri]
    # End the transaction before the network: no lock or connection held while we wait.
    await session.commit()
    status, error = await post(fetcher, due, signer)
    result = answer(due, status, error, clock(), rng)
    await record_batch(session, [result], [], result.at)
    return result.result.state


# Recording


async def record_batch(
    session: AsyncSession,
    answers: Sequence[Answer],
    refused: Sequence[Refused],
    now: datetime,
    *,
    fresh: Collection[str] = frozenset(),
) -> None:
    """Write what became of a batch of rows and what the answers say of their hosts, in one
    transaction, and commit it (see the module's docstring for what a crash before the commit
    costs). ``answers`` in the order they came; a host in ``fresh`` (see ``HostPolicy``) is not
    marked seen again. A row another worker settled meanwhile is left as it is.
    """
    await _record_sent(session, [a for a in answers if a.result.state == DeliveryState.SENT], now)
    recorded: list[Answer] = []  # logged once committed
    for item in answers:
        if item.result.state != DeliveryState.SENT and await _record_attempt(session, item):
            recorded.append(item)
    for refusal in refused:
        await _record(session, refusal.due, refusal.state, now, attempted=False, error=refusal.why)
    await _hosts_answered(session, answers, fresh, now)
    await session.commit()
    for item in recorded:
        _log_attempt(item.due, item.result, item.error)


async def _record_sent(session: AsyncSession, answers: Sequence[Answer], now: datetime) -> None:
    """The 2xx of a batch: one UPDATE per status code (nearly always one), guarded as
    ``_record``; ``attempts`` counts up in SQL, rows of one batch having made different
    numbers of attempts."""
    by_status: dict[int | None, list[int]] = {}
    for item in answers:
        by_status.setdefault(item.status, []).append(item.due.id)
    for status, ids in by_status.items():
        await session.exec(
            update(Delivery)
            .where(col(Delivery.id).in_(ids), col(Delivery.state) == DeliveryState.NEW)
            .values(
                state=DeliveryState.SENT,
                locked_until=None,
                last_error="",
                finished_at=now,
                attempts=col(Delivery.attempts) + 1,
                last_status=status,
            )
            .execution_options(synchronize_session=False)
        )


async def _record_attempt(session: AsyncSession, item: Answer) -> bool:
    """An answer other than a 2xx: its own row (each retry has its own next attempt). Whether
    it was written (not when another worker had settled the row)."""
    return await _record(
        session,
        item.due,
        item.result.state,
        item.at,
        attempted=True,
        status=item.status,
        error=item.error,
        next_attempt_at=item.result.next_attempt_at,
    )


async def _record(
    session: AsyncSession,
    due: DueDelivery,
    state: DeliveryState,
    now: datetime,
    *,
    attempted: bool,
    status: int | None = None,
    error: str = "",
    next_attempt_at: datetime | None = None,
) -> bool:
    """Write what became of the row, unless another worker already settled it (a row leased
    twice after a lease ran out): a recorded 2xx is never turned back into ``new``."""
    values: dict[str, Any] = {
        "state": state,
        "locked_until": None,
        "last_error": error[:500],
        "finished_at": None if state == DeliveryState.NEW else now,
    }
    if attempted:
        values.update(attempts=due.attempts + 1, last_status=status)
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    result = await session.exec(
        update(Delivery)
        .where(col(Delivery.id) == due.id, col(Delivery.state) == DeliveryState.NEW)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)


async def _hosts_answered(
    session: AsyncSession, answers: Sequence[Answer], fresh: Collection[str], now: datetime
) -> None:
    """What the answers tell about their hosts, once per host: a 410 that it is gone (its
    other pending rows close), a 2xx that it is up. A 2xx after a 410 from the same host
    means it came back, as if the two had been written one after the other."""
    gone: dict[str, None] = {}
    up_last: dict[str, bool] = {}
    for item in answers:
        if item.result.host_gone:
            gone[item.due.host] = None
            up_last[item.due.host] = False
        elif item.result.state == DeliveryState.SENT:
            up_last[item.due.host] = True
    for host in sorted(gone):  # in one order for every worker, as seen_all
        closed = await instances.mark_gone(session, host, now)
        log.info("%s answered 410: host gone, %d other deliveries closed", host, closed)
    back = [host for host, up in up_last.items() if up and (host in gone or host not in fresh)]
    await instances.seen_all(session, back, now=now)


def _log_attempt(due: DueDelivery, result: Outcome, error: str) -> None:
    if result.state == DeliveryState.NEW:
        log.info(
            "delivery %d to %s: %s; next attempt at %s",
            due.id,
            due.inbox,
            error,
            result.next_attempt_at,
        )
    elif result.state != DeliveryState.SENT:
        log.warning(
            "delivery %d to %s %s after %d attempts: %s",
            due.id,
            due.inbox,
            result.state,
            due.attempts + 1,
            error,
        )
