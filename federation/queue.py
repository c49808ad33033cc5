"""The delivery queue as the admins see it: how many rows in each state, the latest of each,
and putting rows back in line after the cause of a failure was fixed.

Everything here takes a session and never commits: the caller (the admin page) commits once
the whole action is done, so an action either happens entirely or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from catalogue.columns import utcnow
from federation.models import Delivery, DeliveryState, KnownInstance, OutboxActivity

#: Rows shown per state: enough to see a pattern, few enough for one page.
LATEST = 50
#: States a retry may take a row from; ``sent`` is final, never sent twice.
RETRYABLE_STATES = (DeliveryState.NEW, DeliveryState.FAILED, DeliveryState.GONE)


@dataclass(frozen=True)
class QueuedDelivery:
    """One delivery with what an admin needs to judge it, detached from any session."""

    id: int
    activity_type: str
    activity_uri: str
    inbox: str
    host: str
    state: str
    attempts: int
    last_status: int | None
    last_error: str
    next_attempt_at: datetime
    finished_at: datetime | None
    locked_until: datetime | None  # set while a worker is sending it


class Retry(StrEnum):
    """What asking for a retry did, so the page can say why nothing happened."""

    QUEUED = "queued"
    MISSING = "missing"
    SENT = "sent"  # already delivered: never sent twice
    IN_FLIGHT = "in flight"  # a worker holds it right now; its answer decides


async def state_counts(session: AsyncSession) -> dict[DeliveryState, int]:
    """Rows per state, every state present (0 when none), in the state machine's order."""
    rows = await session.exec(select(Delivery.state, func.count()).group_by(col(Delivery.state)))
    found = {str(state): int(count) for state, count in rows.all()}
    return {state: found.get(state, 0) for state in DeliveryState}


def _ordering(state: DeliveryState) -> tuple[Any, ...]:
    """Pending rows soonest due first (what the worker takes next); settled rows most recently
    settled first (what just went wrong)."""
    if state == DeliveryState.NEW:
        return col(Delivery.next_attempt_at), col(Delivery.id)
    return col(Delivery.finished_at).desc().nulls_last(), col(Delivery.id).desc()


def _queued(delivery: Delivery, activity_type: str, activity_uri: str) -> QueuedDelivery:
    return QueuedDelivery(
        id=delivery.id or 0,
        activity_type=activity_type,
        activity_uri=activity_uri,
        inbox=delivery.inbox,
        host=delivery.host,
        state=delivery.state,
        attempts=delivery.attempts,
        last_status=delivery.last_status,
        last_error=delivery.last_error,
        next_attempt_at=delivery.next_attempt_at,
        finished_at=delivery.finished_at,
        locked_until=delivery.locked_until,
    )


def _with_activity() -> Any:
    return select(Delivery, OutboxActivity.type, OutboxActivity.uri).join(
        OutboxActivity, col(OutboxActivity.id) == col(Delivery.activity_id)
    )


async def latest(
    session: AsyncSession, state: DeliveryState, limit: int = LATEST
) -> list[QueuedDelivery]:
    """Up to ``limit`` rows in ``state``, in the order an admin reads them (``_ordering``)."""
    rows = await session.exec(
        _with_activity()
        .where(col(Delivery.state) == state)
        .order_by(*_ordering(state))
        .limit(limit)
    )
    return [_queued(delivery, kind, uri) for delivery, kind, uri in rows.all()]


async def get(session: AsyncSession, delivery_id: int) -> QueuedDelivery | None:
    row = (await session.exec(_with_activity().where(col(Delivery.id) == delivery_id))).first()
    return None if row is None else _queued(*row)


def _fresh_start(now: datetime) -> dict[str, Any]:
    """What a retried row becomes: due now, as if just queued.

    ``attempts`` goes back to 0. An admin retries because the cause is believed fixed; with
    the old count kept, a row that failed after sixteen attempts would be given up for good
    at its first transient error, and the back-off would start at about a day. The last
    status and error stay until the next attempt replaces them, so the page still shows why
    the row had failed.
    """
    return {
        "state": DeliveryState.NEW,
        "attempts": 0,
        "next_attempt_at": now,
        "locked_until": None,
        "finished_at": None,
    }


def _not_held(now: datetime) -> Any:
    """A row no worker is sending: settled, or pending with no lease (or a lapsed one)."""
    return or_(
        col(Delivery.state) != DeliveryState.NEW,
        col(Delivery.locked_until).is_(None),
        col(Delivery.locked_until) < now,
    )


async def _host_back(session: AsyncSession, host: str) -> None:
    """Forget that the host was gone: otherwise the worker closes the retried row again
    without trying. If it still answers 410, the first attempt marks it gone again."""
    await session.exec(
        update(KnownInstance).where(col(KnownInstance.host) == host).values(gone_at=None)
    )


async def retry_now(
    session: AsyncSession, delivery_id: int, *, now: datetime | None = None
) -> Retry:
    """Put one pending, failed or gone row back in line, due now (see ``_fresh_start``).

    A sent row is refused, and so is a row a worker is sending at this moment. The state is
    checked again in the UPDATE itself, so a worker settling the row between our read and
    our write wins. Retrying a gone row also clears its host's ``gone_at``. No commit.
    """
    now = now or utcnow()
    row = (
        await session.exec(
            select(Delivery.state, Delivery.host).where(col(Delivery.id) == delivery_id)
        )
    ).first()
    if row is None:
        return Retry.MISSING
    state, host = row
    if state == DeliveryState.SENT:
        return Retry.SENT
    changed = await session.exec(
        update(Delivery)
        .where(
            col(Delivery.id) == delivery_id,
            col(Delivery.state).in_(RETRYABLE_STATES),
            _not_held(now),
        )
        .values(**_fresh_start(now))
        .execution_options(synchronize_session=False)
    )
    if not changed.rowcount:
        return await _why_not(session, delivery_id)
    if state == DeliveryState.GONE:
        await _host_back(session, host)
    return Retry.QUEUED


async def _why_not(session: AsyncSession, delivery_id: int) -> Retry:
    state = (
        await session.exec(select(Delivery.state).where(col(Delivery.id) == delivery_id))
    ).first()
    if state is None:
        return Retry.MISSING
    return Retry.SENT if state == DeliveryState.SENT else Retry.IN_FLIGHT


async def retry_host(session: AsyncSession, host: str, *, now: datetime | None = None) -> int:
    """Put every failed row to ``host`` back in line, due now; returns how many. No commit.

    Only ``failed`` rows: pending ones are already in line, sent ones are done, and gone ones
    wait for the host to speak again (or for an admin to retry one of them by hand).
    """
    result = await session.exec(
        update(Delivery)
        .where(col(Delivery.host) == host.lower(), col(Delivery.state) == DeliveryState.FAILED)
        .values(**_fresh_start(now or utcnow()))
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)
