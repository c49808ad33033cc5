"""Publishing: an activity, its outbox row and one delivery row per inbox, in one transaction.

Written with the change that caused it (as Funkwhale does): if the change rolls back, nothing
is sent; if it commits, the worker will send it even after a crash. The decisions about each
host (blocked, not allowed, gone) are taken here once, and again by the worker at send time.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from catalogue.columns import utcnow
from federation import instances
from federation.context import FederationConfig
from federation.models import Delivery, DeliveryState, Follower, KnownInstance, OutboxActivity

MAX_URI = 2048  # the columns' length: a longer inbox cannot be queued (nor is it plausible)


class NotOurs(ValueError):
    """An activity whose ``id`` or ``actor`` is not on this instance: we only publish our own."""


def compact_json(activity: dict[str, Any]) -> str:
    """The body exactly as it will be sent (and signed): compact, UTF-8 left as is."""
    return json.dumps(activity, ensure_ascii=False, separators=(",", ":"))


def _check_ours(config: FederationConfig, activity: dict[str, Any]) -> tuple[str, str]:
    uri, actor = activity.get("id"), activity.get("actor")
    own = instances.own_host(config)
    for name, value in (("id", uri), ("actor", actor)):
        if not isinstance(value, str) or instances.host_of(value) != own:
            raise NotOurs(f"the activity's {name} must be on {own}: {value!r}")
    return str(uri), str(actor)


def distinct_inboxes(config: FederationConfig, inboxes: Iterable[str]) -> list[str]:
    """Each remote inbox once, in the order given; our own and unusable ones left out."""
    own = instances.own_host(config)
    kept: dict[str, None] = {}
    for inbox in inboxes:
        inbox = inbox.strip()
        host = instances.host_of(inbox)
        if host and host != own and len(inbox) <= MAX_URI and inbox.startswith("http"):
            kept.setdefault(inbox, None)
    return list(kept)


async def _known(session: AsyncSession, hosts: set[str]) -> dict[str, KnownInstance]:
    if not hosts:
        return {}
    rows = await session.exec(select(KnownInstance).where(col(KnownInstance.host).in_(hosts)))
    return {row.host: row for row in rows.all()}


async def publish(
    session: AsyncSession,
    config: FederationConfig,
    activity: dict[str, Any],
    inboxes: Iterable[str],
    *,
    public: bool = True,
) -> OutboxActivity:
    """Store ``activity`` (its ``id`` and ``actor`` must be ours) and queue it for every inbox,
    once per inbox, skipping blocked hosts and marking gone hosts' rows gone. Flushes; the
    caller commits with the change that caused it."""
    uri, actor = _check_ours(config, activity)
    now = utcnow()
    row = OutboxActivity(
        uri=uri,
        actor_uri=actor,
        type=str(activity.get("type", ""))[:50],
        body=compact_json(activity),
        public=public,
        published_at=now,
    )
    session.add(row)
    await session.flush()
    assert row.id is not None
    targets = distinct_inboxes(config, inboxes)
    known = await _known(session, {instances.host_of(inbox) for inbox in targets})
    rows: list[dict[str, Any]] = []
    for inbox in targets:
        host = instances.host_of(inbox)
        decided = known.get(host)
        if not instances.permits(config, host, decided):
            continue
        gone = decided is not None and decided.gone_at is not None
        rows.append(_delivery(row.id, inbox, host, gone=gone, now=now))
    if rows:
        # One executemany: a fan-out to 500 instances is one statement, not 500 ORM objects
        # (a page that publishes waits for this).
        await session.exec(insert(Delivery), params=rows)
    return row


def _delivery(
    activity_id: int, inbox: str, host: str, *, gone: bool, now: datetime
) -> dict[str, Any]:
    """A ``delivery`` row's values, as Core inserts them (no model defaults run there)."""
    values: dict[str, Any] = {
        "activity_id": activity_id,
        "inbox": inbox,
        "host": host,
        "state": DeliveryState.NEW,
        "attempts": 0,
        "next_attempt_at": now,
        "locked_until": None,
        "last_status": None,
        "last_error": "",
        "created_at": now,
        "finished_at": None,
    }
    if gone:  # kept, so the admins see what the host missed; never sent
        values.update(state=DeliveryState.GONE, last_error="host gone", finished_at=now)
    return values


async def follower_inboxes(session: AsyncSession, actor_uri: str) -> list[str]:
    """Where to deliver to an actor's followers: shared inboxes where they have one, once.

    In the order they followed, so a fan-out is the same from one run to the next.
    """
    target = func.coalesce(func.nullif(col(Follower.shared_inbox), ""), col(Follower.inbox))
    rows = await session.exec(
        select(target)
        .where(Follower.actor_uri == actor_uri)
        .group_by(target)
        .order_by(func.min(col(Follower.id)))
    )
    return list(rows.all())
