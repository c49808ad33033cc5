"""``seen``: how often a host's row is written when it speaks to us.

A busy host sends many activities a second; writing its ``known_instance`` row for each would
make them queue on that row. ``last_seen_at`` therefore moves only when it is older than
``SEEN_PRECISION``, while ``gone_at`` is cleared at once (deliveries to the host resume).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from catalogue.columns import utcnow
from federation import instances
from federation.models import KnownInstance
from instance.database import Database

START = utcnow().replace(microsecond=0) - timedelta(days=1)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


async def stored(session: AsyncSession, host: str) -> tuple[datetime, datetime | None]:
    """(last_seen_at, gone_at) as the database has them (not the session's identity map)."""
    query = select(KnownInstance.last_seen_at, KnownInstance.gone_at).where(
        KnownInstance.host == host
    )
    return (await session.exec(query)).one()


@contextmanager
def rows_written(database: Database) -> Iterator[list[int]]:
    """The row count of every statement run meanwhile (an upsert that does nothing: 0)."""
    counts: list[int] = []

    def after(_conn: Any, cursor: Any, *_args: Any) -> None:
        counts.append(cursor.rowcount)

    event.listen(database.engine.sync_engine, "after_cursor_execute", after)
    try:
        yield counts
    finally:
        event.remove(database.engine.sync_engine, "after_cursor_execute", after)


async def test_seen_writes_again_only_once_the_row_is_stale(database: Database) -> None:
    async with database.session() as session:
        await instances.seen(session, "a.example", now=START)
        await session.commit()
        within = START + instances.SEEN_PRECISION - timedelta(seconds=1)
        with rows_written(database) as written:
            await instances.seen(session, "a.example", now=within)
        await session.commit()
        assert written == [0]  # one statement, which changed nothing
        assert await stored(session, "a.example") == (START, None)

        later = START + instances.SEEN_PRECISION + timedelta(seconds=1)
        with rows_written(database) as written:
            await instances.seen(session, "a.example", now=later)
        await session.commit()
        assert written == [1]
        assert await stored(session, "a.example") == (later, None)


async def test_seen_clears_gone_at_at_once(session: AsyncSession) -> None:
    await instances.seen(session, "a.example", now=START)
    await instances.mark_gone(session, "a.example", START + timedelta(seconds=10))
    await session.commit()
    assert await stored(session, "a.example") == (START, START + timedelta(seconds=10))

    back = START + timedelta(seconds=20)  # well within SEEN_PRECISION
    await instances.seen(session, "A.example", now=back)
    await session.commit()
    assert await stored(session, "a.example") == (back, None)
    assert len((await session.exec(select(KnownInstance))).all()) == 1


async def test_seen_all_writes_many_hosts_at_once_as_seen_would_each(
    session: AsyncSession,
) -> None:
    await instances.seen(session, "known.example", now=START)
    await instances.seen(session, "gone.example", now=START)
    await instances.mark_gone(session, "gone.example", START + timedelta(seconds=10))
    await session.commit()

    back = START + timedelta(seconds=20)  # within SEEN_PRECISION: known.example stays as it was
    await instances.seen_all(
        session, ["New.example", "gone.example", "known.example", "new.example", ""], now=back
    )
    await session.commit()

    assert await stored(session, "new.example") == (back, None)
    assert await stored(session, "gone.example") == (back, None)  # it came back
    assert await stored(session, "known.example") == (START, None)
    hosts = (await session.exec(select(KnownInstance.host))).all()
    assert sorted(hosts) == ["gone.example", "known.example", "new.example"]
    await instances.seen_all(session, [], now=back)  # nothing to write, nothing fails


async def test_seen_keeps_the_first_seen_date_and_the_admins_decisions(
    session: AsyncSession,
) -> None:
    await instances.seen(session, "a.example", now=START)
    await instances.block(session, "a.example", note="spam")
    await session.commit()
    await instances.seen(session, "a.example", now=START + timedelta(hours=1))
    await session.commit()

    query = select(KnownInstance).where(KnownInstance.host == "a.example")
    row = (await session.exec(query.execution_options(populate_existing=True))).one()
    assert (row.blocked, row.note) == (True, "spam")
    assert (row.first_seen_at, row.last_seen_at) == (START, START + timedelta(hours=1))


def known(last_seen_at: datetime, gone_at: datetime | None = None) -> KnownInstance:
    return KnownInstance(host="a.example", last_seen_at=last_seen_at, gone_at=gone_at)


def test_seen_recently_says_when_seen_would_write_nothing() -> None:
    window = instances.SEEN_PRECISION
    assert instances.seen_recently(known(START), START + window)
    assert not instances.seen_recently(known(START), START + window + timedelta(seconds=1))
    assert not instances.seen_recently(known(START, gone_at=START), START)
    assert not instances.seen_recently(None, START)  # no row yet: seen must create it
