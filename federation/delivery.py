"""The delivery queue as a state machine: which row is due, what a response code does to it.

A row is ``new`` until an answer settles it: ``sent`` (2xx), ``gone`` (410, or its host was
already gone) or ``failed`` (a 4xx that retrying cannot fix, a block, or about two days of
errors). While it waits, ``next_attempt_at`` says when it is due and ``locked_until`` leases
it to the one worker sending it. What a status does is the pure ``outcome``; the I/O around
it is ``claim_due`` and ``send_one``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
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
from federation.keys import key_for, signer_of
from federation.models import Delivery, DeliveryState, OutboxActivity

log = logging.getLogger("terreau.federation")

#: Attempts before giving up: with the back-off below, about two days (as Mastodon).
MAX_ATTEMPTS = 16
#: Up to this fraction is added to each wait, so that retries to one host spread out.
JITTER = 0.3
#: Statuses worth trying again: the server is busy, overloaded, or timed out reading us.
RETRYABLE = frozenset({408, 429})


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
    """No answer, 408, 429 and 5xx may succeed later; anything else will not."""
    return status is None or status in RETRYABLE or 500 <= status <= 599


def outcome(status: int | None, attempts: int, now: datetime, rng: random.Random) -> Outcome:
    """What happens after attempt number ``attempts`` ended with ``status`` (None: no answer).

    2xx: sent. 410: gone, and the host too. 429, 5xx and no answer: try again after an
    exponential back-off with jitter, for about two days, then failed. Other 4xx (and 3xx:
    redirects are not followed on POST, so they never deliver): failed.
    """
    if status is not None and 200 <= status <= 299:
        return Outcome(DeliveryState.SENT, None)
    if status == 410:
        return Outcome(DeliveryState.GONE, None, host_gone=True)
    if is_retryable(status) and attempts < MAX_ATTEMPTS:
        return Outcome(DeliveryState.NEW, now + backoff(attempts, rng))
    return Outcome(DeliveryState.FAILED, None)


def lease_for(config: FederationConfig) -> timedelta:
    """How long a claimed row stays a worker's: well beyond one send's timeout, so that only a
    worker that died leaves it to be claimed again."""
    return timedelta(seconds=max(60.0, 4 * config.delivery_timeout_seconds))


@dataclass(frozen=True)
class DueDelivery:
    """A claimed row with what sending it needs, detached from any session."""

    id: int
    inbox: str
    host: str
    attempts: int  # made before this one
    actor_uri: str
    body: str  # the activity's JSON, sent as stored


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


async def claim_due(
    session: AsyncSession, now: datetime, limit: int, lease: timedelta
) -> list[DueDelivery]:
    """Lease up to ``limit`` due rows, oldest due first, and commit the lease.

    One ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING``: on PostgreSQL
    concurrent workers skip each other's rows instead of waiting or taking them twice; on
    SQLite (where the lock clause is dropped) a single writing statement cannot interleave
    with another writer between its read and its write.
    """
    if limit <= 0 or not await _any_due(session, now):
        return []
    chosen = (
        select(Delivery.id)
        .where(_due(now))
        .order_by(col(Delivery.next_attempt_at), col(Delivery.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    leased = await session.exec(
        update(Delivery)
        .where(col(Delivery.id).in_(chosen.scalar_subquery()))
        .values(locked_until=now + lease)
        .returning(col(Delivery.id))
        .execution_options(synchronize_session=False)
    )
    ids = [row[0] for row in leased.all()]
    if not ids:
        await session.commit()
        return []
    rows = await session.exec(
        select(Delivery, OutboxActivity.actor_uri, OutboxActivity.body)
        .join(OutboxActivity, col(OutboxActivity.id) == col(Delivery.activity_id))
        .where(col(Delivery.id).in_(ids))
        .order_by(col(Delivery.next_attempt_at), col(Delivery.id))
    )
    claimed = [
        DueDelivery(d.id or 0, d.inbox, d.host, d.attempts, actor_uri, body)
        for d, actor_uri, body in rows.all()
    ]
    await session.commit()
    return claimed


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


async def _refusal(
    session: AsyncSession, config: FederationConfig, host: str
) -> tuple[DeliveryState, str] | None:
    """Why this host must not be sent to now (blocked, off the allow list, gone), if it must
    not: the admins may have decided after the row was queued."""
    if not await instances.may_talk_to(session, config, host):
        return DeliveryState.FAILED, "host blocked or not allowed"
    known = await instances.get(session, host)
    if known is not None and known.gone_at is not None:
        return DeliveryState.GONE, "host gone"
    return None


async def _post(
    fetcher: Fetcher, due: DueDelivery, session: AsyncSession
) -> tuple[int | None, str]:
    """(status, error) of one POST; a refused address or a network failure is (None, why)."""
    signer = signer_of(await key_for(session, due.actor_uri))
    # End the transaction before the network: no lock or connection held while we wait.
    await session.commit()
    try:
        response = await fetcher.post_activity(due.inbox, due.body.encode(), signer=signer)
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
    """Send one claimed row and commit what became of it as soon as the answer is in.

    A 410 also marks the host gone and closes its other pending rows. Returns the row's new
    state (for a row another worker settled meanwhile, what this attempt would have made it).
    """
    refusal = await _refusal(session, config, due.host)
    if refusal is not None:
        state, why = refusal
        await _record(session, due, state, clock(), attempted=False, error=why)
        await session.commit()
        return state
    status, error = await _post(fetcher, due, session)
    now = clock()
    result = await record_attempt(session, due, status, error, now, rng)
    await _host_answered(session, due.host, result, now)
    return result.state


async def record_attempt(
    session: AsyncSession,
    due: DueDelivery,
    status: int | None,
    error: str,
    now: datetime,
    rng: random.Random,
) -> Outcome:
    """Apply ``outcome`` to the row and commit at once: a 2xx, once recorded, is final even if
    what follows fails."""
    result = outcome(status, due.attempts + 1, now, rng)
    recorded = await _record(
        session,
        due,
        result.state,
        now,
        attempted=True,
        status=status,
        error=error,
        next_attempt_at=result.next_attempt_at,
    )
    await session.commit()
    if recorded:
        _log_attempt(due, result, error)
    return result


async def _host_answered(session: AsyncSession, host: str, result: Outcome, now: datetime) -> None:
    """What an answer tells about its host: a 2xx that it is up, a 410 that it is gone."""
    if result.state == DeliveryState.SENT:
        await instances.seen(session, host, now=now)
    elif result.host_gone:
        closed = await instances.mark_gone(session, host, now)
        log.info("%s answered 410: host gone, %d other deliveries closed", host, closed)
    await session.commit()


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
