"""The worker: applies stored incoming activities, then sends due deliveries, until stopped.

Everything it works from is in the database, so any number of workers may run (PostgreSQL
hands each its own rows with ``SKIP LOCKED``; on SQLite one is enough, and the web server's
own is that one). A pass that fails is logged and the next one starts after the poll
interval: one bad row or a database hiccup never ends the loop.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from datetime import datetime

from catalogue.columns import utcnow
from federation.delivery import DueDelivery, claim_due, lease_for, record_attempt, send_one
from federation.handlers import process_pending
from federation.service import Federation

log = logging.getLogger("terreau.federation")

#: How long an idle worker waits before looking again (``wake()`` cuts it short).
POLL_SECONDS = 1.0
#: Deliveries one pass sends at most, so that incoming activities are not kept waiting.
MAX_DELIVERIES_PER_PASS = 500


class Worker:
    def __init__(
        self,
        federation: Federation,
        *,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.federation = federation
        self.clock = clock
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
        self.poll_seconds = poll_seconds
        self.lease = lease_for(federation.config)
        self._woken = asyncio.Event()
        self._stopping = False

    async def run_once(self) -> int:
        """One pass: pending inbox items, then due deliveries; how many rows it finished
        (a delivery counts when its attempt was recorded, whatever the answer)."""
        applied = await process_pending(self.federation)
        return applied + await self.deliver_due()

    async def deliver_due(self) -> int:
        """Send due rows, ``delivery_concurrency`` at a time, claiming more as slots free up
        (a slow inbox holds one slot, not a whole batch). Claiming only what can start at once
        keeps leases from running out while rows wait for a slot."""
        capacity = self.federation.config.delivery_concurrency
        running: set[asyncio.Task[bool]] = set()
        claimed_total = finished = 0
        more = True
        try:
            while True:
                free = min(capacity - len(running), MAX_DELIVERIES_PER_PASS - claimed_total)
                # Claim in handfuls, not one query per freed slot.
                worth_it = free > 0 and (not running or 4 * free >= capacity)
                if more and worth_it and not self._stopping:
                    batch = await self._claim(free)
                    claimed_total += len(batch)
                    more = len(batch) == free  # fewer than asked: nothing else is due
                    running.update(asyncio.create_task(self._send(due)) for due in batch)
                if not running:
                    break
                done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                finished += sum(task.result() for task in done)
        finally:
            for task in running:  # cancelled from outside: in-flight rows wait for their lease
                task.cancel()
        return finished

    async def _claim(self, limit: int) -> list[DueDelivery]:
        async with self.federation.sessions() as session:
            return await claim_due(session, self.clock(), limit, self.lease)

    async def _send(self, due: DueDelivery) -> bool:
        """Send one row; an unexpected error is logged and counted as an attempt without an
        answer (so a row that always fails ends ``failed`` instead of looping) and the pass
        goes on."""
        federation = self.federation
        try:
            async with federation.sessions() as session:
                await send_one(
                    session,
                    federation.fetcher,
                    federation.config,
                    due,
                    rng=self.rng,
                    clock=self.clock,
                )
        except Exception as error:
            log.exception("delivery %d to %s raised", due.id, due.inbox)
            await self._count_crash(due, error)
            return False
        return True

    async def _count_crash(self, due: DueDelivery, error: Exception) -> None:
        """Record the crash as a failed attempt; if even that fails (the database is gone),
        the row stays leased and is taken again when its lease ends."""
        reason = f"internal error: {type(error).__name__}: {error}"
        try:
            async with self.federation.sessions() as session:
                await record_attempt(session, due, None, reason, self.clock(), self.rng)
        except Exception:
            log.exception(
                "delivery %d: could not record the error; retried after its lease", due.id
            )

    async def run(self, stop: asyncio.Event) -> None:
        """Passes until ``stop`` is set, sleeping between them unless woken."""
        self._stopping = False
        stopping = asyncio.create_task(self._watch(stop))
        try:
            while not stop.is_set():
                self._woken.clear()  # a wake() during the pass asks for one more pass
                if await self._pass() == 0:
                    await self._idle(stop)
        finally:
            stopping.cancel()

    async def _watch(self, stop: asyncio.Event) -> None:
        """Stop claiming new rows as soon as ``stop`` is set; rows in flight finish."""
        await stop.wait()
        self._stopping = True

    async def _pass(self) -> int:
        try:
            return await self.run_once()
        except Exception:
            log.exception("worker pass failed; trying again in %.0f s", self.poll_seconds)
            return 0

    async def _idle(self, stop: asyncio.Event) -> None:
        """Until woken, stopped, or the poll interval is over."""
        waits = {asyncio.create_task(self._woken.wait()), asyncio.create_task(stop.wait())}
        try:
            await asyncio.wait(
                waits, timeout=self.poll_seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in waits:
                task.cancel()

    def wake(self) -> None:
        """Start the next pass now (something was just queued in this process)."""
        self._woken.set()
