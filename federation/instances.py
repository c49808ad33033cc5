"""Other servers: whom we have heard from, whom the admins block or allow, who is gone.

Every decision about a host reads one ``known_instance`` row, so an admin's block takes effect
on the next request or delivery without a restart. Writes are race-safe upserts: two requests
from a new host at the same moment must not fail on the unique ``host``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Insert, bindparam, func, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from catalogue.columns import UTCDateTime, utcnow
from federation.context import FederationConfig
from federation.models import Delivery, DeliveryState, KnownInstance

DEFAULT_PORTS = {"http": 80, "https": 443}
# How stale ``last_seen_at`` may get before ``seen`` writes it again (``gone_at`` is cleared
# at once whatever this says).
SEEN_PRECISION = timedelta(minutes=5)
_KNOWN_INSTANCE = "known_instance"


@functools.lru_cache(maxsize=4096)
def host_of(uri: str) -> str:
    """host[:port] of a URI, lower-cased ("" when it has none).

    The scheme's default port is dropped, so ``https://a.example:443/x`` and
    ``https://a.example/x`` name the same server (a block of one holds for the other).
    Cached: a fan-out's claim asks for the instance's own host once per row.
    """
    try:
        parts = urlsplit(uri.strip())
        hostname, port = parts.hostname, parts.port
    except ValueError:  # an unbalanced "[", or a port that is not a number
        return ""
    if not hostname:
        return ""
    host = f"[{hostname}]" if ":" in hostname else hostname
    if port is None or DEFAULT_PORTS.get(parts.scheme.lower()) == port:
        return host
    return f"{host}:{port}"


def own_host(config: FederationConfig) -> str:
    return host_of(config.base_url)


async def get(session: AsyncSession, host: str) -> KnownInstance | None:
    return (
        await session.exec(select(KnownInstance).where(KnownInstance.host == host.lower()))
    ).first()


def permits(config: FederationConfig, host: str, known: KnownInstance | None) -> bool:
    """The admins' decision about ``host`` given its row (None: never heard of)."""
    if host.lower() == own_host(config):
        return True  # the instance must always be able to reach itself
    if known is not None and known.blocked:
        return False
    if config.allow_list_only:
        return known is not None and known.allowed
    return True


async def may_talk_to(session: AsyncSession, config: FederationConfig, host: str) -> bool:
    """False for a blocked host, and in allow-list mode for any host not allowed."""
    known = None if host.lower() == own_host(config) else await get(session, host)
    return permits(config, host, known)


def _insert(session: AsyncSession, host: str, now: datetime) -> Any:
    """``INSERT`` of a new row for ``host`` in the session's dialect, for an ``ON CONFLICT``."""
    values: dict[str, Any] = {
        "host": host.lower(),
        "blocked": False,
        "allowed": False,
        "note": "",
        "first_seen_at": now,
        "last_seen_at": now,
    }
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(KnownInstance).values(values)


async def ensure(session: AsyncSession, host: str, *, now: datetime | None = None) -> None:
    """Make sure the host has a row, whoever else is inserting it right now. No commit.

    ``INSERT … ON CONFLICT DO NOTHING`` rather than a SAVEPOINT around a plain INSERT: with
    the sqlite3 driver a SAVEPOINT opened before any other write starts a transaction of its
    own, and releasing it commits, behind the caller's back.
    """
    statement = _insert(session, host, now or utcnow())
    await session.exec(statement.on_conflict_do_nothing(index_elements=["host"]))


async def _set(session: AsyncSession, host: str, **values: Any) -> None:
    """Create the host's row if need be, then change it; no commit."""
    await ensure(session, host)
    await session.exec(
        update(KnownInstance).where(col(KnownInstance.host) == host.lower()).values(**values)
    )


def seen_recently(known: KnownInstance | None, now: datetime) -> bool:
    """Whether ``seen`` would write nothing for this row: it exists, is not gone, and its
    ``last_seen_at`` is within ``SEEN_PRECISION`` of ``now``. A caller that has read the row
    anyway (the inbox) skips the statement, and with it the row lock PostgreSQL takes."""
    return (
        known is not None and known.gone_at is None and known.last_seen_at >= now - SEEN_PRECISION
    )


@functools.cache
def _seen_statement(dialect: str) -> Insert:
    """The upsert ``seen`` runs, built once a dialect (building it costs more than running it).

    ``INSERT … ON CONFLICT (host) DO UPDATE SET last_seen_at = :now, gone_at = NULL WHERE
    known_instance.last_seen_at < :cutoff OR known_instance.gone_at IS NOT NULL``.
    """
    table = KnownInstance.metadata.tables[_KNOWN_INSTANCE]
    now = bindparam("now", type_=UTCDateTime())
    statement = (postgresql if dialect == "postgresql" else sqlite).insert(table)
    statement = statement.values(
        host=bindparam("host"),
        blocked=False,
        allowed=False,
        note="",
        first_seen_at=now,
        last_seen_at=now,
    )
    stale = or_(
        table.c.last_seen_at < bindparam("cutoff", type_=UTCDateTime()),
        table.c.gone_at.is_not(None),
    )
    return statement.on_conflict_do_update(
        index_elements=["host"], set_={"last_seen_at": now, "gone_at": None}, where=stale
    )


async def seen(session: AsyncSession, host: str, *, now: datetime | None = None) -> None:
    """Record that a host spoke to us (creates its row; clears ``gone_at``). No commit.

    A host that answered 410 and speaks again has come back: deliveries to it resume, so
    ``gone_at`` is cleared at once. ``last_seen_at`` is only moved when it is older than
    ``SEEN_PRECISION``: a busy host sends many activities a second, and writing its row for
    each one would make them all queue on that row. One statement, race-safe like ``ensure``.
    """
    await seen_all(session, [host], now=now)


async def seen_all(
    session: AsyncSession, hosts: Iterable[str], *, now: datetime | None = None
) -> None:
    """``seen`` for many hosts in one statement (an executemany for more than one: the first
    answers of a fan-out come from hundreds of new hosts), in sorted order: two writers with
    overlapping hosts then take their row locks in the same order, and neither waits for the
    other in a deadlock."""
    names = sorted({host.lower() for host in hosts if host})
    if not names:
        return
    now = now or utcnow()
    statement = _seen_statement(session.get_bind().dialect.name)
    cutoff = now - SEEN_PRECISION
    await session.exec(
        statement, params=[{"host": name, "now": now, "cutoff": cutoff} for name in names]
    )


async def _close_pending(session: AsyncSession, host: str, state: DeliveryState, why: str) -> int:
    """End every delivery to ``host`` still waiting, so no worker posts to it again."""
    result = await session.exec(
        update(Delivery)
        .where(col(Delivery.host) == host.lower(), col(Delivery.state) == DeliveryState.NEW)
        .values(state=state, last_error=why, finished_at=utcnow(), locked_until=None)
    )
    return int(result.rowcount or 0)


async def mark_gone(session: AsyncSession, host: str, now: datetime) -> int:
    """The host answered 410: remember it, and close its pending deliveries as gone.

    Keeps the first ``gone_at`` when the host was already gone. Returns how many pending
    deliveries it closed. No commit.
    """
    await ensure(session, host, now=now)
    await session.exec(
        update(KnownInstance)
        .where(col(KnownInstance.host) == host.lower(), col(KnownInstance.gone_at).is_(None))
        .values(gone_at=now)
    )
    return await _close_pending(session, host, DeliveryState.GONE, "host gone (410)")


async def block(session: AsyncSession, host: str, *, note: str | None = None) -> int:
    """Refuse the host's requests and stop sending to it; its pending deliveries fail now
    (so the admin page shows the queue as it will be). Returns how many. No commit."""
    values: dict[str, Any] = {"blocked": True}
    if note is not None:
        values["note"] = note[:500]
    await _set(session, host, **values)
    return await _close_pending(session, host, DeliveryState.FAILED, "host blocked")


async def unblock(session: AsyncSession, host: str) -> None:
    """Talk to the host again from now on (deliveries failed by the block stay failed)."""
    await _set(session, host, blocked=False)


async def allow(session: AsyncSession, host: str, *, note: str | None = None) -> None:
    """Put the host on the allow list (which counts only when ``allow_list_only`` is on)."""
    values: dict[str, Any] = {"allowed": True}
    if note is not None:
        values["note"] = note[:500]
    await _set(session, host, **values)


async def disallow(session: AsyncSession, host: str) -> None:
    """Take the host off the allow list."""
    await _set(session, host, allowed=False)


@dataclass(frozen=True)
class InstanceSummary:
    """One line of the admins' list of servers: what was decided and how the queue stands."""

    host: str
    blocked: bool
    allowed: bool
    note: str
    first_seen_at: datetime | None  # None: we only ever queued deliveries to it
    last_seen_at: datetime | None
    gone_at: datetime | None
    pending: int  # deliveries waiting for their first or next attempt
    failed: int  # deliveries given up on


async def delivery_counts(session: AsyncSession) -> dict[str, tuple[int, int]]:
    """host → (pending, failed) deliveries, for hosts that have any."""
    rows = await session.exec(
        select(Delivery.host, Delivery.state, func.count())
        .where(col(Delivery.state).in_([DeliveryState.NEW, DeliveryState.FAILED]))
        .group_by(col(Delivery.host), col(Delivery.state))
    )
    counts: dict[str, tuple[int, int]] = {}
    for host, state, count in rows.all():
        pending, failed = counts.get(host, (0, 0))
        if state == DeliveryState.NEW:
            pending = int(count)
        else:
            failed = int(count)
        counts[host] = (pending, failed)
    return counts


async def list_instances(session: AsyncSession) -> list[InstanceSummary]:
    """Every server we know of or deliver to, blocked ones first, then by host name."""
    counts = await delivery_counts(session)
    known = {row.host: row for row in (await session.exec(select(KnownInstance))).all()}
    summaries = [
        InstanceSummary(
            host=row.host,
            blocked=row.blocked,
            allowed=row.allowed,
            note=row.note,
            first_seen_at=row.first_seen_at,
            last_seen_at=row.last_seen_at,
            gone_at=row.gone_at,
            pending=counts.get(row.host, (0, 0))[0],
            failed=counts.get(row.host, (0, 0))[1],
        )
        for row in known.values()
    ]
    summaries += [
        InstanceSummary(host, False, False, "", None, None, None, pending, failed)
        for host, (pending, failed) in counts.items()
        if host not in known
    ]
    return sorted(summaries, key=lambda s: (not s.blocked, s.host))
