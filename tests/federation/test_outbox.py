"""Publishing and the hosts it goes to: one delivery row per inbox, in the caller's transaction,
and the admins' decisions about each host (blocked, allow list, gone) taken into account."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from catalogue.columns import utcnow
from federation import instances
from federation.context import FederationConfig
from federation.models import Delivery, DeliveryState, Follower, KnownInstance, OutboxActivity
from federation.outbox import NotOurs, follower_inboxes, publish
from instance.database import Database

CONFIG = FederationConfig(base_url="https://terreau.test")
ACTOR = "https://terreau.test/orgs/atelier"


def note(number: int = 1, actor: str = ACTOR) -> dict[str, Any]:
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"https://terreau.test/activities/{number}",
        "type": "Create",
        "actor": actor,
        "object": {"type": "Note", "content": "Café coopératif"},
    }


async def deliveries(session: AsyncSession) -> list[Delivery]:
    return list((await session.exec(select(Delivery).order_by(col(Delivery.id)))).all())


async def count(session: AsyncSession, model: type[Any]) -> int:
    return (await session.exec(select(func.count()).select_from(model))).one()


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


# Publishing


async def test_publish_stores_the_activity_as_it_will_be_sent(session: AsyncSession) -> None:
    activity = note()
    stored = await publish(session, CONFIG, activity, [], public=False)
    await session.commit()

    row = (await session.exec(select(OutboxActivity))).one()
    assert row.id == stored.id
    assert (row.uri, row.actor_uri, row.type, row.public) == (
        activity["id"],
        ACTOR,
        "Create",
        False,
    )
    assert json.loads(row.body) == activity
    assert row.body == json.dumps(activity, ensure_ascii=False, separators=(",", ":"))
    assert "Café" in row.body  # UTF-8 kept, not \\u-escaped
    assert row.published_at.tzinfo is not None


async def test_one_delivery_per_distinct_remote_inbox(session: AsyncSession) -> None:
    inboxes = [
        "https://a.example/inbox",
        "https://b.example/users/x/inbox",
        "https://a.example/inbox",  # the same shared inbox reached through two followers
        "https://terreau.test/inbox",  # ours: never posted to ourselves
        "https://TERREAU.test:443/orgs/x/inbox",  # ours too, written differently
        "mailto:someone@a.example",  # not an inbox
        "",
    ]
    await publish(session, CONFIG, note(), inboxes)
    await session.commit()

    rows = await deliveries(session)
    assert [(row.inbox, row.host, row.state) for row in rows] == [
        ("https://a.example/inbox", "a.example", DeliveryState.NEW),
        ("https://b.example/users/x/inbox", "b.example", DeliveryState.NEW),
    ]
    assert all(row.attempts == 0 and row.locked_until is None for row in rows)
    assert all(row.next_attempt_at <= utcnow() for row in rows)  # due at once


async def test_publishing_is_part_of_the_callers_transaction(session: AsyncSession) -> None:
    await publish(session, CONFIG, note(), ["https://a.example/inbox"])
    assert await count(session, Delivery) == 1  # flushed: visible inside the transaction
    await session.rollback()

    assert await count(session, OutboxActivity) == 0
    assert await count(session, Delivery) == 0


async def test_only_our_own_activities_are_published(session: AsyncSession) -> None:
    with pytest.raises(NotOurs, match="actor"):
        await publish(session, CONFIG, note(actor="https://a.example/users/x"), [])
    with pytest.raises(NotOurs, match="id"):
        await publish(session, CONFIG, {**note(), "id": "https://a.example/1"}, [])


async def test_blocked_hosts_get_no_delivery(session: AsyncSession) -> None:
    await instances.block(session, "blocked.example", note="spam")
    await publish(
        session, CONFIG, note(), ["https://blocked.example/inbox", "https://a.example/inbox"]
    )

    assert [row.host for row in await deliveries(session)] == ["a.example"]


async def test_allow_list_mode_delivers_only_to_allowed_hosts(session: AsyncSession) -> None:
    config = replace(CONFIG, allow_list_only=True)
    await instances.allow(session, "friend.example")
    await instances.seen(session, "stranger.example")  # known is not allowed
    inboxes = [
        "https://friend.example/inbox",
        "https://stranger.example/inbox",
        "https://unknown.example/inbox",
    ]
    await publish(session, config, note(), inboxes)

    assert [row.host for row in await deliveries(session)] == ["friend.example"]


async def test_a_gone_hosts_rows_are_made_gone(session: AsyncSession) -> None:
    await instances.mark_gone(session, "gone.example", utcnow())
    await publish(session, CONFIG, note(), ["https://gone.example/inbox", "https://a.example/i"])

    states = {row.host: row for row in await deliveries(session)}
    assert states["gone.example"].state == DeliveryState.GONE
    assert states["gone.example"].finished_at is not None
    assert states["a.example"].state == DeliveryState.NEW


# Followers


async def test_follower_inboxes_prefer_shared_ones_once_in_follow_order(
    session: AsyncSession,
) -> None:
    followers = [
        ("https://a.example/users/1", "https://a.example/users/1/inbox", "https://a.example/inbox"),
        ("https://b.example/users/1", "https://b.example/users/1/inbox", None),
        ("https://a.example/users/2", "https://a.example/users/2/inbox", "https://a.example/inbox"),
        ("https://c.example/users/1", "https://c.example/users/1/inbox", "https://c.example/in"),
    ]
    for number, (uri, inbox, shared) in enumerate(followers):
        session.add(
            Follower(
                actor_uri=ACTOR,
                follower_uri=uri,
                inbox=inbox,
                shared_inbox=shared,
                follow_id=f"{uri}/follows/{number}",
            )
        )
    session.add(
        Follower(
            actor_uri=ACTOR + "-other",
            follower_uri="https://d.example/users/1",
            inbox="https://d.example/users/1/inbox",
            follow_id="https://d.example/follows/1",
        )
    )
    await session.commit()

    assert await follower_inboxes(session, ACTOR) == [
        "https://a.example/inbox",
        "https://b.example/users/1/inbox",
        "https://c.example/in",
    ]
    assert await follower_inboxes(session, ACTOR + "-nobody") == []

    await publish(session, CONFIG, note(), await follower_inboxes(session, ACTOR))
    assert len(await deliveries(session)) == 3


# Hosts


@pytest.mark.parametrize(
    ("uri", "host"),
    [
        ("https://Mastodon.Social/users/Gargron", "mastodon.social"),
        ("https://a.example:443/inbox", "a.example"),
        ("http://a.example:80/inbox", "a.example"),
        ("https://a.example:8443/inbox", "a.example:8443"),
        ("http://127.0.0.1:8000/actor", "127.0.0.1:8000"),
        ("https://user:secret@a.example/x", "a.example"),
        ("https://[2001:DB8::1]:8443/x", "[2001:db8::1]:8443"),
        ("acct:someone@a.example", ""),
        ("/relative/path", ""),
        ("https://a.example:notaport/", ""),
        ("https://[::1/", ""),
        ("", ""),
    ],
)
def test_host_of(uri: str, host: str) -> None:
    assert instances.host_of(uri) == host


async def test_may_talk_to_follows_blocks_and_the_allow_list(session: AsyncSession) -> None:
    allow_list = replace(CONFIG, allow_list_only=True)
    await instances.block(session, "bad.example")
    await instances.allow(session, "good.example")

    assert not await instances.may_talk_to(session, CONFIG, "bad.example")
    assert not await instances.may_talk_to(session, CONFIG, "BAD.example")
    assert await instances.may_talk_to(session, CONFIG, "anyone.example")
    assert await instances.may_talk_to(session, allow_list, "good.example")
    assert not await instances.may_talk_to(session, allow_list, "anyone.example")
    assert await instances.may_talk_to(session, allow_list, "terreau.test")  # ourselves

    await instances.block(session, "good.example")  # a block beats the allow list
    assert not await instances.may_talk_to(session, allow_list, "good.example")
    await instances.unblock(session, "bad.example")
    assert await instances.may_talk_to(session, CONFIG, "bad.example")
    await instances.disallow(session, "good.example")
    await instances.unblock(session, "good.example")
    assert not await instances.may_talk_to(session, allow_list, "good.example")


async def test_seen_creates_then_updates_and_brings_a_gone_host_back(
    session: AsyncSession,
) -> None:
    first = utcnow() - timedelta(days=3)
    await instances.seen(session, "a.example", now=first)
    await instances.mark_gone(session, "a.example", first + timedelta(days=1))
    await session.commit()
    row = await instances.get(session, "a.example")
    assert row is not None and row.gone_at == first + timedelta(days=1)

    later = first + timedelta(days=2)
    await instances.seen(session, "a.example", now=later)
    await session.commit()

    rows = (await session.exec(select(KnownInstance))).all()
    assert len(rows) == 1
    await session.refresh(rows[0])
    assert (rows[0].first_seen_at, rows[0].last_seen_at, rows[0].gone_at) == (first, later, None)


async def test_seen_writes_nothing_when_the_caller_rolls_back(session: AsyncSession) -> None:
    """The upsert must stay inside the caller's transaction (a SAVEPOINT on aiosqlite would
    commit the row on its own)."""
    await instances.seen(session, "a.example")
    await instances.mark_gone(session, "b.example", utcnow())
    await session.rollback()

    assert await count(session, KnownInstance) == 0


async def test_two_requests_from_a_new_host_make_one_row(database: Database) -> None:
    async def first_contact() -> None:
        async with database.session() as session:
            await instances.seen(session, "new.example")
            await asyncio.sleep(0.05)  # both transactions open at once
            await session.commit()

    await asyncio.gather(*(first_contact() for _ in range(4)))

    async with database.session() as session:
        assert await count(session, KnownInstance) == 1


async def test_mark_gone_closes_the_hosts_pending_rows(session: AsyncSession) -> None:
    inboxes = ["https://gone.example/inbox", "https://gone.example/u/1/inbox"]
    await publish(session, CONFIG, note(1), [*inboxes, "https://a.example/inbox"])
    await publish(session, CONFIG, note(2), inboxes)
    when = utcnow()

    closed = await instances.mark_gone(session, "gone.example", when)
    await instances.mark_gone(session, "gone.example", when + timedelta(hours=1))
    await session.commit()

    assert closed == 4
    rows = await deliveries(session)
    assert {row.host: row.state for row in rows} == {
        "gone.example": DeliveryState.GONE,
        "a.example": DeliveryState.NEW,
    }
    known = await instances.get(session, "gone.example")
    assert known is not None and known.gone_at == when  # the first 410 is kept


async def test_block_fails_pending_rows_and_the_admin_list_counts_them(
    session: AsyncSession,
) -> None:
    await publish(
        session,
        CONFIG,
        note(1),
        ["https://a.example/inbox", "https://b.example/inbox", "https://c.example/inbox"],
    )
    await publish(session, CONFIG, note(2), ["https://a.example/inbox", "https://b.example/inbox"])
    await instances.seen(session, "quiet.example")
    await session.commit()

    assert await instances.block(session, "b.example", note="harassment") == 2
    await session.commit()

    summaries = {summary.host: summary for summary in await instances.list_instances(session)}
    assert [summary.host for summary in await instances.list_instances(session)] == [
        "b.example",  # blocked ones first
        "a.example",
        "c.example",
        "quiet.example",
    ]
    b = summaries["b.example"]
    assert (b.blocked, b.note, b.pending, b.failed) == (True, "harassment", 0, 2)
    a = summaries["a.example"]
    assert (a.blocked, a.pending, a.failed, a.last_seen_at) == (False, 2, 0, None)
    assert summaries["quiet.example"].last_seen_at is not None
    assert (summaries["quiet.example"].pending, summaries["quiet.example"].failed) == (0, 0)
