"""The worker: applies stored incoming activities, then sends due deliveries, until stopped.

Everything it works from is in the database, so any number of workers may run (PostgreSQL
hands each its own rows with ``SKIP LOCKED``; on SQLite one is enough, and the web server's
own is that one). A pass that fails is logged and the next one starts after the poll
interval: one bad row or a database hiccup never ends the loop.

Deliveries go in batches, since the database and not the network was what a delivery cost:
rows are claimed a few slots' worth at a time, with their hosts' policies and their actors'
signers (kept for the pass); up to ``delivery_concurrency`` POSTs run at once; answers are
written ``RECORD_EVERY`` at a time, or after ``RECORD_WITHIN`` seconds, whichever comes
first. A worker that dies before writing a batch has those rows sent again once their lease
ends, a batch or so of them (``federation.delivery`` says why that is safe).
"""

from __future__ import annotations

import asyncio
import logging
import random
from asyncio import FIRST_COMPLETED
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from catalogue.columns import utcnow
from federation.delivery import (
    Answer,
    DueDelivery,
    HostPolicy,
    Refused,
    answer,
    claim_batch,
    lease_for,
    post,
    record_batch,
    release,
)
from federation.handlers import process_pending
from federation.keys import Signer
from federation.matches_feed import publish_pending_matches
from federation.models import DeliveryState
from federation.service import Federation
from federation.signatures import body_digest
from federation.signing_process import ToSign

log = logging.getLogger("terreau.federation")

#: How long an idle worker waits before looking again (``wake()`` cuts it short).
POLL_SECONDS = 1.0
#: Deliveries one pass sends at most, so that incoming activities are not kept waiting.
MAX_DELIVERIES_PER_PASS = 500
#: Rows kept claimed ahead of the sends, in multiples of ``delivery_concurrency``: a claim
#: starts when fewer than ``CLAIM_BELOW`` rows a slot are left, enough to keep the slots busy
#: through a write and a claim (up to 100 ms each while the loop is busy sending: the database
#: thread waits for the loop to let go of the GIL) and for the signing process to sign the
#: rows ahead; it fills up to ``CLAIM_AHEAD``. A row waits for at most that many rounds of
#: sends before its own, which its lease covers (``delivery.lease_for``; a row whose lease
#: would end during its send is left for the next claim).
CLAIM_AHEAD = 12
CLAIM_BELOW = 8
#: Answers written together: at most this many...
RECORD_EVERY = 64
#: ...and none kept unwritten longer than this (seconds), so a slow inbox delays no one.
RECORD_WITHIN = 0.1
#: Claimed rows worth handing to the signing process (fewer are signed at once, in place).
PRESIGN_AT_LEAST = 8
#: Headers signed ahead are used within this many seconds, or signed again: their ``Date`` must
#: stay well inside every receiver's window (ours: 300 s; Mastodon's: an hour).
PRESIGNED_FOR = 30.0


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
        self.lease = lease_for(federation.config, sends_before=CLAIM_AHEAD)
        self._woken = asyncio.Event()
        self._stopping = False

    async def run_once(self) -> int:
        """One pass: pending inbox items, the funder's match changes, then due deliveries; how
        many rows it finished (a delivery counts when its attempt was recorded, whatever the
        answer)."""
        applied = await process_pending(self.federation)
        applied += await publish_pending_matches(self.federation)
        return applied + await self.deliver_due()

    async def deliver_due(self) -> int:
        """Send due rows, ``delivery_concurrency`` at a time, a new one as soon as a slot frees
        up (a slow inbox holds one slot, not a whole batch); how many were recorded."""
        return await DeliveryPass(self).run()

    @property
    def stopping(self) -> bool:
        """Asked to stop: claim and start nothing more, let what is in flight finish."""
        return self._stopping

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


#: A send's result: its answer, and whether it is a crash of ours rather than the inbox's.
Sent = tuple[Answer, bool]


class DeliveryPass:
    """One pass's deliveries: rows claimed but not started, answers not yet written, and what
    the pass knows of hosts and actors.

    ``delivery_concurrency`` slots each send one row after another, taking the next claimed
    row as soon as their POST is answered (a slow inbox holds one slot, not a whole batch).
    A slot that stays busy keeps its HTTP connection busy too: handing each row to a new task
    left connections idle between sends, and the client checks every idle connection on each
    request.

    Beside the slots the pass runs one database task at a time, a claim or a write (on SQLite
    a second writer would sleep in its busy handler), and one signing task: the signing
    process signs claimed rows from the newest back, each signature kept as it comes, while
    the slots send from the oldest and sign in place whatever it has not reached. The slots
    never wait for a signature, and the child's work is never in the way when it has no core
    to itself. Slots only wake the pass when there is something to decide: rows running low,
    a write due, a slot done.
    """

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.federation = worker.federation
        self.capacity = max(1, self.federation.config.delivery_concurrency)
        self.ready: deque[tuple[DueDelivery, datetime]] = deque()  # with their lease's end
        self.waiting: set[int] = set()  # ids of the rows in ``ready``
        self.unsigned: list[DueDelivery] = []  # claimed rows for the signing process, oldest first
        self.slots: set[asyncio.Task[None]] = set()  # the slots still running
        self.started = False  # the slots were started (once the first claim brought rows)
        self.database: asyncio.Task[None] | None = None  # the claim or write under way
        self.claiming = False  # that task is a claim
        self.signing: asyncio.Task[None] | None = None  # rows at the signing process
        self.nudged = asyncio.Event()  # a slot has something for the pass to decide
        self.rows_came = asyncio.Event()  # slots waiting for rows look again
        self.policies: dict[str, HostPolicy] = {}  # by host, as of its latest claim
        self.signers: dict[str, Signer] = {}  # by actor
        # Headers the signing process made for claimed rows, with when (loop time).
        self.presigned: dict[int, tuple[dict[str, str], float]] = {}
        self.gone: set[str] = set()  # hosts that answered 410 (and no 2xx since)
        self.fresh: set[str] = set()  # hosts that need not be marked seen again
        self.answers: list[Answer] = []  # not yet written, in the order they came
        self.crashes = 0  # how many of those are crashes, which do not count as finished
        self.refused: list[Refused] = []
        self.oldest: float | None = None  # when the oldest unwritten one came (loop time)
        self.claimed = 0
        self.more = True  # the last claim got all it asked for: more rows may be due
        self.finished = 0

    async def run(self) -> int:
        """Send until nothing is due, stopped, or the pass's share is sent; write every answer
        that came, give back rows claimed but not started. Cancelled, it writes nothing: what
        it had not written waits for its lease."""
        try:
            await self._coordinate()
        except asyncio.CancelledError:
            self._abandon()
            raise
        except Exception:
            self._abandon()
            await self._finish()
            raise
        await self._finish()
        return self.finished

    async def _coordinate(self) -> None:
        """Start claims, writes and signing as they fall due, until the slots are done and
        no database task is under way (``_finish`` writes what is left)."""
        while True:
            if self.database is None:
                self.database = self._next_database_task()
            if self.signing is None and self._worth_presigning():
                self.signing = asyncio.create_task(self._presign())
            waits: set[asyncio.Task[Any]] = set(self.slots)
            waits.update(t for t in (self.database, self.signing) if t is not None)
            if not waits:
                return
            self.nudged.clear()
            nudge = asyncio.create_task(self.nudged.wait())
            try:
                done, _ = await asyncio.wait(
                    waits | {nudge}, timeout=self._until_write(), return_when=FIRST_COMPLETED
                )
            finally:
                nudge.cancel()
            for task in done - {nudge}:
                if task is self.database:
                    self.database, self.claiming = None, False
                    self.rows_came.set()  # or none will: waiting slots look again
                elif task is self.signing:
                    self.signing = None
                else:
                    self.slots.discard(task)
                task.result()  # a failed claim, or a slot's own bug, fails the pass
            if not self.started and self.ready:  # the first rows: an idle pass starts no slot
                self.started = True
                self.slots = {asyncio.create_task(self._slot()) for _ in range(self.capacity)}

    def _next_database_task(self) -> asyncio.Task[None] | None:
        """A claim first when fewer than ``CLAIM_BELOW`` rows a slot are left (a write can
        wait, a slot without a row cannot), else a write if one is due; or nothing to do."""
        self.claiming = self._should_claim()
        if self.claiming:
            return asyncio.create_task(self._claim())
        if self._write_is_due():
            return asyncio.create_task(self._record())
        return None

    def _should_claim(self) -> bool:
        return len(self.ready) < CLAIM_BELOW * self.capacity and self._may_claim()

    def _may_claim(self) -> bool:
        return self.more and not self.worker.stopping and self.claimed < MAX_DELIVERIES_PER_PASS

    def _nudge(self) -> None:
        """Have the pass look for a database task to start (it sees for itself when one ends)."""
        if self.database is None:
            self.nudged.set()

    async def _slot(self) -> None:
        """Send claimed rows one after another until none is left or the worker stops;
        rows whose host refuses them are settled without a send."""
        while (row := await self._next_row()) is not None:
            due, lease_ends = row
            refusal = self._refusal(due.host)
            if refusal is not None:
                self._unwritten()
                self.refused.append(Refused(due, *refusal))
            elif self._lease_covers_a_send(lease_ends):
                self._took(*await self._send(due))
            else:  # only when nearly every send before it timed out
                log.warning("delivery %d: lease nearly over, left to be claimed again", due.id)
            if self._write_is_due():
                self._nudge()

    async def _next_row(self) -> tuple[DueDelivery, datetime] | None:
        """The oldest claimed row not started, waiting for a claim if one may bring more;
        None when the slot is done."""
        while not self.worker.stopping:
            if self.ready:
                row = self.ready.popleft()
                self.waiting.discard(row[0].id)
                if self._should_claim():
                    self._nudge()
                return row
            if not (self.claiming or self._may_claim()):
                return None
            self.rows_came.clear()
            self._nudge()
            await self.rows_came.wait()
        return None

    async def _claim(self) -> None:
        """Claim up to ``CLAIM_AHEAD`` slots' worth of rows, with what sending them needs."""
        want = min(
            CLAIM_AHEAD * self.capacity - len(self.ready), MAX_DELIVERIES_PER_PASS - self.claimed
        )
        async with self.federation.sessions() as session:
            batch = await claim_batch(
                session,
                self.federation.config,
                self.worker.clock(),
                want,
                self.worker.lease,
                probe=self.claimed == 0,  # after a full claim, rows are surely due
                signers=self.signers,
            )
        self.claimed += len(batch.rows)
        self.more = len(batch.rows) == want
        self.signers.update(batch.signers)
        self.policies.update(batch.policies)
        self.fresh.update(h for h, p in batch.policies.items() if p.fresh and h not in self.gone)
        self.ready.extend((due, batch.lease_ends) for due in batch.rows)
        self.waiting.update(due.id for due in batch.rows)
        if self.federation.signing is not None:
            self.unsigned.extend(batch.rows)

    def _worth_presigning(self) -> bool:
        """Whether the claimed rows not yet started are enough to be worth the signing
        process."""
        while self.unsigned and self.unsigned[-1].id not in self.waiting:
            self.unsigned.pop()  # the slots got there first
        return len(self.unsigned) >= PRESIGN_AT_LEAST

    async def _presign(self) -> None:
        """Have the signing process sign the claimed rows not yet started, newest first: it
        meets the slots, which start from the oldest, wherever its share of a core lets it.
        Each signature is kept as it comes; rows the slots start first are signed in place, as
        are rows it fails to sign."""
        signing = self.federation.signing
        chunk = [due for due in reversed(self.unsigned) if due.id in self.waiting]
        self.unsigned = []
        if signing is None:
            return
        digests: dict[str, str] = {}  # one activity to many inboxes: digested once
        requests = []
        for due in chunk:
            digest = digests.get(due.body)
            if digest is None:
                digest = digests[due.body] = body_digest(due.body.encode())
            requests.append(ToSign("POST", due.inbox, digest, self.signers[due.actor_uri]))
        loop = asyncio.get_running_loop()

        def keep(index: int, headers: dict[str, str]) -> None:
            due = chunk[index]
            if due.id in self.waiting:
                self.presigned[due.id] = (headers, loop.time())

        await signing.sign(requests, keep)

    def _signed(self, due: DueDelivery) -> dict[str, str] | None:
        """The headers signed ahead for ``due``, if still fresh."""
        found = self.presigned.pop(due.id, None)
        if found is None:
            return None
        headers, when = found
        return headers if asyncio.get_running_loop().time() - when < PRESIGNED_FOR else None

    def _refusal(self, host: str) -> tuple[DeliveryState, str] | None:
        """Why not to send to ``host``: what its claim read, or a 410 during this pass (the
        first 410 stops the others, as the row it closes would)."""
        if host in self.gone:
            return DeliveryState.GONE, "host gone"
        policy = self.policies.get(host)
        return None if policy is None else policy.refusal

    def _lease_covers_a_send(self, lease_ends: datetime) -> bool:
        """Whether a send starting now ends, answer or timeout, while the row is still ours:
        past that, another worker may have taken it."""
        timeout = timedelta(seconds=self.federation.config.delivery_timeout_seconds)
        return self.worker.clock() + timeout <= lease_ends

    async def _send(self, due: DueDelivery) -> Sent:
        """One POST; an unexpected error is logged and becomes an attempt without an answer
        (so a row that always fails ends ``failed`` instead of looping) and the pass goes on."""
        worker = self.worker
        try:
            signer = self.signers[due.actor_uri]
            status, error = await post(self.federation.fetcher, due, signer, self._signed(due))
        except Exception as crash:
            log.exception("delivery %d to %s raised", due.id, due.inbox)
            reason = f"internal error: {type(crash).__name__}: {crash}"
            return answer(due, None, reason, worker.clock(), worker.rng), True
        return answer(due, status, error, worker.clock(), worker.rng), False

    def _took(self, item: Answer, crashed: bool) -> None:
        self._unwritten()
        self.answers.append(item)
        self.crashes += crashed
        host = item.due.host
        if item.result.host_gone:
            self.gone.add(host)
            self.fresh.discard(host)
        elif item.result.state == DeliveryState.SENT:
            self.gone.discard(host)

    def _unwritten(self) -> None:
        """Note when the oldest answer not yet written came (the pass then waits for a write
        to fall due, not longer)."""
        if self.oldest is None:
            self.oldest = asyncio.get_running_loop().time()
            self._nudge()

    def _write_is_due(self) -> bool:
        if self.oldest is None:
            return False
        waited = asyncio.get_running_loop().time() - self.oldest
        return len(self.answers) + len(self.refused) >= RECORD_EVERY or waited >= RECORD_WITHIN

    def _until_write(self) -> float | None:
        """How long the pass may wait before a write is due (None: none can start before a
        slot wakes it or the database task ends)."""
        if self.oldest is None or self.database is not None:
            return None
        return max(0.0, self.oldest + RECORD_WITHIN - asyncio.get_running_loop().time())

    async def _record(self) -> None:
        """Write the answers and refusals so far, in one transaction. If that fails (the
        database is gone), their rows stay leased and are taken again when the lease ends."""
        answers, refused, crashes = self.answers, self.refused, self.crashes
        self.answers, self.refused, self.crashes, self.oldest = [], [], 0, None
        if not answers and not refused:
            return
        fresh = frozenset(self.fresh)
        try:
            async with self.federation.sessions() as session:
                await record_batch(session, answers, refused, self.worker.clock(), fresh=fresh)
        except Exception:
            log.exception(
                "could not record what became of %d deliveries; retried after their lease",
                len(answers) + len(refused),
            )
            return
        self.finished += len(answers) - crashes + len(refused)
        sent = (a.due.host for a in answers if a.result.state == DeliveryState.SENT)
        self.fresh.update(host for host in sent if host not in self.gone)

    def _abandon(self) -> None:
        """Cancel the slots and the database and signing tasks: the rows being sent wait for
        their lease."""
        for task in (*self.slots, self.database, self.signing):
            if task is not None:
                task.cancel()
        self.slots, self.database, self.signing = set(), None, None

    async def _finish(self) -> None:
        await self._record()
        await self._give_back()

    async def _give_back(self) -> None:
        """Release the rows claimed but never started (the worker is stopping, or the pass
        failed), so that the next worker need not wait for their lease."""
        by_lease: dict[datetime, list[int]] = {}
        for due, lease_ends in self.ready:
            by_lease.setdefault(lease_ends, []).append(due.id)
        self.ready.clear()
        try:
            for lease_ends, ids in by_lease.items():
                async with self.federation.sessions() as session:
                    await release(session, ids, lease_ends)
        except Exception:
            log.exception("could not release claimed deliveries; they wait for their lease")
