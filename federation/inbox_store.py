"""What the inbox keeps between requests: the senders it read lately, and a group-commit writer.

Storing one activity costs the server little CPU; a transaction of its own (a session, a read
of the sender's rows, an insert, a commit) cost most of it (bench/federation.py). Two things
share that cost without giving anything up:

- ``SenderCache``: the sender's host and actor rows, kept ``SENDER_SECONDS``. A busy peer sends
  many activities a second, all signed by the same key. A block made in this process empties
  the cache at once; one made in another process bites within ``SENDER_SECONDS``.
- ``InboxWriter``: rows from requests that arrive together are inserted by one statement in
  one transaction (group commit). Each request still gets its 202 only once the commit that
  holds its row is done, so a crash after a 202 loses nothing, as before.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import Insert
from sqlalchemy.dialects import postgresql, sqlite

from federation.context import SessionFactory
from federation.instances import seen_all
from federation.models import InboxItem, KnownInstance, RemoteActor

log = logging.getLogger("terreau.federation.inbox")

#: How long a sender's rows read by the inbox are used again without reading them.
SENDER_SECONDS = 10.0
#: Entries kept at most in each of the cache's maps; past that, the oldest go first.
SENDER_ENTRIES = 10_000
#: Rows one transaction of the writer inserts at most.
BATCH_ROWS = 64

T = TypeVar("T")


@dataclass
class _Expiring(Generic[T]):
    """A map whose entries vanish ``seconds`` after they were put (monotonic clock)."""

    seconds: float
    limit: int
    _entries: dict[str, tuple[float, T]] = field(default_factory=dict)

    def get(self, key: str) -> tuple[bool, T | None]:
        """(found, value): a key may be cached as absent (None), which saves a read too."""
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        expires, value = entry
        if expires < time.monotonic():
            del self._entries[key]
            return False, None
        return True, value

    def put(self, key: str, value: T) -> None:
        if len(self._entries) >= self.limit:
            # Insertion order is age order: drop the oldest tenth in one go.
            for old in list(self._entries)[: max(1, self.limit // 10)]:
                del self._entries[old]
        self._entries.pop(key, None)
        self._entries[key] = (time.monotonic() + self.seconds, value)

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()


class SenderCache:
    """The ``known_instance`` row of each host and the ``remote_actor`` row of each actor, as
    the inbox last read them (None: no row). Rows are detached copies, never written."""

    def __init__(self, seconds: float = SENDER_SECONDS, limit: int = SENDER_ENTRIES) -> None:
        self.hosts: _Expiring[KnownInstance | None] = _Expiring(seconds, limit)
        self.actors: _Expiring[RemoteActor | None] = _Expiring(seconds, limit)

    def get(self, host: str, actor: str) -> tuple[KnownInstance | None, RemoteActor | None] | None:
        """Both rows when both are cached, else None (the inbox then reads both)."""
        host_found, known = self.hosts.get(host)
        actor_found, remote = self.actors.get(actor)
        return (known, remote) if host_found and actor_found else None

    def put(
        self, host: str, known: KnownInstance | None, actor: str, remote: RemoteActor | None
    ) -> None:
        self.hosts.put(host, known)
        self.actors.put(actor, remote)

    def clear(self) -> None:
        """After a block or an allow-list change: the next activity reads its host again."""
        self.hosts.clear()
        self.actors.clear()


@functools.cache
def insert_items(dialect: str) -> Insert:
    """``INSERT … ON CONFLICT (activity_id) DO NOTHING RETURNING id, activity_id``, built once
    a dialect, for any number of rows. On the table, not the model: the ORM's bulk path would
    cost as much as the rest of the request."""
    table = InboxItem.metadata.tables["inbox_item"]
    statement = (postgresql if dialect == "postgresql" else sqlite).insert(table)
    return statement.on_conflict_do_nothing(index_elements=["activity_id"]).returning(
        table.c.id, table.c.activity_id
    )


@dataclass
class _Waiting:
    values: dict[str, Any]
    seen_host: str | None  # the sender's host, when its row is due an update
    answer: asyncio.Future[int | None]


class InboxWriter:
    """Inserts inbox rows for concurrent requests, as many per transaction as are waiting.

    The first request to arrive starts a drain task; it writes what is waiting, and while its
    transaction runs, the requests that arrive meanwhile wait for the next one. A request
    alone is written at once, in a transaction of its own, as before.
    """

    def __init__(self, sessions: SessionFactory, batch_rows: int = BATCH_ROWS) -> None:
        self._sessions = sessions
        self._batch_rows = batch_rows
        self._waiting: list[_Waiting] = []
        self._draining: asyncio.Task[None] | None = None

    async def store(self, values: dict[str, Any], seen_host: str | None) -> int | None:
        """The new row's id, or None when an activity with that id is already stored.

        ``seen_host``: also record that this host spoke to us (``instances.seen``), in the
        same transaction.
        """
        answer: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(values, seen_host, answer))
        if self._draining is None:
            self._draining = asyncio.create_task(self._drain())
        return await answer

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[: self._batch_rows]
                del self._waiting[: self._batch_rows]
                await self._write(batch)
        finally:
            self._draining = None

    async def _write(self, batch: list[_Waiting]) -> None:
        try:
            ids = await self._insert(batch)
        except Exception as error:
            if len(batch) == 1:
                _fail(batch[0], error)
                return
            # One bad row must not fail the others: each alone, in its own transaction.
            log.warning("a batch of %d inbox rows failed (%s); one by one", len(batch), error)
            for waiting in batch:
                try:
                    _answer(waiting, (await self._insert([waiting]))[0])
                except Exception as alone:
                    _fail(waiting, alone)
            return
        for waiting, row_id in zip(batch, ids, strict=True):
            _answer(waiting, row_id)

    async def _insert(self, batch: Sequence[_Waiting]) -> list[int | None]:
        """One transaction: every row not stored yet, then the rows of the hosts that sent
        them. The same activity twice in one batch is inserted once; the other copy is a
        duplicate, as it would be one transaction later. A duplicate writes nothing."""
        first: dict[str, _Waiting] = {}
        for waiting in batch:
            first.setdefault(waiting.values["activity_id"], waiting)
        async with self._sessions() as session:
            connection = await session.connection()
            statement = insert_items(connection.dialect.name)
            result = await connection.execute(statement, [w.values for w in first.values()])
            stored = {activity_id: row_id for row_id, activity_id in result.all()}
            ids = [
                stored.get(w.values["activity_id"]) if first[w.values["activity_id"]] is w else None
                for w in batch
            ]
            hosts = {w.seen_host for w, i in zip(batch, ids, strict=True) if w.seen_host and i}
            await seen_all(session, hosts, now=batch[0].values["received_at"])
            await session.commit()
        return ids


def _answer(waiting: _Waiting, row_id: int | None) -> None:
    """Hand a request its row id (unless it is gone: a client that hung up)."""
    if not waiting.answer.done():
        waiting.answer.set_result(row_id)


def _fail(waiting: _Waiting, error: Exception) -> None:
    """The request raises ``error`` (and answers 500): its activity was not stored."""
    if not waiting.answer.done():
        waiting.answer.set_exception(error)
