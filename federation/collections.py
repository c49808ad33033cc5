"""Outboxes and followers as paged OrderedCollections.

The collection itself carries only its size and links to its pages, so a server that merely
counts (Mastodon shows the numbers) never makes us read every row; ``?page=N`` pages are
fixed-size slices, newest first for outboxes and oldest first for followers.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from federation.media import AS_CONTEXT
from federation.models import Follower, OutboxActivity

PAGE_SIZE = 20
# Nine digits at most: anything longer is not a page anybody reached by following links.
MAX_PAGE_DIGITS = 9


class BadPage(ValueError):
    """A ``page`` query value that is not a whole number from 1 (answered with 400)."""


def parse_page(raw: str | None) -> int | None:
    """None when no page is asked for (the collection itself), else the page number."""
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > MAX_PAGE_DIGITS or int(raw) < 1:
        raise BadPage("the page must be a whole number from 1")
    return int(raw)


def last_page(total: int, size: int = PAGE_SIZE) -> int:
    return max(1, -(-total // size))


def collection_document(collection_id: str, total: int, size: int = PAGE_SIZE) -> dict[str, Any]:
    return {
        "@context": AS_CONTEXT,
        "id": collection_id,
        "type": "OrderedCollection",
        "totalItems": total,
        "first": f"{collection_id}?page=1",
        "last": f"{collection_id}?page={last_page(total, size)}",
    }


def page_document(
    collection_id: str, number: int, total: int, items: list[Any], size: int = PAGE_SIZE
) -> dict[str, Any]:
    """One page; past the end it is empty and points back to the last real page."""
    document: dict[str, Any] = {
        "@context": AS_CONTEXT,
        "id": f"{collection_id}?page={number}",
        "type": "OrderedCollectionPage",
        "partOf": collection_id,
        "totalItems": total,
        "orderedItems": items,
    }
    last = last_page(total, size)
    if number < last:
        document["next"] = f"{collection_id}?page={number + 1}"
    if number > 1:
        document["prev"] = f"{collection_id}?page={min(number - 1, last)}"
    return document


async def outbox_count(session: AsyncSession, actor_uri: str) -> int:
    query = select(func.count()).where(
        OutboxActivity.actor_uri == actor_uri, col(OutboxActivity.public).is_(True)
    )
    return (await session.exec(query)).one()


async def outbox_items(
    session: AsyncSession, actor_uri: str, offset: int, limit: int
) -> list[dict[str, Any]]:
    query = (
        select(OutboxActivity.body)
        .where(OutboxActivity.actor_uri == actor_uri, col(OutboxActivity.public).is_(True))
        .order_by(col(OutboxActivity.id).desc())
        .offset(offset)
        .limit(limit)
    )
    return [json.loads(body) for body in (await session.exec(query)).all()]


async def follower_count(session: AsyncSession, actor_uri: str) -> int:
    query = select(func.count()).where(Follower.actor_uri == actor_uri)
    return (await session.exec(query)).one()


async def follower_items(
    session: AsyncSession, actor_uri: str, offset: int, limit: int
) -> list[str]:
    query = (
        select(Follower.follower_uri)
        .where(Follower.actor_uri == actor_uri)
        .order_by(col(Follower.id))
        .offset(offset)
        .limit(limit)
    )
    return list((await session.exec(query)).all())


async def outbox(
    session: AsyncSession, actor_uri: str, outbox_id: str, page: int | None
) -> dict[str, Any]:
    """The actor's public activities as stored, newest first."""
    total = await outbox_count(session, actor_uri)
    if page is None:
        return collection_document(outbox_id, total)
    items: list[Any] = []
    if page <= last_page(total):  # past the end there is nothing to read
        items = await outbox_items(session, actor_uri, (page - 1) * PAGE_SIZE, PAGE_SIZE)
    return page_document(outbox_id, page, total, items)


async def followers(
    session: AsyncSession, actor_uri: str, followers_id: str, page: int | None
) -> dict[str, Any]:
    """Who follows the actor: the count, and the followers' ids in the order they came."""
    total = await follower_count(session, actor_uri)
    if page is None:
        return collection_document(followers_id, total)
    items: list[Any] = []
    if page <= last_page(total):
        items = await follower_items(session, actor_uri, (page - 1) * PAGE_SIZE, PAGE_SIZE)
    return page_document(followers_id, page, total, items)
